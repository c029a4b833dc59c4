"""datasets.products: each product's path from an object to its example, on real frames."""

import io

import numpy as np
import PIL.Image
import pytest

from skytfds import catalog
from skytfds import datasets
from skytfds.datasets import context as context_lib
from skytfds.datasets import products

FRAME = catalog.FrameId(3918, 301, 3, 213)


@pytest.fixture(scope='module')
def real_band_bytes(shared_data):
  """band -> the real compressed SAS frame files of 003918-3-0213."""
  folder = shared_data / 'sas/dr17/eboss/photoObj/frames/301/3918/3'
  return {b: (folder / f'frame-{b}-003918-3-0213.fits.bz2').read_bytes()
          for b in 'ugriz'}


@pytest.fixture(scope='module')
def decoded(real_band_bytes):
  return products.FILTERS.decode(real_band_bytes, FRAME)


def _centre(frames):
  """(ra, dec) of the r-band frame centre."""
  r = frames['r']
  ra, dec = r.wcs.all_pix2world([[1024, 744]], 0)[0]
  return float(ra), float(dec)


def test_every_dataset_has_its_product():
  assert set(products.BY_DATASET) == set(datasets.NAMES)
  for name in datasets.NAMES:
    module = getattr(datasets, f'{name}_dataset_builder')
    assert module.Builder.PRODUCT is products.BY_DATASET[name]


def test_ugriz_stamp_on_a_real_frame(decoded):
  ra, dec = _centre(decoded)
  cut = products.FILTERS.cut(decoded, ra, dec)
  assert set(cut) == {'stamp', 'mask'}
  assert cut['stamp'].shape == (64, 64, 5) and cut['stamp'].dtype == np.float32
  assert not cut['mask'].any()
  assert products.FILTERS.model_feature == 'stamp'


def test_lupton_stamp_on_a_real_frame(decoded):
  ra, dec = _centre(decoded)
  image = products.RGB.cut(decoded, ra, dec)['image']
  assert image.shape == (128, 128, 3) and image.dtype == np.uint8
  assert image.max() > image.min()  # Sky and sources, not a flat fill.


def test_an_object_off_the_frame_is_a_counted_skip(decoded):
  ra, dec = _centre(decoded)
  with pytest.raises(products.Skip) as skip:
    products.FILTERS.cut(decoded, ra + 1.0, dec)
  assert skip.value.reason == 'off_frame'


def test_an_object_at_the_frame_corner_is_near_edge(decoded):
  ra, dec = (float(v) for v in decoded['r'].wcs.all_pix2world([[2, 2]], 0)[0])
  with pytest.raises(products.Skip) as skip:
    products.FILTERS.cut(decoded, ra, dec)
  assert skip.value.reason == 'near_edge'


def test_a_band_that_does_not_decode_is_named(real_band_bytes):
  broken = {**real_band_bytes, 'g': real_band_bytes['g'][:5000]}
  with pytest.raises(products.CorruptBand) as error:
    products.FILTERS.decode(broken, FRAME)
  assert error.value.band == 'g'


def _jpeg(size, mode='RGB', fmt='JPEG') -> bytes:
  out = io.BytesIO()
  PIL.Image.new(mode, (size, size), 128).save(out, format=fmt)
  return out.getvalue()


def test_cutout_example_is_the_jpeg_as_served():
  data = _jpeg(240)
  assert products.SDSS.example(data) == {'image': data}


@pytest.mark.parametrize('data, message', [
    (_jpeg(120), '120x120 px, expected 240x240'),
    (_jpeg(240, fmt='PNG'), 'a PNG image, not JPEG'),
    (_jpeg(240, mode='L'), 'colour mode L'),
    (_jpeg(240)[:400], 'does not decode as JPEG'),
    (b'<html>busy</html>', 'does not decode as JPEG'),
])
def test_a_cutout_that_is_not_a_whole_jpeg_is_refused(data, message):
  with pytest.raises(products.BadImage, match=message):
    products.PS1.example(data)


def test_cutout_cache_names_follow_the_release_and_the_service():
  dr16 = context_lib.BuildContext(workdir='w', release=16, sas_url='s',
                                  skyserver_url='k', ps1_url='p')
  dr17 = context_lib.BuildContext(workdir='w', release=17, sas_url='s',
                                  skyserver_url='k', ps1_url='p')
  assert (products.SDSS.cache_name(180.0, 0.5, dr16)
          != products.SDSS.cache_name(180.0, 0.5, dr17))
  assert (products.PS1.cache_name(180.0, 0.5, dr16)
          == products.PS1.cache_name(180.0, 0.5, dr17))
  assert (products.SDSS.cache_name(180.0, 0.5, dr17)
          != products.PS1.cache_name(180.0, 0.5, dr17))
