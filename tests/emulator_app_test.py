"""Tests for the emulator's web app, SQL subset, fault injection and CLI."""

import asyncio
import bz2
import csv
import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aiohttp
import pytest

from skytfds import catalog as catalog_lib
from skytfds.emulator import app as app_lib
from skytfds.emulator import catalogs
from skytfds.emulator import faults as faults_lib
from skytfds.emulator import sky as sky_lib
from skytfds.emulator import tables
from skytfds.imaging import frames as frames_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / 'shared' / 'data'
SAS = DATA / 'sas'

pytestmark = pytest.mark.network


class FakeSky:
  """A stand-in for skytfds.emulator.sky.Sky with tiny payloads.

  The real Sky renders a frame in about 2 s; the tests of the app's
  mechanics (caching, faults, counters), which fetch dozens of frames, use
  this instead. Serves the real file when sas_root holds it, as the Sky does.
  """

  def __init__(self, catalog, *, seed=0, sas_root=None):
    self.catalog = catalog
    self.seed = seed
    self.sas_root = sas_root
    self.frame_calls = 0
    self._frames = {o.frame for o in catalog.objects}

  def frame_ids(self):
    return set(self._frames)

  def frame_bytes(self, frame, band, release=17):
    if frame not in self._frames:
      raise KeyError(f'no objects in {frame.name}')
    self.frame_calls += 1
    if self.sas_root:
      path = (pathlib.Path(self.sas_root) / f'dr{release}' / 'eboss' /
              'photoObj' / 'frames' / '301' / str(frame.run) /
              str(frame.camcol) / f'frame-{band}-{frame.name}.fits.bz2')
      if path.is_file():
        return path.read_bytes()
    return bz2.compress(f'{frame.name} {band} {self.seed}'.encode() * 2000)

  def cutout_jpeg(self, ra, dec, *, scale=0.4, width=240, height=240):
    return _jpeg(width, height, (int(ra) % 256, 90, int(scale * 100) % 256))

  def ps1_jpeg(self, ra, dec, *, size=240, red, green, blue):
    return _jpeg(size, size, (200, 100, 50))


def _jpeg(width, height, colour):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  out = io.BytesIO()
  Image.new('RGB', (width, height), colour).save(out, 'JPEG')
  return out.getvalue()


@pytest.fixture(scope='module')
def catalog():
  return catalogs.load_catalog(None, seed=1)


@pytest.fixture(scope='module')
def sky(catalog):
  """The real simulated sky (real frames from ../shared/data/sas if there)."""
  return sky_lib.Sky(catalog, seed=0,
                     sas_root=str(SAS) if SAS.is_dir() else None)


@pytest.fixture(scope='module')
def server(sky):
  with app_lib.serve_in_background(sky) as emu:
    yield emu


def _get(url, timeout=10):
  """(status, headers, body) of a GET; HTTP errors are returned too."""
  try:
    with urllib.request.urlopen(url, timeout=timeout) as r:
      return r.status, dict(r.headers), r.read()
  except urllib.error.HTTPError as e:
    return e.code, dict(e.headers), e.read()


def _sql_url(base, sql, fmt='csv', release=17):
  query = urllib.parse.urlencode({'cmd': sql, 'format': fmt})
  return f'{base}/dr{release}/SkyServerWS/SearchTools/SqlSearch?{query}'


def _frame_path(frame, band, release=17):
  flavour = 'boss' if release <= 12 else 'eboss'
  return (f'dr{release}/{flavour}/photoObj/frames/301/{frame.run}/'
          f'{frame.camcol}/frame-{band}-{frame.name}.fits.bz2')


# ---------------------------------------------------------------------------
# SQL


def test_sql_classic_query_csv(server, catalog):
  query = catalog_lib.class_query('STAR', 5, mag_limits={'r': (0, 22)})
  status, headers, body = _get(_sql_url(server.url, query))
  assert status == 200
  text = body.decode()
  lines = text.splitlines()
  assert lines[0] == '#Table1'
  assert lines[1] == ('objid,ra,dec,u,g,r,i,z,run,rerun,camcol,field,'
                      'specobjid,class,redshift,plate,mjd,fiberid')
  rows = list(csv.DictReader(io.StringIO('\n'.join(lines[1:]))))
  stars = sorted((o for o in catalog.objects if o.cls == 'STAR'
                  and 0 <= o.mags[2] <= 22), key=lambda o: o.objid)[:5]
  assert [int(r['objid']) for r in rows] == [o.objid for o in stars]
  for row, obj in zip(rows, stars):
    assert row['class'] == 'STAR'
    assert (int(row['run']), int(row['rerun']), int(row['camcol']),
            int(row['field'])) == tuple(obj.frame)
    assert float(row['ra']) == obj.ra
    plate, mjd, fiberid = (int(row[k]) for k in ('plate', 'mjd', 'fiberid'))
    assert int(row['specobjid']) == tables.encode_specobjid(plate, fiberid,
                                                             mjd)
  # The client's own parser reads it back exactly.
  parsed = catalog_lib.parse_catalog(body, 'emulator')
  assert [o.objid for o in parsed.objects] == [o.objid for o in stars]


