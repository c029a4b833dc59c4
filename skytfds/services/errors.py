"""What a failed fetch says: the errors users see, and one attempt's failure.

Every URL a message, a log line or a report shows goes through `redact_url`
(or `redact_text` for free text): credentials and signed-URL tokens never
leave the process.
"""

from __future__ import annotations

import re
import urllib.parse

# Query parameters whose value is a secret (signed URLs, API keys), by name
# (case-insensitive), and words that make any name a secret one.
_SECRET_PARAMS = frozenset({
    'sig', 'signature', 'key', 'apikey', 'api_key', 'api-key', 'token', 'auth',
    'authorization', 'access_token', 'id_token', 'refresh_token', 'password',
    'passwd', 'pwd', 'secret', 'client_secret', 'code', 'session',
    'x-amz-signature', 'x-amz-credential', 'x-amz-security-token',
    'x-goog-signature', 'x-goog-credential', 'x-goog-security-token',
})
_SECRET_WORDS = ('token', 'signature', 'secret', 'password', 'passwd',
                 'credential', 'apikey', 'api_key', 'api-key')
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>()\[\]{}]+")
_USERINFO = re.compile(r'(//)[^/?#@\s]*@')
MASK = '***'


def _is_secret_param(name: str) -> bool:
  name = name.strip().lower()
  return name in _SECRET_PARAMS or any(word in name for word in _SECRET_WORDS)


def _redact_query(query: str) -> str:
  out = []
  for part in query.split('&'):
    name, eq, value = part.partition('=')
    if eq and value and _is_secret_param(urllib.parse.unquote_plus(name)):
      part = f'{name}={MASK}'
    out.append(part)
  return '&'.join(out)


def redact_url(url: str) -> str:
  """`url` safe to print or store: no user:password, no signed-URL tokens.

  The `user:password@` part is removed, and the value of every query
  parameter named like a secret (sig, signature, token, key, password,
  X-Amz-Signature, X-Amz-Credential, X-Goog-Signature, access_token, ...)
  becomes `***`. Everything else is kept byte for byte; a plain path comes
  back unchanged.
  """
  if not isinstance(url, str):
    url = str(url)
  try:
    parts = urllib.parse.urlsplit(url)
  except ValueError:  # Not parseable (a bad IPv6 literal): strip what looks like userinfo.
    return _USERINFO.sub(r'\1', url)
  if not parts.scheme or len(parts.scheme) == 1:
    return url  # A local path (or a Windows drive).
  netloc = parts.netloc.rpartition('@')[2]
  query = _redact_query(parts.query) if parts.query else ''
  fragment = _redact_query(parts.fragment) if '=' in parts.fragment else parts.fragment
  if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
    return url
  return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query,
                                                fragment=fragment))


redact = redact_url  # The older name.


def redact_text(text: object) -> str:
  """`text` with every URL in it passed through `redact_url`."""
  def one(match: re.Match) -> str:
    url = match.group(0)
    kept = url.rstrip('.,;:!?')  # Punctuation after a URL is the sentence's.
    return redact_url(kept) + url[len(kept):]

  return _URL_IN_TEXT.sub(one, str(text))


def short_url(url: str, limit: int = 100) -> str:
  """`url` cut to `limit` characters (with how long it was) for messages."""
  if len(url) <= limit:
    return url
  return f'{url[:limit]}... ({len(url)} characters)'


class FetchError(Exception):
  """A resource could not be fetched; `str()` is one line naming URL and reason.

  Attributes:
    url: the URL (credentials and tokens removed) that failed.
    reason: a short machine word, e.g. 'not_found', 'http_503', 'truncated'.
    detail: a human explanation (may quote a server message excerpt; URLs in
      it are redacted too).
    attempts: how many attempts were made.
  """

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1):
    self.url = redact_url(url)
    self.reason = reason
    self.detail = redact_text(one_line(detail))
    self.attempts = attempts
    super().__init__(self._message())

  def _message(self) -> str:
    text = f'cannot fetch {self.url}: {self.detail or self.reason}'
    if self.attempts > 1:
      text += f' (gave up after {self.attempts} attempts; last reason: {self.reason})'
    else:
      text += f' [{self.reason}]'
    return text

  def __reduce__(self):
    return (_rebuild_error, (type(self), self.url, self.reason, self.detail,
                             self.attempts))


