"""emulator.population: catalogue magnitudes and the colours they give.

The colours are measured on the simulated frames of the real catalogue's
fields (tests/emulator_testing.py).
"""

import math

import numpy as np
import pytest

import emulator_testing as et
from skytfds.emulator import population


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_complete_mags_interpolates_missing_bands():
  nan = float('nan')
  assert population.complete_mags((nan, 20.0, nan, 18.0, nan)) == (
      20.0, 20.0, 19.0, 18.0, 18.0)
  assert population.complete_mags((nan,) * 5) is None


def _aperture_flux(image, wcs, ra, dec, radius=7.0):
  x, y = wcs.wcs_world2pix([[ra, dec]], 0)[0]
  rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  r0, c0 = int(round(y)), int(round(x))
  window = (slice(r0 - 12, r0 + 13), slice(c0 - 12, c0 + 13))
  inside = np.hypot(cols[window] - x, rows[window] - y) <= radius
  return float(image[window][inside].sum())


def test_quasars_are_bluer_in_u_minus_g_than_stars(sky):
  colours = {'QSO': [], 'STAR': []}
  for frame in et.STARS_AND_QSOS:
    u_image, u_wcs = sky.render_band(frame, 'u')
    g_image, g_wcs = sky.render_band(frame, 'g')
    for obj in sky.catalog.by_frame()[frame]:
      if obj.cls not in colours or not obj.mags[1] < 21:
        continue
      fu = _aperture_flux(u_image, u_wcs, obj.ra, obj.dec)
      fg = _aperture_flux(g_image, g_wcs, obj.ra, obj.dec)
      if fu > 0 and fg > 0:
        colours[obj.cls].append(-2.5 * math.log10(fu / fg))
  assert len(colours['QSO']) >= 5 and len(colours['STAR']) >= 5
  assert np.median(colours['QSO']) < np.median(colours['STAR']) - 0.3
