"""STScI's Pan-STARRS cutout service: ps1filenames.py and fitscut.cgi.

  /cgi-bin/ps1filenames.py?ra=&dec=&filters=    `Sky.ps1_filenames` (text)
  /cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=
      `Sky.ps1_jpeg` (image/jpeg, 0.25 arcsec/pixel).
"""

# Follows spacetelescope/fitscut fitscut.c (the options: size in pixels,
# red/green/blue file names, format jpg) and astropy/astroquery
# astroquery/mast (the ps1filenames.py table a client reads).

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from aiohttp import web

from skytfds import survey
from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

SIZE_RANGE = (8, 2048)            # pixels
DEFAULT_SIZE = 240
_FILE_RE = re.compile(r'[A-Za-z0-9_./-]{1,300}')
_FILTERS_RE = re.compile(f'[{"".join(survey.PS1_BANDS)}]{{1,5}}')


async def ps1_filenames(emulator: 'Emulator',
                        request: web.Request) -> web.StreamResponse:
  ra, dec = params.position(request.query)
  every = ''.join(survey.PS1_BANDS)
  filters = request.query.get('filters', every) or every
  if not _FILTERS_RE.fullmatch(filters):
    raise params.HttpError(400, f'Parameter filters={filters!r}: give letters '
                           f'from {every}.')
  return await emulator.serve(
      request, payload='text', content_type='text/plain; charset=utf-8',
      produce=lambda: emulator.sky.ps1_filenames(ra, dec, filters))


async def fitscut(emulator: 'Emulator',
                  request: web.Request) -> web.StreamResponse:
  q = request.query
  ra, dec = params.position(q)
  size = params.int_param(q, 'size', DEFAULT_SIZE, *SIZE_RANGE)
  fmt = q.get('format', 'jpg').lower()
  if fmt not in ('jpg', 'jpeg'):
    raise params.HttpError(400, f'Parameter format={fmt!r}: the emulator '
                           'serves jpg only.')
  files = {}
  for channel in ('red', 'green', 'blue'):
    value = q.get(channel, '')
    if not value:
      raise params.HttpError(400, f'Missing parameter {channel}= (a PS1 file '
                             'name from ps1filenames.py).')
    if not _FILE_RE.fullmatch(value) or '..' in value:
      raise params.HttpError(400, f'Parameter {channel}={value[:80]!r} is not '
                             'a PS1 file name.')
    files[channel] = value
  name = hashlib.sha256(f'{ra!r}|{dec!r}|{size}|{files}'.encode()).hexdigest()
  return await emulator.serve(
      request, payload='jpeg', content_type='image/jpeg',
      cache_name=f'fitscut/{name[:2]}/{name}.jpg',
      produce=lambda: emulator.sky.ps1_jpeg(ra, dec, size=size, **files))


def add_routes(app: web.Application, emulator: 'Emulator') -> None:
  async def filenames_handler(request: web.Request) -> web.StreamResponse:
    return await ps1_filenames(emulator, request)

  async def fitscut_handler(request: web.Request) -> web.StreamResponse:
    return await fitscut(emulator, request)

  app.router.add_get('/cgi-bin/ps1filenames.py', filenames_handler)
  app.router.add_get('/cgi-bin/fitscut.cgi', fitscut_handler)
