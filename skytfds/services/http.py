"""The one client that fetches everything skytfds downloads.

`Fetcher` owns a single `aiohttp.ClientSession` for http(s) URLs and reads any
other base (a local path, `file://`, `memory://`, `s3://`, `gs://`, ...) through
fsspec in a worker thread. It bounds concurrency, retries transient failures
with exponential backoff and full jitter, validates every body (status, size,
content type, magic bytes, completeness) and keeps an on-disk cache written
atomically (temp file + `os.replace`), so a partial file is never used.

Example:

  async def main():
    async with Fetcher('/tmp/skytfds-cache') as fetcher:
      data = await fetcher.fetch(url, kind='bz2', cache_name='sas/dr17/...')

  data = run(main())
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import errno
import os
import pathlib
import random
import re
import tempfile
import time
import urllib.parse
from typing import Any, Coroutine, TypeVar

import aiohttp
import fsspec

from skytfds import settings

T = TypeVar('T')

KINDS = ('bz2', 'jpeg', 'text', 'csv', 'json')
BINARY_KINDS = ('bz2', 'jpeg')
MAX_BODY_BYTES = 64 * 2**20  # 64 MiB: an SDSS frame is about 3 MB.
# Longest wait before retrying a refused connection: refused is fast to
# confirm (a stopped server), so a few quick tries decide it; don't linger.
REFUSED_MAX_WAIT_S = 0.25
PROJECT_URL = 'https://github.com/skytfds/skytfds'

_BZ2_EOS_MAGIC = 0x177245385090  # bzip2 end-of-stream marker (sqrt(pi)), bit-aligned.
_HTTP_SCHEMES = ('http', 'https')
_LOCAL_PROTOCOLS = ('file', 'local', 'memory')
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_EXCERPT_CHARS = 160


class FetchError(Exception):
  """A resource could not be fetched; `str()` is one line naming URL and reason.

  Attributes:
    url: the URL (credentials removed) that failed.
    reason: a short machine word, e.g. 'not_found', 'http_503', 'truncated'.
    detail: a human explanation (may quote a server message excerpt).
    attempts: how many attempts were made.
  """

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1):
    self.url = redact(url)
    self.reason = reason
    self.detail = _one_line(detail)
    self.attempts = attempts
    super().__init__(self._message())

  def _message(self) -> str:
    text = f'cannot fetch {self.url}: {self.detail or self.reason}'
    if self.attempts > 1:
      text += f' (gave up after {self.attempts} attempts; last reason: {self.reason})'
    else:
      text += f' [{self.reason}]'
    return text

  def __reduce__(self):
    return (_rebuild_error, (type(self), self.url, self.reason, self.detail,
                             self.attempts))


class ServiceUnreachable(FetchError):
  """Connection refused or host unknown: raised fast, without a retry storm."""

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1, hint: str = ''):
    self.hint = hint
    super().__init__(url, reason, detail, attempts=attempts)

  def _message(self) -> str:
    text = f'cannot reach {self.url}: {self.detail or self.reason}'
    if self.hint:
      text += f' ({self.hint})'
    return text

  def __reduce__(self):
    return (_rebuild_unreachable, (self.url, self.reason, self.detail,
                                   self.attempts, self.hint))


def _rebuild_error(cls, url, reason, detail, attempts):
  return cls(url, reason, detail, attempts=attempts)


def _rebuild_unreachable(url, reason, detail, attempts, hint):
  return ServiceUnreachable(url, reason, detail, attempts=attempts, hint=hint)


class AttemptFailed(Exception):
  """One attempt (or a body check) failed; `Fetcher` turns it into FetchError.

  Attributes:
    reason: a short machine word ('empty', 'html', 'truncated', 'http_503'...).
    detail: a human explanation.
    retryable: whether another attempt may help.
    retry_after_s: the server's Retry-After, in seconds, if it sent one.
    refused: connection refused / host unknown (counts towards ServiceUnreachable).
  """

  def __init__(self, reason: str, detail: str, *, retryable: bool = True,
               retry_after_s: float | None = None, refused: bool = False):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail
    self.retryable = retryable
    self.retry_after_s = retry_after_s
    self.refused = refused


@dataclasses.dataclass
class FetchStats:
  """Counters for one `Fetcher`.

  Attributes:
    requests: network or storage reads attempted (each retry counts).
    bytes_fetched: bytes received from the network or storage (not the cache).
    cache_hits: fetches answered from the on-disk cache, with no request.
    retries: attempts repeated after a transient failure.
    failures: fetches that ended in an error.
    deduplicated: fetches that joined another in-flight fetch of the same name.
    cache_evictions: cached files dropped (failed validation, or `evict`).
    waited_s: seconds slept between attempts (backoff and Retry-After),
      summed over fetches (concurrent waits overlap in wall time).
    by_reason: failed attempts counted per reason word.
  """
  requests: int = 0
  bytes_fetched: int = 0
  cache_hits: int = 0
  retries: int = 0
  failures: int = 0
  deduplicated: int = 0
  cache_evictions: int = 0
  waited_s: float = 0.0
  by_reason: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out['waited_s'] = round(self.waited_s, 3)
    out['by_reason'] = dict(sorted(self.by_reason.items()))
    return out


def user_agent() -> str:
  """'skytfds/<version> (+https://github.com/skytfds/skytfds)'."""
  import skytfds  # pylint: disable=g-import-not-at-top  (avoids an import cycle)
  return f'skytfds/{skytfds.__version__} (+{PROJECT_URL})'


def is_http_url(url: str) -> bool:
  """True for http:// and https:// URLs (fetched with aiohttp)."""
  return urllib.parse.urlsplit(url).scheme.lower() in _HTTP_SCHEMES


