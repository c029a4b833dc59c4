"""Bad input through whole builds: a clear error or a counted skip, never worse.

Issue 8. Every kind of bad input a user or a service can hand a build ends in
one of two ways, and each test asserts which, with the exact text the user
reads:

* an error the user must fix: `BuildError` (one message starting `skytfds:`,
  naming the file, line, column and value, or the URL), raised before
  anything is written: no `<name>/tiny/1.0.0` directory is left behind (TFDS'
  own `incomplete.*` work directory is removed too);
* a finished build whose `build_report.json` counts the object under the
  right skip reason (`report.SKIP_REASONS`), with a detail naming the cause.

Nothing here reaches the internet: the services are a small aiohttp server on
127.0.0.1 (`_LocalServer`) and a local SAS folder written in tmp_path
(SKYTFDS_SAS_URL=that folder), holding the real frame 003918-3-0213 next to
damaged ones. The catalogue parser's row-level cases are in catalog_test.py
and frame decoding in imaging_test.py; here they go through a whole build.
Retries are kept fast by lowering the fetcher's backoff base (0.5 s) to 0.01 s.

"""

import asyncio
import bz2
import csv
import dataclasses
import gzip
import io
import json
import os
import pathlib
import subprocess
import sys
import threading
from typing import Callable

from aiohttp import web
from astropy.io import fits
import h5py
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import skytfds.datasets  # pylint: disable=unused-import  (registers the builders)
from skytfds import settings
from skytfds import splits
from skytfds.datasets import builder as builder_lib
from skytfds.datasets import report as report_lib
from skytfds.emulator.routes import sqlsearch as emulator_sqlsearch
from skytfds.emulator import faults as emulator_faults
from skytfds.imaging import frames as frames_lib
from skytfds.services import http

pytestmark = pytest.mark.network

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO.parent / 'shared' / 'data'
REAL_FRAMES = DATA / 'sas/dr17/eboss/photoObj/frames/301/3918/3'
LABELS = DATA / 'labels' / 'photometric_003918-3-0213.csv'
FIELD = 213  # The real field 003918-3-0213 (run 3918, rerun 301, camcol 3).
HEADER = 'ra,dec,class,run,rerun,camcol,field'
GOOD_ROW = '229.4528050,42.7249226,STAR,3918,301,3,213'
ENV_KEYS = (settings.SKYSERVER_URL_ENV, settings.SAS_URL_ENV,
            settings.PS1_URL_ENV, settings.CATALOG_ENV,
            settings.MAX_CONCURRENCY_ENV)
FAST_BACKOFF_S = 0.01  # The fetcher's default base is 0.5 s.


def _require_data() -> None:
  if not REAL_FRAMES.is_dir():
    pytest.skip(f'{DATA} not found: real SDSS frames are needed')


# ---------------------------------------------------------------------------
# A small HTTP service on 127.0.0.1 whose answers the tests choose.


class _LocalServer:
  """An aiohttp application served on 127.0.0.1:<free port> from a thread."""

  def __init__(self, app: web.Application):
    self._app = app
    self._ready = threading.Event()
    self._loop: asyncio.AbstractEventLoop | None = None
    self._stop: asyncio.Event | None = None
    self.port: int | None = None
    self.requests: list[str] = []

  def start(self) -> '_LocalServer':
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()
    if not self._ready.wait(30):
      raise RuntimeError('the local test server did not start')
    return self

  def _run(self) -> None:
    self._loop = asyncio.new_event_loop()
    self._loop.run_until_complete(self._serve())
    self._loop.close()

  async def _serve(self) -> None:
    self._stop = asyncio.Event()

    @web.middleware
    async def record(request, handler):
      self.requests.append(request.path_qs)
      return await handler(request)

    self._app.middlewares.append(record)
    runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, '127.0.0.1', 0)
    await site.start()
    self.port = runner.addresses[0][1]
    self._ready.set()
    await self._stop.wait()
    await runner.cleanup()

  @property
  def url(self) -> str:
    return f'http://127.0.0.1:{self.port}'

  def stop(self) -> None:
    self._loop.call_soon_threadsafe(self._stop.set)
    self._thread.join(30)


def _jpeg(size: int = 240, mode: str = 'RGB') -> bytes:
  rng = np.random.default_rng(size)
  shape = (size, size, 3) if mode == 'RGB' else (size, size)
  pixels = rng.integers(0, 255, size=shape, dtype=np.uint8)
  out = io.BytesIO()
  Image.fromarray(pixels, mode).save(out, 'JPEG', quality=75)
  return out.getvalue()


def _jpeg_bomb() -> bytes:
  """A whole 240x240 JPEG whose frame header (SOF0) claims 65000x65000 px."""
  data = bytearray(_jpeg())
  sof = data.index(b'\xff\xc0')
  data[sof + 5:sof + 9] = (65000).to_bytes(2, 'big') * 2  # height, width
  return bytes(data)


def _png() -> bytes:
  out = io.BytesIO()
  Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(out, 'PNG')
  return out.getvalue()


GOOD_JPEG = _jpeg()
LOGIN_PAGE = ('<!DOCTYPE html><html><head><title>Sign in</title></head><body>'
              '<h1>Sign in to continue</h1></body></html>')
SQL_ERROR = "Invalid column name 'bogus'."


@dataclasses.dataclass(frozen=True)
class CutoutFault:
  """How the test server answers getjpeg for one object, and what a build does.

  Attributes:
    name: the kind, as in docs/bad_input.md.
    respond: the aiohttp response.
    reason: the expected skip reason.
    detail: a fragment of the expected skip detail.
  """
  name: str
  respond: Callable[[], web.StreamResponse]
  reason: str
  detail: str


