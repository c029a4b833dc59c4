"""emulator.fields: where the simulated fields of catalogue objects lie."""

import math

import pytest

import emulator_testing as et
from skytfds.emulator import fields


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_every_catalogue_object_lies_inside_its_field(sky):
  for frame in sorted(sky.frame_ids())[:300]:
    assert sky.geometry(frame).margin_px >= fields.FIELD_MARGIN_PX - 1, frame


def test_field_rows_follow_the_scan_like_real_frames(sky):
  # Stripe 82 (inclination 0): rows run along RA, columns along dec.
  geometry = sky.geometry(et.STARS_AND_QSOS[1])
  assert geometry.incl == 0.0
  assert abs(geometry.cd[0, 1]) == pytest.approx(fields.PIXEL_SCALE_DEG,
                                                 rel=0.01)


def test_bands_are_offset_by_several_pixels(sky):
  geometry = sky.geometry(et.STARS_AND_QSOS[0])
  r_wcs = geometry.wcs('r')
  centre = r_wcs.wcs_pix2world([[1024.0, 744.0]], 0)
  shifts = {}
  for band in 'ugiz':
    x, y = geometry.wcs(band).wcs_world2pix(centre, 0)[0]
    shifts[band] = math.hypot(x - 1024.0, y - 744.0)
  assert 5 < shifts['g'] < 16
  assert 1 < shifts['i'] < 8
  assert all(s > 1 for s in shifts.values())
