"""Tests of skytfds.services.retries: waits, and when a fetch gives up."""

import pytest

from skytfds import settings
from skytfds.services import hosts
from skytfds.services import retries
from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import FetchError
from skytfds.services.errors import ServiceOutage
from skytfds.services.errors import ServiceUnreachable

URL = 'https://data.example/sas/dr17/frame.fits.bz2'
ORIGIN = 'https://data.example'
TIMEOUT = AttemptFailed('timeout', 'no complete answer within 5 s')
REFUSED = AttemptFailed('connection_refused', 'connection refused', refused=True)
BUSY = AttemptFailed('http_503', 'server error (HTTP 503)')


def _policy(**kw) -> retries.RetryPolicy:
  options = dict(max_attempts=4, backoff_s=1.0, backoff_max_s=8.0,
                 retry_after_max_s=20.0, unreachable_after=2, seed=0)
  options.update(kw)
  return retries.RetryPolicy(**options)


def test_wait_after_a_refused_connection_is_short_whatever_the_backoff():
  policy = _policy(backoff_s=100.0, backoff_max_s=100.0)
  waits = [policy.wait_s(3, REFUSED) for _ in range(20)]
  assert all(0 <= w <= retries.REFUSED_MAX_WAIT_S for w in waits)
  # Another failure waits the full backoff, Retry-After included (capped).
  busy = AttemptFailed('http_429', 'rate limited', retry_after_s=60.0)
  assert _policy().wait_s(1, busy) == 20.0


def test_host_pause_is_at_least_half_its_ceiling_or_the_retry_after():
  policy = _policy()
  for round_ in range(1, 8):
    ceiling = min(8.0, 2 ** (round_ - 1))
    pauses = [policy.host_pause(round_, None) for _ in range(30)]
    assert all(ceiling / 2 <= p <= ceiling for p in pauses)
  assert policy.host_pause(1, 15.0) == 15.0
  assert policy.host_pause(1, 1000.0) == 20.0


def test_a_final_failure_gives_up_at_once():
  policy = _policy()
  final = AttemptFailed('not_found', 'not found (HTTP 404)', retryable=False)
  error = policy.give_up(URL, ORIGIN, final, 1, retries.Tally(4), None)
  assert type(error) is FetchError  # pylint: disable=unidiomatic-typecheck
  assert (error.reason, error.attempts) == ('not_found', 1)


def test_gives_up_after_max_timeouts_or_max_attempts():
  policy = _policy(max_attempts=4)
  tally = retries.Tally(max_timeouts=2)
  assert policy.give_up(URL, ORIGIN, TIMEOUT, 1, tally, None) is None
  assert policy.give_up(URL, ORIGIN, BUSY, 2, tally, None) is None
  error = policy.give_up(URL, ORIGIN, TIMEOUT, 3, tally, None)
  assert (error.reason, error.attempts, tally.timeouts) == ('timeout', 3, 2)

  tally = retries.Tally(max_timeouts=4)
  assert all(policy.give_up(URL, ORIGIN, BUSY, attempt, tally, None) is None
             for attempt in (1, 2, 3))
  error = policy.give_up(URL, ORIGIN, BUSY, 4, tally, None)
  assert (error.reason, error.attempts) == ('http_503', 4)


def test_refused_in_a_row_is_unreachable_and_remembered_for_the_host(monkeypatch):
  monkeypatch.setenv(settings.SAS_URL_ENV, 'https://data.example/sas')
  policy = _policy(unreachable_after=2)
  tally = retries.Tally(max_timeouts=4)
  assert policy.give_up(URL, ORIGIN, REFUSED, 1, tally, None) is None
  assert policy.give_up(URL, ORIGIN, BUSY, 2, tally, None) is None  # Not in a row.
  assert policy.give_up(URL, ORIGIN, REFUSED, 3, tally, None) is None
  assert policy.known_unreachable(URL, ORIGIN, 1) is None
  error = policy.give_up(URL, ORIGIN, REFUSED, 4, tally, None)
  assert isinstance(error, ServiceUnreachable) and error.attempts == 4
  assert 'Set SKYTFDS_SAS_URL to a service you can reach' in error.hint
  other = policy.known_unreachable(ORIGIN + '/sas/other.fits', ORIGIN, 1)
  assert isinstance(other, ServiceUnreachable) and other is not error
  assert (other.reason, other.attempts, other.hint) == (
      'connection_refused', 1, error.hint)
  assert policy.known_unreachable(URL, 'https://elsewhere.example', 1) is None


def test_the_outage_of_the_host_ends_the_fetch():
  gate = hosts.HostGate(ORIGIN, max_rate=0, max_outage_s=60)
  gate.outage = ServiceOutage(ORIGIN, 'http_503', 'busy', host=ORIGIN,
                              failing_s=61, limit_s=60)
  error = _policy().give_up(URL, ORIGIN, BUSY, 1, retries.Tally(4), gate)
  assert isinstance(error, ServiceOutage) and error.attempts == 1


@pytest.mark.parametrize('url, env', [
    ('https://data.example/sas/dr17/frame.fits.bz2', settings.SAS_URL_ENV),
    ('https://sky.example/dr17/SqlSearch?cmd=x', settings.SKYSERVER_URL_ENV),
])
def test_env_hint_names_the_variable_of_the_service(monkeypatch, url, env):
  monkeypatch.setenv(settings.SAS_URL_ENV, 'https://data.example/sas')
  monkeypatch.setenv(settings.SKYSERVER_URL_ENV, 'https://sky.example/dr17')
  assert f'Set {env} to a service you can reach' in retries.env_hint(url)
  assert retries.env_hint('https://unknown.example/x').endswith(
      'Check SKYTFDS_SKYSERVER_URL, SKYTFDS_SAS_URL, SKYTFDS_PS1_URL')
