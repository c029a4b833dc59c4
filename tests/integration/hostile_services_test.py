"""Services that answer as a broken, compromised or overloaded one might.

Issue 20 (items 1, 4, 8, 13: redirects off the host, secrets in messages and
logs, a store that never finishes a read, corrupt bodies) and issue 14 item
5 (outages: 429/503 pause the whole host, Retry-After, a rate cap, a build
stopped by an outage). Each case is a small aiohttp server on 127.0.0.1, or
a fake fsspec filesystem, that the one HTTP client (`services/http.py`)
meets as a build would.
"""

import asyncio
import bz2
import io
import logging
import threading
import time

import fsspec
from aiohttp import web
import pytest

from skytfds.services import http
from skytfds.services import sas
from skytfds.services import skyserver
from skytfds.services import transport

import services_test as helpers  # The local-server helpers of the client's tests.
from services_test import BZ2, FRAME, JPEG, ok, status

pytestmark = pytest.mark.network

PASSWORD = 's3cret-Pa55'
TOKEN = 'SIGNATUREVALUE123'


def _fast(cache_dir=None, **kw) -> http.Fetcher:
  return helpers._fast(cache_dir, **kw)  # pylint: disable=protected-access


def _redirect(location):
  async def respond(request):
    del request
    raise web.HTTPFound(location)
  return respond


# ---------------------------------------------------------------------------
# Redirects (issue 20 item 1).


def test_redirect_to_another_host_is_refused_and_nothing_is_kept(tmp_path):
  """getjpeg answering 302 to another host: no byte of it is fetched or cached."""
  other = helpers._scripted([], default=ok(JPEG, 'image/jpeg'))  # pylint: disable=protected-access

  async def go():
    async with helpers._serve(other) as elsewhere:  # pylint: disable=protected-access
      asked = helpers._scripted(  # pylint: disable=protected-access
          [], default=_redirect(f'{elsewhere}/stolen.jpg'))
      async with helpers._serve(asked) as base, _fast(tmp_path) as fetcher:  # pylint: disable=protected-access
        with pytest.raises(http.FetchError) as error:
          await skyserver.fetch_cutout(fetcher, 229.54, 42.76, base=base)
        return asked, base, elsewhere, error.value, fetcher.stats

  asked, base, elsewhere, error, stats = asyncio.run(go())
  assert error.reason == 'redirect_refused' and error.attempts == 1
  assert asked.hits == 1 and other.hits == 0  # Once, and never followed.
  assert stats.retries == 0 and stats.failures == 1
  message = str(error)
  assert f'{base}/dr17/SkyServerWS/ImgCutout/getjpeg?ra=229.540000' in message
  assert f'redirected to {elsewhere}/stolen.jpg' in message
  assert f'leaves {base}' in message
  assert [p for p in tmp_path.rglob('*') if p.is_file()] == []


@pytest.mark.parametrize('location', [
    'file:///etc/passwd',
    'ftp://127.0.0.1/x.jpg',
    '//evil.example/x.jpg',                 # Scheme-relative: another host.
    'http://localhost:{port}/x.jpg',        # Another name for the same address.
    'https://127.0.0.1:{port}/x.jpg',       # An upgrade, but not on default ports.
    'http://user:{password}@evil.example/x.jpg?X-Amz-Signature={token}',
])
def test_refused_redirects_are_one_final_error(location):
  async def go():
    holder = {}

    async def respond(request):
      del request
      raise web.HTTPFound(location.format(port=holder['port'], password=PASSWORD,
                                          token=TOKEN))

    handler = helpers._scripted([], default=respond)  # pylint: disable=protected-access
    async with helpers._serve(handler) as base, _fast(None, max_attempts=6) as fetcher:  # pylint: disable=protected-access
      holder['port'] = int(base.rsplit(':', 1)[1])
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return handler.hits, error.value

  hits, error = asyncio.run(go())
  assert hits == 1 and error.reason == 'redirect_refused' and error.attempts == 1
  assert 'redirected to' in str(error) and 'refused' in str(error)
  assert PASSWORD not in str(error) and TOKEN not in str(error)


