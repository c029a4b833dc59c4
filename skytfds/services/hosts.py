"""What all fetches to one host share: pauses, a rate cap, and the outage clock.

One `HostGate` per host (scheme://host:port). Before each attempt a fetch
`wait`s at its host's gate, takes a concurrency slot, `claim`s the host (which
may have been paused meanwhile: then it gives the slot back and waits again)
and `pace`s itself; after the attempt it reports the outcome (`answered`,
`failed` or `abandoned`):

* A host that answers 429 or 503 (or a Retry-After), or fails
  `TRIP_AFTER` attempts in a row, is paused: no request goes to it until the
  pause ends (Retry-After in full, up to the Fetcher's cap; else a backoff
  that doubles with each failed round). After a pause, one request at a time
  probes the host; the first good answer opens it to all again.
* Requests start at most `max_rate` a second per host (0: no cap).
* A host that has failed every attempt for `max_outage_s` (and at least
  `MIN_OUTAGE_FAILURES` of them) is out: every fetch to it raises
  `ServiceOutage`, which stops the build; a rerun resumes.

Single-threaded: all state is touched from the event loop only.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Callable

from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import ServiceOutage

# Failed attempts in a row (no good answer between) that pause a host even
# without a 429/503.
TRIP_AFTER = 3
# Fewest failed attempts that make an outage: a slow query timing out twice
# is no outage.
MIN_OUTAGE_FAILURES = 3
# Statuses that speak for the whole host, not one resource.
HOST_STATUS_REASONS = frozenset({'http_429', 'http_503'})
# Failures that may mean the host is struggling (no answer, or an error
# status); anything else retryable is an answer with a bad body (an HTML
# page, a wrong type, an image that fails its checks): the host is up, so
# those are retried per fetch but never pause the host or start its outage.
_STRUGGLING_REASONS = frozenset({'timeout', 'connection_error', 'truncated',
                                 'client_error', 'storage_error'})


def is_struggling(failure: AttemptFailed) -> bool:
  """Whether a retryable failure speaks of the host's health."""
  return (failure.reason in _STRUGGLING_REASONS
          or failure.reason.startswith('http_')
          or failure.retry_after_s is not None)


def origin(url: str) -> str:
  """scheme://host[:port] of `url`, lower-case, without credentials."""
  parts = urllib.parse.urlsplit(url)
  netloc = parts.netloc.rpartition('@')[2].lower()
  return f'{parts.scheme.lower()}://{netloc}'


