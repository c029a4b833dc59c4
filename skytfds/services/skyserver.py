"""SDSS SkyServer web services: SQL search and JPEG image cutouts.

Pure URL builders (`sql_url`, `cutout_url`, `cutout_cache_name`) and their
fetching twins (`run_query`, `fetch_cutout`).

  {base}/dr{N}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json
  {base}/dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=&opt=
"""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any

from skytfds import settings
from skytfds.services import http
from skytfds.services import sas

RELEASES = range(8, 20)        # SkyServer serves DR8 .. DR19.
FORMATS = ('csv', 'json')
CUTOUT_SIZE_RANGE = (64, 2048)  # pixels, width and height.
SCALE_RANGE = (0.015, 60.0)     # arcsec per pixel (SkyServer's own limits).
MAX_SQL_CHARS = 8000            # longer URLs are refused by web servers.
_OPT_RE = re.compile(r'^[A-Z]*$')


def check_release(release: Any) -> int:
  """`release` (N of DR{N}) as an int in 8..19; ValueError otherwise."""
  return sas.check_int('release', release, RELEASES.start, RELEASES.stop - 1)


def check_ra_dec(ra: Any, dec: Any) -> tuple[float, float]:
  """(ra, dec) in degrees as floats; ra in [0, 360), dec in [-90, 90]."""
  try:
    ra_f, dec_f = float(ra), float(dec)
  except (TypeError, ValueError):
    raise ValueError(f'ra={ra!r}, dec={dec!r}: expected numbers in degrees') from None
  if isinstance(ra, bool) or isinstance(dec, bool):
    raise ValueError(f'ra={ra!r}, dec={dec!r}: expected numbers in degrees')
  if not math.isfinite(ra_f) or not 0.0 <= ra_f < 360.0:
    raise ValueError(f'ra={ra!r}: expected degrees in [0, 360)')
  if not math.isfinite(dec_f) or not -90.0 <= dec_f <= 90.0:
    raise ValueError(f'dec={dec!r}: expected degrees in [-90, 90]')
  return ra_f, dec_f


def check_size(name: str, value: Any, low: int = CUTOUT_SIZE_RANGE[0],
               high: int = CUTOUT_SIZE_RANGE[1]) -> int:
  """An image size in pixels, an int in [low, high]."""
  return sas.check_int(name, value, low, high)


def _check_scale(scale: Any) -> float:
  try:
    value = float(scale)
  except (TypeError, ValueError):
    raise ValueError(f'scale={scale!r}: expected arcsec per pixel') from None
  if not math.isfinite(value) or not SCALE_RANGE[0] <= value <= SCALE_RANGE[1]:
    raise ValueError(f'scale={scale!r}: expected {SCALE_RANGE[0]} to '
                     f'{SCALE_RANGE[1]} arcsec per pixel')
  return value


def _check_opt(opt: Any) -> str:
  if not isinstance(opt, str) or not _OPT_RE.match(opt) or len(opt) > 16:
    raise ValueError(f'opt={opt!r}: expected SkyServer option letters, e.g. '
                     "'' or 'GL' (upper case A-Z only)")
  return opt


def _base(base: str | None) -> str:
  return (settings.skyserver_url() if base is None else base).rstrip('/')


def _query(params: dict[str, str]) -> str:
  return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe='')


def sql_url(sql: str, release: int = 17, fmt: str = 'csv',
            base: str | None = None) -> str:
  """SqlSearch URL for `sql` (URL-encoded).

  Args:
    sql: the query text.
    release: data release N of DR{N}.
    fmt: 'csv' or 'json'.
    base: SkyServer root; default `settings.skyserver_url()`.
  """
  if not isinstance(sql, str) or not sql.strip():
    raise ValueError(f'sql={sql!r}: expected non-empty SQL text')
  if '\x00' in sql:
    raise ValueError('sql: contains a NUL character')
  if len(sql) > MAX_SQL_CHARS:
    raise ValueError(f'sql: {len(sql)} characters exceeds {MAX_SQL_CHARS}; '
                     'split the query')
  if fmt not in FORMATS:
    raise ValueError(f'fmt={fmt!r}: expected one of {", ".join(FORMATS)}')
  release = check_release(release)
  query = _query({'cmd': sql, 'format': fmt})
  return f'{_base(base)}/dr{release}/SkyServerWS/SearchTools/SqlSearch?{query}'


def _cutout_params(ra, dec, scale, width, height, opt, release):
  ra, dec = check_ra_dec(ra, dec)
  return (ra, dec, _check_scale(scale), check_size('width', width),
          check_size('height', height), _check_opt(opt), check_release(release))


def cutout_url(ra: float, dec: float, *, scale: float = 0.4, width: int = 240,
               height: int = 240, opt: str = '', release: int = 17,
               base: str | None = None) -> str:
  """ImgCutout getjpeg URL: a width x height JPEG centred on (ra, dec).

  Args:
    ra, dec: centre in degrees (formatted with 6 decimals, 0.0036 arcsec).
    scale: arcsec per pixel.
    width, height: pixels, 64..2048.
    opt: SkyServer drawing options (upper-case letters, '' for none).
    release: data release N of DR{N}.
    base: SkyServer root; default `settings.skyserver_url()`.
  """
  ra, dec, scale, width, height, opt, release = _cutout_params(
      ra, dec, scale, width, height, opt, release)
  query = _query({'ra': f'{ra:.6f}', 'dec': f'{dec:.6f}', 'scale': f'{scale:g}',
                  'width': str(width), 'height': str(height), 'opt': opt})
  return f'{_base(base)}/dr{release}/SkyServerWS/ImgCutout/getjpeg?{query}'


def cutout_cache_name(ra: float, dec: float, *, scale: float = 0.4,
                      width: int = 240, height: int = 240, opt: str = '',
                      release: int = 17) -> str:
  """Cache name of a cutout, e.g.
  'skyserver/dr17/getjpeg/229.540000_+42.760000_s0.4_w240_h240.jpg'."""
  ra, dec, scale, width, height, opt, release = _cutout_params(
      ra, dec, scale, width, height, opt, release)
  suffix = f'_{opt}' if opt else ''
  return (f'skyserver/dr{release}/getjpeg/'
          f'{ra:.6f}_{dec:+.6f}_s{scale:g}_w{width}_h{height}{suffix}.jpg')


async def run_query(fetcher: http.Fetcher, sql: str, release: int = 17,
                    fmt: str = 'csv', base: str | None = None) -> bytes:
  """Runs `sql` on SkyServer; the raw response bytes (never cached).

  SkyServer reports SQL errors as a page (often with status 200) containing
  `error_message`; those bytes are returned as they are, so the catalogue
  parser can quote the server's message. HTTP errors raise FetchError (its
  message quotes the start of the server's answer).
  """
  return await fetcher.fetch(sql_url(sql, release, fmt, base), kind=fmt)


async def fetch_cutout(fetcher: http.Fetcher, ra: float, dec: float, *,
                       scale: float = 0.4, width: int = 240, height: int = 240,
                       opt: str = '', release: int = 17,
                       base: str | None = None) -> bytes:
  """A validated SkyServer JPEG cutout, cached under `cutout_cache_name`."""
  url = cutout_url(ra, dec, scale=scale, width=width, height=height, opt=opt,
                   release=release, base=base)
  name = cutout_cache_name(ra, dec, scale=scale, width=width, height=height,
                           opt=opt, release=release)
  return await fetcher.fetch(url, kind='jpeg', cache_name=name)