CUTOUT_FAULTS = (
    CutoutFault('html_page', lambda: web.Response(
        text=LOGIN_PAGE, content_type='text/html'), 'bad_image',
                'an HTML page came back instead of jpeg data: "Sign in Sign in '
                'to continue" (gave up after 6 attempts; last reason: html)'),
    CutoutFault('empty_body', lambda: web.Response(
        body=b'', content_type='image/jpeg'), 'bad_image',
                'empty body (gave up after 6 attempts; last reason: empty)'),
    CutoutFault('truncated_jpeg', lambda: web.Response(
        body=GOOD_JPEG[:len(GOOD_JPEG) // 2], content_type='image/jpeg'),
                'bad_image', 'has no end marker FFD9 (truncated)'),
    CutoutFault('png_not_jpeg', lambda: web.Response(
        body=_png(), content_type='image/png'), 'bad_image',
                'a PNG image came back where a JPEG was expected'),
    CutoutFault('wrong_size_jpeg', lambda: web.Response(
        body=_jpeg(100), content_type='image/jpeg'), 'bad_image',
                '100x100 px, expected 240x240'),
    CutoutFault('grey_jpeg', lambda: web.Response(
        body=_jpeg(240, 'L'), content_type='image/jpeg'), 'bad_image',
                'colour mode L'),
    CutoutFault('jpeg_decompression_bomb', lambda: web.Response(
        body=_jpeg_bomb(), content_type='image/jpeg'), 'bad_image',
                'does not decode as JPEG (Image size (4225000000 pixels) '
                'exceeds limit'),
    CutoutFault('http_500_always', lambda: web.Response(
        status=500, text='Internal Server Error'), 'fetch_failed',
                'server error (HTTP 500): "Internal Server Error" (gave up '
                'after 6 attempts; last reason: http_500)'),
    CutoutFault('http_429_always', lambda: web.Response(
        status=429, text='Slow down', headers={'Retry-After': '0'}),
                'fetch_failed', 'rate limited (HTTP 429): "Slow down" (gave '
                'up after 6 attempts; last reason: http_429)'),
    CutoutFault('http_404', lambda: web.Response(status=404, text='gone'),
                'fetch_failed', 'not found (HTTP 404) [not_found]'),
)
# Objects at ra >= FAULT_RA get CUTOUT_FAULTS[int(ra - FAULT_RA)]; the others
# a good JPEG.
FAULT_RA = 100


def _cutout_handler(request: web.Request) -> web.StreamResponse:
  ra = float(request.query['ra'])
  if ra < FAULT_RA:
    return web.Response(body=GOOD_JPEG, content_type='image/jpeg')
  return CUTOUT_FAULTS[int(ra - FAULT_RA)].respond()


def _sql_handler(request: web.Request) -> web.StreamResponse:
  """SkyServer SqlSearch failing the query; /sql/<status>/dr17/...

  200: the error as an HTML page holding `error_message` (what SkyServer
  sends for format=html); 500: the real answer to a query that fails in the
  database (ExceptionFilter/CustomFilter.cs), HTTP 500 with a JSON body, as
  the emulator writes it.
  """
  cmd = request.query.get('cmd', '')
  if request.match_info['status'] == '500':
    return emulator_sqlsearch.database_error(SQL_ERROR, cmd).response()
  page = emulator_sqlsearch.sql_error_page(SQL_ERROR, cmd)
  return web.Response(status=int(request.match_info['status']), text=page,
                      content_type='text/html')


PS1_HEADER = 'projcell subcell ra dec filter mjd type filename shortname badflag'


def _ps1_row(band: str, name: str = '') -> str:
  name = name or (f'/rings.v3.skycell/2381/037/rings.v3.skycell.2381.037.stk.'
                 f'{band}.unconv.fits')
  return f'2381 037 229.54 42.76 {band} 0 stack {name} x.fits 0'


# Objects at ra >= PS1_FAULT_RA get the ps1filenames.py answer
# PS1_TABLES[int(ra - PS1_FAULT_RA)] (text, content type); the others a table
# listing g, i and y. fitscut.cgi always answers a good JPEG.
PS1_FAULT_RA = 200
PS1_TABLES = (
    ('header_only', PS1_HEADER + '\n', 'text/plain'),
    ('no_y_image', '\n'.join([PS1_HEADER, _ps1_row('g'), _ps1_row('i')]),
     'text/plain'),
    ('unsafe_file_name', '\n'.join(
        [PS1_HEADER, _ps1_row('g'), _ps1_row('i'),
         _ps1_row('y', '/../../etc/passwd')]), 'text/plain'),
    ('html_page', LOGIN_PAGE, 'text/html'),
    # Issue 20 item 11: a plain path is not a PS1 file name either.
    ('etc_passwd_file_name', '\n'.join(
        [PS1_HEADER, _ps1_row('g'), _ps1_row('i'),
         _ps1_row('y', '/etc/passwd')]), 'text/plain'),
    # Issue 14 item 6: the real table comes with an HTML content type.
    ('table_sent_as_html', '\n'.join(
        [PS1_HEADER] + [_ps1_row(b) for b in 'giy']), 'text/html'),
)


def _ps1_filenames_handler(request: web.Request) -> web.StreamResponse:
  ra = float(request.query['ra'])
  if ra < PS1_FAULT_RA:
    text = '\n'.join([PS1_HEADER] + [_ps1_row(b) for b in 'giy'])
    return web.Response(text=text, content_type='text/plain')
  _, text, content_type = PS1_TABLES[int(ra - PS1_FAULT_RA)]
  return web.Response(text=text, content_type=content_type)


@pytest.fixture(scope='module')
def server():
  app = web.Application()
  app.router.add_get('/dr17/SkyServerWS/ImgCutout/getjpeg', _cutout_handler)
  app.router.add_get('/sql/{status}/dr17/SkyServerWS/SearchTools/SqlSearch',
                     _sql_handler)
  app.router.add_get('/catalog/login.csv', lambda r: web.Response(
      text=LOGIN_PAGE, content_type='text/html'))
  app.router.add_get('/catalog/good.csv', lambda r: web.Response(
      text=f'{HEADER}\n{GOOD_ROW}\n', content_type='text/csv'))
  app.router.add_get('/cgi-bin/ps1filenames.py', _ps1_filenames_handler)
  app.router.add_get('/cgi-bin/fitscut.cgi', lambda r: web.Response(
      body=GOOD_JPEG, content_type='image/jpeg'))
  local = _LocalServer(app).start()
  yield local
  local.stop()


def _service_env(server: _LocalServer) -> dict[str, str]:
  return {settings.SKYSERVER_URL_ENV: server.url,
          settings.SAS_URL_ENV: server.url + '/sas',
          settings.PS1_URL_ENV: server.url}


# ---------------------------------------------------------------------------
# Builds.


def _build(name: str, root: pathlib.Path, env: dict[str, str],
           beam: bool = False):
  """Builds `<name>/tiny` (`<name>/custom` from a SKYTFDS_CATALOG) under
  root/data (downloads in root/dl) with `env`.

  beam: through Apache Beam's DirectRunner (in-process) instead of the default path.
  """
  with pytest.MonkeyPatch.context() as mp:
    for key in ENV_KEYS:
      mp.delenv(key, raising=False)
    for key, value in env.items():
      mp.setenv(key, value)
    mp.setitem(http.Fetcher.__init__.__kwdefaults__, 'backoff_s',
               FAST_BACKOFF_S)
    builder = tfds.builder(f'{name}/{_config(env)}', data_dir=root / 'data')
    config = None
    if beam:
      options = pytest.importorskip(
          'apache_beam.options.pipeline_options',
          reason='apache-beam (the [beam] extra) is not installed')
      config = tfds.download.DownloadConfig(
          beam_options=options.PipelineOptions(['--runner=DirectRunner']))
    builder.download_and_prepare(download_dir=root / 'dl', download_config=config)
  return builder


def _config(env: dict[str, str]) -> str:
  return 'custom' if settings.CATALOG_ENV in env else 'tiny'


def _report(builder) -> dict:
  return json.loads((builder.data_path / 'build_report.json').read_text())


def _assert_nothing_written(root: pathlib.Path, name: str) -> None:
  """No dataset version directory (not even an empty one) after a failure."""
  for config in ('tiny', 'custom'):
    config_dir = root / 'data' / name / config
    assert not (config_dir / '1.0.0').exists()
    left = (sorted(p.name for p in config_dir.iterdir())
            if config_dir.is_dir() else [])
    assert left == [], left  # TFDS removed its incomplete.* work directory.
    builder = tfds.builder(f'{name}/{config}', data_dir=root / 'data')
    assert not builder.is_prepared()


def _refused(name: str, root: pathlib.Path, env: dict[str, str],
             beam: bool = False) -> str:
  """Runs a build that must fail with BuildError; its message."""
  with pytest.raises(builder_lib.BuildError) as info:
    _build(name, root, env, beam)
  message = str(info.value)
  assert message.startswith('skytfds: '), message
  assert 'Traceback' not in message
  _assert_nothing_written(root, name)
  return message


def _position_key(field: int, ra: float, dec: float) -> str:
  """The key parse_catalog gives a row without objid (run 3918, camcol 3)."""
  return f'003918-3-{field:04d}_{ra:.7f}{dec:+.7f}'


def _in_train(field: int, ra: float, dec: float) -> tuple[float, float]:
  """(ra, dec) rounded to 7 decimals, dec nudged by 1e-7 deg steps until the
  object's key hashes to the train split (so that no split is all skips)."""
  ra = round(ra, 7)
  for step in range(200):
    d = round(dec + step * 1e-7, 7)
    if splits.split_of(_position_key(field, ra, d)) == 'train':
      return ra, d
  raise AssertionError('unreachable')


def _row(field: int, ra: float, dec: float, cls: str = 'STAR') -> str:
  return f'{ra:.7f},{dec:.7f},{cls},3918,301,3,{field}'


# ---------------------------------------------------------------------------
# Catalogues refused before anything is fetched or written.

_ROWS = [
    # (kind, catalogue bytes or text, fragments of the message after the path)
    ('ra_nan', f'{HEADER}\nnan,42.76,STAR,3918,301,3,213\n',
     ["line 2, column ra: 'nan' is not a finite number; every object needs "
      'ra and dec in decimal degrees.']),
    ('ra_out_of_range', f'{HEADER}\n360.5,42.76,STAR,3918,301,3,213\n',
     ["line 2, column ra: '360.5' is outside [0, 360) degrees"]),
    ('dec_out_of_range', f'{HEADER}\n229.54,-91,STAR,3918,301,3,213\n',
     ["line 2, column dec: '-91' is outside [-90, 90] degrees"]),
    ('dec_missing', f'{HEADER}\n229.54,,STAR,3918,301,3,213\n',
     ["line 2, column dec: '' is empty; every object needs ra and dec in "
      'decimal degrees.']),
    ('ra_sexagesimal', f'{HEADER}\n15:18:09.6,42.76,STAR,3918,301,3,213\n',
     ["line 2, column ra: '15:18:09.6' is not a number; give decimal degrees "
      '(not sexagesimal']),
    ('class_unknown', f'{HEADER}\n229.54,42.76,PLANET,3918,301,3,213\n',
     ["line 2, column class: 'PLANET' is not a known class; use one of "
      'GALAXY, QSO, STAR (any case).']),
    ('class_missing', f'{HEADER}\n229.54,42.76,,3918,301,3,213\n',
     ["line 2, column class: '' is empty; give one of GALAXY, QSO, STAR"]),
    ('class_column_missing', 'ra,dec,run,rerun,camcol,field\n'
     '229.54,42.76,3918,301,3,213\n',
     ['missing required column(s): class.']),
    ('run_negative', f'{HEADER}\n229.54,42.76,STAR,-5,301,3,213\n',
     ["line 2, column run: '-5' is out of range; run must be an integer from "
      '1 to 65535.']),
    ('camcol_not_integer', f'{HEADER}\n229.54,42.76,STAR,3918,301,3.5,213\n',
     ["line 2, column camcol: '3.5' is not a whole number; camcol must be an "
      'integer from 1 to 6.']),
    ('camcol_out_of_range', f'{HEADER}\n229.54,42.76,STAR,3918,301,7,213\n',
     ["line 2, column camcol: '7' is out of range; camcol must be an integer "
      'from 1 to 6.']),
    ('field_out_of_range', f'{HEADER}\n229.54,42.76,STAR,3918,301,3,5000\n',
     ["line 2, column field: '5000' is out of range; field must be an "
      'integer from 0 to 4095.']),
    ('field_path_text', f'{HEADER}\n229.54,42.76,STAR,3918,301,3,../../etc\n',
     ["line 2, column field: '../../etc' is not a whole number"]),
    ('run_path_text', f'{HEADER}\n229.54,42.76,STAR,/etc/passwd,301,3,213\n',
     ["line 2, column run: '/etc/passwd' is not a whole number"]),
    ('objid_not_sdss', 'objid,ra,dec,class\n5,229.54,42.76,STAR\n',
     ["line 2, column objid: '5' does not encode an SDSS imaging object"]),
    ('objid_disagrees_with_frame',
     'objid,ra,dec,class,run,rerun,camcol,field\n'
     '1237645879579967591,229.54,42.76,STAR,3918,301,3,213\n',
     ['line 2: objid 1237645879579967591 encodes run 94, camcol 6, field 535 '
      'but the row says run 3918, camcol 3, field 213']),
    ('spreadsheet_rounded_ids', 'objid,ra,dec,class\n'
     '1.23764587957997E+018,229.54,42.76,STAR\n'
     '1.23764587957997E+018,229.55,42.77,GALAXY\n',
     ["line 2, column objid: '1.23764587957997E+018' was rounded by a "
      'spreadsheet or a float (2 of 2 objids look like this, 1 distinct)']),
    ('duplicate_id_two_objects', f'{HEADER}\n'
     '229.54,42.76,STAR,3918,301,3,213\n229.54,42.76,GALAXY,3918,301,3,213\n',
     ['line 3: key 003918-3-0213_229.5400000+42.7600000 already appears on '
      'line 2 (STAR at ra 229.54, dec 42.76); here GALAXY',
      'two different objects share one id; remove the wrong row.']),
    ('wrong_field_count', f'{HEADER}\n229.54,42.76,STAR,3918,301,3,213,9\n',
     ['line 2: 8 fields, but the header has 7; check for unquoted commas or '
      'a missing value.']),
    ('header_only', f'{HEADER}\n', [
        'the catalogue has a header but no rows; it needs at least one '
        'object.']),
    ('wrong_columns', 'name,x,y\nM31,1,2\n',
     ['missing required column(s): ra, dec, class, objid (or run, rerun, '
      'camcol, field).', 'Found: name, x, y.']),
    ('semicolon_separated', HEADER.replace(',', ';') + '\n' +
     GOOD_ROW.replace(',', ';') + '\n',
     ['The file seems to be separated by semicolons: save it comma-'
      'separated.']),
    ('latin1_encoding', f'{HEADER},name\n{GOOD_ROW},'.encode() + b'Caf\xe9\n',
     ['line 2 is not UTF-8 text (byte 0xe9', 'save the file as UTF-8']),
    ('utf16_encoding', f'{HEADER}\n{GOOD_ROW}\n'.encode('utf-16'),
     ['the file is UTF-16 text (byte order mark ff fe); save it as UTF-8']),
    ('sql_error_saved_as_csv', '#Table1\nerror_message\n Invalid column name '
     "'bogus'.\n", ['the server answered with an error instead of a '
                    "catalogue: \"Invalid column name 'bogus'.\""]),
]


@pytest.mark.parametrize('kind, content, fragments', _ROWS,
                         ids=[r[0] for r in _ROWS])
def test_bad_catalogue_is_refused_before_any_fetch(kind, content, fragments,
                                                   server, tmp_path):
  del kind
  path = tmp_path / 'catalog.csv'
  if isinstance(content, str):
    path.write_text(content)
  else:
    path.write_bytes(content)
  before = len(server.requests)
  message = _refused('sdss_cutouts', tmp_path,
                     {**_service_env(server), settings.CATALOG_ENV: str(path)})
  assert message.startswith(f'skytfds: {path}'), message
  for fragment in fragments:
    assert fragment in message
  assert len(server.requests) == before  # Refused before any request.


def test_many_bad_rows_are_reported_together(server, tmp_path):
  path = tmp_path / 'catalog.csv'
  rows = [f'{229 + i / 100},{"nan" if i % 2 else 42.76},STAR,3918,301,3,213'
          for i in range(30)]
  path.write_text('\n'.join([HEADER] + rows) + '\n')
  message = _refused('sdss_cutouts', tmp_path,
                     {**_service_env(server), settings.CATALOG_ENV: str(path)})
  lines = message.splitlines()
  assert lines[0] == (f'skytfds: {path}: 15 problem(s) in the catalogue; fix '
                      'them and load it again (the first 10 shown):')
  assert lines[1] == ("  line 3, column dec: 'nan' is not a finite number; "
                      'every object needs ra and dec in decimal degrees.')
  assert len(lines) == 12
  assert lines[-1] == '  ... and 5 more (15 problems in total).'


def test_sql_error_page_is_quoted(server, tmp_path):
  """No SKYTFDS_CATALOG: SkyServer answers the query with its error page."""
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server),
      settings.SKYSERVER_URL_ENV: server.url + '/sql/200'})
  assert message.startswith(
      'skytfds: SkyServer DR17 SqlSearch (class counts): the server answered '
      f'with an error instead of a catalogue: "{SQL_ERROR} Query: SELECT '
      's.class, COUNT(*) AS n ')
  assert message.endswith(
      '". Fix the SQL (columns, quotes, TOP n) or the release, or retry later '
      'if the service is down.')
  assert '\n' not in message