def test_sql_json_exact_ids(server, catalog):
  query = catalog_lib.class_query('QSO', 3)
  status, headers, body = _get(_sql_url(server.url, query, fmt='json'))
  assert status == 200
  assert headers['Content-Type'].startswith('application/json')
  tables = json.loads(body)
  assert tables[0]['TableName'] == 'Table1'
  rows = tables[0]['Rows']
  assert len(rows) == 3 and all(r['class'] == 'QSO' for r in rows)
  ids = [r['objid'] for r in rows]
  assert all(isinstance(i, int) for i in ids) and ids == sorted(ids)
  # Exact 64-bit integers in the text, not floats.
  assert str(ids[0]).encode() in body


# What SkyServer answers when a query fails in the database
# (ExceptionFilter/CustomFilter.cs): HTTP 500, these keys in this order.
ERROR_KEYS = ['ErrorCode', 'ErrorType', 'ErrorMessage', 'LogMessageID',
              'LogTime']


@pytest.mark.parametrize('query, reason', [
    ('SELECT * FROM PhotoObj', 'SELECT *'),
    ('SELECT TOP 3 ra FROM PhotoObj p JOIN SpecObj s ON s.bestobjid = '
     'p.objid', "Ambiguous column name 'ra'"),
    ('SELECT str(ra) FROM SpecObj', 'not a recognized built-in function'),
    ('SELECT objid FROM Galaxy', "Invalid object name 'Galaxy'"),
    ('SELECT p.objid FROM PhotoObj AS p WHERE s.class = 1',
     "multi-part identifier 's.class'"),
    ("SELECT objid FROM PhotoObj WHERE ra > 'x'", 'Conversion failed'),
    ('SELECT TOP 3 objid FROM PhotoObj WHERE', 'end of the query'),
    ("SELECT TOP 3 bogus FROM PhotoObj", "Invalid column name 'bogus'"),
])
@pytest.mark.parametrize('fmt', ['csv', 'json'])
def test_sql_database_error_is_500_with_json(server, query, reason, fmt):
  status, headers, body = _get(_sql_url(server.url, query, fmt=fmt))
  assert status == 500
  assert headers['Content-Type'] == 'application/json; charset=utf-8'
  answer = json.loads(body)
  assert list(answer) == ERROR_KEYS
  assert answer['ErrorCode'] == 500
  assert answer['ErrorType'] == 'InternalServerError'
  assert reason in answer['ErrorMessage'], answer
  # Written as Newtonsoft's JsonTextWriter does: no blanks between tokens.
  assert body.startswith(b'{"ErrorCode":500,"ErrorType":"InternalServerError",'
                         b'"ErrorMessage":"')


def test_sql_database_error_status_line(server):
  url = _sql_url(server.url, 'SELECT TOP 1 bogus FROM PhotoObj')
  try:
    urllib.request.urlopen(url, timeout=10)
  except urllib.error.HTTPError as e:
    assert e.code == 500 and e.reason == 'InternalServerError'
  else:
    raise AssertionError('expected HTTP 500')


@pytest.mark.parametrize('query, message', [
    ('DROP TABLE PhotoObj', 'error: must be a select statement: DROP TABLE '
     'PhotoObj '),
    ('', 'error: must be a select statement:  '),
    ('SELECT TOP 600000 objid FROM PhotoObj', 'error: limit is  top 500000 '
     'SELECT TOP 600000 objid FROM PhotoObj '),
    ('SELECT TOP 0 objid FROM PhotoObj', 'error: limit is  top 500000 SELECT '
     'TOP 0 objid FROM PhotoObj '),
    # Comments and runs of blanks go before spExecuteSQL quotes the query.
    ('  update  PhotoObj -- no\n', 'error: must be a select statement:  '
     'update PhotoObj '),
])
def test_sql_spexecutesql_refusals_are_200_tables(server, query, message):
  status, headers, body = _get(_sql_url(server.url, query))
  assert status == 200 and headers['Content-Type'].startswith('text/plain')
  assert body.decode() == f'#Table1\nerror_message\n{message}\n'
  status, headers, body = _get(_sql_url(server.url, query, fmt='json'))
  assert status == 200
  assert headers['Content-Type'].startswith('application/json')
  tables_ = json.loads(body)
  assert tables_[0] == {'TableName': 'Table1',
                        'Rows': [{'error_message': message}]}
  assert tables_[1]['TableName'] == 'SqlQuery'


