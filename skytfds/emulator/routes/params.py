"""Query parameters of the emulated services: checked, or a 4xx and a reason."""

# Follows sciserver/SkyServerWS ImgCutout/Validation.cs (a bad parameter is a
# client error with a message naming it) and ExceptionFilter/CustomFilter.cs
# (errors come back with a status and a text body).

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from skytfds import survey


class HttpError(Exception):
  """An error answer: a status and a message for the user.

  Attributes:
    status: the HTTP status.
    message: the text; the body (plain text) unless `body` is given.
    body: the body as the real service writes it (e.g. SkyServer's JSON).
    content_type: the body's MIME type.
    reason: the reason phrase of the status line (the service's own).
  """

  def __init__(self, status: int, message: str, *, body: str | bytes | None = None,
               content_type: str = 'text/plain; charset=utf-8',
               reason: str | None = None):
    super().__init__(message)
    self.status = status
    self.message = message
    self.body = body
    self.content_type = content_type
    self.reason = reason

  def response(self) -> web.Response:
    """The aiohttp response of this error."""
    body = self.message + '\n' if self.body is None else self.body
    if isinstance(body, str):
      body = body.encode('utf-8')
    return web.Response(status=self.status, reason=self.reason, body=body,
                        headers={'Content-Type': self.content_type})


def float_param(query: Any, name: str, default: float | None = None,
                low: float = -math.inf, high: float = math.inf) -> float:
  raw = query.get(name)
  if raw is None or raw.strip() == '':
    if default is None:
      raise HttpError(400, f'Missing parameter {name}= (a number).')
    return default
  try:
    value = float(raw)
  except ValueError:
    raise HttpError(400,
                    f'Parameter {name}={raw!r} is not a number.') from None
  if not math.isfinite(value) or not low <= value <= high:
    raise HttpError(400, f'Parameter {name}={raw!r} is out of range '
                    f'[{low:g}, {high:g}].')
  return value


def int_param(query: Any, name: str, default: int, low: int,
              high: int) -> int:
  raw = query.get(name)
  if raw is None or raw.strip() == '':
    return default
  try:
    value = int(raw)
  except ValueError:
    raise HttpError(400, f'Parameter {name}={raw!r} is not a whole '
                    'number.') from None
  if not low <= value <= high:
    raise HttpError(400, f'Parameter {name}={raw!r} is out of range '
                    f'[{low}, {high}].')
  return value


def position(query: Any) -> tuple[float, float]:
  """(ra in [0, 360), dec) from ra= and dec= (degrees)."""
  ra = float_param(query, 'ra', low=0.0, high=360.0)
  dec = float_param(query, 'dec', low=-90.0, high=90.0)
  return ra % 360.0, dec


def release(request: web.Request) -> int:
  """The data release N of a /dr{N}/ path; 404 for one not served."""
  number = int(request.match_info['release'])
  if number not in survey.RELEASES:
    raise HttpError(404, f'Not Found: release dr{number} is not served '
                    f'(dr{survey.RELEASES[0]}..dr{survey.RELEASES[-1]}).')
  return number