def is_local_base(url: str) -> bool:
  """True for a plain path, file:// or memory:// (no point in caching these)."""
  if is_http_url(url):
    return False
  scheme = urllib.parse.urlsplit(url).scheme.lower()
  # A one-letter scheme is a Windows drive ('C:\\...'), i.e. a local path.
  return not scheme or len(scheme) == 1 or scheme in _LOCAL_PROTOCOLS


def redact(url: str) -> str:
  """`url` without user:password, for messages and logs."""
  try:
    parts = urllib.parse.urlsplit(url)
  except ValueError:
    return url
  if parts.username is None and parts.password is None:
    return url
  host = parts.hostname or ''
  if parts.port:
    host = f'{host}:{parts.port}'
  return urllib.parse.urlunsplit(parts._replace(netloc=host))


def validate_cache_name(cache_name: str) -> str:
  """Checks that `cache_name` is a safe relative POSIX path; returns it.

  Raises:
    ValueError: absolute, empty, '.', '..', backslashes or control characters.
  """
  if not isinstance(cache_name, str) or not cache_name:
    raise ValueError(f'cache_name {cache_name!r}: expected a non-empty relative path')
  if cache_name.startswith('/') or '\\' in cache_name or re.search(
      r'[\x00-\x1f\x7f]', cache_name) or re.match(r'^[A-Za-z]:', cache_name):
    raise ValueError(f'cache_name {cache_name!r}: must be a relative path with '
                     "'/' separators and no drive, backslash or control characters")
  parts = cache_name.split('/')
  if any(part in ('', '.', '..') for part in parts):
    raise ValueError(f"cache_name {cache_name!r}: empty, '.' or '..' parts are "
                     'not allowed (the cache cannot be escaped)')
  return cache_name


def bz2_is_complete(data: bytes) -> bool:
  """True when `data` ends with a bzip2 end-of-stream marker (not truncated).

  The 48-bit marker is followed by a 32-bit CRC and 0-7 padding bits, so it
  sits at one of eight bit offsets within the last 11 bytes. Cheap: no
  decompression.
  """
  if len(data) < 14:
    return False
  tail = int.from_bytes(data[-11:], 'big')
  mask = (1 << 48) - 1
  return any(((tail >> (32 + pad)) & mask) == _BZ2_EOS_MAGIC for pad in range(8))


def _looks_like_html(data: bytes) -> bool:
  head = data[:512].lstrip().lower()
  return head.startswith((b'<!doctype', b'<html', b'<head', b'<body', b'<?xml',
                          b'<title', b'<h1', b'<p>', b'<pre'))


def is_error_message_page(data: bytes) -> bool:
  """True for a SkyServer error answer (it names `error_message`)."""
  return b'error_message' in data[:65536].lower()