def test_sql_rate_limit_refusal_as_spexecutesql_words_it(catalog):
  query = catalog_lib.class_query('STAR', 2)
  with app_lib.serve_in_background(FakeSky(catalog),
                                   sql_queries_per_minute=2) as emu:
    answers = [_get(_sql_url(emu.url, query)) for _ in range(4)]
    json_answer = _get(_sql_url(emu.url, 'SELECT TOP 1 objid FROM PhotoObj',
                                fmt='json'))
  # spExecuteSQL refuses once MORE than the limit were counted in the last
  # minute: with a limit of 2, three pass.
  assert [a[0] for a in answers] == [200] * 4
  assert all(a[2].startswith(b'#Table1\nobjid,') for a in answers[:3])
  text = answers[3][2].decode()
  # The query holds commas: writeCSV puts the cell in double quotes, as the
  # answer recorded by simonsobs/nemo shows ('"ERROR: Maximum 60 queries
  # allowed per minute. Rejected query: SELECT ...').
  assert text == ('#Table1\nerror_message\n"ERROR: Maximum 2 queries allowed '
                  f'per minute. Rejected query: {query} "\n')
  refusal = json.loads(json_answer[2])[0]['Rows'][0]['error_message']
  assert refusal == ('ERROR: Maximum 2 queries allowed per minute. Rejected '
                     'query: SELECT TOP 1 objid FROM PhotoObj ')


def test_sql_throttle_counts_the_last_minute():
  from skytfds.emulator import spexecutesql  # pylint: disable=g-import-not-at-top
  now = [0.0]
  throttle = spexecutesql.Throttle(60, clock=lambda: now[0])
  assert all(throttle.admit('a') for _ in range(61))
  assert not throttle.admit('a') and throttle.admit('b')
  now[0] = 30.0
  assert not throttle.admit('a')  # Refusals are not counted...
  now[0] = 60.5
  assert throttle.admit('a')      # ...and the first minute has passed.
  assert spexecutesql.Throttle(None).admit('a')


def test_sql_request_errors(server):
  base = f'{server.url}/dr17/SkyServerWS/SearchTools/SqlSearch'
  # No cmd: SqlSearch.cs's ArgumentException, 400 with the JSON body.
  status, headers, body = _get(base + '?format=csv')
  answer = json.loads(body)
  assert status == 400 and list(answer) == ERROR_KEYS
  assert answer['ErrorType'] == 'BadRequest'
  assert answer['ErrorMessage'] == ('There are not enough parameters to '
                                    'process your request.')
  status, _, _ = _get(_sql_url(server.url, 'SELECT TOP 1 objid FROM PhotoObj',
                               release=11))
  assert status == 404
  # A format the emulator does not write: an exception, as in the server.
  status, _, body = _get(_sql_url(server.url, 'SELECT TOP 1 objid FROM '
                                  'PhotoObj', fmt='votable'))
  assert status == 500 and 'votable' in json.loads(body)['ErrorMessage']
  # An unknown format, or none, is JSON (ProcessRequest.cs).
  for query in ({'cmd': 'SELECT TOP 1 objid FROM PhotoObj', 'format': 'x'},
                {'cmd': 'SELECT TOP 1 objid FROM PhotoObj'}):
    status, headers, body = _get(f'{base}?{urllib.parse.urlencode(query)}')
    assert status == 200 and headers['Content-Type'].startswith(
        'application/json')
    assert json.loads(body)[0]['Rows'][0]['objid'] > 0
  # format=html: the error as a page, status 200 (CustomFilter.cs).
  status, headers, body = _get(_sql_url(server.url, 'SELECT TOP 1 bogus FROM '
                                        'PhotoObj', fmt='html'))
  assert status == 200 and headers['Content-Type'].startswith('text/html')
  assert b"error_message: Invalid column name 'bogus'." in body


def test_sql_post_form(server):
  data = urllib.parse.urlencode({'cmd': 'SELECT TOP 2 objid FROM PhotoObj',
                                 'format': 'csv'}).encode()
  with urllib.request.urlopen(
      f'{server.url}/dr17/SkyServerWS/SearchTools/SqlSearch', data=data,
      timeout=10) as r:
    body = r.read()
  assert body.startswith(b'#Table1\nobjid\n') and body.count(b'\n') == 4


def test_sql_delay_and_server_timeout(catalog):
  query = 'SELECT TOP 1 objid FROM PhotoObj'
  with app_lib.serve_in_background(FakeSky(catalog), sql_delay_s=0.4) as emu:
    start = time.monotonic()
    status, _, _ = _get(_sql_url(emu.url, query))
    assert status == 200 and time.monotonic() - start >= 0.4
  with app_lib.serve_in_background(FakeSky(catalog), sql_delay_s=30,
                                   sql_timeout_s=0.3) as emu:
    start = time.monotonic()
    status, _, body = _get(_sql_url(emu.url, query))
    took = time.monotonic() - start
  assert status == 500 and 0.3 <= took < 10
  assert json.loads(body)['ErrorMessage'] == (
      'Execution Timeout Expired.  The timeout period elapsed prior to '
      'completion of the operation or the server is not responding.')


