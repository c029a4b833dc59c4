"""Pan-STARRS1 (PS1) image service at STScI: colour JPEG cutouts.

Two requests per cutout: `ps1filenames.py` lists the stack images covering a
position (a whitespace table), then `fitscut.cgi` renders y, i, g as red,
green, blue at 0.25 arcsec per pixel. Pure builders (`filenames_url`,
`parse_filenames`, `fitscut_url`, `cutout_cache_name`) and the fetching twin
`fetch_color_cutout`.

  {base}/cgi-bin/ps1filenames.py?ra=&dec=&filters=grizy
  {base}/cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=
"""

from __future__ import annotations

import re
import urllib.parse

from skytfds import settings
from skytfds import survey
from skytfds.services import http
from skytfds.services import skyserver

PS1_BANDS = survey.PS1_BANDS
DEC_LIMIT = -30.0              # degrees: the 3pi survey covers dec >= -30.
PIXEL_SCALE = survey.PS1_PIXEL_ARCSEC  # arcsec per pixel.
SIZE_RANGE = (16, 2048)        # pixels.
FORMATS = ('jpg', 'png')
RGB_BANDS = ('y', 'i', 'g')    # red, green, blue.
TABLE_COLUMNS = ('projcell', 'subcell', 'ra', 'dec', 'filter', 'mjd', 'type',
                 'filename', 'shortname', 'badflag')
_FILENAME_RE = re.compile(r'^/?[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$')


class NoCoverage(http.FetchError):
  """PS1 has no image here: dec < -30 deg, or an empty file table."""


def _base(base: str | None) -> str:
  return (settings.ps1_url() if base is None else base).rstrip('/')


def _query(params: dict[str, str]) -> str:
  return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe='/')


def _check_filters(filters: str) -> str:
  if (not isinstance(filters, str) or not filters or
      any(band not in PS1_BANDS for band in filters) or
      len(set(filters)) != len(filters)):
    raise ValueError(f'filters={filters!r}: expected distinct letters from "grizy"')
  return filters


def _check_filename(name: str, band: str = '') -> str:
  if (not isinstance(name, str) or not _FILENAME_RE.match(name) or
      '..' in name.split('/')):
    where = f' for band {band}' if band else ''
    raise ValueError(f'PS1 file name{where} {name!r}: expected a path of letters, '
                     "digits, '_', '.', '-' and '/' (no '..')")
  return name


def filenames_url(ra: float, dec: float, filters: str = 'grizy',
                  base: str | None = None) -> str:
  """ps1filenames.py URL listing the stack images at (ra, dec) in degrees."""
  ra, dec = skyserver.check_ra_dec(ra, dec)
  query = _query({'ra': f'{ra:.6f}', 'dec': f'{dec:.6f}',
                  'filters': _check_filters(filters)})
  return f'{_base(base)}/cgi-bin/ps1filenames.py?{query}'


def parse_filenames(text: str | bytes, source: str = 'ps1filenames.py') -> dict[str, str]:
  """Reads the ps1filenames.py table into {band: filename}.

  The table is whitespace separated, header first:
    projcell subcell ra dec filter mjd type filename shortname badflag
  Stack images are preferred when several rows share a band.

  Args:
    text: the response body.
    source: where it came from (the URL), for messages.

  Raises:
    NoCoverage: a header but no rows (PS1 has no image there).
    http.FetchError: reason 'bad_table' when the text is not such a table
      (e.g. an HTML error page) or a file name is unsafe.
  """
  if isinstance(text, bytes):
    text = text.decode('utf-8', 'replace')
  lines = [line.split() for line in text.splitlines() if line.strip()]
  if not lines or 'filter' not in lines[0] or 'filename' not in lines[0]:
    first = ' '.join(text.split())[:120]
    raise http.FetchError(source, 'bad_table', 'expected a ps1filenames table with '
                          f'a header naming "filter" and "filename", got "{first}"')
  header = lines[0]
  column = {name: index for index, name in enumerate(header)}
  files: dict[str, str] = {}
  kinds: dict[str, str] = {}
  for number, row in enumerate(lines[1:], start=2):
    if len(row) != len(header):
      raise http.FetchError(source, 'bad_table', f'line {number} has {len(row)} '
                            f'fields, the header {len(header)}: {" ".join(row)[:120]}')
    band = row[column['filter']]
    if band not in PS1_BANDS:
      raise http.FetchError(source, 'bad_table', f'line {number}: unknown filter '
                            f'{band!r}, expected one of {", ".join(PS1_BANDS)}')
    try:
      name = _check_filename(row[column['filename']], band)
    except ValueError as e:
      raise http.FetchError(source, 'bad_table', f'line {number}: {e}') from None
    kind = row[column['type']] if 'type' in column else 'stack'
    if band not in files or (kind == 'stack' and kinds[band] != 'stack'):
      files[band], kinds[band] = name, kind
  if not files:
    raise NoCoverage(source, 'no_coverage', 'PS1 lists no image at this position')
  return files


