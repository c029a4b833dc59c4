"""One attempt at reading a URL: an HTTP GET with aiohttp, or any other base with fsspec.

Each function makes exactly one try and reports a failure as `AttemptFailed`
(with whether another try may help); retrying is the Fetcher's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import errno
import threading
import time
import urllib.parse
from typing import Any

import aiohttp
import fsspec

from skytfds.services import bodies
from skytfds.services.errors import AttemptFailed
from skytfds.services.errors import one_line
from skytfds.services.errors import redact_url

_HTTP_SCHEMES = ('http', 'https')
_LOCAL_PROTOCOLS = ('file', 'local', 'memory')
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERROR_BODY_BYTES = 65536  # Enough of an error answer to quote it.
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {'http': 80, 'https': 443}
MAX_REDIRECTS = 5
_FSSPEC_CHUNK = 4 * 2**20  # A read checks its deadline between chunks.


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


# The fields of a multipart/form-data POST: (name, value, filename or None).
Form = tuple[tuple[str, str | bytes, str | None], ...]


def check_form(form: Any) -> Form:
  """`form` as a Form (a tuple of (name, value, filename or None))."""
  try:
    fields = tuple((name, value, filename) for name, value, filename in form)
  except (TypeError, ValueError):
    raise ValueError(f'form={form!r}: expected (name, value, filename or None) '
                     'fields') from None
  for name, value, filename in fields:
    if (not isinstance(name, str) or not isinstance(value, (str, bytes))
        or not (filename is None or isinstance(filename, str))):
      raise ValueError(f'form field {name!r}: expected a str name, a str or '
                       'bytes value and a str filename or None')
  return fields


def _form_data(form: Form) -> aiohttp.FormData:
  data = aiohttp.FormData(quote_fields=False)
  for name, value, filename in form:
    if filename is None:
      data.add_field(name, value)
    else:
      data.add_field(name, value, filename=filename,
                     content_type='text/plain')
  return data


async def get_http(session: aiohttp.ClientSession, url: str, kind: str, *,
                   timeout_s: float, max_bytes: int,
                   check: bodies.AnswerCheck,
                   max_redirects: int = MAX_REDIRECTS,
                   form: Form | None = None) -> bytes:
  """One GET of `url` (a multipart POST of `form` if given): the body,
  checked by `check` for `kind`.

  Redirects are followed here, not by aiohttp, and only within the host of
  `url` (same host and port; http -> https on the same host is allowed), at
  most `max_redirects` hops; `timeout_s` covers all of them.

  Raises:
    AttemptFailed: a non-200 answer, a body that fails its checks, a timeout
      (no complete answer within timeout_s), a connection failure, or a
      refused redirect ('redirect_refused', 'too_many_redirects'; final).
  """
  try:
    return await asyncio.wait_for(
        _get_following(session, url, kind, max_bytes=max_bytes, check=check,
                       max_redirects=max_redirects, form=form), timeout_s)
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


async def _get_following(session: aiohttp.ClientSession, url: str, kind: str, *,
                         max_bytes: int, check: bodies.AnswerCheck,
                         max_redirects: int, form: Form | None = None) -> bytes:
  current = url
  for _ in range(max_redirects + 1):
    # A form is POSTed again (new FormData) at each hop of a redirect.
    method, data = ('GET', None) if form is None else ('POST', _form_data(form))
    async with session.request(method, current, data=data, allow_redirects=False,
                               timeout=aiohttp.ClientTimeout(total=None)) as response:
      status = response.status
      location = response.headers.get('Location')
      if status in _REDIRECT_STATUSES and location:
        current = redirect_target(url, current, location)
        continue
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
  raise AttemptFailed('too_many_redirects', f'more than {max_redirects} redirects '
                      f'from {redact_url(url)} (last to {redact_url(current)})',
                      retryable=False)


def _effective_port(parts: urllib.parse.SplitResult) -> int | None:
  try:
    port = parts.port
  except ValueError:
    return None
  return port if port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())


def redirect_target(origin_url: str, current: str, location: str) -> str:
  """The URL a redirect from `current` to `location` leads to, if allowed.

  Allowed: the same host as `origin_url` (the URL that was asked for), on the
  same scheme and port, or an upgrade from http to https on the same host
  (default ports). Credentials in `origin_url` are kept for the same host.

  Raises:
    AttemptFailed: 'redirect_refused' (final), naming both URLs.
  """
  asked = urllib.parse.urlsplit(origin_url)
  try:
    target = urllib.parse.urljoin(current, location.strip())
    to = urllib.parse.urlsplit(target)
  except ValueError:  # Not a URL (a broken IPv6 literal).
    target, to = location.strip(), None
  downgrade = (urllib.parse.urlsplit(current).scheme.lower() == 'https'
               and to is not None and to.scheme.lower() == 'http')
  if to is not None and not downgrade and _same_host(asked, to):
    if '@' in asked.netloc and '@' not in to.netloc:  # Same host: same credentials.
      userinfo = asked.netloc.rpartition('@')[0]
      target = urllib.parse.urlunsplit(to._replace(netloc=f'{userinfo}@{to.netloc}'))
    return target
  raise AttemptFailed(
      'redirect_refused', f'{redact_url(current)} redirected to '
      f'{redact_url(target)}, which leaves {asked.scheme}://{asked.netloc.rpartition("@")[2]}: '
      'refused (redirects are followed only within the configured host, or '
      'from http to https on it; set the service URL to where it now lives)',
      retryable=False)


def _same_host(asked: urllib.parse.SplitResult, to: urllib.parse.SplitResult) -> bool:
  from_scheme, to_scheme = asked.scheme.lower(), to.scheme.lower()
  if to_scheme not in _HTTP_SCHEMES or not to.hostname:
    return False
  if (to.hostname or '').lower() != (asked.hostname or '').lower():
    return False
  from_port, to_port = _effective_port(asked), _effective_port(to)
  if to_port is None:
    return False
  if from_scheme == to_scheme:
    return from_port == to_port
  # http -> https on the same host, both on their default ports.
  return (from_scheme, to_scheme) == ('http', 'https') and (
      from_port == _DEFAULT_PORTS['http'] and to_port == _DEFAULT_PORTS['https'])


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


async def get_fsspec(url: str, kind: str, *, max_bytes: int,
                     timeout_s: float) -> bytes:
  """One read of a path or fsspec URL, checked for `kind`, within `timeout_s`.

  The read runs in a daemon thread of its own: a store that stops answering
  (an ftp:// server sending a byte every 10 s) costs this attempt a
  'timeout' after timeout_s, exactly as an HTTP request would; the thread
  stops at its next chunk and never holds up the process's exit.
  """
  try:
    data = await _in_daemon_thread(_read_fsspec_sync, url, max_bytes, timeout_s)
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
  except (asyncio.TimeoutError, TimeoutError) as e:
    raise AttemptFailed('timeout', f'no complete answer within {timeout_s:g} s') from e
  except Exception as e:  # pylint: disable=broad-except  (remote stores vary)
    raise AttemptFailed('storage_error', f'{type(e).__name__}: {one_line(e)}') from e
  try:
    bodies.validate_body(data, kind, max_bytes=max_bytes)
  except AttemptFailed as e:
    if is_local_base(url):
      e.retryable = False  # A local file reads the same again: no use retrying.
    raise
  return data


async def _in_daemon_thread(fn, url: str, max_bytes: int, timeout_s: float):
  """fn(url, max_bytes, deadline) in a daemon thread; TimeoutError after timeout_s."""
  loop = asyncio.get_running_loop()
  future = loop.create_future()
  deadline = time.monotonic() + timeout_s

  def settle(result, error):
    if not future.done():
      if error is not None:
        future.set_exception(error)
      else:
        future.set_result(result)

  def work():
    try:
      result, error = fn(url, max_bytes, deadline), None
    except BaseException as e:  # pylint: disable=broad-except  (handed to the loop)
      result, error = None, e
    try:
      loop.call_soon_threadsafe(settle, result, error)
    except RuntimeError:  # The loop is closed: nobody waits for this read.
      return

  threading.Thread(target=work, name='skytfds-fsspec-read', daemon=True).start()
  return await asyncio.wait_for(future, timeout_s)


def _read_fsspec_sync(url: str, max_bytes: int, deadline: float) -> bytes:
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
  chunks = []
  total = 0
  with fs.open(path, 'rb') as f:
    while total <= max_bytes:
      if time.monotonic() > deadline:
        raise TimeoutError('read past its deadline')  # Nobody waits any more.
      chunk = f.read(min(_FSSPEC_CHUNK, max_bytes + 1 - total))
      if not chunk:
        break
      chunks.append(chunk)
      total += len(chunk)
  if total > max_bytes:
    raise AttemptFailed('too_large', f'file exceeds the {max_bytes}-byte cap',
                        retryable=False)
  return b''.join(chunks)
