"""The local SDSS-compatible service: a simulated sky behind SDSS's protocols.

Independent of the clients it checks (it imports no skytfds.imaging,
skytfds.services or skytfds.datasets code), one job per module:

  app            the aiohttp application: state, caching, faults, threads
  routes/        one module per service: sqlsearch, imgcutout, sas, ps1
                 (and params, the parameter checks they share)
  sql, tables    SkyServer SQL on sqlite3; the PhotoObj / SpecObj rows
  spexecutesql   what SkyServer does to a query first: its refusals, throttle
  catalogs       the shared real catalogue or a generated one
  payload_cache  rendered payloads on disk or in memory; image LRUs
  faults         deterministic fault injection
  sky            `Sky`: what each service serves, from the modules below
  fields         where a simulated field lies (its WCS in every band)
  population     catalogue objects and background sources
  render         PSF, Sersic profiles, noise
  frame_files    SDSS frame .fits.bz2 files (write simulated, read real)
  sas_layout     SAS frame paths
  real_frames    real frames of a local SAS mirror, resampled for cutouts
  cutouts        SkyServer getjpeg images
  colour         SDSS's i, r, g colour rendering and JPEG encoding
  panstarrs      ps1filenames.py tables and fitscut.cgi images
"""

# Follows sciserver/SkyServerWS (SkyServer's web services), the SDSS data
# model pages of the SAS files and spacetelescope/fitscut (PS1 cutouts): each
# module names the file it follows.
