"""What the tests of the emulator's sky modules share (tests/emulator_*_test.py).

The real catalogue and SAS frames of ../shared/data, the fields they are
checked on, and one `Sky` over them for the whole session (it is
deterministic, and its caches only save rendering again).
"""

import functools
import io
import pathlib

import numpy as np
from PIL import Image
import pytest

from skytfds import catalog as catalog_lib
from skytfds.emulator import sky as sky_lib

DATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
CATALOG = DATA / 'catalogs' / 'specobj_35k.csv'
SAS = DATA / 'sas'
FrameId = catalog_lib.FrameId
# Fields of specobj_35k.csv rich in stars and quasars.
STARS_AND_QSOS = (FrameId(752, 301, 6, 282), FrameId(109, 301, 6, 141))
# A field whose real frames ../shared/data/sas holds (one STAR, one GALAXY).
REAL_FIELD = FrameId(1035, 301, 6, 17)


def catalog() -> catalog_lib.Catalog:
  """specobj_35k.csv, parsed once; skips the test when ../shared/data is absent."""
  if not CATALOG.is_file():
    pytest.skip('../shared/data not found: real SDSS frames are needed')
  return _parsed_catalog()


@functools.lru_cache(maxsize=1)
def _parsed_catalog() -> catalog_lib.Catalog:
  return catalog_lib.parse_catalog(CATALOG.read_bytes(), CATALOG.name)


def sky() -> sky_lib.Sky:
  """The sky of `catalog()` (seed 0, real frames from ../shared/data/sas)."""
  catalog()  # Skips the test without ../shared/data.
  return _sky()


@functools.lru_cache(maxsize=1)
def _sky() -> sky_lib.Sky:
  return sky_lib.Sky(_parsed_catalog(), seed=0, sas_root=SAS)


def brightest_near_centre(jpeg: bytes, half: int = 20) -> tuple[int, int]:
  """(dx, dy) of the brightest pixel within `half` px of the image centre."""
  rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert('RGB'), np.float32)
  luminance = rgb.sum(axis=-1)
  h, w = luminance.shape
  window = luminance[h // 2 - half:h // 2 + half, w // 2 - half:w // 2 + half]
  dy, dx = np.unravel_index(np.argmax(window), window.shape)
  return dx - half, dy - half
