"""SkyServer's ImgCutout/getjpeg: a colour JPEG cutout around (ra, dec).

  /dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=&opt=

`Sky.cutout_jpeg` (image/jpeg); bad parameters: 400 with a message.
Defaults: scale 0.4 arcsec/pixel, width = height = 240 pixels.
"""

# Follows sciserver/SkyServerWS Controllers/ImgCutout/getJpegController.cs
# (the parameters and their defaults) and ImgCutout/Validation.cs (their
# ranges: width and height 64..2048 pixels, scale 0.015..60 arcsec/pixel).

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from aiohttp import web

from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

DEFAULT_SCALE = 0.4               # arcsec/pixel
DEFAULT_SIZE = 240                # pixels
SIZE_RANGE = (64, 2048)           # pixels, width and height
SCALE_RANGE = (0.015, 60.0)       # arcsec/pixel
_OPT_RE = re.compile(r'[A-Za-z]{0,16}')


async def getjpeg(emulator: 'Emulator',
                  request: web.Request) -> web.StreamResponse:
  release = params.release(request)
  q = request.query
  ra, dec = params.position(q)
  scale = params.float_param(q, 'scale', DEFAULT_SCALE, *SCALE_RANGE)
  width = params.int_param(q, 'width', DEFAULT_SIZE, *SIZE_RANGE)
  height = params.int_param(q, 'height', DEFAULT_SIZE, *SIZE_RANGE)
  opt = q.get('opt', '')
  if not _OPT_RE.fullmatch(opt):
    raise params.HttpError(400, f'Parameter opt={opt!r}: letters only (e.g. '
                           'G, L, GL).')
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
