"""The SAS frame files: /sas/dr{N}/{boss|eboss}/photoObj/frames/...

`Sky.frame_bytes` as application/x-bzip2: the real file when the local SAS
mirror holds it (read as it is, not cached again), else a simulated frame of
a field with catalogue objects (cached). 404 for a malformed path
(`sas_layout.parse_frame_path`) or a field neither holds.
"""

# Follows the SDSS data model page of the frame file,
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
# (the paths the SAS serves, as static files: a missing one is a 404).

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

from aiohttp import web

from skytfds import catalog as catalog_lib
from skytfds import survey
from skytfds.emulator import sas_layout
from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator


async def sas_frame(emulator: 'Emulator',
                    request: web.Request) -> web.StreamResponse:
  tail = request.match_info['tail']
  try:
    frame = sas_layout.parse_frame_path(tail)
  except sas_layout.NotAFramePath as e:
    raise params.HttpError(404, f'Not Found: {e}') from None
  sas_root = getattr(emulator.sky, 'sas_root', None)
  real = sas_root is not None and (pathlib.Path(sas_root) / tail).is_file()
  frame_id = emulator.frame_ids.get((frame.run, frame.camcol, frame.field))
  if frame_id is None:
    # A field without catalogue objects exists only as a real file.
    if not real:
      raise params.HttpError(404, f'Not Found: field {frame.run:06d}-'
                             f'{frame.camcol}-{frame.field:04d} holds no '
                             'catalogue object in this emulated sky.')
    frame_id = catalog_lib.FrameId(frame.run, survey.RERUN, frame.camcol,
                                   frame.field)
  return await emulator.serve(
      request, payload='bz2', content_type='application/x-bzip2',
      cache_name=None if real else 'sas/' + tail,
      produce=lambda: emulator.sky.frame_bytes(frame_id, frame.band,
                                               frame.release))


def add_routes(app: web.Application, emulator: 'Emulator') -> None:
  async def handler(request: web.Request) -> web.StreamResponse:
    return await sas_frame(emulator, request)

  app.router.add_get('/sas/{tail:.+}', handler)
