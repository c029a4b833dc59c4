"""When a failed fetch is tried again: how long it waits, and when it gives up.

The Fetcher asks `RetryPolicy` after each failed attempt (an `AttemptFailed`):

* A final failure (404, a refused redirect, a bad local file) ends the fetch
  at once; so does the outage of its host (`ServiceOutage`, from its gate).
* A fetch gives up after `max_timeouts` timed-out attempts (a request the
  server may still be working on is not sent again and again) or
  `max_attempts` attempts of any kind.
* `unreachable_after` refused connections in a row (connection refused,
  unknown host) end it as `ServiceUnreachable`, naming the environment
  variable that points at the service; the host is remembered as down, and
  later fetches to it fail at once.
* Otherwise the fetch sleeps a backoff (exponential, full jitter; at least a
  server's Retry-After, up to a cap; at most `REFUSED_MAX_WAIT_S` after a
  refused connection) and tries again. The pause of a whole host (see
  `hosts`) is sized here too.

Single-threaded: all state is touched from the event loop only.
"""

from __future__ import annotations

import dataclasses
import random

from skytfds import settings
from skytfds.services import hosts
from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import FetchError
from skytfds.services.errors import redact_url
from skytfds.services.errors import ServiceUnreachable

# Longest wait before retrying a refused connection: refused is fast to
# confirm (a stopped server), so a few quick tries decide it; don't linger.
REFUSED_MAX_WAIT_S = 0.25


def env_hint(url: str) -> str:
  """Which environment variable points at the service `url` belongs to."""
  candidates = [
      (settings.sas_url(), settings.SAS_URL_ENV),
      (settings.skyserver_url(), settings.SKYSERVER_URL_ENV),
      (settings.ps1_url(), settings.PS1_URL_ENV),
  ]
  best, best_base = '', ''
  for base, env in candidates:
    if url.startswith(base.rstrip('/') + '/') and len(base) > len(best_base):
      best, best_base = env, base
  if best:
    return (f'Is the server running, and this machine online? Set {best} to '
            f'a service you can reach (now {redact_url(best_base)})')
  return ('Is the server running, and this machine online? Check '
          'SKYTFDS_SKYSERVER_URL, SKYTFDS_SAS_URL, SKYTFDS_PS1_URL')


@dataclasses.dataclass
class Tally:
  """One fetch's failed attempts so far, as far as giving up depends on them."""
  max_timeouts: int
  refused_in_a_row: int = 0
  timeouts: int = 0

  def count(self, failure: AttemptFailed) -> None:
    self.refused_in_a_row = self.refused_in_a_row + 1 if failure.refused else 0
    self.timeouts += failure.reason == 'timeout'


class RetryPolicy:
  """The retry budget and waits of one Fetcher (see the module docstring).

  Args:
    max_attempts: attempts per resource before giving up.
    backoff_s: base of the exponential backoff, in seconds: before attempt
      k+1 a fetch sleeps uniform(0, min(backoff_max_s, backoff_s * 2**(k-1))).
    backoff_max_s: cap of one backoff sleep, seconds (and of a host's pause
      without a Retry-After).
    retry_after_max_s: cap on a server's Retry-After, seconds.
    unreachable_after: consecutive refused connections to a host after which
      `ServiceUnreachable` is raised (and later fetches to it fail at once).
    seed: seeds the jitter (tests); None for a random seed.
  """

  def __init__(self, *, max_attempts: int, backoff_s: float,
               backoff_max_s: float, retry_after_max_s: float,
               unreachable_after: int, seed: int | None):
    self.max_attempts = max_attempts
    self.backoff_s = backoff_s
    self.backoff_max_s = backoff_max_s
    self.retry_after_max_s = retry_after_max_s
    self.unreachable_after = unreachable_after
    self._rng = random.Random(seed)
    self._unreachable: dict[str, ServiceUnreachable] = {}

  def backoff(self, attempt: int, retry_after_s: float | None) -> float:
    """Seconds to sleep after failed attempt number `attempt` (1-based)."""
    ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
    delay = self._rng.uniform(0, ceiling)  # Full jitter.
    if retry_after_s is not None:
      delay = max(delay, min(retry_after_s, self.retry_after_max_s))
    return delay

  def wait_s(self, attempt: int, failure: AttemptFailed) -> float:
    """Seconds to sleep before retrying after `failure` (attempt `attempt`)."""
    delay = self.backoff(attempt, failure.retry_after_s)
    if failure.refused:
      delay = min(delay, REFUSED_MAX_WAIT_S)
    return delay

  def host_pause(self, round_: int, retry_after_s: float | None) -> float:
    """Seconds a host is paused for its failed round number `round_` (1-based).

    Retry-After in full (up to retry_after_max_s), else a backoff that
    doubles with each round (half of it jittered, so that a pause is never
    next to nothing).
    """
    ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (round_ - 1))
    delay = self._rng.uniform(ceiling / 2, ceiling)
    if retry_after_s is not None:
      delay = max(delay, min(retry_after_s, self.retry_after_max_s))
    return delay

  def known_unreachable(self, url: str, origin: str,
                        attempts: int) -> ServiceUnreachable | None:
    """The error of a fetch of `url` to a host already found down, or None."""
    known = self._unreachable.get(origin)
    if known is None:
      return None
    return ServiceUnreachable(url, known.reason, known.detail,
                              attempts=attempts, hint=known.hint)

  def give_up(self, url: str, origin: str, last: AttemptFailed, attempt: int,
              tally: Tally, gate: hosts.HostGate | None) -> FetchError | None:
    """Counts `last` in `tally`: the error that ends the fetch, or None to retry."""
    tally.count(last)
    if not last.retryable:
      return FetchError(url, last.reason, last.detail, attempts=attempt)
    if gate is not None and gate.outage is not None:
      return gate.outage_error(url, attempt)
    if tally.timeouts >= tally.max_timeouts:
      return FetchError(url, last.reason, last.detail, attempts=attempt)
    if tally.refused_in_a_row >= self.unreachable_after:
      error = ServiceUnreachable(url, last.reason, last.detail, attempts=attempt,
                                 hint=env_hint(url))
      self._unreachable[origin] = error
      return error
    if attempt >= self.max_attempts:
      return FetchError(url, last.reason, last.detail, attempts=attempt)
    return None
