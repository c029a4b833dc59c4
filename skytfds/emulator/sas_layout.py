"""Where the SAS keeps a frame file: its path below the SAS root.

  dr{N}/{boss|eboss}/photoObj/frames/{rerun}/{run}/{camcol}/
      frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2

boss for N <= 12, eboss for N >= 13; the run folder is not padded, the name
pads run to 6 digits and field to 4. Written for the emulator (the clients'
own copy lives in skytfds.services.sas): an oracle must not share the code it
checks.
"""

# Follows the SDSS data model page of the frame file,
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
# (BOSS_PHOTOOBJ = $SAS/dr{N}/{boss|eboss}/photoObj).

from __future__ import annotations

import dataclasses
import re

from skytfds import survey

_FRAME_PATH_RE = re.compile(
    r'dr(?P<release>\d{2})/(?P<flavour>boss|eboss)/photoObj/frames/'
    r'(?P<rerun>\d+)/(?P<run>[1-9]\d{0,5})/(?P<camcol>[1-6])/'
    r'frame-(?P<band>[ugriz])-(?P<run6>\d{6})-(?P<camcol2>[1-6])-'
    r'(?P<field>\d{4})\.fits\.bz2')


class NotAFramePath(ValueError):
  """A path that names no frame file the SAS serves."""


@dataclasses.dataclass(frozen=True)
class FramePath:
  release: int
  run: int
  camcol: int
  field: int
  band: str


def flavour(release: int) -> str:
  """The SAS folder of a release's imaging: boss to DR12, eboss from DR13."""
  return 'boss' if release <= 12 else 'eboss'


def frame_path(release: int, run: int, camcol: int, field: int,
               band: str) -> str:
  """The path of a frame below the SAS root."""
  return (f'dr{release}/{flavour(release)}/photoObj/frames/{survey.RERUN}/'
          f'{run}/{camcol}/frame-{band}-{run:06d}-{camcol}-{field:04d}'
          '.fits.bz2')


def parse_frame_path(tail: str) -> FramePath:
  """Reads a frame path below /sas/ strictly; raises NotAFramePath."""
  m = _FRAME_PATH_RE.fullmatch(tail)
  if not m:
    raise NotAFramePath(
        f'/sas/{tail} is not a frame path (dr{{N}}/eboss/photoObj/frames/'
        f'{survey.RERUN}/{{run}}/{{camcol}}/frame-{{band}}-{{run:06d}}-'
        '{camcol}-{field:04d}.fits.bz2).')
  release = int(m['release'])
  if release not in survey.RELEASES:
    raise NotAFramePath(f'release dr{release} is not served (dr'
                        f'{survey.RELEASES[0]}..dr{survey.RELEASES[-1]}).')
  if m['flavour'] != flavour(release):
    raise NotAFramePath(f'dr{release} frames live under {flavour(release)}/, '
                        f'not {m["flavour"]}/.')
  if int(m['rerun']) != survey.RERUN:
    raise NotAFramePath(f'rerun {m["rerun"]} (frames are rerun '
                        f'{survey.RERUN}).')
  run = int(m['run'])
  if int(m['run6']) != run or m['camcol2'] != m['camcol']:
    raise NotAFramePath('the file name does not match its run/camcol folders '
                        f'({tail}).')
  return FramePath(release, run, int(m['camcol']), int(m['field']), m['band'])