def fitscut_url(ra: float, dec: float, *, size: int = 240, red: str, green: str,
                blue: str, fmt: str = 'jpg', base: str | None = None) -> str:
  """fitscut.cgi URL of a size x size colour cutout (0.25 arcsec/pixel).

  Args:
    ra, dec: centre in degrees.
    size: pixels on a side (240 = 1 arcmin).
    red, green, blue: PS1 file names (from `parse_filenames`), y, i, g.
    fmt: 'jpg' or 'png'.
    base: PS1 root; default `settings.ps1_url()`.
  """
  ra, dec = skyserver.check_ra_dec(ra, dec)
  size = skyserver.check_size('size', size, *SIZE_RANGE)
  if fmt not in FORMATS:
    raise ValueError(f'fmt={fmt!r}: expected one of {", ".join(FORMATS)}')
  query = _query({'ra': f'{ra:.6f}', 'dec': f'{dec:.6f}', 'size': str(size),
                  'format': fmt, 'red': _check_filename(red, 'red'),
                  'green': _check_filename(green, 'green'),
                  'blue': _check_filename(blue, 'blue')})
  return f'{_base(base)}/cgi-bin/fitscut.cgi?{query}'


def cutout_cache_name(ra: float, dec: float, size: int = 240) -> str:
  """e.g. 'ps1/fitscut/229.540000_+42.760000_s240_yig.jpg'."""
  ra, dec = skyserver.check_ra_dec(ra, dec)
  size = skyserver.check_size('size', size, *SIZE_RANGE)
  return f'ps1/fitscut/{ra:.6f}_{dec:+.6f}_s{size}_yig.jpg'


def check_coverage(ra: float, dec: float, url: str = '') -> None:
  """Raises NoCoverage, with no request, south of the PS1 survey (dec < -30)."""
  ra, dec = skyserver.check_ra_dec(ra, dec)
  if dec < DEC_LIMIT:
    raise NoCoverage(url or f'ps1:{ra:.6f},{dec:+.6f}', 'no_coverage',
                     f'dec {dec:+.6f} is south of the Pan-STARRS 3pi survey '
                     f'(dec >= {DEC_LIMIT:g} deg): no PS1 image')


async def fetch_color_cutout(fetcher: http.Fetcher, ra: float, dec: float,
                             size: int = 240, base: str | None = None) -> bytes:
  """A validated PS1 colour JPEG (y, i, g as R, G, B), cached by ra/dec/size.

  A cache hit makes no request at all; a miss asks ps1filenames.py for the
  files, then fitscut.cgi for the image.

  Raises:
    NoCoverage: dec < -30 (before any request), or no y/i/g image listed.
    http.FetchError / http.ServiceUnreachable: as `Fetcher.fetch`.
  """
  list_url = filenames_url(ra, dec, 'grizy', base)
  check_coverage(ra, dec, list_url)
  name = cutout_cache_name(ra, dec, size)
  cached = await fetcher.read_cache(name, kind='jpeg')
  if cached is not None:
    return cached
  table = await fetcher.fetch(list_url, kind='text')
  files = parse_filenames(table, source=list_url)
  missing = [band for band in RGB_BANDS if band not in files]
  if missing:
    raise NoCoverage(list_url, 'no_coverage',
                     f'PS1 lists no {"/".join(missing)} image at this position')
  url = fitscut_url(ra, dec, size=size, red=files['y'], green=files['i'],
                    blue=files['g'], base=base)
  return await fetcher.fetch(url, kind='jpeg', cache_name=name)
