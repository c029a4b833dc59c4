"""What a failed fetch says: the errors users see, and one attempt's failure."""

from __future__ import annotations

import urllib.parse


class FetchError(Exception):
  """A resource could not be fetched; `str()` is one line naming URL and reason.

  Attributes:
    url: the URL (credentials removed) that failed.
    reason: a short machine word, e.g. 'not_found', 'http_503', 'truncated'.
    detail: a human explanation (may quote a server message excerpt).
    attempts: how many attempts were made.
  """

  def __init__(self, url: str, reason: str, detail: str = '', *,
               attempts: int = 1):
    self.url = redact(url)
    self.reason = reason
    self.detail = one_line(detail)
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
    text = f'cannot reach {self.url}: {self.detail or self.reason}'
    if self.hint:
      text += f' ({self.hint})'
    return text

  def __reduce__(self):
    return (_rebuild_unreachable, (self.url, self.reason, self.detail,
                                   self.attempts, self.hint))


def _rebuild_error(cls, url, reason, detail, attempts):
  return cls(url, reason, detail, attempts=attempts)


def _rebuild_unreachable(url, reason, detail, attempts, hint):
  return ServiceUnreachable(url, reason, detail, attempts=attempts, hint=hint)


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


def redact(url: str) -> str:
  """`url` without user:password, for messages and logs."""
  try:
    parts = urllib.parse.urlsplit(url)
  except ValueError:
    return url
  if parts.username is None and parts.password is None:
    return url
  host = parts.hostname or ''
  if parts.port:
    host = f'{host}:{parts.port}'
  return urllib.parse.urlunsplit(parts._replace(netloc=host))


def one_line(text: object) -> str:
  """`text` with every run of whitespace (newlines too) made one space."""
  return ' '.join(str(text).split())
