"""SDSS SkyServer web services: SQL search and JPEG image cutouts.

Pure URL builders (`sql_url`, `cutout_url`, `cutout_cache_name`) and their
fetching twins (`run_query`, `fetch_cutout`).

  {base}/dr{N}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json
  {base}/dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=&opt=

Both carry `TaskName=skytfds...`, as SciServer's own SciScript-Python client
does, and every request the Fetcher's User-Agent, so that operators can tell
skytfds' traffic. SkyServer's error answers are read here (`ANSWERS`), not
in the generic transport.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import urllib.parse
from typing import Any

from absl import logging

from skytfds import settings
from skytfds import survey
from skytfds.services import bodies
from skytfds.services import http
from skytfds.services import sas

RELEASES = range(8, 20)        # SkyServer serves DR8 .. DR19.
FORMATS = ('csv', 'json')
CUTOUT_SIZE_RANGE = (64, 2048)  # pixels, width and height.
SCALE_RANGE = (0.015, 60.0)     # arcsec per pixel (SkyServer's own limits).
MAX_SQL_CHARS = 8000            # longer URLs are refused by web servers.
_OPT_RE = re.compile(r'^[A-Za-z]*$')

# What the server does, read in its source (github.com/sciserver/SkyServerWS):
# - Common/KeyWords.cs: DatabaseSearchTimeout, "600" seconds by default, is
#   the CommandTimeout of every query (Common/RunDBquery.cs, RunQuery).
# - ExceptionFilter/CustomFilter.cs: a query that fails in the database
#   (syntax, unknown column, that timeout) is answered, for every format but
#   html, with HTTP 500 and the JSON body {"ErrorCode": 500, "ErrorType":
#   "InternalServerError", "ErrorMessage": <the exception's message>, ...}.
#   Sending it again gives the same answer: it is final.
# - Common/ProcessRequest.cs wraps each query in the spExecuteSQL procedure,
#   which refuses some queries itself with a one-row table whose column is
#   `error_message` (HTTP 200): 'ERROR: Maximum 60 queries allowed per
#   minute. Rejected query: ...' (it counts one client's queries over the
#   last 60 s), 'error: limit is  top 500000 ...', 'error: must be a select
#   statement: ...'. The rate-limit refusal is waited out and sent again; the
#   others reach the catalogue parser, which quotes them with what to do.
# - Controllers/ImgCutout/getJpegController.cs: getjpeg answers a position
#   outside the survey's footprint with 404 and, as the body, its image with
#   "Requested (ra, dec) is outside the SDSS footprint." drawn on it
#   (ImgCutout.cs getFrames); it upper-cases opt and clips width, height
#   (64..2048) and scale (0.015..2400) rather than refusing them, so the
#   client refuses sizes and scales outside SkyServer's documented ranges
#   itself instead of getting an image of another size.
# - Common/RequestMisc.cs reads the TaskName parameter into the request log
#   (for a client that does not come through the SkyServer site it logs the
#   entry point instead; the User-Agent header is logged with the request).
SERVER_QUERY_LIMIT_S = 600
# The client waits a little longer than the server, so that the server's own
# timeout answer (final, quoted) arrives rather than a client-side timeout.
QUERY_TIMEOUT_S = SERVER_QUERY_LIMIT_S + 30
# A query that timed out may still run on the server: sent once more at most.
QUERY_MAX_TIMEOUTS = 2
RATE_LIMIT_WAIT_S = 60.0
QUERY_PROGRESS_S = 30.0  # A log line this often while a query runs.
SQL_TASK_NAME = 'skytfds.SkyServer.SqlSearch'
CUTOUT_TASK_NAME = 'skytfds.SkyServer.getjpeg'
_TOO_SLOW = (f'the query ran past SkyServer\'s {SERVER_QUERY_LIMIT_S} s limit: '
             'ask for fewer rows (a smaller TOP n), narrow the region or '
             'magnitude cuts, or split the query')
_RATE_LIMIT_RE = re.compile(r'maximum \d+ queries allowed per minute', re.I)


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
  """SkyServer's drawing options, upper-cased as the server reads them
  (ImgCutout.cs validateInput: opt_.ToUpper(), letter by letter), so that
  'gl' and 'GL' are one request and one cache file."""
  if not isinstance(opt, str) or not _OPT_RE.match(opt) or len(opt) > 16:
    raise ValueError(f'opt={opt!r}: expected SkyServer option letters, e.g. '
                     "'' or 'GL' (letters A-Z, any case)")
  return opt.upper()


def _base(base: str | None) -> str:
  return (settings.skyserver_url() if base is None else base).rstrip('/')


def _query(params: dict[str, str]) -> str:
  return urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe='')


def sql_url(sql: str, release: int = survey.DEFAULT_RELEASE, fmt: str = 'csv',
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
  query = _query({'cmd': sql, 'format': fmt, 'TaskName': SQL_TASK_NAME})
  return f'{_base(base)}/dr{release}/SkyServerWS/SearchTools/SqlSearch?{query}'


def _cutout_params(ra, dec, scale, width, height, opt, release):
  ra, dec = check_ra_dec(ra, dec)
  return (ra, dec, _check_scale(scale), check_size('width', width),
          check_size('height', height), _check_opt(opt), check_release(release))


def cutout_url(ra: float, dec: float, *, scale: float = 0.4, width: int = 240,
               height: int = 240, opt: str = '', release: int = survey.DEFAULT_RELEASE,
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
                  'width': str(width), 'height': str(height), 'opt': opt,
                  'TaskName': CUTOUT_TASK_NAME})
  return f'{_base(base)}/dr{release}/SkyServerWS/ImgCutout/getjpeg?{query}'


def cutout_cache_name(ra: float, dec: float, *, scale: float = 0.4,
                      width: int = 240, height: int = 240, opt: str = '',
                      release: int = survey.DEFAULT_RELEASE) -> str:
  """Cache name of a cutout, e.g.
  'skyserver/dr17/getjpeg/229.540000_+42.760000_s0.4_w240_h240.jpg'."""
  ra, dec, scale, width, height, opt, release = _cutout_params(
      ra, dec, scale, width, height, opt, release)
  suffix = f'_{opt}' if opt else ''
  return (f'skyserver/dr{release}/getjpeg/'
          f'{ra:.6f}_{dec:+.6f}_s{scale:g}_w{width}_h{height}{suffix}.jpg')


class _Answers(bodies.AnswerCheck):
  """SkyServer's error answers (see the notes on the server's source above)."""

  def body(self, data: bytes, kind: str, *, content_type: str,
           max_bytes: int) -> None:
    if kind in FORMATS and is_error_page(data):
      return  # The answer itself, for the catalogue parser to quote.
    refusal = refusal_message(data)
    if refusal is not None and _RATE_LIMIT_RE.search(refusal):
      raise http.AttemptFailed(
          'rate_limited', f'SkyServer refused the query: "{refusal}": it takes '
          'at most 60 queries a minute from one address; wait a minute and '
          'run again, and check that nothing else on this network is '
          'querying SkyServer', retry_after_s=RATE_LIMIT_WAIT_S)
    super().body(data, kind, content_type=content_type, max_bytes=max_bytes)

  def error(self, status: int, body: bytes) -> http.AttemptFailed | None:
    message = database_error(body)
    if message is not None:
      return http.AttemptFailed('sql_error', _database_error_detail(status, message),
                                retryable=False)
    if is_error_page(body):  # An error page with a status: final too.
      start = body[:65536].lower().find(b'error_message')
      return http.AttemptFailed(
          'sql_error', f'SkyServer refused the query (HTTP {status}): '
          f'"{bodies.excerpt(body[start:])}"', retryable=False)
    return None


ANSWERS = _Answers()

OUTSIDE_FOOTPRINT_DETAIL = (
    'the position is outside the SDSS imaging footprint: SkyServer answered '
    '404 with its "outside the SDSS footprint" image, and SDSS has no image '
    'there (keep objects inside the SDSS footprint, or use ps1_cutouts)')


class OutsideFootprint(http.FetchError):
  """getjpeg's 404 with an image: SDSS never imaged this position."""


