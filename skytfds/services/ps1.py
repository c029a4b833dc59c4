"""Pan-STARRS1 (PS1) image service at STScI: colour JPEG cutouts.

Two requests per cutout: `ps1filenames.py` lists the stack images covering a
position (a whitespace table), then `fitscut.cgi` renders y, i, g as red,
green, blue at 0.25 arcsec per pixel. Many positions are looked up in one
POST of a file of positions (`fetch_filenames_bulk`) instead of one GET
each. Pure builders (`filenames_url`, `parse_filenames`,
`parse_filename_rows`, `positions_file`, `fitscut_url`, `cutout_cache_name`)
and the fetching twins `fetch_filenames_bulk`, `fetch_color_cutout`.

  {base}/cgi-bin/ps1filenames.py?ra=&dec=&filters=yig
  POST {base}/cgi-bin/ps1filenames.py   filters=yig, type=stack, file=<"ra dec" lines>
  {base}/cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=
"""

# What the service does, from STScI's own usage and answers
# (spacetelescope/mast_notebooks notebooks/PanSTARRS/PS1_image, the PS1
# Image Cutout Service page at outerspace.stsci.edu, and the
# `requests.post(ps1filenames, data=dict(filters=..., type=...),
# files=dict(file=...))` of STScI's getimages helper):
# - the table's columns are projcell subcell ra dec filter mjd type filename
#   shortname badflag; a stack image's filename is
#   /rings.v3.skycell/PPPP/SSS/rings.v3.skycell.PPPP.SSS.stk.<filter>.unconv.fits
#   (e.g. /rings.v3.skycell/1784/059/rings.v3.skycell.1784.059.stk.g.unconv.fits
#   for the Crab), and nothing else is accepted as one: it goes into a
#   fitscut URL, which opens that file on STScI's disks;
# - a POST with a file field `file` of "ra dec" lines answers one table for
#   all of them, each row carrying its position's ra and dec;
# - the table is not reliably sent as text/plain (issue 14 item 6: it comes
#   with an HTML content type), so an answer is taken for an HTML page by
#   its body, never by its Content-Type alone.

from __future__ import annotations

import re
import urllib.parse

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from skytfds import settings
from skytfds import survey
from skytfds.services import bodies
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
# A stack image as ps1filenames.py names it (the projcell and sky cell twice).
_FILENAME_RE = re.compile(
    r'/rings\.v3\.skycell/(\d{4})/(\d{3})/'
    r'rings\.v3\.skycell\.\1\.\2\.stk\.([grizy])\.unconv\.fits')
FILENAME_SHAPE = ('/rings.v3.skycell/PPPP/SSS/rings.v3.skycell.PPPP.SSS.stk.'
                  '<band>.unconv.fits')
BULK_POSITIONS = 500           # positions per POSTed file.


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
  """`name` if it is a PS1 stack image as ps1filenames.py lists it.

  Args:
    name: the filename column.
    band: the row's filter (the name must be of that band), or a fitscut
      channel ('red', 'green', 'blue': any band).
  """
  m = _FILENAME_RE.fullmatch(name) if isinstance(name, str) else None
  where = f' for band {band}' if band else ''
  if m is None:
    raise ValueError(f'PS1 file name{where} {str(name)[:120]!r}: expected a PS1 '
                     f'stack image as ps1filenames.py lists it, {FILENAME_SHAPE}')
  if band in PS1_BANDS and m.group(3) != band:
    raise ValueError(f'PS1 file name{where} {name!r} is a {m.group(3)} image, '
                     f'not {band}')
  return name


class _TableAnswers(bodies.AnswerCheck):
  """ps1filenames.py's answers: HTML or a table is read from the body."""

  def body(self, data: bytes, kind: str, *, content_type: str,
           max_bytes: int) -> None:
    # The Content-Type is not taken for the answer's form (see above): the
    # generic checks sniff an HTML page from the body's first bytes.
    del content_type
    bodies.validate_body(data, kind, content_type='', max_bytes=max_bytes)


TABLE_ANSWERS = _TableAnswers()