def test_redirect_within_the_host_is_followed_and_cached(tmp_path):
  async def handler(request):
    handler.paths.append(request.path)
    if request.path == '/old/x.jpg':
      raise web.HTTPMovedPermanently('/new/x.jpg')  # Relative, same host.
    return web.Response(body=JPEG, content_type='image/jpeg')

  handler.paths = []

  async def go():
    async with helpers._serve(handler) as base, _fast(tmp_path) as fetcher:  # pylint: disable=protected-access
      return await fetcher.fetch(base + '/old/x.jpg', kind='jpeg',
                                 cache_name='c/x.jpg')

  assert asyncio.run(go()) == JPEG
  assert handler.paths == ['/old/x.jpg', '/new/x.jpg']
  assert (tmp_path / 'c' / 'x.jpg').read_bytes() == JPEG


def test_redirect_loop_is_final_after_a_few_hops():
  handler = helpers._scripted([], default=_redirect('/x.jpg'))  # pylint: disable=protected-access

  async def go():
    async with helpers._serve(handler) as base, _fast(None, max_attempts=6) as fetcher:  # pylint: disable=protected-access
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return error.value

  error = asyncio.run(go())
  assert error.reason == 'too_many_redirects' and error.attempts == 1
  assert handler.hits == transport.MAX_REDIRECTS + 1


# ---------------------------------------------------------------------------
# Secrets (issue 20 item 4).


def test_password_and_tokens_never_reach_errors_or_logs(monkeypatch, caplog):
  """A catalogue URL with user:password@ and a signed query, answering 503."""
  monkeypatch.setattr(http, '_LOGGED_WAIT_S', 0.0)  # Log every retry.
  caplog.set_level(logging.INFO)
  handler = helpers._scripted([], default=status(  # pylint: disable=protected-access
      503, body=b'busy', headers={'Retry-After': '0'}))

  async def go():
    async with helpers._serve(handler) as base, _fast(None, max_attempts=3) as fetcher:  # pylint: disable=protected-access
      url = base.replace('://', f'://alice:{PASSWORD}@') + (
          f'/cat.csv?X-Amz-Credential=AKIA{TOKEN}&X-Amz-Signature={TOKEN}'
          f'&token={TOKEN}&format=csv')
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(url, kind='text')
      return base, error.value, fetcher.stats

  base, error, stats = asyncio.run(go())
  assert handler.hits == 3
  # The client's log lines (the test server's own access log aside).
  logged = '\n'.join(r.getMessage() for r in caplog.records
                     if not r.name.startswith('aiohttp.access'))
  shown = '\n'.join([str(error), error.url, error.detail, logged,
                     repr(stats.as_dict())])
  assert 'sending it again' in logged  # The retries were logged ...
  assert PASSWORD not in shown and TOKEN not in shown and 'alice' not in shown
  assert error.url == (f'{base}/cat.csv?X-Amz-Credential=***&X-Amz-Signature=***'
                       '&token=***&format=csv')  # ... with the URL redacted.


def test_redact_url_is_public_for_reports():
  assert http.redact_url(f'http://u:{PASSWORD}@h.example/c.csv') == 'http://h.example/c.csv'
  assert http.redact_url(f'https://h.example/c.csv?sig={TOKEN}&a=1') == (
      'https://h.example/c.csv?sig=***&a=1')
  assert http.redact_url('../shared/data/labels/x.csv') == '../shared/data/labels/x.csv'


# ---------------------------------------------------------------------------
# fsspec sources get the same timeout and retry budget (issue 20 item 8).


class _Drip(io.RawIOBase):
  """A file that sends one byte every `every_s` seconds, like a stalled ftp://."""

  def __init__(self, data: bytes, every_s: float, release: threading.Event):
    super().__init__()
    self._data = data
    self._pos = 0
    self._every_s = every_s
    self._release = release

  def readable(self):
    return True

  def read(self, size=-1):
    del size
    if self._release.wait(self._every_s):
      chunk = self._data[self._pos:]  # Released: the rest at once.
    else:
      chunk = self._data[self._pos:self._pos + 1]
    self._pos += len(chunk)
    _DripFS.bytes_sent += len(chunk)
    return chunk