class _CutoutAnswers(bodies.AnswerCheck):
  """getjpeg's answers: a 404 carrying a JPEG is "outside the footprint"."""

  def error(self, status: int, body: bytes) -> http.AttemptFailed | None:
    if status == 404 and body[:2] == b'\xff\xd8':
      return http.AttemptFailed('outside_footprint', OUTSIDE_FOOTPRINT_DETAIL,
                                retryable=False)
    return None


CUTOUT_ANSWERS = _CutoutAnswers()


def is_error_page(data: bytes) -> bool:
  """True for an HTML page naming `error_message` (a SkyServer error page)."""
  return bodies.looks_like_html(data) and b'error_message' in data[:65536].lower()


def refusal_message(data: bytes) -> str | None:
  """spExecuteSQL's refusal in a CSV or JSON answer (its `error_message`), or None."""
  text = data[:65536].decode('utf-8', 'replace').lstrip('\ufeff')
  if text.lstrip()[:1] in '[{':
    try:
      doc = json.loads(text)
      rows = doc[0]['Rows']
      return str(rows[0]['error_message'])
    except (ValueError, LookupError, TypeError, RecursionError):
      return None  # Not a refusal (a too-deep answer: the parser says so).
  lines = [line for line in text.splitlines() if not line.startswith('#')]
  if len(lines) < 2 or lines[0].strip().strip('"').lower() != 'error_message':
    return None
  return '\n'.join(lines[1:]).strip().strip('"')