def filenames_url(ra: float, dec: float, filters: str = 'grizy',
                  base: str | None = None) -> str:
  """ps1filenames.py URL listing the stack images at (ra, dec) in degrees."""
  ra, dec = skyserver.check_ra_dec(ra, dec)
  query = _query({'ra': f'{ra:.6f}', 'dec': f'{dec:.6f}',
                  'filters': _check_filters(filters)})
  return f'{_base(base)}/cgi-bin/ps1filenames.py?{query}'


class FileRow(NamedTuple):
  """One row of a ps1filenames.py table."""
  line: int       # its line number in the answer
  ra: float       # the position it was asked for, degrees
  dec: float
  band: str
  kind: str       # the type column: 'stack'
  filename: str   # checked (`FILENAME_SHAPE`)


def parse_filename_rows(text: str | bytes,
                        source: str = 'ps1filenames.py') -> list[FileRow]:
  """Reads a ps1filenames.py table: its rows (none: an empty list).

  The table is whitespace separated, header first:
    projcell subcell ra dec filter mjd type filename shortname badflag

  Args:
    text: the response body.
    source: where it came from (the URL), for messages.

  Raises:
    http.FetchError: reason 'bad_table' when the text is not such a table
      (e.g. an HTML error page), or a file name is not a PS1 stack image.
  """
  if isinstance(text, bytes):
    text = text.decode('utf-8', 'replace')
  lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)
           if line.strip()]
  header = lines[0][1] if lines else []
  if not all(name in header for name in ('ra', 'dec', 'filter', 'filename')):
    first = ' '.join(text.split())[:120]
    raise http.FetchError(source, 'bad_table', 'expected a ps1filenames table with '
                          f'a header naming "filter" and "filename", got "{first}"')
  column = {name: index for index, name in enumerate(header)}
  rows = []
  for number, row in lines[1:]:
    if len(row) != len(header):
      raise http.FetchError(source, 'bad_table', f'line {number} has {len(row)} '
                            f'fields, the header {len(header)}: {" ".join(row)[:120]}')
    band = row[column['filter']]
    if band not in PS1_BANDS:
      raise http.FetchError(source, 'bad_table', f'line {number}: unknown filter '
                            f'{band!r}, expected one of {", ".join(PS1_BANDS)}')
    try:
      name = _check_filename(row[column['filename']], band)
      ra, dec = float(row[column['ra']]), float(row[column['dec']])
    except ValueError as e:
      raise http.FetchError(source, 'bad_table', f'line {number}: {e}') from None
    kind = row[column['type']] if 'type' in column else 'stack'
    rows.append(FileRow(number, ra, dec, band, kind, name))
  return rows


def _files_of(rows: Iterable[FileRow]) -> dict[str, str]:
  """{band: filename}; a stack image is preferred when several share a band."""
  files: dict[str, str] = {}
  kinds: dict[str, str] = {}
  for row in rows:
    if row.band not in files or (row.kind == 'stack' and kinds[row.band] != 'stack'):
      files[row.band], kinds[row.band] = row.filename, row.kind
  return files


def parse_filenames(text: str | bytes, source: str = 'ps1filenames.py') -> dict[str, str]:
  """Reads a one-position ps1filenames.py table into {band: filename}.

  Raises:
    NoCoverage: a header but no rows (PS1 has no image there).
    http.FetchError: reason 'bad_table' (see `parse_filename_rows`).
  """
  files = _files_of(parse_filename_rows(text, source))
  if not files:
    raise NoCoverage(source, 'no_coverage', 'PS1 lists no image at this position')
  return files


def _position_key(ra: float, dec: float) -> tuple[float, float]:
  """A position as sent in a positions file (6 decimals), for matching rows."""
  return round(float(ra), 6), round(float(dec), 6)


def positions_file(positions: Sequence[tuple[float, float]]) -> str:
  """The POSTed file: one "ra dec" line per position (degrees, 6 decimals)."""
  lines = []
  for ra, dec in positions:
    ra, dec = skyserver.check_ra_dec(ra, dec)
    lines.append(f'{ra:.6f} {dec:.6f}')
  return '\n'.join(lines) + '\n'


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