class _DripFS(fsspec.AbstractFileSystem):
  """'drip://' paths: the first `slow_opens` opens drip, later ones are fast."""

  protocol = 'drip'
  cachable = False
  opens = 0
  slow_opens = 0
  bytes_sent = 0
  every_s = 0.05
  data = b''
  release = threading.Event()

  def _open(self, path, mode='rb', **kwargs):
    del path, mode, kwargs
    cls = type(self)
    cls.opens += 1
    if cls.opens <= cls.slow_opens:
      return _Drip(cls.data, cls.every_s, cls.release)
    return io.BytesIO(cls.data)


@pytest.fixture
def drip():
  fsspec.register_implementation('drip', _DripFS, clobber=True)
  _DripFS.opens = _DripFS.bytes_sent = 0
  _DripFS.release = threading.Event()
  yield _DripFS
  _DripFS.release.set()  # Lets every read thread finish.


def test_a_stalled_fsspec_read_times_out_and_is_retried(drip):
  drip.data = b'ra,dec,class\n' * 1000
  drip.slow_opens = 1

  async def go():
    async with _fast(None, timeout_s=0.3) as fetcher:
      start = time.monotonic()
      data = await fetcher.fetch('drip://store/cat.csv', kind='text')
      return data, time.monotonic() - start, fetcher.stats

  data, elapsed, stats = asyncio.run(go())
  assert data == drip.data
  assert stats.by_reason == {'timeout': 1} and stats.retries == 1
  assert 0.3 <= elapsed < 2


def test_a_store_that_never_finishes_gives_up_like_http(drip):
  drip.data = b'x' * 100000
  drip.slow_opens = 100

  async def go():
    async with _fast(None, timeout_s=0.2, max_attempts=3) as fetcher:
      start = time.monotonic()
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch('drip://store/cat.csv', kind='text')
      return error.value, time.monotonic() - start

  error, elapsed = asyncio.run(go())
  assert error.reason == 'timeout' and error.attempts == 3
  assert 'no complete answer within 0.2 s' in str(error)
  assert elapsed < 2 and drip.opens == 3
  sent = drip.bytes_sent
  time.sleep(0.3)  # The timed-out reads stop at their next chunk ...
  assert drip.bytes_sent - sent <= 3  # ... (at most one more byte each).


def test_fsspec_timeout_bound_like_http(drip):
  drip.data = b'x' * 1000
  drip.slow_opens = 100

  async def go():
    async with _fast(None, timeout_s=5) as fetcher:
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch('drip://store/x.txt', kind='text', timeout_s=0.1,
                            max_timeouts=2)
      return error.value

  error = asyncio.run(go())
  assert error.reason == 'timeout' and error.attempts == 2 and drip.opens == 2


# ---------------------------------------------------------------------------
# A corrupt or truncated body is a transient fault, same budget (issue 20 item 13).


def _corrupt_bz2() -> bytes:
  """Header and end-of-stream marker intact, garbage between: passes the checks."""
  data = bytearray(BZ2)
  for i in range(10, len(data) - 12):
    data[i] ^= 0x5A
  assert http.bz2_is_complete(bytes(data))
  return bytes(data)


def _decodes(data: bytes) -> None:
  try:
    bz2.decompress(data)
  except (OSError, ValueError) as e:
    raise http.CorruptBody(f'corrupt bz2 data ({e})') from e


def test_corrupt_body_is_fetched_again_until_whole(tmp_path):
  bad = ok(_corrupt_bz2(), 'application/x-bzip2')
  handler = helpers._scripted([bad, bad, bad],  # pylint: disable=protected-access
                              default=ok(BZ2, 'application/x-bzip2'))

  async def go():
    async with helpers._serve(handler) as base, _fast(tmp_path, max_attempts=4) as fetcher:  # pylint: disable=protected-access
      data = await fetcher.fetch(sas.frame_url(FRAME, 'r', base=base), kind='bz2',
                                 cache_name=sas.cache_name(FRAME, 'r'),
                                 verify=_decodes)
      return data, fetcher.stats

  data, stats = asyncio.run(go())
  assert data == BZ2 and handler.hits == 4
  assert stats.by_reason == {'corrupt': 3} and stats.failures == 0
  assert (tmp_path / sas.cache_name(FRAME, 'r')).read_bytes() == BZ2