def test_sql_error_with_status_500_is_one_line(server, tmp_path):
  """SkyServer's answer to a query that fails in the database (HTTP 500 and
  a JSON ErrorMessage): not retried, the message quoted whole in one line."""
  base = server.url + '/sql/500'
  before = len(server.requests)
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server), settings.SKYSERVER_URL_ENV: base})
  assert message.startswith(
      f'skytfds: cannot fetch {base}/dr17/SkyServerWS/SearchTools/SqlSearch?'
      'cmd=SELECT%20')
  assert message.endswith(
      f': SkyServer could not run the query (HTTP 500): "{SQL_ERROR}"; fix the '
      'SQL (column and table names, quotes, TOP n) or the data release; '
      'sending it again gives the same answer [sql_error]')
  assert '\n' not in message
  assert len(server.requests) == before + 1  # Not retried.


def test_catalogue_file_missing(server, tmp_path):
  missing = tmp_path / 'no_such_catalog.csv'
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server), settings.CATALOG_ENV: str(missing)})
  assert message == (f'skytfds: cannot fetch {missing}: no such file '
                     '(FileNotFoundError) [not_found]')


def test_empty_catalogue_file(server, tmp_path):
  path = tmp_path / 'catalog.csv'
  path.write_bytes(b'')
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server), settings.CATALOG_ENV: str(path)})
  # Today retried like a server's empty answer, then '(gave up after 6
  # attempts; last reason: empty)'.
  assert message.startswith(f'skytfds: cannot fetch {path}: empty body')
  assert '\n' not in message