async def fetch_filenames_bulk(fetcher: http.Fetcher,
                               positions: Sequence[tuple[float, float]], *,
                               filters: str = ''.join(RGB_BANDS),
                               base: str | None = None,
                               chunk: int = BULK_POSITIONS,
                               ) -> list[dict[str, str]]:
  """The PS1 images at many positions, from POSTed files of positions.

  One POST per `chunk` positions (cached, so a rerun asks nothing again);
  positions south of dec -30 are not sent. Pass each answer to
  `fetch_color_cutout(files=...)`.

  Args:
    fetcher: the client.
    positions: (ra, dec) pairs, degrees.
    filters: the bands wanted (default y, i, g: those of the colour image).
    base: PS1 root; default `settings.ps1_url()`.
    chunk: positions per request.

  Returns:
    For each position, in order, {band: filename} ({} where PS1 lists none,
    or south of dec -30).

  Raises:
    http.FetchError: reason 'bad_table' (an answer that is not a table, or
      an unsafe file name), or as `Fetcher.fetch`.
  """
  filters = _check_filters(filters)
  if not isinstance(chunk, int) or chunk < 1:
    raise ValueError(f'chunk={chunk!r}: expected a whole number >= 1')
  checked = [skyserver.check_ra_dec(ra, dec) for ra, dec in positions]
  out: list[dict[str, str]] = [{} for _ in checked]
  wanted = [k for k, (_, dec) in enumerate(checked) if dec >= DEC_LIMIT]
  url = f'{_base(base)}/cgi-bin/ps1filenames.py'
  for start in range(0, len(wanted), chunk):
    part = wanted[start:start + chunk]
    text = positions_file([checked[k] for k in part])
    digest = hashlib.sha256(f'{filters}\n{text}'.encode()).hexdigest()
    body = await fetcher.fetch(
        url, kind='text', check=TABLE_ANSWERS,
        cache_name=f'ps1/filenames/{digest[:2]}/{digest}.txt',
        form=(('filters', filters, None), ('type', 'stack', None),
              ('file', text, 'positions.txt')))
    by_position: dict[tuple[float, float], list[FileRow]] = {}
    for row in parse_filename_rows(body, source=url):
      by_position.setdefault(_position_key(row.ra, row.dec), []).append(row)
    for k in part:
      out[k] = _files_of(by_position.get(_position_key(*checked[k]), []))
  return out


async def fetch_color_cutout(fetcher: http.Fetcher, ra: float, dec: float,
                             size: int = 240, base: str | None = None,
                             files: dict[str, str] | None = None) -> bytes:
  """A validated PS1 colour JPEG (y, i, g as R, G, B), cached by ra/dec/size.

  A cache hit makes no request at all; a miss asks ps1filenames.py for the
  y, i and g files (unless `files` gives them, from `fetch_filenames_bulk`),
  then fitscut.cgi for the image.

  Raises:
    NoCoverage: dec < -30 (before any request), or no y/i/g image listed.
    http.FetchError / http.ServiceUnreachable: as `Fetcher.fetch`.
  """
  list_url = filenames_url(ra, dec, ''.join(RGB_BANDS), base)
  check_coverage(ra, dec, list_url)
  name = cutout_cache_name(ra, dec, size)
  cached = await fetcher.read_cache(name, kind='jpeg')
  if cached is not None:
    return cached
  if files is None:
    table = await fetcher.fetch(list_url, kind='text', check=TABLE_ANSWERS)
    files = parse_filenames(table, source=list_url)
  else:
    files = {band: _check_filename(file, band) for band, file in files.items()}
  if not files:
    raise NoCoverage(list_url, 'no_coverage', 'PS1 lists no image at this position')
  missing = [band for band in RGB_BANDS if band not in files]
  if missing:
    raise NoCoverage(list_url, 'no_coverage',
                     f'PS1 lists no {"/".join(missing)} image at this position')
  url = fitscut_url(ra, dec, size=size, red=files['y'], green=files['i'],
                    blue=files['g'], base=base)
  return await fetcher.fetch(url, kind='jpeg', cache_name=name)