def test_corrupt_cached_copy_is_evicted_and_fetched_again(tmp_path):
  cached = tmp_path / 'f.bz2'
  cached.write_bytes(_corrupt_bz2())  # Passes the body checks, not a decode.
  handler = helpers._scripted([], default=ok(BZ2, 'application/x-bzip2'))  # pylint: disable=protected-access

  async def go():
    async with helpers._serve(handler) as base, _fast(tmp_path) as fetcher:  # pylint: disable=protected-access
      data = await fetcher.fetch(base + '/f.bz2', kind='bz2', cache_name='f.bz2',
                                 verify=_decodes)
      return data, fetcher.stats

  data, stats = asyncio.run(go())
  assert data == BZ2 and handler.hits == 1 and cached.read_bytes() == BZ2
  assert stats.by_reason == {'cache_corrupt': 1} and stats.cache_hits == 0


@pytest.mark.parametrize('fault', ['corrupt', 'truncated', 'http_503'])
def test_every_transient_fault_gets_the_same_budget(fault):
  faults = {
      'corrupt': ok(_corrupt_bz2(), 'application/x-bzip2'),
      'truncated': ok(BZ2[:-6], 'application/x-bzip2'),
      'http_503': status(503),
  }
  handler = helpers._scripted([], default=faults[fault])  # pylint: disable=protected-access

  async def go():
    async with helpers._serve(handler) as base, _fast(None, max_attempts=5) as fetcher:  # pylint: disable=protected-access
      with pytest.raises(http.FetchError) as error:
        await fetcher.fetch(base + '/f.bz2', kind='bz2', verify=_decodes)
      return error.value

  error = asyncio.run(go())
  assert error.reason == fault and error.attempts == 5 and handler.hits == 5


# ---------------------------------------------------------------------------
# Outages (issue 14 item 5).


def test_a_host_answering_503_to_everything_gets_few_requests():
  """40 frames from a SAS that is down: paused, probed, then one clear stop."""
  handler = helpers._scripted([], default=status(503, body=b'Service Unavailable'))  # pylint: disable=protected-access
  objects = 40

  async def go():
    async with helpers._serve(handler) as base, _fast(
        None, max_concurrency=8, max_attempts=6, backoff_s=0.05, backoff_max_s=0.2,
        max_outage_s=1.0) as fetcher:
      start = time.monotonic()
      results = await asyncio.gather(
          *(sas.fetch_frame(fetcher, FRAME._replace(field=f), 'r', base=base + '/sas')
            for f in range(1, objects + 1)), return_exceptions=True)
      return base, results, time.monotonic() - start, fetcher.stats

  base, results, elapsed, stats = asyncio.run(go())
  assert all(isinstance(r, http.ServiceOutage) for r in results), results
  # Without the host's gate every fetch made 6 attempts: 240 requests.
  assert handler.hits <= objects // 2, handler.hits
  assert stats.host_pauses >= 3 and 1.0 <= elapsed < 3
  message = str(results[0])
  assert message.startswith(f'{base} has failed every request for 1 s (last: '
                            'server error (HTTP 503): "Service Unavailable"')
  assert 'run it again later and it resumes where it stopped' in message
  assert isinstance(results[0], http.ServiceUnreachable)  # Stops a build.


def test_a_429_pauses_every_request_to_the_host():
  """One request gets 429 + Retry-After; requests to other URLs wait too."""
  starts = []

  async def handler(request):
    starts.append((time.monotonic(), request.path))
    if len(starts) == 1:
      return web.Response(status=429, text='slow down', headers={'Retry-After': '0.25'})
    return web.Response(body=JPEG, content_type='image/jpeg')

  async def go():
    async with helpers._serve(handler) as base, _fast(None, max_concurrency=8) as fetcher:  # pylint: disable=protected-access
      first = asyncio.ensure_future(fetcher.fetch(f'{base}/0.jpg', kind='jpeg'))
      await asyncio.sleep(0.05)  # The 429 is in; 4 fetches of other cutouts start.
      await asyncio.gather(first, *(fetcher.fetch(f'{base}/{i}.jpg', kind='jpeg')
                                    for i in range(1, 5)))
      return fetcher.stats

  stats = asyncio.run(go())
  first = starts[0][0]
  assert len(starts) == 6 and starts[0][1] == '/0.jpg'
  # No request at all started during the 0.25 s pause, not only the one retried.
  assert all(t - first >= 0.24 for t, _ in starts[1:]), starts
  assert stats.host_pauses == 1 and stats.paused_s >= 4 * 0.15


