"""The catalogues the emulator serves: the shared real one or a generated one.

`load_catalog(path)` reads a SkyServer CSV/JSON export (by default
../shared/data/catalogs/specobj_35k.csv from the repo root);
`load_catalog(None)` generates a small deterministic one in the same layout.
"""

# Follows the SDSS DR17 PhotoObjAll.objID bit layout (SkyServer Schema
# Browser, skyserver.sdss.org/dr17/MoreTools/browser, PhotoObjAll) for the
# generated objids, and the SkyServer SqlSearch CSV columns of the classic
# query (../shared/DESIGN.md) for the layout.

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from skytfds import catalog as catalog_lib
from skytfds import survey


def repo_root() -> pathlib.Path:
  return pathlib.Path(__file__).resolve().parents[2]


def default_catalog_path() -> pathlib.Path | None:
  """../shared/data/catalogs/specobj_35k.csv (from the repo root), if there."""
  path = repo_root().parent / 'shared' / 'data' / 'catalogs' / 'specobj_35k.csv'
  return path if path.is_file() else None


def default_sas_root() -> pathlib.Path | None:
  """../shared/data/sas (from the repo root), if there."""
  path = repo_root().parent / 'shared' / 'data' / 'sas'
  return path if path.is_dir() else None


def encode_objid(run: int, camcol: int, field: int, obj: int,
                 rerun: int = survey.RERUN, sky_version: int = 2) -> int:
  """An SDSS PhotoObj objID (bits: skyVersion 59-62, rerun 48-58, run 32-47,
  camcol 29-31, firstField 28, field 16-27, object 0-15)."""
  return ((sky_version << 59) | (rerun << 48) | (run << 32) | (camcol << 29)
          | (field << 16) | obj)


def generated_catalog_csv(seed: int = 0, n_fields: int = 12,
                          per_field: int = 12) -> str:
  """A small deterministic catalogue in the specobj_35k.csv layout.

  Fields of run 2583 (rerun 301) near the celestial equator, camcols 1..6 and
  consecutive fields; each object lies within 0.05 deg (ra) and 0.07 deg (dec)
  of its field's centre (a frame spans about 0.16 x 0.23 deg). Classes about
  55% GALAXY, 30% STAR, 15% QSO with class-typical colours (quasars' UV
  excess, red galaxies) and redshifts.

  Args:
    seed: the random seed.
    n_fields: number of fields.
    per_field: objects per field.

  Returns:
    CSV text: objid,ra,dec,u,g,r,i,z,class,redshift (magnitudes AB).
  """
  rng = np.random.default_rng(seed)
  lines = ['objid,ra,dec,u,g,r,i,z,class,redshift']
  for k in range(n_fields):
    camcol = 1 + k % 6
    field = 100 + k // 6
    ra0 = 10.0 + 0.15 * (field - 100)
    dec0 = (camcol - 3.5) * 0.21
    for n in range(per_field):
      cls = rng.choice(['GALAXY', 'STAR', 'QSO'], p=[0.55, 0.30, 0.15])
      ra = ra0 + rng.uniform(-0.05, 0.05)
      dec = dec0 + rng.uniform(-0.07, 0.07)
      if cls == 'STAR':
        r = rng.uniform(15.0, 20.0)
        gr = rng.uniform(0.2, 1.3)
        colours = (gr * 2.0 + 0.6, gr, 0.0, -0.4 * gr, -0.6 * gr)
        redshift = rng.normal(0.0, 1e-4)
      elif cls == 'GALAXY':
        r = rng.uniform(15.5, 19.0)
        gr = rng.uniform(0.5, 1.0)
        colours = (gr + 1.2, gr, 0.0, -0.4, -0.7)
        redshift = rng.uniform(0.02, 0.3)
      else:
        r = rng.uniform(17.0, 20.5)
        colours = (0.45, 0.2, 0.0, -0.1, -0.15)
        redshift = rng.uniform(0.5, 2.5)
      mags = [r + c for c in colours]
      objid = encode_objid(2583, camcol, field, n + 1)
      lines.append(f'{objid},{ra:.8f},{dec:.8f},'
                   + ','.join(f'{m:.5f}' for m in mags)
                   + f',{cls},{redshift:.6g}')
  return '\n'.join(lines) + '\n'


def load_catalog(path: str | os.PathLike | None, *, seed: int = 0) -> Any:
  """The catalogue at `path`, or the generated one when path is None."""
  if path is None:
    return catalog_lib.parse_catalog(generated_catalog_csv(seed),
                                     f'generated catalogue (seed {seed})')
  data = pathlib.Path(path).read_bytes()
  return catalog_lib.parse_catalog(data, str(path))
