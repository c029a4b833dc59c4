"""emulator.render: Sersic mixtures and PSF painting."""

import numpy as np
import pytest

from skytfds.emulator import render


@pytest.mark.parametrize('n', [0.5, 1.0, 2.5, 4.0])
def test_sersic_mixture_holds_half_the_light_within_re(n):
  weights, variances = render.sersic_mixture(n)
  assert weights.sum() == pytest.approx(1.0)
  inside = np.sum(weights * (1 - np.exp(-0.5 / variances)))
  assert inside == pytest.approx(0.5, abs=0.03)


def test_paint_conserves_flux_and_centres_the_peak():
  image = np.zeros((61, 61), np.float32)
  psf = render.Psf.double_gaussian(1.4)
  weights, covs = render.convolve_psf(*render.point_covariances(), psf,
                                      np.eye(2) / render.PIXEL_SCALE_ARCSEC)
  render.paint(image, 30.3, 29.8, 100.0, weights, covs, threshold=1e-6)
  assert image.sum() == pytest.approx(100.0, rel=1e-3)
  rows, cols = np.mgrid[0:61, 0:61]
  assert (image * cols).sum() / image.sum() == pytest.approx(30.3, abs=1e-3)
  assert (image * rows).sum() / image.sum() == pytest.approx(29.8, abs=1e-3)