# ---------------------------------------------------------------------------
# SAS, cutouts, PS1


def test_sas_real_frame_identical_bytes(server):
  path = (SAS / 'dr17/eboss/photoObj/frames/301/3918/3' /
          'frame-r-003918-3-0213.fits.bz2')
  if not path.is_file():
    pytest.skip('../shared/data not found: real SDSS frames are needed')
  # The field holds no object of the (generated) catalogue: it is served
  # because the local SAS mirror holds it.
  frame = catalog_lib.FrameId(3918, 301, 3, 213)
  status, headers, body = _get(f'{server.sas_url}/{_frame_path(frame, "r")}')
  assert status == 200
  assert body == path.read_bytes()
  other = _frame_path(catalog_lib.FrameId(3918, 301, 3, 214), 'r')
  assert _get(f'{server.sas_url}/{other}')[0] == 404


def test_sas_frame_cached_and_validated(server, sky, catalog, tmp_path):
  frame = sorted(sky.frame_ids())[0]
  url = f'{server.sas_url}/{_frame_path(frame, "g")}'
  status, headers, body = _get(url, timeout=60)
  assert status == 200 and body[:3] == b'BZh'
  assert headers['Content-Type'] == 'application/x-bzip2'
  assert int(headers['Content-Length']) == len(body)
  assert body == sky.frame_bytes(frame, 'g')
  # The catalogue objects of the field lie on the frame (decodes with a WCS).
  decoded = frames_lib.decode_frame(body, band='g')
  obj = next(o for o in catalog.objects if o.frame == frame)
  x, y = decoded.wcs.world_to_pixel_values(obj.ra, obj.dec)
  assert 0 <= x < 2048 and 0 <= y < 1489
  bad = [
      _frame_path(frame, 'g', release=12).replace('/boss/', '/eboss/'),
      _frame_path(frame, 'g').replace('eboss', 'boss'),     # eboss for DR17
      _frame_path(frame, 'g').replace(f'/{frame.run}/', f'/{frame.run + 1}/'),
      _frame_path(frame, 'g').replace('frame-g', 'frame-x'),
      _frame_path(frame, 'g').replace('/301/', '/40/'),
      _frame_path(frame, 'g', release=11).replace('boss', 'eboss'),
      _frame_path(frame, 'g').replace('.bz2', ''),
      f'dr17/eboss/photoObj/frames/301/{frame.run}/../../etc/passwd',
      _frame_path(catalog_lib.FrameId(frame.run, 301, frame.camcol, 999), 'g'),
  ]
  for tail in bad:
    status, _, body = _get(f'{server.sas_url}/{tail}')
    assert status == 404, tail
    assert b'Not Found' in body


def test_disk_cache_second_run_renders_nothing(catalog, tmp_path):
  sky = FakeSky(catalog)
  frames = sorted(sky.frame_ids())[:2]
  paths = [_frame_path(f, b) for f in frames for b in 'ur']
  bodies = []
  for run in range(2):
    with app_lib.serve_in_background(sky, cache_dir=tmp_path) as emu:
      bodies.append([_get(f'{emu.sas_url}/{p}')[2] for p in paths])
      stats = emu.stats()
    assert stats['renders'] == (len(paths) if run == 0 else 0)
  assert bodies[0] == bodies[1]
  assert sky.frame_calls == len(paths)
  cached = [p for p in tmp_path.rglob('*') if p.is_file()]
  assert len(cached) == len(paths)
  assert not [p for p in cached if p.name.startswith('.tmp-')]


def test_concurrent_requests_render_once(catalog):
  sky = FakeSky(catalog)
  frame = sorted(sky.frame_ids())[1]

  async def fetch_all(url):
    async with aiohttp.ClientSession() as session:
      async def one():
        async with session.get(url) as r:
          return await r.read()
      return await asyncio.gather(*[one() for _ in range(8)])

  with app_lib.serve_in_background(sky) as emu:
    url = f'{emu.sas_url}/{_frame_path(frame, "z")}'
    bodies = asyncio.run(fetch_all(url))
    assert emu.stats()['renders'] == 1
  assert len(set(bodies)) == 1 and sky.frame_calls == 1


def _getjpeg(server, query):
  return _get(f'{server.url}/dr17/SkyServerWS/ImgCutout/getjpeg?{query}')


def _size_of(body):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return Image.open(io.BytesIO(body)).size


def test_getjpeg(server):
  status, headers, body = _getjpeg(
      server, 'ra=10.02&dec=-0.5&scale=0.4&width=120&height=100&opt=')
  assert status == 200 and headers['Content-Type'] == 'image/jpeg'
  assert body[:2] == b'\xff\xd8' and _size_of(body) == (120, 100)
  # The server's defaults: 0.396127 arcsec/pixel, 128 x 128.
  status, _, body = _getjpeg(server, 'ra=10.02&dec=-0.5')
  assert status == 200 and _size_of(body) == (128, 128)


