"""Every star and galaxy of some simulated fields, labelled: a faint training set.

SDSS spectroscopy targets bright objects, so a spectroscopic catalogue (and a
build from it) holds almost nothing fainter than r = 22, while an imaging
field goes to r ~ 23. The SDSS photometric pipeline labels every detection
STAR or GALAXY by its shape (PhotoObj `type`: 6 or 3), which is how
../shared/data/labels/photometric_003918-3-0213.csv was made. On the
emulator's sky the equivalent is what it drew: a field's background sources,
point sources labelled STAR and extended ones GALAXY, written in that labels
file's layout (ra, dec, run, rerun, camcol, field, class) plus their true
ugriz magnitudes, to be built as a user catalogue (`SKYTFDS_CATALOG`,
config `custom`) against the same emulator (same catalogue, same seed).

The labels are the truth, where the real pipeline's are a measurement that
errs at the faint end (compact galaxies called stars); background galaxies
are drawn to r = 22.5 and stars to 23 (`population.tile_sources`).
"""

# Follows the SDSS DR17 schema as SkyServer's Schema Browser shows it
# (skyserver.sdss.org/dr17/MoreTools/browser: PhotoObjAll.type and the
# PhotoType table, 3 GALAXY and 6 STAR, as emulator/tables.py serves them) and
# the layout of ../shared/data/labels/photometric_003918-3-0213.csv.

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from skytfds import survey
from skytfds.emulator import sas_layout

if TYPE_CHECKING:
  from skytfds.catalog import FrameId
  from skytfds.emulator.sky import Sky

# Columns of the labels file, in order.
COLUMNS = ('ra', 'dec', 'run', 'rerun', 'camcol', 'field', 'class') + survey.BANDS
# Sources kept this far (r-frame pixels) inside the edge: half a 64-pixel
# stamp, plus the bands' offsets from r (up to ~12 px).
MARGIN_PX = 48.0
R_RANGE = (14.0, 23.0)


def real_frame_held(sas_root, frame: 'FrameId') -> bool:
  """Whether a local SAS mirror holds any band of this field (served real)."""
  if sas_root is None:
    return False
  return any(
      (sas_root / sas_layout.frame_path(survey.DEFAULT_RELEASE, frame.run,
                                        frame.camcol, frame.field, band)
       ).is_file() for band in survey.BANDS)


def densest_fields(sky: 'Sky', n: int) -> list['FrameId']:
  """The n simulated fields holding most catalogue objects (ties: by name).

  Fields that the sky serves as real frames (its sas_root) are left out: their
  sources are not the emulator's to label.
  """
  counts = collections.Counter(obj.frame for obj in sky.catalog.objects)
  ranked = sorted(counts, key=lambda frame: (-counts[frame], frame))
  simulated = [f for f in ranked if not real_frame_held(sky.sas_root, f)]
  return simulated[:n]


def label_rows(sky: 'Sky', frames: Iterable['FrameId'],
               r_range: Sequence[float] = R_RANGE,
               margin_px: float = MARGIN_PX) -> list[dict]:
  """One row per background source of each field with r in r_range.

  A source seen by two overlapping fields is listed once, under the first.
  """
  r_lo, r_hi = r_range
  rows, seen = [], set()
  for frame in frames:
    for source in sky.background_in(frame, margin_px):
      r = source.mags[survey.BANDS.index('r')]
      where = (round(source.ra, 7), round(source.dec, 7))
      if not r_lo <= r <= r_hi or where in seen:
        continue
      seen.add(where)
      rows.append({
          'ra': source.ra, 'dec': source.dec, 'run': frame.run,
          'rerun': frame.rerun, 'camcol': frame.camcol, 'field': frame.field,
          'class': 'GALAXY' if source.galaxy else 'STAR',
          **dict(zip(survey.BANDS, source.mags))})
  return rows


def labels_csv(rows: Iterable[dict]) -> str:
  """The rows as CSV text in COLUMNS order."""
  lines = [','.join(COLUMNS)]
  for row in rows:
    values = []
    for column in COLUMNS:
      value = row[column]
      if column in ('ra', 'dec'):
        values.append(f'{value:.7f}')
      elif column in survey.BANDS:
        values.append(f'{value:.4f}' if math.isfinite(value) else '')
      else:
        values.append(str(value))
    lines.append(','.join(values))
  return '\n'.join(lines) + '\n'
