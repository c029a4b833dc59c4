"""emulator.sky: the Sky's frames, simulated or real, and their errors.

The tests of the modules it draws with are tests/emulator_<module>_test.py
(fields, population, render, frame_files, real_frames, cutouts, colour,
panstarrs); what they share is tests/emulator_testing.py.
"""

import math

import numpy as np
import pytest

import emulator_testing as et
from skytfds.emulator import render
from skytfds.emulator import sky as sky_lib


@pytest.fixture(scope='module')
def catalog():
  return et.catalog()


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_star_peaks_lie_at_their_wcs_positions(sky):
  checked = 0
  for frame in et.STARS_AND_QSOS:
    image, wcs = sky.render_band(frame, 'r')
    geometry = sky.geometry(frame)
    for obj in sky.catalog.by_frame()[frame]:
      if obj.cls != 'STAR' or not obj.mags[2] < 21:
        continue
      neighbours = [s for s in sky.sources_near(obj.ra, obj.dec, 8 / 3600)
                    if s.mags[2] < 22.5 and (s.ra, s.dec) != (obj.ra, obj.dec)]
      if neighbours:
        continue                      # not isolated
      x, y = wcs.wcs_world2pix([[obj.ra, obj.dec]], 0)[0]
      col, row = int(round(x)), int(round(y))
      window = image[row - 4:row + 5, col - 4:col + 5]
      saturated = ((render.SATURATION_COUNTS - 200)
                   * render.NOISE['r'].nmgy_per_count)
      if window.max() >= saturated:
        continue
      dy, dx = np.unravel_index(np.argmax(window), window.shape)
      assert math.hypot(col - 4 + dx - x, row - 4 + dy - y) <= 1.0, (
          frame, obj.key, geometry.fwhm['r'])
      checked += 1
  assert checked >= 5


def test_frames_are_deterministic(catalog, sky):
  frame = et.STARS_AND_QSOS[1]
  again = sky_lib.Sky(catalog, seed=0).frame_bytes(frame, 'u')
  assert again == sky.frame_bytes(frame, 'u')
  other = sky_lib.Sky(catalog, seed=1).render_band(frame, 'u')[0]
  assert not np.array_equal(other, sky.render_band(frame, 'u')[0])


def test_field_without_objects_raises_key_error(sky):
  with pytest.raises(KeyError, match='holds no object'):
    sky.frame_bytes(et.FrameId(1, 301, 1, 11), 'r')


def test_bad_band_raises_value_error(sky):
  with pytest.raises(ValueError, match='band'):
    sky.frame_bytes(et.STARS_AND_QSOS[0], 'y')


def test_real_frame_comes_back_byte_for_byte(sky):
  for band in 'ur':
    path = et.SAS / 'dr17/eboss/photoObj/frames/301/1035/6' / (
        f'frame-{band}-001035-6-0017.fits.bz2')
    assert sky.frame_bytes(et.REAL_FIELD, band) == path.read_bytes()
  # A held field that the catalogue does not list is served too.
  path = (et.SAS / 'dr17/eboss/photoObj/frames/301/3918/3'
          / 'frame-g-003918-3-0213.fits.bz2')
  assert sky.frame_bytes(et.FrameId(3918, 301, 3, 213), 'g') == (
      path.read_bytes())
