"""The emulator's HTTP routes, one module per service.

`sqlsearch` (SkyServer SearchTools/SqlSearch), `imgcutout` (SkyServer
ImgCutout/getjpeg), `sas` (SAS frame files), `ps1` (STScI ps1filenames.py and
fitscut.cgi); `params` holds the query-parameter checks they share. Each
service module has `add_routes(app, emulator)`.
"""
