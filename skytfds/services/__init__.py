"""Clients of the remote services: SAS frames, SkyServer, Pan-STARRS.

Each module builds URLs with pure functions and fetches through the one
`http.Fetcher` (bounded concurrency, retries, validation, atomic cache).
"""

from skytfds.services.http import FetchError
from skytfds.services.http import FetchStats
from skytfds.services.http import Fetcher
from skytfds.services.http import ServiceUnreachable
from skytfds.services.http import run
from skytfds.services.ps1 import NoCoverage

__all__ = [
    'FetchError', 'FetchStats', 'Fetcher', 'NoCoverage', 'ServiceUnreachable', 'run',
]
