"""Deterministic fault injection for the emulator's payload endpoints.

A request is faulted when a hash of (seed, path with query, hit number) falls
below the fault rate, so the same URL fetched again (a retry: the next hit
number) draws again and can succeed, and two runs with the same seed and the
same request sequence per URL inject the same faults. After
`max_per_url` faults on one URL its later hits are served (None: no cap), which
bounds how many attempts a client needs.

Kinds (the name is the key in /_stats "faults"):
  http_500      status 500, short text body
  http_503      status 503, short text body
  http_429      status 429 with `Retry-After: <retry_after_s>`
  reset         status 200 and headers (chunked), then a TCP reset before any
                body byte (a reset before the response starts would be retried
                silently by aiohttp's client)
  truncated     Content-Length of the full body, half of it sent, then closed
  corrupt_bz2   (frames only) status 200, the real body with all but its
                first 10 bytes (stream and block magic) and last 11 bytes
                (end-of-stream marker) replaced by garbage: passes the magic
                and completeness checks, fails to decode
  html_200      status 200, an HTML maintenance page instead of the payload
  slow          the real payload, after a delay of `slow_s`
  corrupt_jpeg  (JPEG endpoints; not in the default kinds) status 200, the
                real JPEG with all but its first 20 and last 2 bytes (start
                and end markers) replaced by garbage

An `Outage` is the other mode: every request to the matching paths fails
the same way (no draw, no per-URL cap) from its start for `duration_s`
seconds, or until `OutageClock.end()`, so that it can outlast any client's
retry budget. Its faults are counted in /_stats as `outage_<kind>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence

from aiohttp import web

FAULT_KINDS = ('http_500', 'http_503', 'http_429', 'reset', 'truncated',
               'corrupt_bz2', 'html_200', 'slow')
OPTIONAL_KINDS = ('corrupt_jpeg',)
ALL_KINDS = FAULT_KINDS + OPTIONAL_KINDS
# Which kinds apply to which payload type ('bz2', 'jpeg', 'text').
_ONLY_FOR = {'corrupt_bz2': 'bz2', 'corrupt_jpeg': 'jpeg'}
# Kinds decided before the payload is produced (no rendering is needed).
EARLY_KINDS = frozenset({'http_500', 'http_503', 'http_429', 'reset',
                         'html_200'})

_HTML_PAGE = (
    '<!DOCTYPE html>\n<html><head><title>Service Temporarily Unavailable'
    '</title></head>\n<body><h1>Service Temporarily Unavailable</h1>\n'
    '<p>The server is temporarily unable to service your request due to '
    'maintenance downtime or capacity problems. Please try again later.</p>\n'
    '</body></html>\n')


@dataclasses.dataclass(frozen=True)
class FaultPlan:
  """What to inject: a rate, a seed and the kinds to draw from.

  Attributes:
    rate: fraction of payload responses that fail, in [0, 1].
    seed: any integer; the same seed gives the same faults.
    kinds: the kinds to draw from (uniformly among those that apply to the
      payload type).
    max_per_url: after this many faults on one URL, its later hits are served
      normally; None for no cap.
    retry_after_s: the Retry-After value sent with 429 (seconds).
    slow_s: the delay of a 'slow' response (seconds).
  """
  rate: float = 0.0
  seed: int = 0
  kinds: tuple[str, ...] = FAULT_KINDS
  max_per_url: int | None = 3
  retry_after_s: int = 1
  slow_s: float = 2.0

  def __post_init__(self):
    if not 0.0 <= self.rate <= 1.0:
      raise ValueError(f'fault rate {self.rate!r} is not a fraction: give a '
                       'value from 0 to 1 (0.2 fails one response in five).')
    unknown = sorted(set(self.kinds) - set(ALL_KINDS))
    if unknown:
      raise ValueError(f'unknown fault kinds {unknown}: choose from '
                       f'{", ".join(ALL_KINDS)}.')
    if self.max_per_url is not None and self.max_per_url < 0:
      raise ValueError(f'max_per_url {self.max_per_url} is negative: give 0 '
                       'or more, or None for no cap.')

  def kinds_for(self, payload: str) -> tuple[str, ...]:
    """The kinds that apply to a payload type ('bz2', 'jpeg' or 'text')."""
    return tuple(k for k in self.kinds if _ONLY_FOR.get(k, payload) == payload)

  def draw(self, key: str, hit: int, payload: str) -> str | None:
    """The fault for the `hit`-th request (1-based) of `key`, or None.

    Pure: depends on (seed, key, hit, payload type) only.
    """
    if self.rate <= 0.0:
      return None
    kinds = self.kinds_for(payload)
    if not kinds:
      return None
    digest = hashlib.sha256(f'{self.seed}\x00{key}\x00{hit}'.encode()).digest()
    (draw,) = struct.unpack('>Q', digest[:8])
    if draw >= self.rate * 2.0**64:
      return None
    (pick,) = struct.unpack('>Q', digest[8:16])
    return kinds[pick % len(kinds)]


class FaultInjector:
  """A FaultPlan plus the per-URL fault counts that enforce max_per_url."""

  def __init__(self, plan: FaultPlan):
    self.plan = plan
    self._faults_per_key: dict[str, int] = {}

  def decide(self, key: str, hit: int, payload: str) -> str | None:
    """The fault to inject for this request (and counts it), or None."""
    kind = self.plan.draw(key, hit, payload)
    if kind is None:
      return None
    done = self._faults_per_key.get(key, 0)
    if self.plan.max_per_url is not None and done >= self.plan.max_per_url:
      return None
    self._faults_per_key[key] = done + 1
    return kind


OUTAGE_KINDS = ('http_503', 'http_500', 'http_502', 'http_429', 'reset')


@dataclasses.dataclass(frozen=True)
class Outage:
  """A service down for longer than a client keeps retrying.

  Attributes:
    kind: how each request fails: 'http_503', 'http_500', 'http_502',
      'http_429' (with Retry-After if retry_after_s is set) or 'reset'.
    duration_s: how long it lasts from its start, seconds; None until
      `OutageClock.end()` is called.
    path_prefix: the paths it covers ('' every service; '/sas/' the SAS,
      '/cgi-bin/' PS1, '/dr17/SkyServerWS/' SkyServer, ...).
    after_requests: matching requests served normally before it starts.
    retry_after_s: the Retry-After header sent with each failure; None for
      none.
  """
  kind: str = 'http_503'
  duration_s: float | None = None
  path_prefix: str = ''
  after_requests: int = 0
  retry_after_s: int | None = None

  def __post_init__(self):
    if self.kind not in OUTAGE_KINDS:
      raise ValueError(f'outage kind {self.kind!r}: choose from '
                       f'{", ".join(OUTAGE_KINDS)}.')
    if self.duration_s is not None and not self.duration_s >= 0:
      raise ValueError(f'outage duration_s={self.duration_s!r}: give seconds '
                       '>= 0, or None for an outage that lasts until ended.')
    if self.after_requests < 0:
      raise ValueError(f'outage after_requests={self.after_requests}: give 0 '
                       'or more.')


class OutageClock:
  """When an `Outage` is on: it starts at the first matching request after
  `after_requests` of them, and ends `duration_s` later (or at `end()`)."""

  def __init__(self, outage: Outage,
               clock: Callable[[], float] = time.monotonic):
    self.outage = outage
    self._clock = clock
    self._lock = threading.Lock()
    self._seen = 0
    self._started: float | None = None
    self._ended = False

  def end(self) -> None:
    """Ends the outage now: later requests are served."""
    with self._lock:
      self._ended = True

  def kind_now(self, path: str) -> str | None:
    """The fault kind for a request to `path` now, or None to serve it."""
    if not path.startswith(self.outage.path_prefix):
      return None
    with self._lock:
      if self._ended:
        return None
      if self._started is None:
        self._seen += 1
        if self._seen <= self.outage.after_requests:
          return None
        self._started = self._clock()
      duration = self.outage.duration_s
      if duration is not None and self._clock() - self._started >= duration:
        self._ended = True
        return None
    return self.outage.kind


async def outage_response(request: web.Request,
                          outage: Outage) -> web.StreamResponse:
  """The failure every request gets during `outage`."""
  headers = ({'Retry-After': str(outage.retry_after_s)}
             if outage.retry_after_s is not None else {})
  if outage.kind == 'reset':
    return await early_response(request, 'reset', FaultPlan())
  status = int(outage.kind.split('_')[1])
  names = {500: 'Internal Server Error', 502: 'Bad Gateway',
           503: 'Service Unavailable', 429: 'Too Many Requests'}
  return web.Response(status=status, headers=headers,
                      text=f'{status} {names[status]} (injected outage)\n')


def _reset(request: web.Request) -> None:
  """Closes the client connection with a TCP RST (SO_LINGER 0)."""
  transport = request.transport
  if transport is None:
    return
  sock = transport.get_extra_info('socket')
  if sock is not None:
    with contextlib.suppress(OSError):  # Closed by the peer: nothing to reset.
      sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                      struct.pack('ii', 1, 0))
  transport.abort()


def scramble(body: bytes, *, keep_head: int, keep_tail: int,
             seed: str) -> bytes:
  """`body` with everything between its first `keep_head` and last
  `keep_tail` bytes replaced by deterministic pseudo-random bytes."""
  middle = len(body) - keep_head - keep_tail
  if middle <= 0:
    return body[:keep_head] + random.Random(seed).randbytes(32)
  return (body[:keep_head] + random.Random(seed).randbytes(middle)
          + body[len(body) - keep_tail:])


async def early_response(request: web.Request, kind: str,
                         plan: FaultPlan) -> web.StreamResponse:
  """The response for a fault that needs no payload (see EARLY_KINDS)."""
  if kind == 'http_500':
    return web.Response(status=500, text='500 Internal Server Error '
                        '(injected fault)\n')
  if kind == 'http_503':
    return web.Response(status=503, text='503 Service Unavailable '
                        '(injected fault)\n')
  if kind == 'http_429':
    return web.Response(status=429, text='429 Too Many Requests '
                        '(injected fault)\n',
                        headers={'Retry-After': str(plan.retry_after_s)})
  if kind == 'html_200':
    return web.Response(status=200, text=_HTML_PAGE, content_type='text/html')
  if kind == 'reset':
    # Status line and headers, then a TCP reset before any body byte. (A reset
    # before the response starts is retried silently by aiohttp's client, so
    # a client would never see it.)
    response = web.StreamResponse(status=200)
    response.enable_chunked_encoding()
    await response.prepare(request)
    _reset(request)
    return response
  raise ValueError(f'{kind!r} is not an early fault kind')


async def payload_response(request: web.Request, kind: str | None, body: bytes,
                           content_type: str, plan: FaultPlan,
                           headers: dict[str, str] | None = None,
                           ) -> web.StreamResponse:
  """The response carrying `body`, damaged or delayed as `kind` says.

  Args:
    request: the request being answered.
    kind: None (serve normally), 'slow', 'truncated', 'corrupt_bz2' or
      'corrupt_jpeg'.
    body: the full, correct payload.
    content_type: its MIME type (may carry '; charset=...').
    plan: the fault plan (for slow_s).
    headers: extra headers.
  """
  if kind == 'slow':
    await asyncio.sleep(plan.slow_s)
  if kind == 'corrupt_bz2':
    # Stream header, block magic and end-of-stream marker intact (a download
    # check passes), garbage between: decoding fails.
    body = scramble(body, keep_head=10, keep_tail=11, seed=request.path_qs)
  elif kind == 'corrupt_jpeg':
    body = scramble(body, keep_head=20, keep_tail=2, seed=request.path_qs)
  if kind != 'truncated':
    return web.Response(body=body, headers=_with_type(headers, content_type))
  response = web.StreamResponse(status=200,
                                headers=_with_type(headers, content_type))
  response.content_length = len(body)
  await response.prepare(request)
  await response.write(body[:len(body) // 2])
  _reset(request)
  return response


def _with_type(headers: dict[str, str] | None,
               content_type: str) -> dict[str, str]:
  merged = dict(headers or {})
  merged['Content-Type'] = content_type
  return merged


def parse_kinds(text: str | Sequence[str] | None) -> tuple[str, ...]:
  """Kinds from a comma-separated string ('' or None: the default kinds)."""
  if text is None:
    return FAULT_KINDS
  if isinstance(text, str):
    items = [k.strip() for k in text.split(',') if k.strip()]
  else:
    items = list(text)
  if not items:
    return FAULT_KINDS
  if items == ['all']:
    return ALL_KINDS
  return tuple(items)
