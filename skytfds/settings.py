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

DEFAULT_SKYSERVER_URL = 'https://skyserver.sdss.org'
DEFAULT_SAS_URL = 'https://data.sdss.org/sas'
DEFAULT_PS1_URL = 'https://ps1images.stsci.edu'
DEFAULT_MAX_CONCURRENCY = 8


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


def catalog_source() -> str | None:
  """A user catalogue (path or URL) that replaces the SQL query, if set."""
  value = os.environ.get(CATALOG_ENV, '').strip()
  return value or None


def show_tracebacks() -> bool:
  """Whether an error the user must fix shows its traceback (SKYTFDS_TRACEBACK=1)."""
  return os.environ.get(TRACEBACK_ENV, '').strip() not in ('', '0')
