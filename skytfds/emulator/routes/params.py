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
  """A 4xx answer with a message for the user."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


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
