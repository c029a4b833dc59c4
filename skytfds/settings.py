"""Service locations and client limits, read from the environment.

The defaults are the real SDSS and STScI services; the emulator (and any local
mirror) is selected by setting the variables below.
"""

import os

SKYSERVER_URL_ENV = 'SKYTFDS_SKYSERVER_URL'
SAS_URL_ENV = 'SKYTFDS_SAS_URL'
PS1_URL_ENV = 'SKYTFDS_PS1_URL'
MAX_CONCURRENCY_ENV = 'SKYTFDS_MAX_CONCURRENCY'
CATALOG_ENV = 'SKYTFDS_CATALOG'
TRACEBACK_ENV = 'SKYTFDS_TRACEBACK'
MAX_RETRY_AFTER_ENV = 'SKYTFDS_MAX_RETRY_AFTER_S'
MAX_RATE_PER_HOST_ENV = 'SKYTFDS_MAX_RATE_PER_HOST'
MAX_OUTAGE_ENV = 'SKYTFDS_MAX_OUTAGE_S'

DEFAULT_SKYSERVER_URL = 'https://skyserver.sdss.org'
DEFAULT_SAS_URL = 'https://data.sdss.org/sas'
DEFAULT_PS1_URL = 'https://ps1images.stsci.edu'
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_RETRY_AFTER_S = 300.0
DEFAULT_MAX_RATE_PER_HOST = 50.0
DEFAULT_MAX_OUTAGE_S = 600.0


class SettingsError(ValueError):
  """An environment variable holds a value skytfds cannot use."""


def _base(env: str, default: str) -> str:
  value = os.environ.get(env, '').strip()
  return (value or default).rstrip('/')


def skyserver_url() -> str:
  """SkyServer base URL (SqlSearch and ImgCutout live under /dr{N}/)."""
  return _base(SKYSERVER_URL_ENV, DEFAULT_SKYSERVER_URL)


def sas_url() -> str:
  """Science Archive Server base: an http(s) URL, a local path or any fsspec URL."""
  return _base(SAS_URL_ENV, DEFAULT_SAS_URL)


def ps1_url() -> str:
  """Pan-STARRS image service base URL (cgi-bin/ps1filenames.py, fitscut.cgi)."""
  return _base(PS1_URL_ENV, DEFAULT_PS1_URL)


def max_concurrency() -> int:
  """How many requests may be in flight at once (all services together)."""
  raw = os.environ.get(MAX_CONCURRENCY_ENV, '').strip()
  if not raw:
    return DEFAULT_MAX_CONCURRENCY
  try:
    value = int(raw)
  except ValueError:
    value = 0
  if not 1 <= value <= 256:
    raise SettingsError(
        f'{MAX_CONCURRENCY_ENV}={raw!r}: expected a whole number from 1 to 256 '
        f'(default {DEFAULT_MAX_CONCURRENCY}).'
    )
  return value


def _seconds(env: str, default: float, low: float, high: float, what: str) -> float:
  """A number of `env` within [low, high]; `default` when unset."""
  raw = os.environ.get(env, '').strip()
  if not raw:
    return default
  try:
    value = float(raw)
  except ValueError:
    value = float('nan')
  if not low <= value <= high:  # NaN fails too.
    raise SettingsError(
        f'{env}={raw!r}: expected {what} from {low:g} to {high:g} '
        f'(default {default:g}).'
    )
  return value


def max_retry_after_s() -> float:
  """The longest Retry-After a server is obeyed for, seconds (longer is cut)."""
  return _seconds(MAX_RETRY_AFTER_ENV, DEFAULT_MAX_RETRY_AFTER_S, 0, 86400,
                  'seconds')


def max_rate_per_host() -> float:
  """Requests that may start per second on one host; 0 for no cap."""
  return _seconds(MAX_RATE_PER_HOST_ENV, DEFAULT_MAX_RATE_PER_HOST, 0, 100000,
                  'requests per second (0 for no cap)')


def max_outage_s() -> float:
  """Seconds a host may fail every request before the build stops."""
  return _seconds(MAX_OUTAGE_ENV, DEFAULT_MAX_OUTAGE_S, 1, 7 * 86400, 'seconds')


def catalog_source() -> str | None:
  """A user catalogue (path or URL) that replaces the SQL query, if set."""
  value = os.environ.get(CATALOG_ENV, '').strip()
  return value or None


def show_tracebacks() -> bool:
  """Whether an error the user must fix shows its traceback (SKYTFDS_TRACEBACK=1)."""
  return os.environ.get(TRACEBACK_ENV, '').strip() not in ('', '0')