def test_catalogue_file_holding_html(server, tmp_path):
  path = tmp_path / 'catalog.csv'
  path.write_text('<!DOCTYPE html><html><head><title>502 Bad Gateway</title>'
                  '</head><body><h1>502 Bad Gateway</h1></body></html>\n')
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server), settings.CATALOG_ENV: str(path)})
  assert message.startswith(
      f'skytfds: cannot fetch {path}: an HTML page came back instead of text '
      'data: "502 Bad Gateway 502 Bad Gateway"')
  assert '\n' not in message


def test_catalogue_url_serving_html(server, tmp_path):
  url = server.url + '/catalog/login.csv'
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server), settings.CATALOG_ENV: url})
  assert message == (
      f'skytfds: cannot fetch {url}: an HTML page came back instead of text '
      'data: "Sign in Sign in to continue" (gave up after 6 attempts; last '
      'reason: html)')


def test_bad_max_concurrency_setting(server, tmp_path):
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server),
      settings.CATALOG_ENV: server.url + '/catalog/good.csv',
      settings.MAX_CONCURRENCY_ENV: 'abc'})
  assert message == ("skytfds: SKYTFDS_MAX_CONCURRENCY='abc': expected a whole "
                     'number from 1 to 256 (default 8).')


# ---------------------------------------------------------------------------
# Catalogues that build, with what was repaired said in the report.