def test_getjpeg_reads_parameters_as_the_server_does(server):
  same = _getjpeg(server, 'ra=10.02&dec=-0.5&width=120&height=100&opt=')[2]
  # opt is upper-cased and read letter by letter; overlays are not drawn.
  for opt in ('gl', 'GL', 'Gl', '<script>', 'x1?'):
    status, _, body = _getjpeg(
        server, f'ra=10.02&dec=-0.5&width=120&height=100&opt={opt}')
    assert status == 200 and body == same, opt
  # Sizes and scale are clipped, not refused.
  for query, size in [('width=10&height=5000', (64, 2048)),
                      ('width=3000&height=63', (2048, 64))]:
    status, _, body = _getjpeg(server, f'ra=10.02&dec=-0.5&{query}')
    assert status == 200 and _size_of(body) == size, query
  tiny = _getjpeg(server, 'ra=10.02&dec=-0.5&scale=0.015&width=64&height=64')
  clipped = _getjpeg(server, 'ra=10.02&dec=-0.5&scale=0&width=64&height=64')
  assert clipped[0] == 200 and clipped[2] == tiny[2]
  # ra modulo 360 and sexagesimal positions.
  assert _getjpeg(server, 'ra=370.02&dec=-0.5&width=120&height=100')[2] == same
  sexagesimal = _getjpeg(server, 'ra=0:40:4.8&dec=-0:30:0&width=120&height=100')
  assert sexagesimal[0] == 200 and sexagesimal[2] == same


@pytest.mark.parametrize('query, words', [
    ('dec=0', 'not enough parameters'),
    ('ra=10', 'not enough parameters'),
    ('ra=abc&dec=0', 'not in correct format'),
    ('ra=nan&dec=0', 'not in correct format'),
    ('ra=10&dec=0&scale=big', 'not in correct format'),
    ('ra=10&dec=0&width=wide', 'not in correct format'),
])
def test_getjpeg_bad_parameters_are_400_with_json(server, query, words):
  status, headers, body = _getjpeg(server, query)
  assert status == 400 and headers['Content-Type'].startswith(
      'application/json')
  answer = json.loads(body)
  assert list(answer) == ERROR_KEYS and answer['ErrorType'] == 'BadRequest'
  assert words in answer['ErrorMessage']


def test_getjpeg_outside_the_footprint_is_404_with_a_jpeg(server, sky):
  # Far from every catalogue field of the generated sky.
  assert not sky.in_footprint(180.0, -60.0)
  try:
    urllib.request.urlopen(f'{server.url}/dr17/SkyServerWS/ImgCutout/getjpeg?'
                           'ra=180&dec=-60&width=100&height=80', timeout=30)
  except urllib.error.HTTPError as e:
    assert e.code == 404
    assert e.reason == ('NOT FOUND. Requested (ra, dec) is outside the SDSS '
                        'footprint.')
    assert e.headers['Content-Type'] == 'image/jpeg'
    body = e.read()
  else:
    raise AssertionError('expected 404')
  assert body[:2] == b'\xff\xd8' and _size_of(body) == (100, 80)
  # Every catalogue object is inside it.
  assert all(sky.in_footprint(o.ra, o.dec) for o in sky.catalog.objects[:50])


def test_ps1_routes(server):
  status, headers, body = _get(
      f'{server.url}/cgi-bin/ps1filenames.py?ra=10.0&dec=0.1&filters=yig')
  # The table as the real script sends it: text/html, the body a table.
  assert status == 200 and headers['Content-Type'].startswith('text/html')
  lines = body.decode().splitlines()
  assert lines[0].split()[:5] == ['projcell', 'subcell', 'ra', 'dec', 'filter']
  files = {line.split()[4]: line.split()[7] for line in lines[1:]}
  assert list(files) == ['g', 'i', 'y']  # In filter order, as the real one.
  # The real rows' shape (STScI's PS1_image notebook: "1784 59 83.63321
  # 22.01446 g 0.0 stack /rings.v3.skycell/1784/059/rings.v3.skycell.1784.059
  # .stk.g.unconv.fits rings.v3.skycell.1784.059.stk.g.unconv.fits 0").
  projcell, subcell, ra, dec, band, mjd, kind, name, short, bad = lines[1].split()
  assert (ra, dec, band, mjd, kind, bad) == ('10.0', '0.1', 'g', '0.0',
                                             'stack', '0')
  assert name == (f'/rings.v3.skycell/{int(projcell):04d}/{int(subcell):03d}/'
                  f'rings.v3.skycell.{int(projcell):04d}.{int(subcell):03d}.'
                  'stk.g.unconv.fits') and name.endswith('/' + short)
  query = urllib.parse.urlencode({'ra': 10.0, 'dec': 0.1, 'size': 64,
                                  'format': 'jpg', 'red': files['y'],
                                  'green': files['i'], 'blue': files['g']})
  status, headers, body = _get(f'{server.url}/cgi-bin/fitscut.cgi?{query}')
  assert status == 200 and headers['Content-Type'] == 'image/jpeg'
  assert body[:2] == b'\xff\xd8'
  for query in ['ra=10&dec=0&format=png&red=a&green=a&blue=a',
                'ra=10&dec=0&red=../x&green=a&blue=a',
                'ra=10&dec=0&red=a&green=a']:
    status, _, _ = _get(f'{server.url}/cgi-bin/fitscut.cgi?{query}')
    assert status == 400, query
  status, _, _ = _get(f'{server.url}/cgi-bin/ps1filenames.py?ra=1&dec=0&'
                      'filters=q')
  assert status == 400


