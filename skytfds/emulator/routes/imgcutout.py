"""SkyServer's ImgCutout/getjpeg: a colour JPEG cutout around (ra, dec).

  /dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=&opt=

As the real service answers:
- `Sky.cutout_jpeg` as image/jpeg, status 200;
- width and height clipped to 64..2048 pixels, scale to 0.015..2400
  arcsec/pixel (not refused); `opt` read letter by letter, upper-cased,
  other characters ignored; ra taken modulo 360 and a dec beyond a pole
  brought back over it; ra and dec also as h:m:s and d:m:s;
- a position outside the survey's footprint (`Sky.in_footprint`): status 404
  with a JPEG body, the canvas with "Requested (ra, dec) is outside the SDSS
  footprint." drawn on it;
- no ra, dec or scale, or one that is not a number: status 400 with
  SkyServer's JSON error body.
Defaults: scale 0.396127 arcsec/pixel, width = height = 128 pixels.
"""

# Follows sciserver/SkyServerWS Controllers/ImgCutout/getJpegController.cs
# (the parameters and their defaults; "C" put before opt; status 404 and the
# reason "NOT FOUND. <message>" when ImgCutout sets errorMessage_OutOfFootprint,
# 500 when it sets errorMessage_Generic, the image as the body either way;
# missing ra/dec/scale: ArgumentException), ImgCutout/Validation.cs
# (ValidateInput: ra and dec by Double.Parse, or Coord.hms2deg / dms2deg when
# they hold ':'; scale by Convert.ToDouble; a failure is an
# ArgumentException) and ImgCutout/ImgCutout.cs (validateInput: the dec and
# ra normalisation, opt_.ToUpper() letter by letter, and width, height and
# scale clipped to [min, max] with max_scale = 2400; getFrames: no frame
# near the position is "outside the SDSS footprint"). ExceptionFilter/
# CustomFilter.cs turns an ArgumentException into 400 with a JSON body.

from __future__ import annotations

import hashlib
import math
import re
from typing import TYPE_CHECKING

from aiohttp import web

from skytfds.emulator import cutouts
from skytfds.emulator.routes import params
from skytfds.emulator.routes import sqlsearch

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

DEFAULT_SCALE = 0.396127          # arcsec/pixel
DEFAULT_SIZE = 128                # pixels
SIZE_RANGE = (64, 2048)           # pixels, width and height: clipped to it
SCALE_RANGE = (0.015, 2400.0)     # arcsec/pixel: clipped to it
RENDERED_SCALE_MAX = cutouts.SCALE_RANGE[1]  # The emulated sky's own limit.
_RANGES = ('ra must be in [0,360], dec must be in [-90,90], scale must be in '
           '[0.015, 60.0]')
_MISSING = ('There are not enough parameters to process your request. Enter '
            f'position (ra,dec) values properly.{_RANGES}. ')
_BAD_FORMAT = (f'The input values are not in correct format. {_RANGES}, height '
               'and width must be in [64,2048]. \n Detail Error Message: ')
_SEXAGESIMAL = re.compile(r'\s*([+-]?)(\d+(?:\.\d*)?)(?::(\d+(?:\.\d*)?))?'
                          r'(?::(\d+(?:\.\d*)?))?\s*')


def _bad_request(message: str) -> params.HttpError:
  return sqlsearch.database_error(message, status=400)


def _number(text: str) -> float:
  """Double.Parse: a finite number ('Input string ...' otherwise)."""
  try:
    value = float(text)
  except ValueError:
    value = math.nan
  if not math.isfinite(value):
    raise _bad_request(_BAD_FORMAT + 'Input string was not in a correct '
                       'format.')
  return value


def _sexagesimal(text: str, hours: bool) -> float:
  """Coord.hms2deg / dms2deg: 'h:m:s' (x 15) or '[+-]d:m:s' in degrees."""
  m = _SEXAGESIMAL.fullmatch(text)
  if not m:
    raise _bad_request(_BAD_FORMAT + 'Input string was not in a correct '
                       'format.')
  sign = -1.0 if m.group(1) == '-' else 1.0
  value = sum(float(part or 0) / 60**k
              for k, part in enumerate(m.groups()[1:]))
  return sign * value * (15.0 if hours else 1.0)


def _angle(text: str, hours: bool) -> float:
  return _sexagesimal(text, hours) if ':' in text else _number(text)


def normalise(ra: float, dec: float) -> tuple[float, float]:
  """ImgCutout.cs validateInput: dec over a pole comes back, ra mod 360."""
  if abs(dec) > 90:
    dec = math.fmod(dec, 360.0)
    if dec < 0:
      dec += 360.0
    if 90 < dec < 270:
      ra += 180.0
      dec = 180.0 - dec
    elif dec >= 270:
      dec -= 360.0
  return ra % 360.0, dec


def _size(query, name: str) -> int:
  raw = query.get(name)
  if raw is None or raw.strip() == '':
    return DEFAULT_SIZE
  try:
    value = int(raw)
  except ValueError:
    raise _bad_request(_BAD_FORMAT + f"The value '{raw}' is not valid for "
                       f'{name}.') from None
  return max(SIZE_RANGE[0], min(SIZE_RANGE[1], value))


async def getjpeg(emulator: 'Emulator',
                  request: web.Request) -> web.StreamResponse:
  release = params.release(request)
  q = request.query
  if q.get('ra') is None or q.get('dec') is None:
    raise _bad_request(_MISSING)
  ra, dec = normalise(_angle(q['ra'], hours=True),
                      _angle(q['dec'], hours=False))
  scale = _number(q.get('scale', str(DEFAULT_SCALE)))
  scale = max(SCALE_RANGE[0], min(SCALE_RANGE[1], scale))
  width, height = _size(q, 'width'), _size(q, 'height')
  if scale > RENDERED_SCALE_MAX:
    raise params.HttpError(400, f'Bad Request: scale={scale:g}: the emulated '
                           f'SkyServer renders up to {RENDERED_SCALE_MAX:g} '
                           'arcsec/pixel.')
  # opt: the server reads 'C' + opt upper-cased, letter by letter, and
  # ignores other characters; its letters choose overlays (grid, labels,
  # outlines), which the emulator does not draw: any opt gets the same image.
  in_footprint = getattr(emulator.sky, 'in_footprint', None)
  if in_footprint is not None and not await emulator.run_in_thread(
      in_footprint, ra, dec):
    body = await emulator.run_in_thread(cutouts.outside_footprint_jpeg, width,
                                        height)
    raise params.HttpError(
        404, cutouts.OUTSIDE_FOOTPRINT, body=body, content_type='image/jpeg',
        reason=f'NOT FOUND. {cutouts.OUTSIDE_FOOTPRINT}')
  name = hashlib.sha256(
      f'{release}|{ra!r}|{dec!r}|{scale!r}|{width}|{height}'.encode()
  ).hexdigest()
  return await emulator.serve(
      request, payload='jpeg', content_type='image/jpeg',
      cache_name=f'getjpeg/{name[:2]}/{name}.jpg',
      produce=lambda: emulator.sky.cutout_jpeg(ra, dec, scale=scale,
                                               width=width, height=height))


def add_routes(app: web.Application, emulator: 'Emulator') -> None:
  async def handler(request: web.Request) -> web.StreamResponse:
    return await getjpeg(emulator, request)

  app.router.add_get(r'/dr{release:\d{1,3}}/SkyServerWS/ImgCutout/getjpeg',
                     handler)
