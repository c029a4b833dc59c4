"""Frames of build and download: real SDSS fields, repeated as other fields."""

import bz2
import csv
import os
import pathlib
from typing import Any

import numpy as np

from benchmarks import common
from skytfds import catalog as catalog_lib
from skytfds import survey
from skytfds.services import sas

FRAME_MARGIN_PX = 64    # Objects are placed at least this far from a frame edge.
FIELD_COPY_STEP = 400   # Copy k of field F is served as field F + k * 400.
MAX_FIELD = 4095        # 12 bits in an objid: the catalogue refuses larger.
# The five-band r frames of the local SAS mirror (sas.frame_path's layout).
FRAMES_GLOB = (f'dr{survey.DEFAULT_RELEASE}/eboss/photoObj/frames/*/*/*/'
               'frame-r-*.fits.bz2')


def real_fields(sas_root: pathlib.Path) -> dict[catalog_lib.FrameId,
                                                dict[str, pathlib.Path]]:
  """Fields of the local SAS mirror that have all five bands -> band -> path."""
  fields = {}
  for r_path in sorted(sas_root.glob(FRAMES_GLOB)):
    run, camcol, field = r_path.name[len('frame-r-'):-len('.fits.bz2')].split('-')
    frame = catalog_lib.FrameId(int(run), int(r_path.parts[-4]), int(camcol),
                                int(field))
    paths = {b: r_path.with_name(r_path.name.replace('frame-r-', f'frame-{b}-'))
             for b in survey.BANDS}
    if all(p.is_file() for p in paths.values()):
      fields[frame] = paths
  if not fields:
    raise SystemExit(f'benchmark: no five-band fields under {sas_root}: point '
                     '--shared_data at the folder holding sas/')
  return fields


def frame_wcs(path: pathlib.Path):
  """The celestial WCS of a .fits.bz2 frame, from its primary header only."""
  from astropy import wcs as astropy_wcs  # pylint: disable=g-import-not-at-top
  from astropy.io import fits  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  raw = bz2.BZ2Decompressor().decompress(path.read_bytes(), max_length=2880 * 64)
  header = fits.Header.fromstring(raw[:raw.index(b'END' + b' ' * 77) + 80])
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', astropy_wcs.FITSFixedWarning)
    return astropy_wcs.WCS(header).celestial


def mirror_fields(sas_root: pathlib.Path, out: pathlib.Path, copies: int
                  ) -> dict[catalog_lib.FrameId, catalog_lib.FrameId]:
  """A SAS tree under `out` with `copies` of every real field (symlinks).

  Copy k of field F is field F + k * FIELD_COPY_STEP of the same run and
  camcol (at most MAX_FIELD). Returns served field -> the real field whose files it holds.
  """
  fields = real_fields(sas_root)
  highest = max(f.field for f in fields) + (copies - 1) * FIELD_COPY_STEP
  if copies < 1 or highest > MAX_FIELD:
    raise SystemExit(f'benchmark: --copies={copies}: field numbers would reach '
                     f'{highest} (> {MAX_FIELD}); use fewer copies')
  served = {}
  for real, paths in fields.items():
    for k in range(copies):
      frame = real._replace(field=real.field + k * FIELD_COPY_STEP)
      for band, path in paths.items():
        target = out / sas.frame_path(frame, band)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
          os.symlink(path.resolve(), target)
      served[frame] = real
  return served


def objects_in_fields(sas_root: pathlib.Path,
                      served: dict[catalog_lib.FrameId, catalog_lib.FrameId],
                      per_field: int, seed: int = 0) -> list[dict[str, Any]]:
  """`per_field` catalogue rows at random positions inside each served field.

  Positions are drawn in r-band pixels at least FRAME_MARGIN_PX from the edges
  and mapped to (ra, dec) degrees through the real field's r-band WCS; copies of
  a field get the same positions. Classes cycle GALAXY, QSO, STAR.
  """
  fields = real_fields(sas_root)
  rng = np.random.default_rng(seed)
  positions = {}
  for real in sorted(set(served.values())):
    wcs = frame_wcs(fields[real]['r'])
    x = rng.uniform(FRAME_MARGIN_PX, 2048 - FRAME_MARGIN_PX, per_field)
    y = rng.uniform(FRAME_MARGIN_PX, 1489 - FRAME_MARGIN_PX, per_field)
    ra, dec = wcs.all_pix2world(x, y, 0)
    positions[real] = list(zip(np.mod(ra, 360.0), dec))
  rows = []
  for frame, real in sorted(served.items()):
    for n, (ra, dec) in enumerate(positions[real]):
      rows.append({'ra': f'{ra:.8f}', 'dec': f'{dec:.8f}', 'run': frame.run,
                   'rerun': frame.rerun, 'camcol': frame.camcol,
                   'field': frame.field,
                   'class': survey.CLASSES[n % len(survey.CLASSES)]})
  return rows


def mirrored_sky(work: pathlib.Path, shared_data: str, *, copies: int,
                 per_field: int
                 ) -> tuple[dict[catalog_lib.FrameId, catalog_lib.FrameId],
                            pathlib.Path]:
  """A fresh `work` with sas/ and catalog.csv.

  sas/ holds `copies` of each real field of shared_data/sas, catalog.csv
  `per_field` objects in each of them. Returns (served field -> real field,
  the catalogue's path).
  """
  sas_root = pathlib.Path(shared_data) / 'sas'
  common.fresh_dir(work)
  served = mirror_fields(sas_root, work / 'sas', copies)
  catalog_path = write_csv(work / 'catalog.csv',
                           objects_in_fields(sas_root, served, per_field))
  return served, catalog_path


def write_csv(path: pathlib.Path, rows: list[dict[str, Any]]) -> pathlib.Path:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  return path