def _excerpt(data: bytes) -> str:
  """A short single-line excerpt of a body, with HTML tags removed; starts at
  `error_message` when the body names it."""
  start = data[:65536].lower().find(b'error_message')
  text = data[max(0, start):][:4096].decode('utf-8', 'replace')
  text = re.sub(r'<[^>]*>', ' ', text)
  text = _one_line(text)
  if len(text) > _EXCERPT_CHARS:
    text = text[:_EXCERPT_CHARS - 3] + '...'
  return text


def _one_line(text: str) -> str:
  return ' '.join(str(text).split())


def validate_body(data: bytes, kind: str, *, content_type: str = '',
                  max_bytes: int = MAX_BODY_BYTES) -> None:
  """Checks a body against what `kind` promises.

  Args:
    data: the body.
    kind: one of KINDS.
    content_type: the Content-Type header, if any ('' when unknown).
    max_bytes: size cap.

  Raises:
    AttemptFailed: with a reason word ('empty', 'too_large', 'html',
      'bad_magic', 'truncated', 'wrong_type').
  """
  if kind not in KINDS:
    raise ValueError(f'kind {kind!r}: expected one of {", ".join(KINDS)}')
  if not data:
    raise AttemptFailed('empty', 'empty body')
  if len(data) > max_bytes:
    raise AttemptFailed('too_large', f'body of {len(data)} bytes exceeds the '
                        f'{max_bytes}-byte cap', retryable=False)
  ctype = content_type.split(';')[0].strip().lower()
  is_html = ctype in ('text/html', 'application/xhtml+xml') or _looks_like_html(data)
  if kind not in BINARY_KINDS:
    # A SkyServer SQL error page (it names `error_message`) is the answer, for
    # the catalogue parser to quote; any other HTML page (a proxy's or a
    # maintenance page) is transient.
    if is_html and not is_error_message_page(data):
      raise AttemptFailed('html', f'an HTML page came back instead of {kind} '
                          f'data: "{_excerpt(data)}"')
    return
  if is_html:
    raise AttemptFailed('html', f'an HTML page came back instead of {kind} '
                        f'data: "{_excerpt(data)}"')
  if kind == 'bz2':
    if not re.match(rb'BZh[1-9]', data[:4]):
      raise AttemptFailed('bad_magic', f'not bzip2 data (starts with {data[:4]!r}, '
                          "expected b'BZh1'..b'BZh9')")
    if not bz2_is_complete(data):
      raise AttemptFailed('truncated', f'bzip2 stream of {len(data)} bytes has no '
                          'end-of-stream marker (truncated)')
    if ctype.startswith(('text/', 'image/')):
      raise AttemptFailed('wrong_type', f'Content-Type {ctype!r} for bzip2 data')
  elif kind == 'jpeg':
    if data[:8] == b'\x89PNG\r\n\x1a\n':
      raise AttemptFailed('wrong_type', 'a PNG image came back where a JPEG was '
                          'expected')
    if data[:2] != b'\xff\xd8':
      raise AttemptFailed('bad_magic', f'not a JPEG (starts with {data[:4]!r}, '
                          "expected b'\\xff\\xd8')")
    if not data.rstrip(b'\x00\r\n\t ').endswith(b'\xff\xd9'):
      raise AttemptFailed('truncated', f'JPEG of {len(data)} bytes has no end '
                          'marker FFD9 (truncated)')
    if ctype and not (ctype.startswith('image/jpeg') or ctype.startswith('image/jpg')
                      or ctype in ('application/octet-stream', 'binary/octet-stream')):
      raise AttemptFailed('wrong_type', f'Content-Type {ctype!r} for JPEG data')


def _retry_after_seconds(value: str | None) -> float | None:
  """Parses Retry-After (delta-seconds or an HTTP date) into seconds >= 0."""
  if not value:
    return None
  value = value.strip()
  with contextlib.suppress(ValueError):
    return max(0.0, float(value))
  try:
    when = email.utils.parsedate_to_datetime(value)
  except (TypeError, ValueError):
    return None
  if when is None:
    return None
  return max(0.0, when.timestamp() - time.time())


def _origin(url: str) -> str:
  parts = urllib.parse.urlsplit(url)
  return f'{parts.scheme.lower()}://{(parts.hostname or "").lower()}:{parts.port or ""}'


