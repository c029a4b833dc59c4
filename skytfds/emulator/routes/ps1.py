"""STScI's Pan-STARRS cutout service: ps1filenames.py and fitscut.cgi.

  GET  /cgi-bin/ps1filenames.py?ra=&dec=&filters=
  POST /cgi-bin/ps1filenames.py  (multipart: file = lines "ra dec", filters,
       type)
      `panstarrs.ps1_filenames_bulk` (the table depends on the positions
      only, not on the sky).
  /cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=
      `Sky.ps1_jpeg` (image/jpeg, 0.25 arcsec/pixel).

The file table is sent as text/html, the type the real script's answer
carries, although its body is a whitespace table.
"""

# Follows spacetelescope/fitscut fitscut.c (the options: size in pixels,
# red/green/blue file names, format jpg), the ps1filenames.py usage of
# STScI's own notebooks (spacetelescope/mast_notebooks PS1_image; the
# PS1 Image Cutout Service page, outerspace.stsci.edu): a GET with ra, dec,
# filters, or for many positions a POST of `filters`, `type` and a file
# field `file` holding one "ra dec" line per position, answered by one table
# whose rows carry each position's ra and dec. The text/html type of the
# table is what issue 14 item 6 records of the real answer.

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from aiohttp import web

from skytfds import survey
from skytfds.emulator import panstarrs
from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

SIZE_RANGE = (8, 2048)            # pixels
DEFAULT_SIZE = 240
MAX_POSITIONS = 100_000           # lines of a POSTed file
TABLE_TYPE = 'text/html; charset=utf-8'
_FILE_RE = re.compile(r'[A-Za-z0-9_./-]{1,300}')
_FILTERS_RE = re.compile(f'[{"".join(survey.PS1_BANDS)}]{{1,5}}')


def _filters(values) -> str:
  every = ''.join(survey.PS1_BANDS)
  filters = str(values.get('filters', every) or every)
  if not _FILTERS_RE.fullmatch(filters):
    raise params.HttpError(400, f'Parameter filters={filters!r}: give letters '
                           f'from {every}.')
  return filters


def _positions(text: str) -> list[tuple[float, float]]:
  """The "ra dec" lines of a POSTed file (blank lines and # comments skipped)."""
  positions = []
  for number, line in enumerate(text.splitlines(), start=1):
    fields = line.split('#', 1)[0].replace(',', ' ').split()
    if not fields:
      continue
    if len(fields) < 2:
      raise params.HttpError(400, f'file line {number}: expected "ra dec", got '
                             f'{line[:80]!r}.')
    ra, dec = params.position({'ra': fields[0], 'dec': fields[1]})
    positions.append((ra, dec))
    if len(positions) > MAX_POSITIONS:
      raise params.HttpError(400, f'file: more than {MAX_POSITIONS} positions.')
  return positions


async def ps1_filenames(emulator: 'Emulator',
                        request: web.Request) -> web.StreamResponse:
  if request.method == 'POST':
    form = await request.post()
    upload = form.get('file')
    if upload is None:
      raise params.HttpError(400, 'Missing the file field (one "ra dec" line '
                             'per position).')
    raw = upload.file.read() if hasattr(upload, 'file') else upload
    text = raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else str(raw)
    positions = _positions(text)
    filters = _filters(form)
  else:
    positions = [params.position(request.query)]
    filters = _filters(request.query)
  return await emulator.serve(
      request, payload='text', content_type=TABLE_TYPE,
      produce=lambda: panstarrs.ps1_filenames_bulk(positions, filters))


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
  app.router.add_post('/cgi-bin/ps1filenames.py', filenames_handler)
  app.router.add_get('/cgi-bin/fitscut.cgi', fitscut_handler)