class HostGate:
  """The shared state of one host (see the module docstring).

  Args:
    origin: scheme://host:port, as shown in messages.
    max_rate: requests per second that may start (0: no cap).
    max_outage_s: seconds of failing without a good answer after which the
      host is out.
    clock: monotonic seconds (tests).
  """

  def __init__(self, origin: str, *, max_rate: float, max_outage_s: float,
               clock: Callable[[], float] = time.monotonic):
    self.origin = origin
    self.max_rate = float(max_rate)
    self.max_outage_s = float(max_outage_s)
    self.clock = clock
    self.paused_until = 0.0
    self.pauses = 0           # Pauses begun (each failed round is one).
    self.rounds = 0           # Failed rounds since the last good answer.
    self.failures_in_a_row = 0
    self.failing_since: float | None = None
    self.outage: ServiceOutage | None = None
    self._last = AttemptFailed('none', 'no failure yet')
    self._tripped = False     # Paused since the last good answer: probe first.
    self._probing = False     # A probe is in flight.
    self._next_start = 0.0
    self._wake = asyncio.Event()

  def _notify(self) -> None:
    self._wake.set()
    self._wake = asyncio.Event()

  def outage_error(self, url: str, attempts: int) -> ServiceOutage:
    """The outage (the host is out) as the error of one fetch of `url`."""
    known = self.outage
    return ServiceOutage(url, known.reason, known.detail, attempts=attempts,
                         host=self.origin, failing_s=known.failing_s,
                         limit_s=self.max_outage_s)

  async def wait(self, url: str, *, attempts: int) -> float:
    """Waits until the host takes an attempt (not paused, no probe in flight).

    Returns the seconds waited. The caller then takes its concurrency slot
    and `claim`s the host, which may be paused again by then.

    Raises:
      ServiceOutage: the host is out (now, or found out while waiting).
    """
    waited = 0.0
    while True:
      if self.outage is not None:
        raise self.outage_error(url, attempts)
      now = self.clock()
      if now < self.paused_until:
        wait = self.paused_until - now
      elif self._tripped and self._probing:
        wait = None  # Until the probe's answer.
      else:
        return waited
      if self.failing_since is not None:  # Wake up when an outage would be due.
        due = max(0.01, self.failing_since + self.max_outage_s - now)
        wait = due if wait is None else min(wait, due)
      wake = self._wake
      try:
        await asyncio.wait_for(wake.wait(), wait)
      except (asyncio.TimeoutError, TimeoutError):
        self._check_outage_due()
      waited += self.clock() - now

  def claim(self) -> bool | None:
    """Starts an attempt now if the host takes one: is it the probe; None if not."""
    if self.outage is not None or self.clock() < self.paused_until:
      return None
    if self._tripped:
      if self._probing:
        return None
      self._probing = True
      return True
    return False

  async def pace(self) -> float:
    """Sleeps so that attempts start at most max_rate a second; seconds slept."""
    if self.max_rate <= 0:
      return 0.0
    now = self.clock()
    start = max(now, self._next_start)
    self._next_start = start + 1.0 / self.max_rate
    if start <= now:
      return 0.0
    await asyncio.sleep(start - now)
    return start - now

  def _check_outage_due(self) -> None:
    if (self.outage is None and self.failing_since is not None
        and self.failures_in_a_row >= MIN_OUTAGE_FAILURES
        and self.clock() - self.failing_since >= self.max_outage_s):
      self.outage = ServiceOutage(
          self.origin, self._last.reason, self._last.detail, host=self.origin,
          failing_s=self.clock() - self.failing_since, limit_s=self.max_outage_s)
      self._notify()

  def answered(self, probe: bool) -> None:
    """The host answered (data, or a final answer such as 404): it is up."""
    self.failures_in_a_row = 0
    self.rounds = 0
    self.failing_since = None
    self._tripped = False
    if probe:
      self._probing = False
    self._notify()

  def abandoned(self, probe: bool) -> None:
    """The attempt ended with no answer either way (cancelled)."""
    if probe:
      self._probing = False
      self._notify()

  def record(self, failure: AttemptFailed, probe: bool,
             pause_for: Callable[[int, float | None], float]) -> float:
    """Records a failed attempt of any kind; the pause it began (0 for none)."""
    if failure.refused:  # Nobody there: ServiceUnreachable decides it, fast.
      self.abandoned(probe)
      return 0.0
    if not failure.retryable or not is_struggling(failure):
      # A final answer (404, a refused redirect) or a bad body: the host is up.
      self.answered(probe)
      return 0.0
    return self.failed(failure, probe, pause_for)

  def failed(self, failure: AttemptFailed, probe: bool,
             pause_for: Callable[[int, float | None], float]) -> float:
    """Records a transient failure; the pause it began (seconds, 0 for none).

    Args:
      failure: the attempt's failure (retryable).
      probe: whether the attempt was the probe.
      pause_for: (round, capped Retry-After or None) -> seconds of a new pause.
    """
    now = self.clock()
    self._last = failure
    self.failures_in_a_row += 1
    if self.failing_since is None:
      self.failing_since = now
    if probe:
      self._probing = False
    paused = 0.0
    host_wide = (failure.reason in HOST_STATUS_REASONS
                 or failure.retry_after_s is not None)
    if host_wide or self.failures_in_a_row >= TRIP_AFTER:
      if now >= self.paused_until:  # A new round; failures during a pause are not.
        self.rounds += 1
        self.pauses += 1
        paused = pause_for(self.rounds, failure.retry_after_s)
        self.paused_until = now + paused
      elif failure.retry_after_s is not None:  # A longer Retry-After extends it.
        until = now + pause_for(self.rounds, failure.retry_after_s)
        if until > self.paused_until:
          paused = until - self.paused_until
          self.paused_until = until
      self._tripped = True
    self._check_outage_due()
    self._notify()
    return paused


class Hosts:
  """The gates of one Fetcher, one per host, made on first use."""

  def __init__(self, *, max_rate: float, max_outage_s: float):
    self.max_rate = max_rate
    self.max_outage_s = max_outage_s
    self._gates: dict[str, HostGate] = {}

  def gate(self, origin: str) -> HostGate:
    gate = self._gates.get(origin)
    if gate is None:
      gate = self._gates[origin] = HostGate(
          origin, max_rate=self.max_rate, max_outage_s=self.max_outage_s)
    return gate

  def clear(self) -> None:
    """Forgets every gate (their events belong to a loop that is closing)."""
    self._gates.clear()
