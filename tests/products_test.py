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


# -- odd frames, non-finite stamps, strict JPEGs, caps (issue 20) -------------

import synthetic_frames as sf  # pylint: disable=g-import-not-at-top,wrong-import-position
from skytfds.imaging import frames as frames_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from skytfds.imaging import stamps  # pylint: disable=g-import-not-at-top,wrong-import-position

GR = products.UgrizStamps('test', 'gr', 16)


def _bands(**overrides):
  files = {b: sf.frame_bytes(b) for b in 'gr'}
  files.update(overrides)
  return files


@pytest.mark.parametrize('make, reason, retry', [
    (lambda: sf.corrupt_bz2(sf.frame_bytes('g')), 'corrupt_download',
     products.Retry.BUDGET),
    (lambda: sf.frame_bytes('g')[:300], 'corrupt_download', products.Retry.BUDGET),
    (lambda: sf.frame_bytes('r'), 'corrupt_download', products.Retry.ONCE),
    (lambda: sf.frame_bytes('g', h=sf.header('g', CTYPE1='RA---TAN-SIP',
                                             CTYPE2='DEC--TAN-SIP', A_ORDER=2,
                                             B_ORDER=2, A_2_0=5e-4, B_0_2=5e-4)),
     'bad_frame', products.Retry.ONCE),
    (lambda: b'BZh9' + b'\0' * (frames_lib.MAX_COMPRESSED_BYTES + 1), 'too_large',
     products.Retry.NEVER),
], ids=['corrupt_bz2', 'truncated_bz2', 'other_band', 'sip_not_invertible',
        'over_the_cap'])
def test_a_band_that_cannot_be_used_says_how_to_retry(make, reason, retry):
  with pytest.raises(products.CorruptBand) as error:
    GR.decode(_bands(g=make()), FRAME)
  assert (error.value.band, error.value.reason, error.value.retry) == (
      'g', reason, retry)
  assert str(error.value).startswith('003918-3-0213 band g: ')
  assert retry.tries(6) == {'budget': 6, 'once': 2, 'never': 1}[retry.value]


def test_any_other_decode_error_is_a_bad_frame(monkeypatch):
  def odd(data, **kwargs):
    raise TypeError('an astropy quirk\non two lines')
  monkeypatch.setattr(frames_lib, 'decode_frame', odd)
  with pytest.raises(products.CorruptBand) as error:
    GR.decode(_bands(), FRAME)
  assert error.value.reason == 'bad_frame'
  assert str(error.value) == ('003918-3-0213 band g: cannot decode the frame '
                              '(TypeError: an astropy quirk on two lines)')


def test_a_wcs_that_fails_at_the_object_is_a_bad_frame_skip(monkeypatch):
  decoded = GR.decode(_bands(), FRAME)

  def fails(*args, **kwargs):
    raise stamps.StampError('003918-3-0213 band g: the WCS cannot map the stamp')
  monkeypatch.setattr(stamps, 'cut_bands', fails)
  with pytest.raises(products.Skip) as skip:
    GR.cut(decoded, *sf.sky(1000, 700))
  assert skip.value.reason == 'bad_frame'
  assert skip.value.detail.startswith('003918-3-0213 band g: ')


@pytest.mark.parametrize('value', [3.4e38, -3.4e38, np.nan, np.inf])
@pytest.mark.parametrize('product', [GR, products.LuptonStamps('t', 'irg', 16)],
                         ids=['stamps', 'lupton'])
def test_inf_or_nan_in_a_stamp_is_a_counted_skip(value, product):
  """Pixels near float32's limit make the cubic spline overflow to inf."""
  frames = {b: frames_lib.Frame(image=np.zeros(sf.SHAPE, np.float32),
                                wcs=sf.wcs_of(), band=b,
                                source=f'003918-3-0213 band {b}')
            for b in product.bands}
  frames['g' if 'g' in frames else 'i'].image[698:702, 998:1002] = [
      [value, -value, value, -value]] * 4
  with np.errstate(all='ignore'):
    with pytest.raises(products.Skip) as skip:
      product.cut(frames, *sf.sky(1000.4, 700.3))
  assert skip.value.reason == 'non_finite'
  assert skip.value.detail.startswith('003918-3-0213 band r: ')
  assert ('stamp values are inf, NaN or beyond +-1e+19 nanomaggies after '
          'resampling') in skip.value.detail
  # Away from the extreme pixels the stamp is written.
  assert np.isfinite(product.cut(frames, *sf.sky(1500, 300))[
      product.model_feature].astype(np.float32)).all()


@pytest.mark.parametrize('damage', [
    sf.cut_in_half, sf.zero_middle,
    lambda d: sf.cut_after_first_scan(sf.jpeg(progressive=True)),
], ids=['cut_in_half_ffd9', 'middle_zeroed', 'progressive_first_scan_only'])
def test_a_corrupt_jpeg_that_libjpeg_decodes_is_refused(damage):
  data = damage(sf.jpeg())
  PIL.Image.open(io.BytesIO(data)).load()  # libjpeg fills it with grey.
  with pytest.raises(products.CorruptImage) as error:
    products.SDSS.example(data)
  assert error.value.reason == 'corrupt_image'
  assert error.value.retry is products.Retry.BUDGET
  assert str(error.value).startswith('does not decode as JPEG (corrupt data: ')


def test_a_cutout_over_its_cap_is_too_large():
  padded = sf.com_padded(sf.jpeg(), products.SDSS.max_bytes + 1)
  PIL.Image.open(io.BytesIO(padded)).load()  # A valid JPEG, only padded.
  with pytest.raises(products.ImageTooLarge) as error:
    products.SDSS.example(padded)
  assert (error.value.reason, error.value.retry) == ('too_large', products.Retry.NEVER)
  assert str(error.value) == (
      f'{len(padded)} bytes, more than the 524288-byte cap for a 240x240 cutout: '
      'refusing it as too large')
  whole = sf.com_padded(sf.jpeg(), products.SDSS.max_bytes)
  assert products.SDSS.example(whole) == {'image': whole}
  assert products.PS1.example(sf.jpeg(progressive=True))['image']


def test_bad_images_keep_their_reason():
  with pytest.raises(products.BadImage) as error:
    products.SDSS.example(_jpeg(120))
  assert (error.value.reason, error.value.retry) == ('bad_image', products.Retry.ONCE)