def test_duplicates_and_sentinel_magnitudes_build_with_notes(server, tmp_path):
  objids = (1237645879579967591, 1237645879580098681, 1237645879580098682)
  lines = ['objid,ra,dec,u,g,r,i,z,class']
  ra = 10.0
  for objid in objids:
    lines.append(f'{objid},{ra},1.5,19.1,18.2,-9999,17.9,99.99,STAR')
    ra += 0.01
  lines.append(lines[1])  # An exact duplicate of the first row.
  path = tmp_path / 'catalog.csv'
  path.write_text('\n'.join(lines) + '\n')
  assert {splits.split_of(str(o)) for o in objids} == {'train'}
  builder = _build('sdss_cutouts', tmp_path,
                   {**_service_env(server), settings.CATALOG_ENV: str(path)})
  report = _report(builder)
  assert report['objects_requested'] == 3
  assert report['objects_written'] == 3
  assert report['objects_skipped'] == 0
  assert ('1 duplicate row(s) (same key, class and position) skipped, e.g. '
          'line 5 repeats line 2.') in report['notes']
  # Counted over the objects kept: the dropped duplicate's 2 are not.
  assert ('6 sentinel magnitudes (<0 or >40, e.g. -9999) read as missing '
          '(NaN).') in report['notes']
  for example in tfds.as_numpy(builder.as_dataset(split='train')):
    np.testing.assert_array_equal(np.isnan(example['mags']),
                                  [False, False, True, False, True])


def test_rounded_ids_fall_back_to_plate_mjd_fiberid(server, tmp_path):
  lines = ['objid,ra,dec,run,rerun,camcol,field,class,plate,mjd,fiberid']
  keys = []
  fiber = 1
  while len(keys) < 2:
    key = f'1234-56789-{fiber}'
    if splits.split_of(key) == 'train':
      keys.append(key)
      lines.append(f'1.23764587957997E+018,{10 + fiber / 100},1.5,3918,301,3,'
                   f'213,GALAXY,1234,56789,{fiber}')
    fiber += 1
  path = tmp_path / 'catalog.csv'
  path.write_text('\n'.join(lines) + '\n')
  builder = _build('sdss_cutouts', tmp_path,
                   {**_service_env(server), settings.CATALOG_ENV: str(path)})
  report = _report(builder)
  assert report['objects_written'] == 2
  assert any(n.startswith('2 objid values were rounded by a spreadsheet (e.g. '
                          '1.23764587957997E+018 on line 2; 1 distinct among '
                          "2): keys are 'plate-mjd-fiberid' instead")
             for n in report['notes']), report['notes']
  objids = {int(e['objid'])
            for e in tfds.as_numpy(builder.as_dataset(split='train'))}
  assert objids == {0}  # Unknown, never a rounded, wrong id.


# ---------------------------------------------------------------------------
# Cutout services answering with something that is not a whole JPEG.


@pytest.fixture(scope='module')
def cutout_build(server, tmp_path_factory):
  """sdss_cutouts/custom: 2 good objects and one object per CUTOUT_FAULTS kind."""
  root = tmp_path_factory.mktemp('cutouts')
  rows, keys = [HEADER], {}
  for i, ra in enumerate([50.0, 50.5] + [FAULT_RA + k + 0.5
                                         for k in range(len(CUTOUT_FAULTS))]):
    ra, dec = _in_train(FIELD, ra, 1.5)
    rows.append(_row(FIELD, ra, dec))
    if i >= 2:
      keys[CUTOUT_FAULTS[i - 2].name] = _position_key(FIELD, ra, dec)
  (root / 'catalog.csv').write_text('\n'.join(rows) + '\n')
  builder = _build('sdss_cutouts', root, {
      **_service_env(server), settings.CATALOG_ENV: str(root / 'catalog.csv')})
  return builder, keys


def test_cutout_build_finishes_and_counts_every_skip(cutout_build):
  builder, _ = cutout_build
  report = _report(builder)
  n_bad = len(CUTOUT_FAULTS)
  assert report['objects_requested'] == 2 + n_bad
  assert report['objects_written'] == 2
  assert report['written_by_split'] == {'train': 2}
  assert report['skipped_by_reason'] == {
      'bad_image': sum(f.reason == 'bad_image' for f in CUTOUT_FAULTS),
      'fetch_failed': sum(f.reason == 'fetch_failed' for f in CUTOUT_FAULTS)}
  examples = list(tfds.as_numpy(builder.as_dataset(split='train')))
  assert [e['image'].shape for e in examples] == [(240, 240, 3)] * 2


@pytest.mark.parametrize('fault', CUTOUT_FAULTS, ids=lambda f: f.name)
def test_cutout_fault_is_skipped_with_its_reason(cutout_build, fault):
  builder, keys = cutout_build
  report = _report(builder)
  key = keys[fault.name]
  [entry] = [e for e in report['skipped_examples'][fault.reason]
             if e.startswith(key + ': ')]
  assert fault.detail in entry, entry
  assert report['skip_reasons'][fault.reason] == (
      report_lib.SKIP_REASONS[fault.reason])


def _catalogue_with_a_split_all_skipped(root: pathlib.Path) -> tuple[str, dict]:
  """One good object in train, one bad image outside it; (its split, env)."""
  rows = [HEADER]
  good = _in_train(FIELD, 60.0, 1.5)
  rows.append(_row(FIELD, *good))
  ra, dec = FAULT_RA + 0.5, 1.5  # html_page
  while splits.split_of(_position_key(FIELD, ra, dec)) == 'train':
    dec = round(dec + 1e-7, 7)
  rows.append(_row(FIELD, ra, dec))
  (root / 'catalog.csv').write_text('\n'.join(rows) + '\n')
  return (splits.split_of(_position_key(FIELD, ra, dec)),
          {settings.CATALOG_ENV: str(root / 'catalog.csv')})


def test_split_with_every_object_skipped(server, tmp_path):
  _, env = _catalogue_with_a_split_all_skipped(tmp_path)
  builder = _build('sdss_cutouts', tmp_path, {**_service_env(server), **env})
  report = _report(builder)
  assert report['objects_written'] == 1
  assert report['skipped_by_reason'] == {'bad_image': 1}
  assert set(builder.info.splits.keys()) == {'train'}