def database_error(body: bytes) -> str | None:
  """The ErrorMessage of a JSON error answer (HTTP 500), or None."""
  try:
    doc = json.loads(body.decode('utf-8'))
  except (ValueError, RecursionError):
    return None
  if isinstance(doc, dict) and isinstance(doc.get('ErrorMessage'), str):
    return doc['ErrorMessage']
  return None


def _database_error_detail(status: int, message: str) -> str:
  """The whole ErrorMessage, and what to do about it."""
  if 'timeout' in message.lower():
    advice = _TOO_SLOW
  else:
    advice = ('fix the SQL (column and table names, quotes, TOP n) or the '
              'data release; sending it again gives the same answer')
  return f'SkyServer could not run the query (HTTP {status}): "{message}"; {advice}'


async def run_query(fetcher: http.Fetcher, sql: str,
                    release: int = survey.DEFAULT_RELEASE, fmt: str = 'csv',
                    base: str | None = None) -> bytes:
  """Runs `sql` on SkyServer; the raw response bytes (never cached).

  Each try may take the server's whole query time (QUERY_TIMEOUT_S, just over
  its 600 s); a query that times out is sent once more at most, and a log
  line every QUERY_PROGRESS_S says that it is still waiting. A refusal for
  too many queries a minute is waited out (60 s) and sent again.

  An error page (HTML naming `error_message`, status 200) and spExecuteSQL's
  other refusals are returned as they are, for the catalogue parser to quote.

  Raises:
    http.FetchError: reason 'sql_error' (the query fails in the database: the
      server's ErrorMessage, whole, and what to do; sent once), 'timeout',
      'rate_limited', or a transport failure.
  """
  url = sql_url(sql, release, fmt, base)
  fetch = asyncio.ensure_future(fetcher.fetch(
      url, kind=fmt, timeout_s=QUERY_TIMEOUT_S, max_timeouts=QUERY_MAX_TIMEOUTS,
      check=ANSWERS))
  started = time.monotonic()
  try:
    while True:
      done, _ = await asyncio.wait({fetch}, timeout=QUERY_PROGRESS_S)
      if done:
        break
      logging.info('SkyServer DR%d: still waiting for the query after %.0f s '
                   '(the server allows a query %d s)', release,
                   time.monotonic() - started, SERVER_QUERY_LIMIT_S)
    return fetch.result()
  except http.FetchError as e:
    if e.reason != 'timeout':
      raise
    raise http.FetchError(url, e.reason, f'{e.detail}; {_TOO_SLOW}',
                          attempts=e.attempts) from None
  finally:
    fetch.cancel()


async def fetch_cutout(fetcher: http.Fetcher, ra: float, dec: float, *,
                       scale: float = 0.4, width: int = 240, height: int = 240,
                       opt: str = '', release: int = survey.DEFAULT_RELEASE,
                       base: str | None = None) -> bytes:
  """A validated SkyServer JPEG cutout, cached under `cutout_cache_name`.

  Raises:
    OutsideFootprint: reason 'outside_footprint', the position is outside
      the SDSS footprint (getjpeg's 404 with an image; asked once).
    http.FetchError / http.ServiceUnreachable: as `Fetcher.fetch`.
  """
  url = cutout_url(ra, dec, scale=scale, width=width, height=height, opt=opt,
                   release=release, base=base)
  name = cutout_cache_name(ra, dec, scale=scale, width=width, height=height,
                           opt=opt, release=release)
  try:
    return await fetcher.fetch(url, kind='jpeg', cache_name=name,
                               check=CUTOUT_ANSWERS)
  except http.FetchError as e:
    if e.reason != 'outside_footprint':
      raise
    raise OutsideFootprint(url, e.reason, e.detail, attempts=e.attempts) from None