def _post_positions(url, lines, filters='yig'):
  """POSTs a file of positions as STScI's notebooks do (multipart)."""
  boundary = 'skytfdsboundary'
  parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="filters"'
           f'\r\n\r\n{filters}\r\n',
           f'--{boundary}\r\nContent-Disposition: form-data; name="type"'
           '\r\n\r\nstack\r\n',
           f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
           'filename="file"\r\nContent-Type: text/plain\r\n\r\n'
           + '\n'.join(lines) + f'\r\n--{boundary}--\r\n']
  request = urllib.request.Request(
      url, data=''.join(parts).encode(), method='POST',
      headers={'Content-Type': f'multipart/form-data; boundary={boundary}'})
  try:
    with urllib.request.urlopen(request, timeout=10) as r:
      return r.status, dict(r.headers), r.read()
  except urllib.error.HTTPError as e:
    return e.code, dict(e.headers), e.read()


@pytest.mark.parametrize('use_fake', [False, True])
def test_ps1_filenames_for_a_posted_file_of_positions(server, catalog,
                                                      use_fake):
  positions = ['10.0 0.1', '200.5 -45.0', '', '150.25 30.5']
  if use_fake:  # The table depends on the positions only, not on the sky.
    with app_lib.serve_in_background(FakeSky(catalog)) as emu:
      status, headers, body = _post_positions(
          f'{emu.url}/cgi-bin/ps1filenames.py', positions)
  else:
    status, headers, body = _post_positions(
        f'{server.url}/cgi-bin/ps1filenames.py', positions)
  assert status == 200 and headers['Content-Type'].startswith('text/html')
  rows = [line.split() for line in body.decode().splitlines()]
  assert rows[0][:4] == ['projcell', 'subcell', 'ra', 'dec']
  # One row per filter of each covered position, carrying its ra and dec;
  # none for the position south of dec -30.
  got = [(float(r[2]), float(r[3]), r[4]) for r in rows[1:]]
  assert got == [(10.0, 0.1, 'g'), (10.0, 0.1, 'i'), (10.0, 0.1, 'y'),
                 (150.25, 30.5, 'g'), (150.25, 30.5, 'i'), (150.25, 30.5, 'y')]
  status, _, body = _post_positions(f'{server.url}/cgi-bin/ps1filenames.py',
                                    ['10.0'])
  assert status == 400 and b'line 1' in body


def test_stats_counts_hits(catalog):
  with app_lib.serve_in_background(FakeSky(catalog)) as emu:
    url = f'{emu.url}/cgi-bin/ps1filenames.py?ra=10.0&dec=0.1'
    for _ in range(3):
      assert _get(url)[0] == 200
    _get(f'{emu.url}/_health')
    status, _, body = _get(f'{emu.url}/_stats')
  stats = json.loads(body)
  assert status == 200
  assert stats['hits'] == {'/cgi-bin/ps1filenames.py?ra=10.0&dec=0.1': 3}
  assert stats['served'] == stats['hits']
  assert stats['requests'] == 3 and stats['faults'] == {}


def test_latency(catalog):
  # Latency is a lower bound on a service answer; _stats is not delayed
  # (checked against a latency far above any scheduling noise).
  with app_lib.serve_in_background(FakeSky(catalog), latency_ms=1500) as emu:
    start = time.monotonic()
    _get(f'{emu.url}/cgi-bin/ps1filenames.py?ra=10.0&dec=0.1')
    slow = time.monotonic() - start
    start = time.monotonic()
    _get(f'{emu.url}/_stats')
    fast = time.monotonic() - start
  assert slow >= 1.5 and fast < 1.5


# ---------------------------------------------------------------------------
# Faults