def test_split_with_every_object_skipped_on_beam_is_one_clear_error(server, tmp_path):
  """TFDS' Beam writer cannot leave a split out: refused, naming the split."""
  split, env = _catalogue_with_a_split_all_skipped(tmp_path)
  message = _refused('sdss_cutouts', tmp_path, {**_service_env(server), **env},
                     beam=True)
  assert f'split {split}: all 1 objects were skipped on the Beam path' in message
  assert 'build_report.json' in message


def test_every_object_skipped_is_one_clear_error(server, tmp_path):
  ra, dec = _in_train(FIELD, FAULT_RA + 0.5, 1.5)
  (tmp_path / 'catalog.csv').write_text(f'{HEADER}\n{_row(FIELD, ra, dec)}\n')
  message = _refused('sdss_cutouts', tmp_path, {
      **_service_env(server),
      settings.CATALOG_ENV: str(tmp_path / 'catalog.csv')})
  assert 'skipped' in message and 'bad_image' in message


def test_pan_starrs_coverage_and_bad_tables(server, tmp_path):
  """ps1_cutouts: no coverage is a skip; a bad file table never reaches a URL."""
  positions = {'good': (50.0, 1.5), 'south_of_ps1': (50.0, -45.0)}
  for k, (name, _, _) in enumerate(PS1_TABLES):
    positions[name] = (PS1_FAULT_RA + k + 0.5, 1.5)
  rows, keys = [HEADER], {}
  for name, (ra, dec) in positions.items():
    ra, dec = _in_train(FIELD, ra, dec)
    rows.append(_row(FIELD, ra, dec))
    keys[name] = _position_key(FIELD, ra, dec)
  (tmp_path / 'catalog.csv').write_text('\n'.join(rows) + '\n')
  before = len(server.requests)
  builder = _build('ps1_cutouts', tmp_path, {
      **_service_env(server),
      settings.CATALOG_ENV: str(tmp_path / 'catalog.csv')})
  report = _report(builder)
  assert report['objects_written'] == 2  # good, table_sent_as_html
  assert report['skipped_by_reason'] == {
      'no_ps1_coverage': 3, 'fetch_failed': 2, 'bad_image': 1}
  assert _skip_entry(report, 'no_ps1_coverage', keys['south_of_ps1']).endswith(
      'dec -45.000000 is south of the Pan-STARRS 3pi survey (dec >= -30 deg): '
      'no PS1 image [no_coverage]')
  assert _skip_entry(report, 'no_ps1_coverage', keys['header_only']).endswith(
      'PS1 lists no image at this position [no_coverage]')
  assert _skip_entry(report, 'no_ps1_coverage', keys['no_y_image']).endswith(
      'PS1 lists no y image at this position [no_coverage]')
  for name, file_name in [('unsafe_file_name', '/../../etc/passwd'),
                          ('etc_passwd_file_name', '/etc/passwd')]:
    unsafe = _skip_entry(report, 'fetch_failed', keys[name])
    assert unsafe.endswith(
        f"line 4: PS1 file name for band y '{file_name}': expected a PS1 stack "
        'image as ps1filenames.py lists it, /rings.v3.skycell/PPPP/SSS/'
        'rings.v3.skycell.PPPP.SSS.stk.<band>.unconv.fits [bad_table]'), unsafe
  assert 'an HTML page came back instead of text data' in _skip_entry(
      report, 'bad_image', keys['html_page'])
  requests = server.requests[before:]
  assert not any('etc' in r and 'fitscut' in r for r in requests)
  assert not any('dec=-45' in r for r in requests)  # Refused before asking.


# ---------------------------------------------------------------------------
# Frames: a local SAS folder holding the real field 213 and damaged fields.


def _real(band: str) -> pathlib.Path:
  return REAL_FRAMES / f'frame-{band}-003918-3-{FIELD:04d}.fits.bz2'


def _u_header() -> fits.Header:
  """The real r-band HDU0 header of field 213, relabelled as band u."""
  raw = bz2.BZ2Decompressor().decompress(_real('r').read_bytes(),
                                         max_length=2880 * 40)
  header = fits.Header.fromfile(io.BytesIO(raw), endcard=True, padding=True)
  header['FILTER'] = 'u'
  for key in ('BZERO', 'BSCALE'):
    header.remove(key, ignore_missing=True)
  return header


def _fits(header: fits.Header, image: np.ndarray) -> bytes:
  out = io.BytesIO()
  fits.PrimaryHDU(data=image, header=header).writeto(out)
  return out.getvalue()


def _zeros() -> np.ndarray:
  return np.zeros(frames_lib.FRAME_SHAPE, np.float32)


@dataclasses.dataclass(frozen=True)
class FrameFault:
  """A damaged u-band file of one field, and the skip it must cause."""
  name: str
  field: int
  make: Callable[[fits.Header], bytes | None]  # None: no files at all.
  reason: str
  detail: str


def _no_wcs(header: fits.Header) -> bytes:
  header = header.copy()
  for key in list(header):
    if key.startswith(('CTYPE', 'CRVAL', 'CRPIX', 'CD1_', 'CD2_', 'CUNIT')):
      header.remove(key, remove_all=True)
  return bz2.compress(_fits(header, _zeros()), 1)


def _nan_pixels(header: fits.Header) -> bytes:
  image = _zeros()
  image[700, 1000:1003] = np.nan
  return bz2.compress(_fits(header, image), 1)


