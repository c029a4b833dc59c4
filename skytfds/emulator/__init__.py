"""The local SDSS-compatible service: a simulated sky behind SDSS's protocols.

`sky.Sky` renders frames, cutouts and Pan-STARRS answers (real frames where a
local SAS mirror holds them); `app.make_app` serves them over HTTP with the
real services' paths and optional fault injection.
"""