def test_retry_after_is_waited_in_full_up_to_the_cap():
  handler = helpers._scripted([status(503, headers={'Retry-After': '0.3'}),  # pylint: disable=protected-access
                               status(503, headers={'Retry-After': '86400'})],
                              default=ok(JPEG, 'image/jpeg'))

  async def go():
    async with helpers._serve(handler) as base, _fast(None, retry_after_max_s=0.5) as fetcher:  # pylint: disable=protected-access
      start = time.monotonic()
      await fetcher.fetch(base + '/x.jpg', kind='jpeg')
      return time.monotonic() - start

  elapsed = asyncio.run(go())
  assert 0.8 <= elapsed < 1.5  # 0.3 s in full, then a day cut to 0.5 s.


def test_the_rate_cap_spaces_requests_to_one_host():
  starts = []

  async def handler(request):
    del request
    starts.append(time.monotonic())
    return web.Response(body=JPEG, content_type='image/jpeg')

  async def go():
    async with helpers._serve(handler) as base, _fast(
        None, max_concurrency=8, max_rate_per_host=20) as fetcher:
      await asyncio.gather(*(fetcher.fetch(f'{base}/{i}.jpg', kind='jpeg')
                             for i in range(10)))

  asyncio.run(go())
  # 20 a second: the 10 starts span at least 9 x 50 ms (a lower bound only:
  # a slow machine spreads them more, never less; one gap may look shorter
  # than 50 ms by when the server saw it, so the span is what is checked).
  assert len(starts) == 10
  assert starts[-1] - starts[0] >= 0.40, starts


def test_a_host_that_recovers_is_not_an_outage():
  """Failing for a while, then answering: every fetch ends well."""
  recover_at = time.monotonic() + 0.4

  async def handler(request):
    del request
    if time.monotonic() < recover_at:
      return web.Response(status=503, text='down')
    return web.Response(body=JPEG, content_type='image/jpeg')

  async def go():
    async with helpers._serve(handler) as base, _fast(
        None, max_concurrency=4, max_attempts=6, backoff_s=0.05, backoff_max_s=0.2,
        max_outage_s=5) as fetcher:
      return await asyncio.gather(*(fetcher.fetch(f'{base}/{i}.jpg', kind='jpeg')
                                    for i in range(12)))

  assert asyncio.run(go()) == [JPEG] * 12


def test_bad_bodies_from_a_host_that_is_up_never_pause_it():
  """A host answering at once with HTML pages is up: each such fetch uses its
  own retries, but the host is never paused and other fetches are not held
  back (before, 16 such objects made the bad-input cutout build take 207 s)."""
  page = ok(b'<html><body>Sign in</body></html>', 'text/html')

  async def handler(request):
    return await (page if request.path.startswith('/bad') else
                  ok(JPEG, 'image/jpeg'))(request)

  async def go():
    async with helpers._serve(handler) as base, _fast(None) as fetcher:  # pylint: disable=protected-access
      results = await asyncio.gather(
          *(fetcher.fetch(f'{base}/bad{i}.jpg', kind='jpeg') for i in range(8)),
          *(fetcher.fetch(f'{base}/good{i}.jpg', kind='jpeg') for i in range(8)),
          return_exceptions=True)
      return results, fetcher.stats

  results, stats = asyncio.run(go())
  assert all(isinstance(r, http.FetchError) and r.reason == 'html'
             for r in results[:8])
  assert all(r == JPEG for r in results[8:])
  assert stats.host_pauses == 0 and stats.paused_s == 0