async def _attempt(session, url):
  """'ok' with the body, or the failure a client sees."""
  try:
    async with session.get(url) as r:
      body = await r.read()
      if r.status != 200:
        return f'status {r.status}', r.headers.get('Retry-After')
      if body.startswith(b'<!DOCTYPE html'):
        return 'html', None
      if body.startswith(b'BZh'):
        try:
          bz2.decompress(body)
        except (OSError, ValueError):
          return 'corrupt', None
      return 'ok', body
  except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
          aiohttp.ClientOSError) as e:
    return 'disconnected', type(e).__name__


def _fault_run(sky, frames, seed):
  urls_per = {}

  async def go(emu):
    out = []
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
      for frame in frames:
        for band in 'ugriz':
          url = f'{emu.sas_url}/{_frame_path(frame, band)}'
          outcomes = []
          for _ in range(8):  # Retry until served (max_faults_per_url=3).
            outcome = await _attempt(session, url)
            outcomes.append(outcome[0])
            if outcome[0] == 'ok':
              urls_per[url] = outcome[1]
              break
          out.append(outcomes)
    return out

  with app_lib.serve_in_background(sky, fault_rate=0.5, seed=seed,
                                   slow_ms=50, retry_after_s=1) as emu:
    outcomes = asyncio.run(go(emu))
    stats = emu.stats()
  return outcomes, stats, urls_per


def test_faults_all_kinds_deterministic_and_retries_succeed(catalog):
  sky = FakeSky(catalog)
  frames = sorted(sky.frame_ids())[:8]
  outcomes, stats, bodies = _fault_run(sky, frames, seed=7)
  assert set(stats['faults']) == set(faults_lib.FAULT_KINDS), stats['faults']
  # Each URL is served once; every other request was a failed one (aiohttp
  # itself silently repeats some requests whose connection was reset).
  failed = sum(stats['faults'].values()) - stats['faults']['slow']
  assert stats['requests'] - len(outcomes) == failed
  assert sum(len(o) - 1 for o in outcomes) == failed
  assert all(n == 1 for n in stats['served'].values())
  # Every URL was eventually served, within max_faults_per_url + 1 attempts.
  assert all(o[-1] == 'ok' and len(o) <= 4 for o in outcomes)
  # What a client sees for each kind.
  seen = {kind for o in outcomes for kind in o}
  assert {'status 500', 'status 503', 'status 429', 'html', 'corrupt',
          'disconnected', 'ok'} <= seen
  # The payloads are the correct ones.
  for frame in frames:
    url_part = _frame_path(frame, 'u')
    body = next(b for u, b in bodies.items() if u.endswith(url_part))
    assert body == sky.frame_bytes(frame, 'u')
  # Deterministic: the same seed gives the same outcomes and counts.
  outcomes2, stats2, _ = _fault_run(sky, frames, seed=7)
  assert outcomes2 == outcomes and stats2['faults'] == stats['faults']
  assert stats2['hits'] == stats['hits']
  outcomes3, _, _ = _fault_run(sky, frames, seed=8)
  assert outcomes3 != outcomes


def test_fault_plan_pure_and_rate():
  plan = faults_lib.FaultPlan(rate=0.2, seed=3)
  draws = [plan.draw(f'/x?{i}', 1, 'text') for i in range(5000)]
  assert draws == [plan.draw(f'/x?{i}', 1, 'text') for i in range(5000)]
  rate = sum(d is not None for d in draws) / len(draws)
  assert 0.17 < rate < 0.23
  assert 'corrupt_bz2' not in draws  # Only frames get corrupt bz2.
  assert faults_lib.FaultPlan(rate=0.0).draw('/x', 1, 'bz2') is None
  injector = faults_lib.FaultInjector(
      faults_lib.FaultPlan(rate=1.0, seed=0, max_per_url=2))
  assert [injector.decide('/y', h, 'bz2') is not None
          for h in range(1, 5)] == [True, True, False, False]
  with pytest.raises(ValueError, match='fraction'):
    faults_lib.FaultPlan(rate=1.5)
  with pytest.raises(ValueError, match='unknown fault kinds'):
    faults_lib.FaultPlan(kinds=('boom',))


def test_faults_not_on_stats(catalog):
  with app_lib.serve_in_background(FakeSky(catalog), fault_rate=1.0,
                                   max_faults_per_url=None) as emu:
    for _ in range(5):
      status, _, body = _get(f'{emu.url}/_stats')
      assert status == 200
      json.loads(body)
    status, _, _ = _get(f'{emu.url}/_health')
    assert status == 200


