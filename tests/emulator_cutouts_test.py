"""emulator.cutouts: SkyServer getjpeg cutouts of the simulated sky."""

import io

from PIL import Image
import pytest

import emulator_testing as et


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_cutout_is_a_jpeg_centred_on_the_object(sky):
  stars = [o for o in sky.catalog.by_frame()[et.STARS_AND_QSOS[0]]
           if o.cls == 'STAR' and 16 < o.mags[2] < 19]
  star = stars[0]
  jpeg = sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=200, height=160)
  image = Image.open(io.BytesIO(jpeg))
  assert image.format == 'JPEG'
  assert image.size == (200, 160)
  dx, dy = et.brightest_near_centre(jpeg)
  assert abs(dx) <= 2 and abs(dy) <= 2
  assert jpeg == sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=200,
                                 height=160)


def test_cutout_rejects_bad_sizes(sky):
  with pytest.raises(ValueError, match='width'):
    sky.cutout_jpeg(10.0, 0.0, width=32)
