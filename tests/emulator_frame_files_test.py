"""emulator.frame_files: simulated frames in the SDSS frame file format."""

import bz2
import io
import warnings

from astropy.io import fits
from astropy.wcs import utils as wcs_utils
import numpy as np
import pytest

import emulator_testing as et
from skytfds.imaging import frames as frames_lib


@pytest.fixture(scope='module')
def r_frame_bytes():
  return et.sky().frame_bytes(et.STARS_AND_QSOS[0], 'r')


def _open(data: bytes) -> fits.HDUList:
  return fits.open(io.BytesIO(bz2.decompress(data)))


def test_simulated_frame_has_the_sdss_format(r_frame_bytes):
  assert r_frame_bytes[:3] == b'BZh'
  hdus = _open(r_frame_bytes)
  assert len(hdus) == 4
  header = hdus[0].header
  assert hdus[0].data.shape == (1489, 2048)
  assert hdus[0].data.dtype == np.dtype('>f4')
  assert header['BUNIT'] == 'nanomaggy'
  assert header['FILTER'].strip() == 'r'
  frame = et.STARS_AND_QSOS[0]
  assert (header['RUN'], header['CAMCOL'], header['FIELD']) == (
      frame.run, frame.camcol, frame.field)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    decoded = frames_lib.decode_frame(r_frame_bytes, band='r')
  assert decoded.wcs.has_celestial
  scales = wcs_utils.proj_plane_pixel_scales(decoded.wcs) * 3600
  np.testing.assert_allclose(scales, [0.396, 0.396], rtol=1e-6)
  # Sky-subtracted, SDSS-like noise; floats truncated to 10 mantissa bits.
  image = hdus[0].data.astype(np.float32)
  assert abs(np.median(image)) < 0.01
  mad = 1.4826 * np.median(np.abs(image - np.median(image)))
  assert 0.015 < mad < 0.035
  assert not np.any(hdus[0].data.view('>u4') & 0x1FFF)
  assert hdus[1].data.shape == (2048,)
  assert hdus[2].data['ALLSKY'].shape == (1, 192, 256)


def test_compressed_size_is_like_a_real_frame(r_frame_bytes):
  assert 2e6 < len(r_frame_bytes) < 6e6
