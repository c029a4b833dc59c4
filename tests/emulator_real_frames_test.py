"""emulator.real_frames: cutouts resampled from the real frames of a mirror."""

import io

from PIL import Image
import pytest

import emulator_testing as et


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_cutout_from_real_frames(sky):
  star = [o for o in sky.catalog.by_frame()[et.REAL_FIELD]
          if o.cls == 'STAR'][0]
  assert sky.real_frames.cover(star.ra, star.dec)
  jpeg = sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=64, height=96)
  image = Image.open(io.BytesIO(jpeg))
  assert image.size == (64, 96)
  dx, dy = et.brightest_near_centre(jpeg, half=10)
  assert abs(dx) <= 2 and abs(dy) <= 2