class ServiceUnreachable(FetchError):
  """Connection refused or host unknown: raised fast, without a retry storm."""

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1, hint: str = ''):
    self.hint = hint
    super().__init__(url, reason, detail, attempts=attempts)

  def _message(self) -> str:
    # Cause and fix first; the URL (a SQL query can make it ~600 characters
    # of percent-encoding) last and shortened.
    host = urllib.parse.urlsplit(self.url).netloc or self.url
    text = f'cannot reach {host}: {self.detail or self.reason}.'
    if self.hint:
      text += f' {self.hint}.'
    return f'{text} URL: {short_url(self.url)}'

  def __reduce__(self):
    return (_rebuild_unreachable, (self.url, self.reason, self.detail,
                                   self.attempts, self.hint))


class ServiceOutage(ServiceUnreachable):
  """A host has failed every request for longer than the outage limit.

  The build stops here (like `ServiceUnreachable`); what it fetched is kept,
  so running it again later resumes.

  Attributes:
    host: the host that fails (scheme://host:port).
    failing_s: seconds it has been failing, without one good answer.
    limit_s: the outage limit (SKYTFDS_MAX_OUTAGE_S).
  """

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1, hint: str = '', host: str = '',
               failing_s: float = 0.0, limit_s: float = 0.0):
    self.host = redact_url(host)
    self.failing_s = float(failing_s)
    self.limit_s = float(limit_s)
    super().__init__(url, reason, detail, attempts=attempts, hint=hint)

  def _message(self) -> str:
    return (f'{self.host} has failed every request for {self.failing_s:.0f} s '
            f'(last: {self.detail or self.reason}, on {self.url}); stopping the '
            'build: run it again later and it resumes where it stopped '
            f'(SKYTFDS_MAX_OUTAGE_S={self.limit_s:g} s sets how long an outage '
            'is waited out)')

  def __reduce__(self):
    return (_rebuild_outage, (self.url, self.reason, self.detail, self.attempts,
                              self.hint, self.host, self.failing_s, self.limit_s))


def _rebuild_error(cls, url, reason, detail, attempts):
  return cls(url, reason, detail, attempts=attempts)


def _rebuild_unreachable(url, reason, detail, attempts, hint):
  return ServiceUnreachable(url, reason, detail, attempts=attempts, hint=hint)


def _rebuild_outage(url, reason, detail, attempts, hint, host, failing_s, limit_s):
  return ServiceOutage(url, reason, detail, attempts=attempts, hint=hint,
                       host=host, failing_s=failing_s, limit_s=limit_s)


class AttemptFailed(Exception):
  """One attempt (or a body check) failed; `Fetcher` turns it into FetchError.

  Attributes:
    reason: a short machine word ('empty', 'html', 'truncated', 'http_503'...).
    detail: a human explanation.
    retryable: whether another attempt may help.
    retry_after_s: the server's Retry-After, in seconds, if it sent one.
    refused: connection refused / host unknown (counts towards ServiceUnreachable).
  """

  def __init__(self, reason: str, detail: str, *, retryable: bool = True,
               retry_after_s: float | None = None, refused: bool = False):
    super().__init__(detail)
    self.reason = reason
    self.detail = detail
    self.retryable = retryable
    self.retry_after_s = retry_after_s
    self.refused = refused


class CorruptBody(AttemptFailed):
  """A body that passed the download checks but does not decode.

  Raised by a `verify` callable given to `Fetcher.fetch`: the copy is dropped
  and fetched again, with the same retry budget as any transient fault.
  """

  def __init__(self, detail: str, *, reason: str = 'corrupt'):
    super().__init__(reason, detail, retryable=True)


def one_line(text: object) -> str:
  """`text` with every run of whitespace (newlines too) made one space."""
  return ' '.join(str(text).split())
