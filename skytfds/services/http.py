"""The one client that fetches everything skytfds downloads.

`Fetcher` owns a single `aiohttp.ClientSession` for http(s) URLs and reads any
other base (a local path, `file://`, `memory://`, `s3://`, `gs://`, ...) through
fsspec in a worker thread. It bounds concurrency, retries transient failures
with exponential backoff and full jitter, validates every body (status, size,
content type, magic bytes, completeness, and a caller's own decode check) and
keeps an on-disk cache written atomically, so a partial file is never used.
Every source, HTTP or fsspec, gets the same per-attempt timeout and retry
budget. Redirects never leave the configured host. All fetches to one host
share its gate: a 429/503 pauses them all, starts are rate-capped, and a host
failing for too long stops the build (`ServiceOutage`).

One job per module: `errors` (what a failure says, URLs redacted), `bodies`
(body checks), `cache` (the disk cache), `transport` (one attempt over HTTP or
fsspec), `session` (the aiohttp session: limits, headers, emulator
provenance), `hosts` (per-host pauses, rate and outage), `retries` (when a
failed attempt is tried again, and when a fetch gives up), `stats` (the
counters); this module runs, bounds and shares the attempts. The public names
of `errors`, `bodies`, `cache`, `stats` and `transport` that callers use are
importable from here too.

Example:

  async def main():
    async with Fetcher('/tmp/skytfds-cache') as fetcher:
      data = await fetcher.fetch(url, kind='bz2', cache_name='sas/dr17/...')

  data = run(main())
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
from typing import Any, Callable, Coroutine, TypeVar

import aiohttp
from absl import logging

from skytfds import files
from skytfds import settings
from skytfds import version
from skytfds.services import hosts
from skytfds.services import retries
from skytfds.services import session
from skytfds.services import transport
from skytfds.services.bodies import AnswerCheck
from skytfds.services.bodies import bz2_is_complete
from skytfds.services.bodies import check_kind
from skytfds.services.bodies import GENERIC
from skytfds.services.bodies import KINDS
from skytfds.services.bodies import MAX_BODY_BYTES
from skytfds.services.bodies import validate_body
from skytfds.services import cache as cache_lib
from skytfds.services.cache import DiskCache
from skytfds.services.cache import validate_cache_name
from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import CorruptBody
from skytfds.services.errors import FetchError
from skytfds.services.errors import redact
from skytfds.services.errors import redact_text
from skytfds.services.errors import redact_url
from skytfds.services.errors import short_url
from skytfds.services.errors import ServiceOutage
from skytfds.services.errors import ServiceUnreachable
from skytfds.services.stats import FetchStats
from skytfds.services.transport import is_http_url
from skytfds.services.transport import is_local_base

__all__ = [
    'AnswerCheck', 'AttemptFailed', 'CorruptBody', 'FetchError', 'FetchStats',
    'Fetcher', 'KINDS', 'MAX_BODY_BYTES', 'ServiceOutage', 'ServiceUnreachable',
    'bz2_is_complete', 'is_http_url', 'is_local_base', 'redact', 'redact_text',
    'redact_url', 'run', 'short_url', 'validate_body', 'validate_cache_name',
]

T = TypeVar('T')

# A wait before the next attempt at least this long is logged: a user sees why
# nothing seems to happen (a server's Retry-After, a rate limit).
_LOGGED_WAIT_S = 5.0


class Fetcher:
  """Bounded, retrying, validating, caching fetcher (an async context manager).

  Args:
    cache_dir: directory for cached bodies, or None for no cache.
    max_concurrency: requests in flight at once (all URLs together); default
      `settings.max_concurrency()` (SKYTFDS_MAX_CONCURRENCY, 8).
    timeout_s: seconds allowed for one attempt (connect + whole body); a
      fetch may ask for another (`fetch(timeout_s=...)`).
    max_attempts, backoff_s, backoff_max_s: the retry budget and backoff
      (`retries.RetryPolicy`).
    retry_after_max_s: cap on a server's Retry-After, seconds; default
      `settings.max_retry_after_s()` (SKYTFDS_MAX_RETRY_AFTER_S, 300).
    max_rate_per_host: requests per second that may start on one host, 0 for
      no cap; default `settings.max_rate_per_host()` (SKYTFDS_MAX_RATE_PER_HOST).
    max_outage_s: seconds a host may fail every attempt before fetches to it
      raise `ServiceOutage` (the build stops; a rerun resumes); default
      `settings.max_outage_s()` (SKYTFDS_MAX_OUTAGE_S, 600).
    unreachable_after: consecutive refused connections to a host after which
      `ServiceUnreachable` is raised (and later fetches to it fail at once).
    max_bytes: cap on a body's size.
    seed: seeds the jitter of the backoff (tests); None for a random seed.
  """

  def __init__(self, cache_dir: str | os.PathLike | None, *,
               max_concurrency: int | None = None, timeout_s: float = 60,
               max_attempts: int = 6, backoff_s: float = 0.5,
               backoff_max_s: float = 30.0, retry_after_max_s: float | None = None,
               max_rate_per_host: float | None = None,
               max_outage_s: float | None = None,
               unreachable_after: int = 2, max_bytes: int = MAX_BODY_BYTES,
               seed: int | None = None):
    if max_concurrency is None:
      max_concurrency = settings.max_concurrency()
    if retry_after_max_s is None:
      retry_after_max_s = settings.max_retry_after_s()
    if max_rate_per_host is None:
      max_rate_per_host = settings.max_rate_per_host()
    if max_outage_s is None:
      max_outage_s = settings.max_outage_s()
    if not max_rate_per_host >= 0 or not max_outage_s > 0:
      raise ValueError(f'max_rate_per_host={max_rate_per_host!r} must be >= 0 and '
                       f'max_outage_s={max_outage_s!r} > 0')
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
      raise ValueError(f'max_concurrency={max_concurrency!r}: expected an integer >= 1')
    if not isinstance(max_attempts, int) or max_attempts < 1:
      raise ValueError(f'max_attempts={max_attempts!r}: expected an integer >= 1')
    _check_timeout(timeout_s)
    if backoff_s < 0 or backoff_max_s < 0 or retry_after_max_s < 0:
      raise ValueError('backoff_s, backoff_max_s and retry_after_max_s must be >= 0')
    # A local path, or an fsspec URL kept as one (files.location).
    self.cache_dir = (cache_lib.cache_root(cache_dir) if cache_dir is not None
                      else None)
    self.max_concurrency = max_concurrency
    self.timeout_s = float(timeout_s)
    self.max_attempts = max_attempts
    self.backoff_s = float(backoff_s)
    self.backoff_max_s = float(backoff_max_s)
    self.retry_after_max_s = float(retry_after_max_s)
    self.unreachable_after = max(1, int(unreachable_after))
    self.max_bytes = int(max_bytes)
    self.user_agent = version.user_agent()
    self.stats = FetchStats()
    self._cache = (DiskCache(self.cache_dir, max_bytes=self.max_bytes)
                   if self.cache_dir is not None else None)
    self._retries = retries.RetryPolicy(
        max_attempts=self.max_attempts, backoff_s=self.backoff_s,
        backoff_max_s=self.backoff_max_s,
        retry_after_max_s=self.retry_after_max_s,
        unreachable_after=self.unreachable_after, seed=seed)
    self._session: aiohttp.ClientSession | None = None
    self._semaphore: asyncio.Semaphore | None = None
    self._inflight: dict[tuple[str, ...], asyncio.Future] = {}
    self.max_rate_per_host = float(max_rate_per_host)
    self.max_outage_s = float(max_outage_s)
    self._hosts = hosts.Hosts(max_rate=self.max_rate_per_host,
                              max_outage_s=self.max_outage_s)

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
      self._session = session.new_session(
          max_concurrency=self.max_concurrency, timeout_s=self.timeout_s,
          user_agent=self.user_agent, emulated=self.stats.emulated)
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
    self._hosts.clear()

  # -- cache ------------------------------------------------------------------

  def cache_path(self, cache_name: str) -> files.Location:
    """Where `cache_name` lives under cache_dir (validated; cannot escape it)."""
    if self._cache is None:
      raise ValueError('this Fetcher has no cache_dir')
    return self._cache.path(cache_name)

  def evict(self, cache_name: str) -> None:
    """Drops a cached file (e.g. one that failed to decode); no-op if absent."""
    if self._cache is not None and self._cache.evict(cache_name):
      self.stats.cache_evictions += 1

  def _read_cache_sync(self, cache_name: str, kind: str) -> bytes | None:
    data, dropped = self._cache.read(cache_name, kind)
    if dropped:  # Corrupt or truncated: fetched again.
      self.stats.by_reason[f'cache_{dropped}'] += 1
      self.stats.cache_evictions += 1
    return data

  async def read_cache(self, cache_name: str, *, kind: str) -> bytes | None:
    """The cached, validated body of `cache_name`, or None (never the network)."""
    if self._cache is None:
      return None
    data = await asyncio.to_thread(self._read_cache_sync, cache_name, kind)
    if data is not None:
      self.stats.cache_hits += 1
    return data

  # -- fetching ---------------------------------------------------------------

  async def fetch(self, url: str, *, kind: str, cache_name: str | None = None,
                  timeout_s: float | None = None, max_timeouts: int | None = None,
                  check: AnswerCheck = GENERIC,
                  verify: Callable[[bytes], Any] | None = None,
                  form: transport.Form | None = None) -> bytes:
    """Fetches `url`, validated for `kind`; cached under `cache_name` if given.

    Args:
      url: an http(s) URL, or a local path / fsspec URL (file://, memory://,
        s3://, gs://, ...), read in a worker thread.
      kind: 'bz2', 'jpeg', 'text', 'csv' or 'json'; sets the body checks.
      cache_name: relative path under cache_dir. A valid cached file is
        returned with no request; a miss is fetched, validated and written
        atomically. Concurrent fetches of one name share one request.
      timeout_s: seconds allowed for one attempt (HTTP or fsspec); default
        the Fetcher's.
      max_timeouts: give up once this many attempts have timed out (a
        request the server may still be working on is not sent again and
        again); default: only max_attempts bounds them.
      check: how the service's answers read (its error answers); default
        generic HTTP.
      verify: the caller's own check of a body that passed `kind`'s checks
        (e.g. a full decode), run in a worker thread; it raises
        `CorruptBody` for a corrupt copy, which is dropped and fetched again
        with the same retry budget as any transient fault (a cached copy
        that fails it is evicted first). Its return value is ignored.
      form: POST these fields as multipart/form-data ((name, value,
        filename or None) each; a filename makes the field a file upload)
        instead of a GET; http(s) only. Retried as a GET is: post only
        lookups that change nothing on the server.

    Returns:
      The body bytes.

    Raises:
      ServiceUnreachable: connection refused / unknown host (fails fast).
      ServiceOutage: the host has failed every attempt for max_outage_s.
      FetchError: 404 ('not_found'), another permanent error (a redirect off
        the host: 'redirect_refused'), or the last reason after
        `max_attempts` attempts.
    """
    check_kind(kind)
    if timeout_s is not None:
      _check_timeout(timeout_s)
    if max_timeouts is not None and (
        not isinstance(max_timeouts, int) or max_timeouts < 1):
      raise ValueError(f'max_timeouts={max_timeouts!r}: expected an integer >= 1')
    if verify is not None and not callable(verify):
      raise ValueError(f'verify={verify!r}: expected a callable taking the body')
    if form is not None:
      form = transport.check_form(form)
      if not is_http_url(url):
        raise ValueError(f'form: a POST needs an http(s) URL, not {redact_url(url)}')
    if cache_name is not None:
      validate_cache_name(cache_name)
      key = ('cache', cache_name, verify)
    else:
      key = ('url', url, kind, verify, form)
    self._ensure_started()
    future = self._inflight.get(key)
    if future is not None:
      self.stats.deduplicated += 1
      return await asyncio.shield(future)
    plan = _Plan(kind, self.timeout_s if timeout_s is None else float(timeout_s),
                 self.max_attempts if max_timeouts is None else max_timeouts,
                 check, verify, form)
    future = asyncio.ensure_future(self._fetch_cached(url, plan, cache_name))
    self._inflight[key] = future

    def _forget(done: asyncio.Future, key=key) -> None:
      if self._inflight.get(key) is done:
        del self._inflight[key]
      if not done.cancelled():
        done.exception()  # Marks it retrieved: no "never retrieved" warning.

    future.add_done_callback(_forget)
    return await asyncio.shield(future)

  async def _fetch_cached(self, url: str, plan: _Plan,
                          cache_name: str | None) -> bytes:
    use_cache = cache_name is not None and self._cache is not None
    if use_cache:
      data = await asyncio.to_thread(self._read_cache_sync, cache_name, plan.kind)
      if data is not None and plan.verify is not None:
        try:
          await asyncio.to_thread(plan.verify, data)
        except CorruptBody as e:  # Passed the body checks, not the caller's.
          self.evict(cache_name)
          self.stats.by_reason[f'cache_{e.reason}'] += 1
          data = None
      if data is not None:
        self.stats.cache_hits += 1
        return data
    data = await self._fetch_with_retries(url, plan)
    if use_cache:
      try:
        await asyncio.to_thread(self._cache.write, cache_name, data)
      except OSError as e:
        self.stats.failures += 1
        raise FetchError(url, 'cache_write', f'fetched, but cannot write the cache '
                         f'file {self.cache_path(cache_name)}: {e.strerror or e} '
                         '(check the cache directory and free disk space)') from e
    return data

  async def _fetch_with_retries(self, url: str, plan: _Plan) -> bytes:
    http = is_http_url(url)
    origin = '' if is_local_base(url) else hosts.origin(url)
    gate = self._hosts.gate(origin) if origin else None
    tally = retries.Tally(max_timeouts=plan.max_timeouts)
    for attempt in range(1, self.max_attempts + 1):
      known = (self._retries.known_unreachable(url, origin, max(1, attempt - 1))
               if http else None)
      if known is not None:  # This or another fetch found the host down.
        self.stats.failures += 1
        raise known
      if attempt > 1:
        self.stats.retries += 1
      try:
        probe = await self._admit(url, gate, attempts=max(1, attempt - 1))
      except ServiceOutage:
        self.stats.failures += 1
        raise
      try:
        data = await self._attempt(url, plan, http, gate)
        if plan.verify is not None:
          await asyncio.to_thread(plan.verify, data)
      except AttemptFailed as e:
        last = e
      except BaseException:
        if gate is not None:
          gate.abandoned(probe)
        raise
      else:
        if gate is not None:
          gate.answered(probe)
        self.stats.bytes_fetched += len(data)
        return data
      self.stats.by_reason[last.reason] += 1
      if gate is not None:
        paused = gate.record(last, probe, self._retries.host_pause)
        if paused:
          self.stats.host_pauses += 1
        if paused >= _LOGGED_WAIT_S:
          logging.info('%s: %s; pausing every request to %s for %.0f s',
                       redact_url(url), redact_text(last.detail), gate.origin,
                       paused)
      error = self._retries.give_up(url, origin, last, attempt, tally, gate)
      if error is not None:
        self.stats.failures += 1
        raise error
      delay = self._retries.wait_s(attempt, last)
      if delay >= _LOGGED_WAIT_S:
        logging.info('%s: %s; sending it again in %.0f s (attempt %d of %d)',
                     redact_url(url), redact_text(last.detail), delay,
                     attempt + 1, self.max_attempts)
      self.stats.waited_s += delay
      await asyncio.sleep(delay)
    raise AssertionError('unreachable: the last attempt always gives up')

  async def _admit(self, url: str, gate: hosts.HostGate | None, *,
                   attempts: int) -> bool:
    """Takes a concurrency slot once the host takes an attempt; is it the probe."""
    while True:
      if gate is not None:
        waited = await gate.wait(url, attempts=attempts)
        self.stats.paused_s += waited  # Added after the await: no lost update.
      await self._semaphore.acquire()
      probe = gate.claim() if gate is not None else False
      if probe is not None:
        return probe
      self._semaphore.release()  # Paused meanwhile: wait again, slot free.

  async def _attempt(self, url: str, plan: _Plan, http: bool,
                     gate: hosts.HostGate | None) -> bytes:
    """One attempt, holding the slot `_admit` took (released here)."""
    try:
      if gate is not None:
        paced = await gate.pace()
        self.stats.paused_s += paced
      self.stats.requests += 1
      if http:
        return await transport.get_http(
            await self._get_session(), url, plan.kind, timeout_s=plan.timeout_s,
            max_bytes=self.max_bytes, check=plan.check, form=plan.form)
      return await transport.get_fsspec(url, plan.kind, max_bytes=self.max_bytes,
                                        timeout_s=plan.timeout_s)
    finally:
      self._semaphore.release()


@dataclasses.dataclass(frozen=True)
class _Plan:
  """How one fetch is attempted: kind, per-attempt timeout, answers, verify."""
  kind: str
  timeout_s: float
  max_timeouts: int
  check: AnswerCheck
  verify: Callable[[bytes], Any] | None = None
  form: transport.Form | None = None  # POSTed as multipart/form-data.


def _check_timeout(timeout_s: Any) -> None:
  if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or (
      not timeout_s > 0):
    raise ValueError(f'timeout_s={timeout_s!r}: expected seconds > 0')



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