def _env_hint(url: str) -> str:
  """Which environment variable points at the service `url` belongs to."""
  candidates = [
      (settings.sas_url(), settings.SAS_URL_ENV),
      (settings.skyserver_url(), settings.SKYSERVER_URL_ENV),
      (settings.ps1_url(), settings.PS1_URL_ENV),
  ]
  best = ''
  best_len = -1
  for base, env in candidates:
    if url.startswith(base.rstrip('/') + '/') and len(base) > best_len:
      best, best_len = env, len(base)
  if best:
    return f'is the server running? set {best}'
  return 'is the server running? check SKYTFDS_SKYSERVER_URL, SKYTFDS_SAS_URL, SKYTFDS_PS1_URL'


class Fetcher:
  """Bounded, retrying, validating, caching fetcher (an async context manager).

  Args:
    cache_dir: directory for cached bodies, or None for no cache.
    max_concurrency: requests in flight at once (all URLs together); default
      `settings.max_concurrency()` (SKYTFDS_MAX_CONCURRENCY, 8).
    timeout_s: seconds allowed for one attempt (connect + whole body).
    max_attempts: attempts per resource before giving up.
    backoff_s: base of the exponential backoff, in seconds: before attempt
      k+1 the fetcher sleeps uniform(0, min(backoff_max_s, backoff_s * 2**(k-1))).
    backoff_max_s: cap of one backoff sleep, seconds.
    retry_after_max_s: cap on a server's Retry-After, seconds.
    unreachable_after: consecutive refused connections to a host after which
      `ServiceUnreachable` is raised (and later fetches to it fail at once).
    max_bytes: cap on a body's size.
    seed: seeds the jitter (tests); None for a random seed.
  """

  def __init__(self, cache_dir: str | os.PathLike | None, *,
               max_concurrency: int | None = None, timeout_s: float = 60,
               max_attempts: int = 6, backoff_s: float = 0.5,
               backoff_max_s: float = 30.0, retry_after_max_s: float = 60.0,
               unreachable_after: int = 2, max_bytes: int = MAX_BODY_BYTES,
               seed: int | None = None):
    if max_concurrency is None:
      max_concurrency = settings.max_concurrency()
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
      raise ValueError(f'max_concurrency={max_concurrency!r}: expected an integer >= 1')
    if not isinstance(max_attempts, int) or max_attempts < 1:
      raise ValueError(f'max_attempts={max_attempts!r}: expected an integer >= 1')
    if not timeout_s > 0:
      raise ValueError(f'timeout_s={timeout_s!r}: expected seconds > 0')
    if backoff_s < 0 or backoff_max_s < 0 or retry_after_max_s < 0:
      raise ValueError('backoff_s, backoff_max_s and retry_after_max_s must be >= 0')
    self.cache_dir = pathlib.Path(cache_dir) if cache_dir is not None else None
    self.max_concurrency = max_concurrency
    self.timeout_s = float(timeout_s)
    self.max_attempts = max_attempts
    self.backoff_s = float(backoff_s)
    self.backoff_max_s = float(backoff_max_s)
    self.retry_after_max_s = float(retry_after_max_s)
    self.unreachable_after = max(1, int(unreachable_after))
    self.max_bytes = int(max_bytes)
    self.user_agent = user_agent()
    self.stats = FetchStats()
    self._rng = random.Random(seed)
    self._session: aiohttp.ClientSession | None = None
    self._semaphore: asyncio.Semaphore | None = None
    self._inflight: dict[tuple[str, ...], asyncio.Future] = {}
    self._unreachable: dict[str, ServiceUnreachable] = {}

  # -- lifecycle --------------------------------------------------------------

  async def __aenter__(self) -> 'Fetcher':
    self._ensure_started()
    return self

  async def __aexit__(self, *exc_info) -> None:
    await self.aclose()

  def _ensure_started(self) -> None:
    if self._semaphore is None:
      self._semaphore = asyncio.Semaphore(self.max_concurrency)

  async def _get_session(self) -> aiohttp.ClientSession:
    if self._session is None or self._session.closed:
      connector = aiohttp.TCPConnector(limit=self.max_concurrency,
                                       limit_per_host=self.max_concurrency)
      # TLS verification stays at aiohttp's default (on); it is never disabled.
      self._session = aiohttp.ClientSession(
          connector=connector,
          headers={'User-Agent': self.user_agent},
          timeout=aiohttp.ClientTimeout(total=self.timeout_s),
          raise_for_status=False,
          trust_env=True,
      )
    return self._session

  async def aclose(self) -> None:
    """Cancels shared in-flight fetches and closes the HTTP session."""
    for future in list(self._inflight.values()):
      future.cancel()
    self._inflight.clear()
    if self._session is not None and not self._session.closed:
      await self._session.close()
    self._session = None
    self._semaphore = None  # Bound to this event loop; a later loop gets its own.

  # -- cache ------------------------------------------------------------------

  def cache_path(self, cache_name: str) -> pathlib.Path:
    """Where `cache_name` lives under cache_dir (validated; cannot escape it)."""
    if self.cache_dir is None:
      raise ValueError('this Fetcher has no cache_dir')
    validate_cache_name(cache_name)
    root = self.cache_dir.resolve()
    path = (root / cache_name).resolve()
    if root != path and root not in path.parents:
      raise ValueError(f'cache_name {cache_name!r} leaves the cache directory {root}')
    return path

  def evict(self, cache_name: str) -> None:
    """Drops a cached file (e.g. one that failed to decode); no-op if absent."""
    if self.cache_dir is None:
      return
    with contextlib.suppress(FileNotFoundError):
      self.cache_path(cache_name).unlink()
      self.stats.cache_evictions += 1

  def _read_cache_sync(self, cache_name: str, kind: str) -> bytes | None:
    path = self.cache_path(cache_name)
    try:
      data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
      return None
    try:
      validate_body(data, kind, max_bytes=self.max_bytes)
    except AttemptFailed as e:
      # Corrupt or truncated (e.g. left by an older, non-atomic writer): refetch.
      self.stats.by_reason[f'cache_{e.reason}'] += 1
      self.evict(cache_name)
      return None
    return data

  async def read_cache(self, cache_name: str, *, kind: str) -> bytes | None:
    """The cached, validated body of `cache_name`, or None (never the network)."""
    if self.cache_dir is None:
      return None
    data = await asyncio.to_thread(self._read_cache_sync, cache_name, kind)
    if data is not None:
      self.stats.cache_hits += 1
    return data

  def _write_cache_sync(self, cache_name: str, data: bytes) -> None:
    path = self.cache_path(cache_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix='.part')
    try:
      with os.fdopen(fd, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
      os.replace(tmp, path)
    except BaseException:
      with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
      raise

  # -- fetching ---------------------------------------------------------------

  async def fetch(self, url: str, *, kind: str,
                  cache_name: str | None = None) -> bytes:
    """Fetches `url`, validated for `kind`; cached under `cache_name` if given.

    Args:
      url: an http(s) URL, or a local path / fsspec URL (file://, memory://,
        s3://, gs://, ...), read in a worker thread.
      kind: 'bz2', 'jpeg', 'text', 'csv' or 'json'; sets the body checks.
      cache_name: relative path under cache_dir. A valid cached file is
        returned with no request; a miss is fetched, validated and written
        atomically. Concurrent fetches of one name share one request.

    Returns:
      The body bytes.

    Raises:
      ServiceUnreachable: connection refused / unknown host (fails fast).
      FetchError: 404 ('not_found'), another permanent error, or the last
        reason after `max_attempts` attempts.
    """
    if kind not in KINDS:
      raise ValueError(f'kind {kind!r}: expected one of {", ".join(KINDS)}')
    if cache_name is not None:
      validate_cache_name(cache_name)
      key = ('cache', cache_name)
    else:
      key = ('url', url, kind)
    self._ensure_started()
    future = self._inflight.get(key)
    if future is not None:
      self.stats.deduplicated += 1
      return await asyncio.shield(future)
    future = asyncio.ensure_future(self._fetch_cached(url, kind, cache_name))
    self._inflight[key] = future

    def _forget(done: asyncio.Future, key=key) -> None:
      if self._inflight.get(key) is done:
        del self._inflight[key]
      if not done.cancelled():
        done.exception()  # Marks it retrieved: no "never retrieved" warning.

    future.add_done_callback(_forget)
    return await asyncio.shield(future)

  async def _fetch_cached(self, url: str, kind: str,
                          cache_name: str | None) -> bytes:
    use_cache = cache_name is not None and self.cache_dir is not None
    if use_cache:
      data = await self.read_cache(cache_name, kind=kind)
      if data is not None:
        return data
    data = await self._fetch_with_retries(url, kind)
    if use_cache:
      try:
        await asyncio.to_thread(self._write_cache_sync, cache_name, data)
      except OSError as e:
        self.stats.failures += 1
        raise FetchError(url, 'cache_write', f'fetched, but cannot write the cache '
                         f'file {self.cache_path(cache_name)}: {e.strerror or e} '
                         '(check the cache directory and free disk space)') from e
    return data

  def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
    """Seconds to sleep after failed attempt number `attempt` (1-based)."""
    ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
    delay = self._rng.uniform(0, ceiling)  # Full jitter.
    if retry_after_s is not None:
      delay = max(delay, min(retry_after_s, self.retry_after_max_s))
    return delay

  async def _fetch_with_retries(self, url: str, kind: str) -> bytes:
    http = is_http_url(url)
    origin = _origin(url) if http else ''
    if origin in self._unreachable:
      known = self._unreachable[origin]
      self.stats.failures += 1
      raise ServiceUnreachable(url, known.reason, known.detail, hint=known.hint)
    refused_in_a_row = 0
    last: AttemptFailed | None = None
    for attempt in range(1, self.max_attempts + 1):
      if attempt > 1:
        known = self._unreachable.get(origin) if http else None
        if known is not None:  # Another fetch found the host down meanwhile.
          self.stats.failures += 1
          raise ServiceUnreachable(url, known.reason, known.detail,
                                   attempts=attempt - 1, hint=known.hint)
        self.stats.retries += 1
      try:
        async with self._semaphore:
          self.stats.requests += 1
          if http:
            data = await self._get_http(url, kind)
          else:
            data = await self._get_fsspec(url, kind)
        self.stats.bytes_fetched += len(data)
        return data
      except AttemptFailed as e:
        last = e
      self.stats.by_reason[last.reason] += 1
      if not last.retryable:
        self.stats.failures += 1
        raise FetchError(url, last.reason, last.detail, attempts=attempt)
      refused_in_a_row = refused_in_a_row + 1 if last.refused else 0
      if refused_in_a_row >= self.unreachable_after:
        self.stats.failures += 1
        error = ServiceUnreachable(url, last.reason, last.detail, attempts=attempt,
                                   hint=_env_hint(url))
        self._unreachable[origin] = error
        raise error
      if attempt < self.max_attempts:
        delay = self._backoff(attempt, last.retry_after_s)
        if last.refused:
          delay = min(delay, REFUSED_MAX_WAIT_S)
        self.stats.waited_s += delay
        await asyncio.sleep(delay)
    self.stats.failures += 1
    assert last is not None
    raise FetchError(url, last.reason, last.detail, attempts=self.max_attempts)

  async def _get_http(self, url: str, kind: str) -> bytes:
    session = await self._get_session()
    try:
      async with session.get(url) as response:
        status = response.status
        if status != 200:
          body = await self._read_limited(response, min(self.max_bytes, 65536),
                                          truncate=True)
          raise self._status_failure(response, status, body, kind)
        length = response.content_length
        if length is not None and length > self.max_bytes:
          raise AttemptFailed('too_large', f'Content-Length {length} exceeds the '
                              f'{self.max_bytes}-byte cap', retryable=False)
        data = await self._read_limited(response, self.max_bytes)
        encoding = response.headers.get('Content-Encoding', 'identity').lower()
        if length is not None and encoding in ('', 'identity') and len(data) != length:
          raise AttemptFailed('truncated', f'got {len(data)} of {length} bytes')
        validate_body(data, kind, content_type=response.headers.get('Content-Type', ''),
                      max_bytes=self.max_bytes)
        return data
    except AttemptFailed:
      raise
    except aiohttp.ClientConnectorCertificateError as e:
      raise AttemptFailed('tls', f'TLS certificate not trusted: {e}',
                          retryable=False) from e
    except aiohttp.ClientConnectorDNSError as e:
      raise AttemptFailed('dns', f'host name not resolved ({e.os_error})',
                          refused=True) from e
    except aiohttp.ClientConnectorError as e:
      os_error = getattr(e, 'os_error', None)
      if isinstance(os_error, ConnectionRefusedError) or getattr(
          os_error, 'errno', None) == errno.ECONNREFUSED:
        raise AttemptFailed('connection_refused', 'connection refused',
                            refused=True) from e
      raise AttemptFailed('connection_error', f'cannot connect: {os_error or e}') from e
    except aiohttp.ClientPayloadError as e:
      raise AttemptFailed('truncated', f'body cut short ({_one_line(e)})') from e
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError) as e:
      raise AttemptFailed('timeout', f'no complete answer within {self.timeout_s:g} s') from e
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
            aiohttp.ClientConnectionError, ConnectionError) as e:
      raise AttemptFailed('connection_error',
                          f'connection dropped ({type(e).__name__}: {_one_line(e)})') from e
    except aiohttp.ClientError as e:
      raise AttemptFailed('client_error', f'{type(e).__name__}: {_one_line(e)}') from e

  async def _read_limited(self, response: aiohttp.ClientResponse, limit: int, *,
                          truncate: bool = False) -> bytes:
    chunks = []
    total = 0
    async for chunk in response.content.iter_chunked(65536):
      total += len(chunk)
      if total > limit:
        if truncate:
          chunks.append(chunk)
          break
        raise AttemptFailed('too_large', f'body exceeds the {limit}-byte cap',
                            retryable=False)
      chunks.append(chunk)
    return b''.join(chunks)

  def _status_failure(self, response: aiohttp.ClientResponse, status: int,
                      body: bytes, kind: str) -> AttemptFailed:
    excerpt = _excerpt(body)
    said = f': "{excerpt}"' if excerpt else ''
    if kind in ('csv', 'json') and is_error_message_page(body):
      # SkyServer's SQL error: the same answer however often it is asked.
      return AttemptFailed('sql_error', f'SkyServer refused the query (HTTP {status}): '
                           f'"{excerpt}"', retryable=False)
    if status == 404 or status == 410:
      return AttemptFailed('not_found', f'not found (HTTP {status})', retryable=False)
    if status == 429:
      return AttemptFailed(
          'http_429', f'rate limited (HTTP 429){said}',
          retry_after_s=_retry_after_seconds(response.headers.get('Retry-After')))
    if status in _RETRYABLE_STATUSES or status >= 500:
      return AttemptFailed(
          f'http_{status}', f'server error (HTTP {status}){said}',
          retry_after_s=_retry_after_seconds(response.headers.get('Retry-After')))
    return AttemptFailed(f'http_{status}', f'HTTP {status} {response.reason or ""}'
                         f'{said}'.strip(), retryable=False)

  async def _get_fsspec(self, url: str, kind: str) -> bytes:
    try:
      data = await asyncio.to_thread(self._read_fsspec_sync, url)
    except AttemptFailed:
      raise
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
      raise AttemptFailed('not_found', f'no such file ({type(e).__name__})',
                          retryable=False) from e
    except PermissionError as e:
      raise AttemptFailed('permission', f'permission denied: {e}',
                          retryable=False) from e
    except (ImportError, ValueError) as e:
      raise AttemptFailed('bad_url', f'cannot open with fsspec: {_one_line(e)}',
                          retryable=False) from e
    except Exception as e:  # pylint: disable=broad-except  (remote stores vary)
      raise AttemptFailed('storage_error', f'{type(e).__name__}: {_one_line(e)}') from e
    try:
      validate_body(data, kind, max_bytes=self.max_bytes)
    except AttemptFailed as e:
      if is_local_base(url):
        e.retryable = False  # A local file reads the same again: no use retrying.
      raise
    return data

  def _read_fsspec_sync(self, url: str) -> bytes:
    fs, path = fsspec.core.url_to_fs(url)
    size = None
    try:
      size = fs.size(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
      raise
    except Exception:  # pylint: disable=broad-except  (size is only a pre-check)
      size = None
    if size is not None and size > self.max_bytes:
      raise AttemptFailed('too_large', f'{size} bytes exceeds the '
                          f'{self.max_bytes}-byte cap', retryable=False)
    with fs.open(path, 'rb') as f:
      data = f.read(self.max_bytes + 1)
    if len(data) > self.max_bytes:
      raise AttemptFailed('too_large', f'file exceeds the {self.max_bytes}-byte cap',
                          retryable=False)
    return data


def run(coro: Coroutine[Any, Any, T]) -> T:
  """Runs a coroutine to completion from synchronous code.

  Uses `asyncio.run`; when called where an event loop is already running
  (a notebook), runs it in a fresh loop on a worker thread instead.
  """
  try:
    asyncio.get_running_loop()
  except RuntimeError:
    return asyncio.run(coro)
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    return pool.submit(asyncio.run, coro).result()

