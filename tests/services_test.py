"""Tests of skytfds.services: pure URL builders, and the Fetcher against a
local aiohttp server on 127.0.0.1 (concurrency, retries, cache, failures)."""

import asyncio
import bz2
import collections
import contextlib
import email.message
import os
import pathlib
import socket
import time

import fsspec
import pytest
from aiohttp import web

import skytfds
from skytfds import settings
from skytfds import version
from skytfds.catalog import FrameId
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import retries
from skytfds.services import sas
from skytfds.services import skyserver
from skytfds.services import transport

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / 'shared' / 'data'
FRAME = FrameId(3918, 301, 3, 213)
# Same shape as FrameId without any checks of its own: shows that sas.py
# validates whatever reaches it (raw catalogue values included).
RawFrame = collections.namedtuple('RawFrame', 'run rerun camcol field')
FRAME_PATH = 'dr17/eboss/photoObj/frames/301/3918/3/frame-r-003918-3-0213.fits.bz2'

# Tiny, valid payloads.
JPEG = b'\xff\xd8\xff\xe0' + b'\x00' * 64 + b'\xff\xd9'
BZ2 = bz2.compress(b'SIMPLE  =                    T' * 40)
PS1_TABLE = """projcell subcell ra dec filter mjd type filename shortname badflag
2381 053 83.633210 22.014460 g 0 stack /rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.g.unconv.fits rings.v3.skycell.2381.053.stk.g.unconv.fits 0
2381 053 83.633210 22.014460 i 0 stack /rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.i.unconv.fits rings.v3.skycell.2381.053.stk.i.unconv.fits 0
2381 053 83.633210 22.014460 r 0 stack /rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.r.unconv.fits rings.v3.skycell.2381.053.stk.r.unconv.fits 0
2381 053 83.633210 22.014460 y 0 stack /rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.y.unconv.fits rings.v3.skycell.2381.053.stk.y.unconv.fits 0
2381 053 83.633210 22.014460 z 0 stack /rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.z.unconv.fits rings.v3.skycell.2381.053.stk.z.unconv.fits 0
"""


def _fast(cache_dir=None, **kw) -> http.Fetcher:
  """A Fetcher with tiny backoff, for tests."""
  options = dict(max_concurrency=4, timeout_s=5, max_attempts=4, backoff_s=0.01,
                 backoff_max_s=0.05, retry_after_max_s=0.3, max_rate_per_host=0,
                 max_outage_s=60, seed=0)
  options.update(kw)
  return http.Fetcher(cache_dir, **options)


@contextlib.asynccontextmanager
async def _serve(handler):
  """Serves `handler` for every path on 127.0.0.1:<ephemeral>; yields the base URL."""
  app = web.Application()
  app.router.add_route('GET', '/{tail:.*}', handler)
  runner = web.AppRunner(app, handle_signals=False)
  await runner.setup()
  site = web.TCPSite(runner, '127.0.0.1', 0)
  await site.start()
  port = site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access
  try:
    yield f'http://127.0.0.1:{port}'
  finally:
    await runner.cleanup()


def _scripted(script, default=None):
  """A handler answering the i-th request with script[i] (then `default`).

  Each entry is a coroutine function taking the request. Hits are counted in
  handler.hits (total) and handler.paths (per path).
  """
  state = {'i': 0}

  async def handler(request):
    handler.hits += 1
    handler.paths[request.path] += 1
    handler.agents.append(request.headers.get('User-Agent', ''))
    step = script[state['i']] if state['i'] < len(script) else default
    state['i'] += 1
    return await step(request)

  handler.hits = 0
  handler.paths = collections.Counter()
  handler.agents = []
  return handler


def ok(body, content_type='application/octet-stream'):
  async def respond(request):
    del request
    return web.Response(body=body, content_type=content_type)
  return respond


def delayed(seconds, body, content_type='application/octet-stream'):
  """Answers `body` after `seconds`."""
  async def respond(request):
    del request
    await asyncio.sleep(seconds)
    return web.Response(body=body, content_type=content_type)
  return respond


def status(code, body=b'oops', headers=None):
  async def respond(request):
    del request
    return web.Response(status=code, body=body, headers=headers or {})
  return respond


async def reset(request):
  """Drops the connection without an answer."""
  request.transport.close()
  await asyncio.sleep(0.05)
  return web.Response(body=b'')