def test_project_fetcher_survives_faults(catalog):
  """The project's client gets every payload intact at fault_rate 0.5."""
  from skytfds.services import http, sas  # pylint: disable=g-import-not-at-top
  sky = FakeSky(catalog)
  frames = sorted(sky.frame_ids())[:6]

  async def fetch_all(emu):
    async with http.Fetcher(None, backoff_s=0.01, backoff_max_s=0.02,
                            retry_after_max_s=0.05, seed=0) as fetcher:
      return await asyncio.gather(*[
          sas.fetch_frame(fetcher, frame, band, base=emu.sas_url)
          for frame in frames for band in 'ugriz'])

  with app_lib.serve_in_background(sky, fault_rate=0.5, seed=2, slow_ms=20,
                                   fault_kinds='http_500,http_503,http_429,'
                                   'reset,truncated,html_200,slow') as emu:
    bodies = asyncio.run(fetch_all(emu))
    stats = emu.stats()
  assert bodies == [sky.frame_bytes(f, b) for f in frames for b in 'ugriz']
  assert sum(stats['faults'].values()) > 5


def test_outage_outlasts_the_retry_budget_then_ends(catalog):
  """An outage is not capped per URL: every request fails while it lasts."""
  from skytfds.services import http, sas  # pylint: disable=g-import-not-at-top
  sky = FakeSky(catalog)
  frame = sorted(sky.frame_ids())[0]
  outage = faults_lib.Outage('http_503', duration_s=3.0, path_prefix='/sas/',
                             retry_after_s=0)

  async def fetch(emu):
    async with http.Fetcher(None, max_attempts=6, backoff_s=0.01,
                            backoff_max_s=0.02, seed=0) as fetcher:
      try:
        return await sas.fetch_frame(fetcher, frame, 'r', base=emu.sas_url)
      except http.FetchError as e:
        return e

  with app_lib.serve_in_background(sky, outage=outage) as emu:
    error = asyncio.run(fetch(emu))
    # The other services keep answering.
    assert _get(f'{emu.url}/cgi-bin/ps1filenames.py?ra=10&dec=0')[0] == 200
    stats = emu.stats()
    time.sleep(3.0)
    body = asyncio.run(fetch(emu))
  assert isinstance(error, http.FetchError) and error.reason == 'http_503'
  assert error.attempts == 6
  assert stats['faults'] == {'outage_http_503': 6}  # Not capped at 3.
  assert body == sky.frame_bytes(frame, 'r')


def test_outage_clock():
  now = [0.0]
  clock = faults_lib.OutageClock(
      faults_lib.Outage('reset', duration_s=10, path_prefix='/sas/',
                        after_requests=2), clock=lambda: now[0])
  assert [clock.kind_now('/sas/x') for _ in range(3)] == [None, None, 'reset']
  assert clock.kind_now('/cgi-bin/x') is None
  now[0] = 9.9
  assert clock.kind_now('/sas/y') == 'reset'
  now[0] = 10.0
  assert clock.kind_now('/sas/y') is None
  endless = faults_lib.OutageClock(faults_lib.Outage())
  assert all(endless.kind_now('/any') == 'http_503' for _ in range(100))
  endless.end()
  assert endless.kind_now('/any') is None
  with pytest.raises(ValueError, match='outage kind'):
    faults_lib.Outage('corrupt_bz2')


# ---------------------------------------------------------------------------
# CLI


def test_cli_starts_answers_and_stops(tmp_path):
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  proc = subprocess.Popen(
      [sys.executable, str(REPO / 'tools' / 'sky_server.py'), '--port', '0',
       '--catalog', 'generated', '--sas_root', '', '--cache_dir',
       str(tmp_path)],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
      cwd=REPO)
  try:
    urls = {}
    deadline = time.monotonic() + 60
    while len(urls) < 3 and time.monotonic() < deadline:
      line = proc.stdout.readline()
      if not line:
        break
      if '=' in line and line.startswith('SKYTFDS_'):
        key, value = line.strip().split('=', 1)
        urls[key] = value
    assert set(urls) == {'SKYTFDS_SKYSERVER_URL', 'SKYTFDS_SAS_URL',
                         'SKYTFDS_PS1_URL'}, proc.stderr.read()
    base = urls['SKYTFDS_SKYSERVER_URL']
    assert base.startswith('http://127.0.0.1:')
    assert urls['SKYTFDS_SAS_URL'] == base + '/sas'
    status, _, body = _get(base + '/_health')
    assert status == 200
    status, _, body = _get(_sql_url(base, catalog_lib.class_query('GALAXY', 2)))
    assert status == 200 and body.startswith(b'#Table1\n')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_cli_preview(tmp_path):
  out = tmp_path / 'field.png'
  result = subprocess.run(
      [sys.executable, str(REPO / 'tools' / 'sky_server.py'), '--catalog',
       'generated', '--preview', '002583-1-0100', str(out)],
      capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
  assert result.returncode == 0, result.stderr
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(out) as image:
    assert image.size == (2048, 1489) and image.mode == 'RGB'
  result = subprocess.run(
      [sys.executable, str(REPO / 'tools' / 'sky_server.py'), '--catalog',
       'generated', '--preview', '003918-3-0213', str(out)],
      capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
  assert result.returncode != 0
  assert 'no catalogue object lies in field 003918-3-0213' in result.stderr