def _truncated_fits(header: fits.Header) -> bytes:
  raw = _fits(header, _zeros())
  return bz2.compress(raw[:len(raw) // 2], 1)


FRAME_FAULTS = (
    FrameFault('truncated_download', 214,
               lambda h: _real('u').read_bytes()[:500_000], 'fetch_failed',
               'bzip2 stream of 500000 bytes has no end-of-stream marker '
               '(truncated)'),
    FrameFault('not_bz2_gzip', 215,
               lambda h: gzip.compress(_fits(h, _zeros()[:10]), 1),
               'fetch_failed', "not bzip2 data (starts with b'\\x1f\\x8b"),
    FrameFault('html_instead_of_frame', 216,
               lambda h: LOGIN_PAGE.encode(), 'fetch_failed',
               'an HTML page came back instead of bz2 data'),
    FrameFault('empty_file', 217, lambda h: b'', 'fetch_failed',
               'frame-u-003918-3-0217.fits.bz2: empty body'),
    FrameFault('bz2_bomb', 218, lambda h: bz2.compress(
        b'\0' * (frames_lib.MAX_DECOMPRESSED_BYTES + 2**20), 9),
               'corrupt_download', 'decompresses to more than 67108864 bytes '
               '(a real frame is about 12.4 MB): refusing it as a bz2 bomb'),
    FrameFault('corrupt_bz2', 219, lambda h: emulator_faults.scramble(
        _real('u').read_bytes(), keep_head=10, keep_tail=11, seed='x'),
               'corrupt_download', 'corrupt bz2 data'),
    FrameFault('wrong_shape', 220, lambda h: bz2.compress(
        _fits(h, np.zeros((100, 100), np.float32)), 1), 'corrupt_download',
               'HDU0 is BITPIX=-32 with shape (100, 100) (rows, columns), '
               'expected float32 (BITPIX=-32) of shape (1489, 2048)'),
    FrameFault('no_wcs', 221, _no_wcs, 'corrupt_download',
               'no celestial WCS in HDU0 header'),
    FrameFault('nan_pixels', 222, _nan_pixels, 'corrupt_download',
               '3 NaN or infinite pixels in HDU0; real SDSS frames have none'),
    FrameFault('other_band', 223, lambda h: _real('g').read_bytes(),
               'corrupt_download', "FILTER is 'g' but band 'u' was asked: the "
               'file is for another band'),
    FrameFault('truncated_fits_in_whole_bz2', 224, _truncated_fits,
               'corrupt_download', 'FITS data truncated: HDU0 needs 12197888 '
               'bytes after its 8640-byte header, 6095520 present'),
    FrameFault('frame_not_in_archive', 225, lambda h: None, 'frame_missing',
               'no such file (FileNotFoundError) [not_found]'),
)


@pytest.fixture(scope='module')
def frame_build(server, tmp_path_factory):
  """sdss_filters/tiny from a local SAS folder; keys of the objects by kind."""
  _require_data()
  root = tmp_path_factory.mktemp('frames')
  folder = root / 'sas/dr17/eboss/photoObj/frames/301/3918/3'
  folder.mkdir(parents=True)
  for band in 'ugriz':
    (folder / _real(band).name).symlink_to(_real(band))
  header = _u_header()
  # The other bands of a damaged field are never decoded (u fails first).
  placeholder = bz2.compress(b'not decoded')
  for fault in FRAME_FAULTS:
    body = fault.make(header)
    if body is None:
      continue
    for band in 'ugriz':
      name = f'frame-{band}-003918-3-{fault.field:04d}.fits.bz2'
      (folder / name).write_bytes(body if band == 'u' else placeholder)

  with open(LABELS) as f:
    stars = [r for r in csv.DictReader(f) if r['class'] == 'STAR'
             and 300 < float(r['x_r']) < 1700 and 300 < float(r['y_r']) < 1200]
  r_wcs = frames_lib.decode_frame(_real('r').read_bytes(), band='r').wcs
  corner = r_wcs.pixel_to_world_values(0.0, 0.0)
  # 12 of the 64 columns of this one's stamp are off the frame.
  inside_edge = r_wcs.pixel_to_world_values(20.0, 700.0)
  positions = {
      'good_1': (FIELD, float(stars[0]['ra']), float(stars[0]['dec'])),
      'good_2': (FIELD, float(stars[1]['ra']), float(stars[1]['dec'])),
      'edge_but_mostly_inside': (FIELD, *map(float, inside_edge)),
      'near_edge': (FIELD, *map(float, corner)),
      'off_frame': (FIELD, 231.0, 44.0),
  }
  for fault in FRAME_FAULTS:
    positions[fault.name] = (fault.field, 229.5 + fault.field / 1000, 42.76)
  rows, keys = [HEADER], {}
  for name, (field, ra, dec) in positions.items():
    ra, dec = _in_train(field, ra, dec)
    rows.append(_row(field, ra, dec))
    keys[name] = _position_key(field, ra, dec)
  (root / 'catalog.csv').write_text('\n'.join(rows) + '\n')
  builder = _build('sdss_filters', root, {
      **_service_env(server),
      settings.SAS_URL_ENV: str(root / 'sas'),
      settings.CATALOG_ENV: str(root / 'catalog.csv')})
  return builder, keys


def _skip_entry(report: dict, reason: str, key: str) -> str:
  [entry] = [e for e in report['skipped_examples'].get(reason, [])
             if e.startswith(key + ': ')]
  return entry


def test_frame_build_finishes_and_counts_every_skip(frame_build):
  builder, keys = frame_build
  report = _report(builder)
  assert report['objects_requested'] == len(keys)
  assert report['objects_written'] == 3
  assert report['written_by_split'] == {'train': 3}
  expected = {'off_frame': 1, 'near_edge': 1}
  for fault in FRAME_FAULTS:
    expected[fault.reason] = expected.get(fault.reason, 0) + 1
  assert report['skipped_by_reason'] == expected
  # The real field's five bands, decoded once; damaged files never count.
  assert report['frames_decoded'] == 5


@pytest.mark.parametrize('sas, hint', [
    ('sas/dr17', ' It holds eboss/photoObj/frames/: set it 1 folder(s) '
     'higher, to the folder holding dr17/.'),
    ('no_such_folder', ''),
])
def test_a_wrong_sas_mirror_is_one_line_before_any_fetch(frame_build, sas,
                                                         hint, tmp_path):
  builder, _ = frame_build
  root = pathlib.Path(os.fspath(builder.data_dir_root)).parent
  (tmp_path / 'catalog.csv').write_text(
      (root / 'catalog.csv').read_text())
  message = _refused('sdss_filters', tmp_path, {
      settings.SAS_URL_ENV: str(root / sas),
      settings.CATALOG_ENV: str(tmp_path / 'catalog.csv')})
  assert message == (
      f'skytfds: SKYTFDS_SAS_URL={root / sas}: no dr17/eboss/photoObj/frames/ '
      'folder under it, so no DR17 frame can be read; point it at the SAS root '
      f'(the folder that holds dr17/).{hint}')
  _assert_nothing_written(tmp_path, 'sdss_filters')


@pytest.mark.parametrize('fault', FRAME_FAULTS, ids=lambda f: f.name)
def test_damaged_frame_is_skipped_with_its_reason(frame_build, fault):
  builder, keys = frame_build
  entry = _skip_entry(_report(builder), fault.reason, keys[fault.name])
  assert fault.detail in entry, entry
  if fault.reason == 'corrupt_download':  # Names the frame and the band.
    assert f'003918-3-{fault.field:04d} band u: ' in entry, entry


def test_objects_off_the_frame_or_at_its_edge(frame_build):
  builder, keys = frame_build
  report = _report(builder)
  off = _skip_entry(report, 'off_frame', keys['off_frame'])
  assert off.endswith(': ra=231.000000 dec=44.000000'), off
  edge = _skip_entry(report, 'near_edge', keys['near_edge'])
  assert edge.endswith('% of the stamp is off the frame'), edge
  assert int(edge.rsplit(': ', 1)[1].split('%')[0]) > 50
  written = {(round(float(e['ra']), 7), round(float(e['dec']), 7)): e
             for e in tfds.as_numpy(builder.as_dataset(split='train'))}
  assert len(written) == 3
  inside = keys['edge_but_mostly_inside'].split('_')[1]
  [example] = [e for (ra, dec), e in written.items()
               if f'{ra:.7f}{dec:+.7f}' == inside]
  # Written, with its padded columns masked (12 of 64 at x = 20, give or take
  # the other bands' offsets).
  padded = example['mask'].mean()
  assert 0.1 < padded < 0.3, padded
  assert np.all(example['mask'][:, 0])


# ---------------------------------------------------------------------------
# Command lines: the tfds CLI and the trainers, one line on stderr.


def _run(args: list[str], env: dict[str, str] | None = None,
         cwd: pathlib.Path = REPO) -> subprocess.Popen:
  full_env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
  full_env.update(env or {})
  return subprocess.Popen(args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
  _, stderr = process.communicate(timeout=240)
  return process.returncode, stderr


def _error_lines(stderr: str, prefixes: tuple[str, ...]) -> list[str]:
  return [line for line in stderr.splitlines() if line.startswith(prefixes)]


TRAINER_CASES = {
    'unknown_model': (['--model=resnet9000'], 'FATAL Flags parsing error: '
                      'flag --model=resnet9000: value should be one of '
                      '<mobilenet|resnet50|vgg16|xception|ugriz_cnn>'),
    'batch_size_zero': (['--batch_size=0'], 'FATAL Flags parsing error: flag '
                        '--batch_size=0: batch size must be at least 1, got 0'),
    'weights_file_missing': (['--weights=/no/such/weights.h5'],
                             "FATAL Flags parsing error: flag --weights=/no/"
                             "such/weights.h5: weights file '/no/such/"
                             "weights.h5' not found"),
    'dataset_not_built': (['--data_dir={empty}'],
                          "train: error: dataset 'sdss_cutouts/custom' is not "
                          'built under {empty}; build it with: '),
    'weights_do_not_match': (
        ['--data_dir={built}', '--weights={other}'],
        "train: error: weights file '{other}' does not match mobilenet "
        'without top at 224 px ('),
}
# Each command line costs a TensorFlow import (~5 s of CPU). These two take
# the same absl flag-parsing path as unknown_model, and trainers_test.py checks
# their messages in-process, so they run with the slow tests only.
SLOW_TRAINER_CASES = ('batch_size_zero', 'weights_file_missing')


class _CommandRuns:
  """Command lines started in the background; `finish(name)` waits for one."""

  def __init__(self, root: pathlib.Path, places: dict[str, pathlib.Path]):
    self.root = root
    self.places = places
    self._runs: dict[str, subprocess.Popen] = {}

  def start(self, name: str) -> None:
    if name in self._runs:
      return
    if name == 'tfds_cli':
      (self.root / 'catalog.csv').write_text(
          f'{HEADER}\n229.54,42.76,PLANET,3918,301,3,213\n')
      self._runs[name] = _run(
          [str(pathlib.Path(sys.executable).parent / 'tfds'), 'build',
           'sdss_cutouts/custom', '--imports=skytfds',
           f'--data_dir={self.root / "cli_data"}'],
          env={settings.CATALOG_ENV: str(self.root / 'catalog.csv'),
               settings.SKYSERVER_URL_ENV: 'http://127.0.0.1:9'})
      return
    flags = [f.format(**self.places) for f in TRAINER_CASES[name][0]]
    if not any(f.startswith('--data_dir=') for f in flags):
      flags.append(f'--data_dir={self.places["empty"]}')
    self._runs[name] = _run([
        sys.executable, '-m', 'trainers.train', '--dataset=sdss_cutouts/custom',
        '--model=mobilenet', f'--workdir={self.root / name}', *flags])

  def finish(self, name: str) -> tuple[int, str]:
    self.start(name)
    return _finish(self._runs[name])

  def kill(self) -> None:
    for process in self._runs.values():
      if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope='module')
def command_runs(cutout_build, tmp_path_factory):
  """Starts the command lines of the default run at once, in the background."""
  root = tmp_path_factory.mktemp('commands')
  places = {'empty': root / 'empty_data',
            'built': cutout_build[0].data_dir_root,
            'other': root / 'other.weights.h5'}
  places['empty'].mkdir()
  # A weights file in Keras' .weights.h5 layout, of another model (one Dense
  # layer); written with h5py, which is cheaper to import than Keras.
  with h5py.File(places['other'], 'w') as f:
    f.create_dataset('layers/dense/vars/0', data=np.zeros((4, 2), np.float32))
    f.create_dataset('layers/dense/vars/1', data=np.zeros((2,), np.float32))
  runs = _CommandRuns(root, places)
  for name in TRAINER_CASES:
    if name not in SLOW_TRAINER_CASES:
      runs.start(name)
  if (pathlib.Path(sys.executable).parent / 'tfds').exists():
    runs.start('tfds_cli')
  yield runs
  runs.kill()


@pytest.mark.parametrize('name', [
    pytest.param(name, marks=[pytest.mark.slow] if name in SLOW_TRAINER_CASES
                 else []) for name in TRAINER_CASES])
def test_trainer_flag_errors_are_one_line(command_runs, name):
  status, stderr = command_runs.finish(name)
  assert status != 0
  assert 'Traceback' not in stderr, stderr
  lines = _error_lines(stderr, ('FATAL Flags parsing error', 'train: error:'))
  assert len(lines) == 1, stderr
  expected = TRAINER_CASES[name][1].format(**command_runs.places)
  assert expected in lines[0], lines


def test_tfds_cli_bad_catalogue_is_one_line(command_runs):
  """Under `tfds build`, an error the user must fix is one message, exit 1."""
  if not (pathlib.Path(sys.executable).parent / 'tfds').exists():
    pytest.skip('the tfds command line is not installed')
  status, stderr = command_runs.finish('tfds_cli')
  root = command_runs.root
  assert status == 1
  assert 'Traceback' not in stderr, stderr
  lines = _error_lines(stderr, ('skytfds: ',))
  assert lines == [f'skytfds: {root / "catalog.csv"}: 1 problem(s) in the '
                   'catalogue; fix them and load it again:'], stderr
  assert ("  line 2, column class: 'PLANET' is not a known class; use one of "
          'GALAXY, QSO, STAR (any case).') in stderr.splitlines()
  assert not (root / 'cli_data/sdss_cutouts/custom/1.0.0').exists()
