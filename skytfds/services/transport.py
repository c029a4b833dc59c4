"""One attempt at reading a URL: an HTTP GET with aiohttp, or any other base with fsspec.

Each function makes exactly one try and reports a failure as `AttemptFailed`
(with whether another try may help); retrying is the Fetcher's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import time
import urllib.parse

import aiohttp
import fsspec

from skytfds.services import bodies
from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import one_line

_HTTP_SCHEMES = ('http', 'https')
_LOCAL_PROTOCOLS = ('file', 'local', 'memory')
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERROR_BODY_BYTES = 65536  # Enough of an error answer to quote it.


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


def retry_after_seconds(value: str | None) -> float | None:
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


async def get_http(session: aiohttp.ClientSession, url: str, kind: str, *,
                   timeout_s: float, max_bytes: int,
                   check: bodies.AnswerCheck) -> bytes:
  """One GET of `url`: the body, checked by `check` for `kind`.

  Raises:
    AttemptFailed: a non-200 answer, a body that fails its checks, a timeout
      (no complete answer within timeout_s) or a connection failure.
  """
  try:
    async with session.get(
        url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
      status = response.status
      if status != 200:
        body = await _read_limited(response, min(max_bytes, _ERROR_BODY_BYTES),
                                   truncate=True)
        raise check.error(status, body) or _status_failure(response, body)
      length = response.content_length
      if length is not None and length > max_bytes:
        raise AttemptFailed('too_large', f'Content-Length {length} exceeds the '
                            f'{max_bytes}-byte cap', retryable=False)
      data = await _read_limited(response, max_bytes)
      encoding = response.headers.get('Content-Encoding', 'identity').lower()
      if length is not None and encoding in ('', 'identity') and len(data) != length:
        raise AttemptFailed('truncated', f'got {len(data)} of {length} bytes')
      check.body(data, kind, content_type=response.headers.get('Content-Type', ''),
                 max_bytes=max_bytes)
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
    raise AttemptFailed('truncated', f'body cut short ({one_line(e)})') from e
  except (aiohttp.ServerTimeoutError, asyncio.TimeoutError, TimeoutError) as e:
    raise AttemptFailed('timeout', f'no complete answer within {timeout_s:g} s') from e
  except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
          aiohttp.ClientConnectionError, ConnectionError) as e:
    raise AttemptFailed('connection_error',
                        f'connection dropped ({type(e).__name__}: {one_line(e)})') from e
  except aiohttp.ClientError as e:
    raise AttemptFailed('client_error', f'{type(e).__name__}: {one_line(e)}') from e


async def _read_limited(response: aiohttp.ClientResponse, limit: int, *,
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


def _status_failure(response: aiohttp.ClientResponse,
                    body: bytes) -> AttemptFailed:
  """The generic reading of a non-200 status: which statuses are worth a retry."""
  status = response.status
  excerpt = bodies.excerpt(body)
  said = f': "{excerpt}"' if excerpt else ''
  retry_after_s = retry_after_seconds(response.headers.get('Retry-After'))
  if status in (404, 410):
    return AttemptFailed('not_found', f'not found (HTTP {status})', retryable=False)
  if status == 429:
    return AttemptFailed('http_429', f'rate limited (HTTP 429){said}',
                         retry_after_s=retry_after_s)
  if status in _RETRYABLE_STATUSES or status >= 500:
    return AttemptFailed(f'http_{status}', f'server error (HTTP {status}){said}',
                         retry_after_s=retry_after_s)
  return AttemptFailed(f'http_{status}', f'HTTP {status} {response.reason or ""}'
                       f'{said}'.strip(), retryable=False)


async def get_fsspec(url: str, kind: str, *, max_bytes: int) -> bytes:
  """One read of a path or fsspec URL (in a worker thread), checked for `kind`."""
  try:
    data = await asyncio.to_thread(_read_fsspec_sync, url, max_bytes)
  except AttemptFailed:
    raise
  except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
    raise AttemptFailed('not_found', f'no such file ({type(e).__name__})',
                        retryable=False) from e
  except PermissionError as e:
    raise AttemptFailed('permission', f'permission denied: {e}',
                        retryable=False) from e
  except (ImportError, ValueError) as e:
    raise AttemptFailed('bad_url', f'cannot open with fsspec: {one_line(e)}',
                        retryable=False) from e
  except Exception as e:  # pylint: disable=broad-except  (remote stores vary)
    raise AttemptFailed('storage_error', f'{type(e).__name__}: {one_line(e)}') from e
  try:
    bodies.validate_body(data, kind, max_bytes=max_bytes)
  except AttemptFailed as e:
    if is_local_base(url):
      e.retryable = False  # A local file reads the same again: no use retrying.
    raise
  return data


def _read_fsspec_sync(url: str, max_bytes: int) -> bytes:
  fs, path = fsspec.core.url_to_fs(url)
  try:
    size = fs.size(path)
  except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
    raise
  except Exception:  # pylint: disable=broad-except  (size is only a pre-check)
    size = None
  if size is not None and size > max_bytes:
    raise AttemptFailed('too_large', f'{size} bytes exceeds the '
                        f'{max_bytes}-byte cap', retryable=False)
  with fs.open(path, 'rb') as f:
    data = f.read(max_bytes + 1)
  if len(data) > max_bytes:
    raise AttemptFailed('too_large', f'file exceeds the {max_bytes}-byte cap',
                        retryable=False)
  return data