def truncated(body):
  async def respond(request):
    response = web.StreamResponse(headers={'Content-Type': 'image/jpeg'})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[:len(body) // 2])
    request.transport.close()
    return response
  return respond


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _needs_data():
  if not (DATA / 'sas' / FRAME_PATH).exists():
    pytest.skip('../shared/data not found: real SDSS frames are needed')


# ----------------------------------------------------------------------------
# Pure URL builders.


class TestSas:

  def test_frame_path_dr17_padding(self):
    assert sas.frame_path(FRAME, 'r') == FRAME_PATH
    assert sas.frame_path(FrameId(94, 301, 1, 7), 'u') == (
        'dr17/eboss/photoObj/frames/301/94/1/frame-u-000094-1-0007.fits.bz2')

  def test_frame_path_dr12_is_boss(self):
    assert sas.frame_path(FRAME, 'g', release=12) == (
        'dr12/boss/photoObj/frames/301/3918/3/frame-g-003918-3-0213.fits.bz2')
    assert sas.frame_path(FRAME, 'g', release=13).startswith('dr13/eboss/')

  def test_frame_url_default_and_explicit_base(self, monkeypatch):
    monkeypatch.delenv(settings.SAS_URL_ENV, raising=False)
    assert sas.frame_url(FRAME, 'r') == 'https://data.sdss.org/sas/' + FRAME_PATH
    assert sas.frame_url(FRAME, 'r', base='http://127.0.0.1:9/sas/') == (
        'http://127.0.0.1:9/sas/' + FRAME_PATH)
    monkeypatch.setenv(settings.SAS_URL_ENV, '../shared/data/sas')
    assert sas.frame_url(FRAME, 'r') == '../shared/data/sas/' + FRAME_PATH

  @pytest.mark.parametrize('frame, band, release', [
      (RawFrame(3918, 301, 7, 213), 'r', 17),       # camcol out of 1..6
      (RawFrame(3918, 301, 0, 213), 'r', 17),
      (RawFrame(-1, 301, 3, 213), 'r', 17),
      (RawFrame(3918, 301, 3, 10000), 'r', 17),     # field needs > 4 digits
      (RawFrame(1000000, 301, 3, 1), 'r', 17),      # run needs > 6 digits
      (RawFrame('../../etc', 301, 3, 213), 'r', 17),
      (RawFrame(3918, '301/../..', 3, 213), 'r', 17),
      (RawFrame(3918.0, 301, 3, 213), 'r', 17),     # floats are refused, even whole
      (RawFrame(True, 301, 3, 213), 'r', 17),
      (FRAME, 'x', 17),
      (FRAME, 'R', 17),
      (FRAME, '../r', 17),
      (FRAME, 'r', 11),
      (FRAME, 'r', '17'),
  ])
  def test_bad_values_refused(self, frame, band, release):
    with pytest.raises(ValueError):
      sas.frame_path(frame, band, release)

  def test_numpy_ints_accepted(self):
    np = pytest.importorskip('numpy')
    frame = FrameId(np.int64(3918), np.int32(301), np.uint8(3), np.int64(213))
    assert sas.frame_path(frame, 'r') == FRAME_PATH


class TestSkyServer:

  def test_sql_url_encoded(self):
    url = skyserver.sql_url("SELECT TOP 2 p.objid FROM PhotoObj AS p WHERE p.r < 17 "
                            "AND s.class = 'QSO' & 1", base='https://h.example/')
    assert url == (
        'https://h.example/dr17/SkyServerWS/SearchTools/SqlSearch?cmd=SELECT%20TOP'
        '%202%20p.objid%20FROM%20PhotoObj%20AS%20p%20WHERE%20p.r%20%3C%2017%20AND'
        '%20s.class%20%3D%20%27QSO%27%20%26%201&format=csv'
        '&TaskName=skytfds.SkyServer.SqlSearch')

  def test_sql_url_json_release(self, monkeypatch):
    monkeypatch.delenv(settings.SKYSERVER_URL_ENV, raising=False)
    assert skyserver.sql_url('SELECT 1', release=14, fmt='json') == (
        'https://skyserver.sdss.org/dr14/SkyServerWS/SearchTools/SqlSearch'
        '?cmd=SELECT%201&format=json&TaskName=skytfds.SkyServer.SqlSearch')

  @pytest.mark.parametrize('kw', [
      dict(sql=''), dict(sql='SELECT 1', fmt='xml'), dict(sql='SELECT 1', release=3),
      dict(sql='SELECT \x00'), dict(sql='x' * 9000)])
  def test_sql_url_refuses(self, kw):
    with pytest.raises(ValueError):
      skyserver.sql_url(**kw)

  def test_cutout_url(self):
    assert skyserver.cutout_url(229.54, 42.76, base='http://127.0.0.1:1') == (
        'http://127.0.0.1:1/dr17/SkyServerWS/ImgCutout/getjpeg?ra=229.540000'
        '&dec=42.760000&scale=0.4&width=240&height=240&opt='
        '&TaskName=skytfds.SkyServer.getjpeg')
    assert skyserver.cutout_url(1.5, -0.25, scale=0.2, width=64, height=2048,
                                opt='GL', release=12, base='http://h') == (
        'http://h/dr12/SkyServerWS/ImgCutout/getjpeg?ra=1.500000&dec=-0.250000'
        '&scale=0.2&width=64&height=2048&opt=GL&TaskName=skytfds.SkyServer.getjpeg')

  def test_cutout_cache_name(self):
    assert skyserver.cutout_cache_name(229.54, 42.76) == (
        'skyserver/dr17/getjpeg/229.540000_+42.760000_s0.4_w240_h240.jpg')
    assert skyserver.cutout_cache_name(1, -2, opt='G', width=64) == (
        'skyserver/dr17/getjpeg/1.000000_-2.000000_s0.4_w64_h240_G.jpg')

  @pytest.mark.parametrize('kw', [
      dict(width=63), dict(width=2049), dict(height=0), dict(width=240.0),
      dict(scale=0), dict(scale=float('nan')), dict(opt='../x'), dict(opt='g;l'),
      dict(ra=360.0), dict(ra=-0.1), dict(dec=90.5), dict(ra=float('nan')),
      dict(ra='abc')])
  def test_cutout_url_refuses(self, kw):
    args = dict(ra=10.0, dec=0.0)
    args.update(kw)
    ra, dec = args.pop('ra'), args.pop('dec')
    with pytest.raises(ValueError):
      skyserver.cutout_url(ra, dec, **args)


class TestPs1:

  def test_filenames_url(self):
    assert ps1.filenames_url(83.63321, 22.01446, base='https://ps1.example') == (
        'https://ps1.example/cgi-bin/ps1filenames.py?ra=83.633210&dec=22.014460'
        '&filters=grizy')
    with pytest.raises(ValueError):
      ps1.filenames_url(1, 2, filters='ugr')

  def test_parse_filenames(self):
    files = ps1.parse_filenames(PS1_TABLE)
    assert sorted(files) == ['g', 'i', 'r', 'y', 'z']
    assert files['y'] == ('/rings.v3.skycell/2381/053/'
                          'rings.v3.skycell.2381.053.stk.y.unconv.fits')

  def test_parse_filenames_empty_is_no_coverage(self):
    with pytest.raises(ps1.NoCoverage):
      ps1.parse_filenames(PS1_TABLE.splitlines()[0] + '\n')

  @pytest.mark.parametrize('text', [
      '', '<html><body>Internal error</body></html>',
      PS1_TABLE.replace('/rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.g',
                        '/rings/../../etc/passwd'),
      PS1_TABLE + '1 2 3\n'])
  def test_parse_filenames_bad_table(self, text):
    with pytest.raises(http.FetchError) as error:
      ps1.parse_filenames(text, source='http://x/cgi-bin/ps1filenames.py')
    assert error.value.reason == 'bad_table'
    assert '\n' not in str(error.value)

  def test_fitscut_url(self):
    files = ps1.parse_filenames(PS1_TABLE)
    url = ps1.fitscut_url(83.63321, 22.01446, red=files['y'], green=files['i'],
                          blue=files['g'], base='https://ps1.example')
    assert url == (
        'https://ps1.example/cgi-bin/fitscut.cgi?ra=83.633210&dec=22.014460&size=240'
        '&format=jpg&red=/rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk.y'
        '.unconv.fits&green=/rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk'
        '.i.unconv.fits&blue=/rings.v3.skycell/2381/053/rings.v3.skycell.2381.053.stk'
        '.g.unconv.fits')
    with pytest.raises(ValueError):
      ps1.fitscut_url(1, 2, red='a&b=c', green='g', blue='b')
    with pytest.raises(ValueError):
      ps1.fitscut_url(1, 2, size=5000, red='r', green='g', blue='b')

  def test_south_of_survey_needs_no_request(self):
    async def go():
      async with _fast(None) as fetcher:
        with pytest.raises(ps1.NoCoverage) as error:
          await ps1.fetch_color_cutout(fetcher, 10.0, -45.0,
                                       base='http://127.0.0.1:9')
        return fetcher.stats, error.value
    stats, error = asyncio.run(go())
    assert stats.requests == 0
    assert 'south of the Pan-STARRS' in str(error)


class TestValidation:

  def test_cache_names(self):
    for good in ('a', 'sas/dr17/x.fits.bz2', 'a.b/c'):
      assert http.validate_cache_name(good) == good
    for bad in ('', '/etc/passwd', '../x', 'a/../b', 'a//b', './a', 'a/', 'a\\b',
                'C:x', 'a\x00b'):
      with pytest.raises(ValueError):
        http.validate_cache_name(bad)

  def test_bz2_completeness_on_real_frames(self):
    _needs_data()
    data = (DATA / 'sas' / FRAME_PATH).read_bytes()
    assert http.bz2_is_complete(data)
    for cut in (1, 2, 7, 11, 1000, len(data) // 2):
      assert not http.bz2_is_complete(data[:-cut])

  @pytest.mark.parametrize('body, kind, ctype, reason', [
      (b'', 'jpeg', '', 'empty'),
      (b'<!DOCTYPE html><html>Busy</html>', 'jpeg', 'text/html', 'html'),
      (b'<html>Busy</html>', 'bz2', '', 'html'),
      (b'\x89PNG\r\n\x1a\n' + b'\x00' * 20, 'jpeg', 'image/png', 'wrong_type'),
      (b'GIF89a' + b'\x00' * 20, 'jpeg', '', 'bad_magic'),
      (JPEG[:-2], 'jpeg', 'image/jpeg', 'truncated'),
      (b'PK\x03\x04' + b'\x00' * 20, 'bz2', '', 'bad_magic'),
      (BZ2[:-5], 'bz2', '', 'truncated'),
  ])
  def test_bodies_refused(self, body, kind, ctype, reason):
    with pytest.raises(http.AttemptFailed) as error:
      http.validate_body(body, kind, content_type=ctype)
    assert error.value.reason == reason

  def test_bodies_accepted(self):
    http.validate_body(JPEG, 'jpeg', content_type='image/jpeg')
    http.validate_body(BZ2, 'bz2', content_type='application/x-bzip2')
    http.validate_body(b'objid,ra\n1,2\n', 'csv', content_type='text/plain')

  def test_skyserver_error_page_is_read_by_skyserver_only(self):
    page = b'<html>error_message: bad</html>'
    with pytest.raises(http.AttemptFailed) as error:
      http.validate_body(page, 'csv', content_type='text/html')
    assert error.value.reason == 'html' and error.value.retryable
    skyserver.ANSWERS.body(page, 'csv', content_type='text/html',
                           max_bytes=http.MAX_BODY_BYTES)

  @pytest.mark.parametrize('kind', ['csv', 'json', 'text'])
  def test_maintenance_page_instead_of_text_is_transient(self, kind):
    with pytest.raises(http.AttemptFailed) as error:
      http.validate_body(b'<!DOCTYPE html><html>Down for maintenance</html>', kind,
                         content_type='text/html')
    assert error.value.reason == 'html' and error.value.retryable

  def test_size_cap(self):
    with pytest.raises(http.AttemptFailed) as error:
      http.validate_body(JPEG, 'jpeg', max_bytes=10)
    assert error.value.reason == 'too_large'

  def test_error_is_one_line_and_hides_credentials(self):
    error = http.FetchError('https://user:secret@h.example/x', 'http_503',
                            'server error\n(HTTP 503)', attempts=6)
    assert 'secret' not in str(error) and '\n' not in str(error)
    assert str(error) == ('cannot fetch https://h.example/x: server error (HTTP 503) '
                          '(gave up after 6 attempts; last reason: http_503)')


class TestRedaction:

  @pytest.mark.parametrize('url, shown', [
      ('http://user:pw@h.example/cat.csv', 'http://h.example/cat.csv'),
      ('https://TOKEN@h.example:8443/x', 'https://h.example:8443/x'),
      ('s3://AKIA:secret@bucket/sas/x.bz2', 's3://bucket/sas/x.bz2'),
      ('https://b.s3.amazonaws.com/x?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1'
       '&X-Amz-Signature=abc&X-Amz-Security-Token=t',
       'https://b.s3.amazonaws.com/x?X-Amz-Algorithm=AWS4&X-Amz-Credential=***'
       '&X-Amz-Signature=***&X-Amz-Security-Token=***'),
      ('https://storage.googleapis.com/b/o?X-Goog-Signature=ff&X-Goog-Date=1',
       'https://storage.googleapis.com/b/o?X-Goog-Signature=***&X-Goog-Date=1'),
      ('https://a.blob.core.windows.net/c/x?sv=1&sig=abc%3D&se=2',
       'https://a.blob.core.windows.net/c/x?sv=1&sig=***&se=2'),
      ('http://h/x?key=k&api_key=k&access_token=t&password=p&ra=1.5',
       'http://h/x?key=***&api_key=***&access_token=***&password=***&ra=1.5'),
      # What the services send is kept byte for byte.
      ('https://skyserver.sdss.org/dr17/SkyServerWS/SearchTools/SqlSearch?cmd=SELECT'
       '%20TOP%201&format=csv&TaskName=skytfds.SkyServer.SqlSearch',
       'https://skyserver.sdss.org/dr17/SkyServerWS/SearchTools/SqlSearch?cmd=SELECT'
       '%20TOP%201&format=csv&TaskName=skytfds.SkyServer.SqlSearch'),
      ('../shared/data/sas/x.bz2', '../shared/data/sas/x.bz2'),
      ('C:\\data\\cat.csv', 'C:\\data\\cat.csv'),
      ('http://[::1]:8080/x', 'http://[::1]:8080/x'),
      ('http://u:p@[::1]:8080/x', 'http://[::1]:8080/x'),
  ])
  def test_redact_url(self, url, shown):
    assert http.redact_url(url) == shown
    assert http.redact(url) == shown  # The older name.

  def test_redact_text_finds_every_url(self):
    text = ("Cannot connect to host h:80 ssl:default for http://u:pw@h/x?sig=S, "
            "then 'https://a:b@g/y'")
    assert http.redact_text(text) == (
        "Cannot connect to host h:80 ssl:default for http://h/x?sig=***, "
        "then 'https://g/y'")

  def test_fetch_error_redacts_its_detail_too(self):
    error = http.FetchError('http://u:pw@h/a', 'redirect_refused',
                            'http://u:pw@h/a redirected to http://v:pw2@e/b?token=T')
    assert 'pw' not in str(error) and 'T' not in str(error).split('token=')[1]
    outage = http.ServiceOutage('http://u:pw@h/a', 'http_503', 'down',
                                host='http://h', failing_s=12, limit_s=10)
    rebuilt = outage.__reduce__()[0](*outage.__reduce__()[1])
    assert isinstance(rebuilt, http.ServiceOutage) and str(rebuilt) == str(outage)
    assert str(outage).startswith('http://h has failed every request for 12 s')


class TestRedirectTargets:

  @pytest.mark.parametrize('asked, location, target', [
      ('http://h.example/a', '/b', 'http://h.example/b'),
      ('http://h.example/a', 'b?x=1', 'http://h.example/b?x=1'),
      ('http://h.example/a', 'https://h.example/a', 'https://h.example/a'),
      ('http://h.example:80/a', 'https://H.EXAMPLE:443/a', 'https://H.EXAMPLE:443/a'),
      ('https://h.example/a', 'https://h.example:443/b', 'https://h.example:443/b'),
      ('http://127.0.0.1:8642/a', 'http://127.0.0.1:8642/b', 'http://127.0.0.1:8642/b'),
      ('http://u:p@h.example/a', '/b', 'http://u:p@h.example/b'),  # Same host: kept.
  ])
  def test_followed(self, asked, location, target):
    assert transport.redirect_target(asked, asked, location) == target

  @pytest.mark.parametrize('asked, location', [
      ('http://h.example/a', 'http://other.example/a'),
      ('http://h.example/a', 'http://h.example.evil/a'),
      ('http://h.example/a', 'http://h.example:8080/a'),
      ('http://127.0.0.1:8642/a', 'http://127.0.0.1:8643/a'),
      ('http://127.0.0.1:8642/a', 'https://127.0.0.1:8642/a'),  # Not default ports.
      ('https://h.example/a', 'http://h.example/a'),           # A downgrade.
      ('http://h.example/a', 'file:///etc/passwd'),
      ('http://h.example/a', 'ftp://h.example/a'),
      ('http://h.example/a', '//evil.example/a'),
      ('http://h.example/a', 'http://u:p@other.example/a'),
      ('http://h.example/a', 'http://[::1/a'),                 # Not a URL.
  ])
  def test_refused(self, asked, location):
    with pytest.raises(http.AttemptFailed) as error:
      transport.redirect_target(asked, asked, location)
    assert error.value.reason == 'redirect_refused' and not error.value.retryable
    assert 'redirected to' in error.value.detail

  def test_downgrade_after_an_upgrade_is_refused(self):
    with pytest.raises(http.AttemptFailed):
      transport.redirect_target('http://h.example/a', 'https://h.example/a',
                                'http://h.example/b')


# ----------------------------------------------------------------------------
# The Fetcher against a local server.


def test_user_agent_sent_and_body_returned():
  handler = _scripted([], default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      return await fetcher.fetch(base + '/a.jpg', kind='jpeg')

  assert asyncio.run(go()) == JPEG
  assert handler.agents == [version.user_agent()]
  assert handler.agents[0].startswith(f'skytfds/{skytfds.__version__}')


@pytest.mark.parametrize('fields, agent', [
    ({'Version': '1.2.3', 'Home-page': 'https://example.org/skytfds'},
     'skytfds/1.2.3 (+https://example.org/skytfds)'),
    ({'Version': '1.2.3', 'Project-URL': 'Source, https://example.org/src'},
     'skytfds/1.2.3 (+https://example.org/src)'),
    ({'Version': '1.2.3'}, 'skytfds/1.2.3'),
])
def test_user_agent_names_the_project_from_its_metadata(monkeypatch, fields, agent):
  meta = email.message.Message()
  for name, value in fields.items():
    meta[name] = value
  monkeypatch.setattr(version, '_metadata', lambda: meta)
  assert version.user_agent() == agent


def test_bounded_concurrency():
  state = {'now': 0, 'max': 0}

  async def handler(request):
    del request
    state['now'] += 1
    state['max'] = max(state['max'], state['now'])
    await asyncio.sleep(0.03)
    state['now'] -= 1
    return web.Response(body=JPEG, content_type='image/jpeg')

  async def go():
    async with _serve(handler) as base, _fast(None, max_concurrency=3) as fetcher:
      bodies = await asyncio.gather(*(
          fetcher.fetch(f'{base}/{i}.jpg', kind='jpeg') for i in range(24)))
      return bodies, fetcher.stats

  bodies, stats = asyncio.run(go())
  assert bodies == [JPEG] * 24
  assert state['max'] == 3
  assert stats.requests == 24


def test_concurrency_default_from_environment(monkeypatch):
  monkeypatch.setenv(settings.MAX_CONCURRENCY_ENV, '5')
  assert http.Fetcher(None).max_concurrency == 5


@pytest.mark.parametrize('fault, reason', [
    (status(500), 'http_500'),
    (status(503, headers={'Retry-After': '0'}), 'http_503'),
    (status(429, headers={'Retry-After': '0.05'}), 'http_429'),
    (reset, 'connection_error'),
    (truncated(JPEG * 4), 'truncated'),
    (ok(b'<html><body>Please wait</body></html>', 'text/html'), 'html'),
    (ok(b'', 'image/jpeg'), 'empty'),
    (ok(JPEG[:-2], 'image/jpeg'), 'truncated'),
])
def test_retries_transient_faults(fault, reason):
  handler = _scripted([fault, fault], default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      body = await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return body, fetcher.stats

  body, stats = asyncio.run(go())
  assert body == JPEG
  assert handler.hits == 3
  assert stats.failures == 0
  if fault is reset:
    # aiohttp itself re-sends once when a kept-alive connection is dropped.
    assert 1 <= stats.retries <= 2 and set(stats.by_reason) == {reason}
  else:
    assert stats.retries == 2 and stats.by_reason == {reason: 2}


def test_timeout_retried():
  handler = _scripted([delayed(0.4, JPEG)], default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(None, timeout_s=0.1) as fetcher:
      body = await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return body, fetcher.stats

  body, stats = asyncio.run(go())
  assert body == JPEG and stats.by_reason == {'timeout': 1}


def test_fetch_own_timeout_and_timeouts_bound():
  handler = _scripted([], default=delayed(0.6, JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(None, timeout_s=5) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg', timeout_s=0.1,
                            max_timeouts=2)
      with pytest.raises(ValueError):
        await fetcher.fetch(base + '/x.jpg', kind='jpeg', max_timeouts=0)
      return error.value

  error = asyncio.run(go())
  assert error.reason == 'timeout' and error.attempts == 2 and handler.hits == 2
  assert 'within 0.1 s' in str(error)


def test_retry_after_honoured_and_capped():
  handler = _scripted([status(429, headers={'Retry-After': '0.2'}),
                       status(503, headers={'Retry-After': '3600'})],
                      default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      start = time.monotonic()
      await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return time.monotonic() - start, fetcher.stats

  elapsed, stats = asyncio.run(go())
  # 0.2 s asked, then 3600 s asked but capped at retry_after_max_s = 0.3 s;
  # the jitter of these first attempts (at most 0.01 and 0.02 s) is below both.
  assert stats.retries == 2
  assert stats.waited_s == pytest.approx(0.5)
  assert stats.as_dict()['waited_s'] == 0.5
  assert elapsed >= 0.45  # The waits were slept, not only counted.


def test_backoff_bounded_full_jitter():
  fetcher = http.Fetcher(None, max_concurrency=1, backoff_s=0.5, backoff_max_s=4,
                         retry_after_max_s=10, seed=1)
  for attempt in range(1, 12):
    ceiling = min(4, 0.5 * 2 ** (attempt - 1))
    delays = [fetcher._retries.backoff(attempt, None) for _ in range(50)]  # pylint: disable=protected-access
    assert all(0 <= d <= ceiling for d in delays)
  assert fetcher._retries.backoff(1, 100.0) == 10  # pylint: disable=protected-access
  assert fetcher._retries.backoff(1, 2.0) >= 2.0  # pylint: disable=protected-access


def test_gives_up_after_max_attempts_with_clear_error():
  handler = _scripted([], default=status(503, body=b'<h1>Service Unavailable</h1>'))

  async def go():
    async with _serve(handler) as base, _fast(None, max_attempts=3) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return base, error.value, fetcher.stats

  base, error, stats = asyncio.run(go())
  assert handler.hits == 3
  # Full jitter under ceilings of 0.01 then 0.02 s (backoff_s=0.01).
  assert 0 <= stats.waited_s <= 0.03
  assert not isinstance(error, http.ServiceUnreachable)
  assert error.reason == 'http_503' and error.attempts == 3
  assert str(error) == (f'cannot fetch {base}/x.jpg: server error (HTTP 503): '
                        '"Service Unavailable" (gave up after 3 attempts; last '
                        'reason: http_503)')
  assert stats.failures == 1 and stats.retries == 2


@pytest.mark.parametrize('code, reason', [(404, 'not_found'), (403, 'http_403')])
def test_permanent_status_not_retried(code, reason):
  handler = _scripted([], default=status(code))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/missing.jpg', kind='jpeg')
      return error.value

  error = asyncio.run(go())
  assert handler.hits == 1
  assert error.reason == reason and '/missing.jpg' in str(error)


def test_server_down_is_service_unreachable_fast(monkeypatch):
  port = _free_port()
  base = f'http://127.0.0.1:{port}/sas'
  monkeypatch.setenv(settings.SAS_URL_ENV, base)

  async def go():
    async with _fast(None, max_attempts=6, backoff_s=1.0, backoff_max_s=10) as fetcher:
      with pytest.raises(http.ServiceUnreachable) as first:
        await sas.fetch_frame(fetcher, FRAME, 'r')
      # Later fetches to the same host fail at once, with no new attempt.
      requests = fetcher.stats.requests
      with pytest.raises(http.ServiceUnreachable):
        await sas.fetch_frame(fetcher, FRAME, 'g')
      assert fetcher.stats.requests == requests
      return first.value, fetcher.stats

  error, stats = asyncio.run(go())
  assert error.attempts == 2
  # One wait between the two refused attempts, capped although backoff_s=1.
  assert 0 <= stats.waited_s <= retries.REFUSED_MAX_WAIT_S
  host = base.split('//', 1)[1].split('/')[0]
  assert str(error) == (
      f'cannot reach {host}: connection refused. Is the server running, and '
      'this machine online? Set SKYTFDS_SAS_URL to a service you can reach '
      f'(now {base}). URL: {http.short_url(f"{base}/{FRAME_PATH}")}')


def test_unreachable_says_cause_and_fix_first_and_shortens_the_url():
  url = 'https://skyserver.example/dr17/SqlSearch?cmd=' + 'SELECT%20x' * 60
  error = http.ServiceUnreachable(
      url, 'dns', 'host name not resolved', hint='Set SKYTFDS_SKYSERVER_URL')
  message = str(error)
  assert message.startswith('cannot reach skyserver.example: host name not '
                            'resolved. Set SKYTFDS_SKYSERVER_URL. URL: ')
  assert len(message) < 250 and message.endswith(f'({len(url)} characters)')


def test_server_down_many_fetches_no_retry_storm(monkeypatch):
  base = f'http://127.0.0.1:{_free_port()}'
  waits = []
  wait_s = retries.RetryPolicy.wait_s

  def recorded(self, attempt, failure):
    waits.append(wait_s(self, attempt, failure))
    return waits[-1]

  monkeypatch.setattr(retries.RetryPolicy, 'wait_s', recorded)

  async def go():
    async with _fast(None, max_concurrency=8, backoff_s=1.0,
                     backoff_max_s=5.0) as fetcher:
      results = await asyncio.gather(
          *(fetcher.fetch(f'{base}/{i}.jpg', kind='jpeg') for i in range(40)),
          return_exceptions=True)
      return results, fetcher.stats

  results, stats = asyncio.run(go())
  assert all(isinstance(r, http.ServiceUnreachable) for r in results)
  assert stats.requests <= 2 * 40 and stats.failures == 40
  # At most one short wait per fetch, none of them the 1 s backoff. (A fetch
  # that slept and then found the host known to be down sends nothing again,
  # so waits are counted here, not from stats.retries.)
  assert stats.retries <= len(waits) <= 40
  assert max(waits) <= retries.REFUSED_MAX_WAIT_S
  assert stats.waited_s == pytest.approx(sum(waits))


def test_cache_write_failure_is_a_fetch_error(tmp_path):
  handler = _scripted([], default=ok(JPEG, 'image/jpeg'))
  (tmp_path / 'c').write_text('a file where a directory should be')

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='c/x.jpg')
      return error.value

  error = asyncio.run(go())
  assert error.reason == 'cache_write' and 'cache directory' in str(error)


def test_cache_hit_makes_no_request(tmp_path):
  handler = _scripted([], default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base:
      async with _fast(tmp_path) as fetcher:
        first = await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='c/x.jpg')
      async with _fast(tmp_path) as fetcher:  # A new run: the cache persists.
        second = await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='c/x.jpg')
        return first, second, fetcher.stats

  first, second, stats = asyncio.run(go())
  assert first == second == JPEG
  assert handler.hits == 1
  assert stats.cache_hits == 1 and stats.requests == 0
  assert (tmp_path / 'c' / 'x.jpg').read_bytes() == JPEG
  # Atomic writes leave no temp files behind.
  assert sorted(p.name for p in tmp_path.rglob('*')) == ['c', 'x.jpg']


def test_cached_file_truncated_or_corrupt_is_refetched(tmp_path):
  handler = _scripted([], default=ok(JPEG, 'image/jpeg'))
  target = tmp_path / 'c' / 'x.jpg'
  target.parent.mkdir()

  async def go(base):
    async with _fast(tmp_path) as fetcher:
      return await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='c/x.jpg')

  async def both():
    async with _serve(handler) as base:
      target.write_bytes(JPEG[:len(JPEG) // 2])  # A partial file from an old crash.
      assert await go(base) == JPEG
      target.write_bytes(b'<html>stale error page</html>')
      assert await go(base) == JPEG

  asyncio.run(both())
  assert handler.hits == 2
  assert target.read_bytes() == JPEG


def test_failed_fetch_leaves_no_file(tmp_path):
  handler = _scripted([], default=truncated(JPEG * 8))

  async def go():
    async with _serve(handler) as base, _fast(tmp_path, max_attempts=2) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='c/x.jpg')
      return error.value

  assert asyncio.run(go()).reason == 'truncated'
  assert [p for p in tmp_path.rglob('*') if p.is_file()] == []


def test_evict(tmp_path):
  handler = _scripted([], default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='x.jpg')
      fetcher.evict('x.jpg')
      fetcher.evict('x.jpg')  # Absent: a no-op.
      await fetcher.fetch(base + '/x.jpg', kind='jpeg', cache_name='x.jpg')
      with pytest.raises(ValueError):
        fetcher.evict('../outside')

  asyncio.run(go())
  assert handler.hits == 2


def test_concurrent_same_name_fetched_once(tmp_path):
  handler = _scripted([], default=delayed(0.05, BZ2, 'application/x-bzip2'))

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      bodies = await asyncio.gather(*(
          fetcher.fetch(base + '/f.bz2', kind='bz2', cache_name='f.bz2')
          for _ in range(10)))
      return bodies, fetcher.stats

  bodies, stats = asyncio.run(go())
  assert bodies == [BZ2] * 10
  assert handler.hits == 1
  assert stats.deduplicated == 9


def test_frames_through_http_base_cached_under_sas_path(tmp_path):
  _needs_data()

  async def serve_file(request):
    path = DATA / 'sas' / request.match_info['tail'].removeprefix('sas/')
    return web.Response(body=path.read_bytes(), content_type='application/x-bzip2')

  handler = _scripted([], default=serve_file)

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      for _ in range(3):
        data = await sas.fetch_frame(fetcher, FRAME, 'r', base=base + '/sas')
      return data

  assert asyncio.run(go()) == (DATA / 'sas' / FRAME_PATH).read_bytes()
  assert handler.hits == 1
  assert (tmp_path / 'sas' / FRAME_PATH).is_file()
  assert sas.cache_name(FRAME, 'r') == 'sas/' + FRAME_PATH


def test_real_frames_through_relative_local_sas_base(tmp_path, monkeypatch):
  _needs_data()
  monkeypatch.chdir(REPO)
  monkeypatch.setenv(settings.SAS_URL_ENV, '../shared/data/sas')

  async def go():
    async with _fast(tmp_path) as fetcher:
      data = await sas.fetch_frame(fetcher, FRAME, 'r')
      with pytest.raises(http.FetchError) as missing:
        await sas.fetch_frame(fetcher, FrameId(3918, 301, 3, 214), 'r')
      return data, missing.value, fetcher.stats

  data, missing, stats = asyncio.run(go())
  assert data == (DATA / 'sas' / FRAME_PATH).read_bytes()
  assert missing.reason == 'not_found' and stats.requests == 2
  assert list(tmp_path.iterdir()) == []  # A local mirror is not copied to the cache.


def test_real_frames_through_file_url():
  _needs_data()
  base = (DATA / 'sas').as_uri()
  assert base.startswith('file://')

  async def go():
    async with _fast(None) as fetcher:
      return await sas.fetch_frame(fetcher, FRAME, 'g', base=base)

  expected = (DATA / 'sas' / FRAME_PATH.replace('frame-r', 'frame-g')).read_bytes()
  assert asyncio.run(go()) == expected


def test_memory_filesystem_base():
  fs = fsspec.filesystem('memory')
  root = f'/skytfds-test-{os.getpid()}'
  good = BZ2
  fs.pipe(f'{root}/sas/{FRAME_PATH}', good)
  fs.pipe(f'{root}/sas/{FRAME_PATH.replace("frame-r", "frame-g")}', good[:-4])

  async def go():
    async with _fast(None) as fetcher:
      data = await sas.fetch_frame(fetcher, FRAME, 'r', base=f'memory://{root}/sas')
      with pytest.raises(http.FetchError) as error:
        await sas.fetch_frame(fetcher, FRAME, 'g', base=f'memory://{root}/sas')
      return data, error.value

  try:
    data, error = asyncio.run(go())
  finally:
    fs.rm(root, recursive=True)
  assert data == good
  assert error.reason == 'truncated'


def test_skyserver_cutout_and_query(tmp_path):
  async def handler(request):
    handler.seen.append(str(request.rel_url))
    if request.path.endswith('/getjpeg'):
      return web.Response(body=JPEG, content_type='image/jpeg')
    return web.Response(text='<html>error_message: Incorrect syntax</html>',
                        content_type='text/html')

  handler.seen = []

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      image = await skyserver.fetch_cutout(fetcher, 229.54, 42.76, base=base)
      again = await skyserver.fetch_cutout(fetcher, 229.54, 42.76, base=base)
      page = await skyserver.run_query(fetcher, 'SELECT nonsense', base=base)
      return image, again, page

  image, again, page = asyncio.run(go())
  assert image == again == JPEG
  assert b'error_message' in page  # Returned as is for the catalogue parser to quote.
  assert handler.seen == [
      '/dr17/SkyServerWS/ImgCutout/getjpeg?ra=229.540000&dec=42.760000&scale=0.4'
      '&width=240&height=240&opt=&TaskName=skytfds.SkyServer.getjpeg',
      '/dr17/SkyServerWS/SearchTools/SqlSearch?cmd=SELECT%20nonsense&format=csv'
      '&TaskName=skytfds.SkyServer.SqlSearch']
  assert (tmp_path / skyserver.cutout_cache_name(229.54, 42.76)).read_bytes() == JPEG


def test_sql_error_page_returned_maintenance_page_retried():
  maintenance = ok(b'<!DOCTYPE html><html><h1>Service Unavailable</h1></html>',
                   'text/html')
  sql_error = ok(b'<html><pre>error_message: Incorrect syntax near FROM</pre></html>',
                 'text/html')
  handler = _scripted([maintenance, sql_error], default=ok(b'objid\n1\n', 'text/plain'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      page = await skyserver.run_query(fetcher, 'SELECT x FROM', base=base)
      return page, fetcher.stats

  page, stats = asyncio.run(go())
  assert b'error_message: Incorrect syntax' in page
  assert handler.hits == 2 and stats.by_reason == {'html': 1}


def test_sql_error_with_http_status_not_retried():
  handler = _scripted([], default=status(
      500, body=b'<html><body>error_message: Invalid column name zz</body></html>'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await skyserver.run_query(fetcher, 'SELECT zz FROM PhotoObj', base=base)
      return error.value

  error = asyncio.run(go())
  assert handler.hits == 1 and error.reason == 'sql_error'
  assert 'error_message: Invalid column name zz' in str(error)


def test_ps1_color_cutout(tmp_path):
  async def handler(request):
    handler.paths[request.path] += 1
    if request.path.endswith('ps1filenames.py'):
      return web.Response(text=PS1_TABLE, content_type='text/plain')
    handler.query = dict(request.query)
    return web.Response(body=JPEG, content_type='image/jpeg')

  handler.paths = collections.Counter()

  async def go():
    async with _serve(handler) as base, _fast(tmp_path) as fetcher:
      first = await ps1.fetch_color_cutout(fetcher, 83.63321, 22.01446, base=base)
      second = await ps1.fetch_color_cutout(fetcher, 83.63321, 22.01446, base=base)
      return first, second

  first, second = asyncio.run(go())
  assert first == second == JPEG
  assert handler.paths == {'/cgi-bin/ps1filenames.py': 1, '/cgi-bin/fitscut.cgi': 1}
  assert handler.query['red'].endswith('.stk.y.unconv.fits')
  assert handler.query['green'].endswith('.stk.i.unconv.fits')
  assert handler.query['blue'].endswith('.stk.g.unconv.fits')
  assert handler.query['size'] == '240' and handler.query['format'] == 'jpg'
  assert (tmp_path / ps1.cutout_cache_name(83.63321, 22.01446)).read_bytes() == JPEG
  assert ps1.cutout_cache_name(83.63321, 22.01446) == (
      'ps1/fitscut/83.633210_+22.014460_s240_yig.jpg')


def test_ps1_empty_table_is_no_coverage():
  handler = _scripted([], default=ok(PS1_TABLE.splitlines()[0].encode(), 'text/plain'))

  async def go():
    async with _serve(handler) as base, _fast(None) as fetcher:
      with pytest.raises(ps1.NoCoverage):
        await ps1.fetch_color_cutout(fetcher, 10.0, 5.0, base=base)

  asyncio.run(go())
  assert handler.hits == 1


def test_run_helper_from_sync_and_async_code():
  async def answer():
    await asyncio.sleep(0)
    return 42

  assert http.run(answer()) == 42

  async def nested():
    return http.run(answer())

  assert asyncio.run(nested()) == 42


def test_fetch_error_rebuilds_from_reduce():
  # Exceptions cross process boundaries (Beam workers) through __reduce__.
  error = http.ServiceUnreachable('http://h/x', 'connection_refused',
                                  'connection refused', hint='set X')
  rebuilt = error.__reduce__()[0](*error.__reduce__()[1])
  assert str(rebuilt) == str(error)
  assert isinstance(rebuilt, http.ServiceUnreachable)
  no_cover = ps1.NoCoverage('http://h/y', 'no_coverage', 'none here')
  rebuilt = no_cover.__reduce__()[0](*no_cover.__reduce__()[1])
  assert isinstance(rebuilt, ps1.NoCoverage) and str(rebuilt) == str(no_cover)
