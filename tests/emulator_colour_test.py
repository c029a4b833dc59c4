"""emulator.colour: SDSS's i, r, g rendering of a whole field (the preview)."""

import numpy as np
from PIL import Image
import pytest

import emulator_testing as et


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_preview_is_an_irg_rendering_of_the_field(sky, tmp_path):
  frame = et.STARS_AND_QSOS[0]
  path = tmp_path / 'preview.png'
  sky.preview_png(frame, path)
  rgb = np.asarray(Image.open(path))
  assert rgb.shape == (1489, 2048, 3) and rgb.dtype == np.uint8
  assert rgb.max() == 255 and np.median(rgb) < 40
