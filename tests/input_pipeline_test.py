"""input_pipeline: stamps and images to model inputs, and clear errors."""

import io
import pathlib
import subprocess
import sys
from unittest import mock

import numpy as np
import PIL.Image
import pytest

from skytfds import input_pipeline

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('bands', ['irg', 'zgu', 'gri'])
def test_three_distinct_bands_are_accepted(bands):
  assert input_pipeline.validate_bands(bands) == bands


@pytest.mark.parametrize('bands', ['ir', 'iir', 'irx', 'irgz', ''])
def test_other_band_choices_are_refused(bands):
  with pytest.raises(ValueError, match='three distinct letters'):
    input_pipeline.validate_bands(bands)


def test_stamp_stretch_is_fixed_and_non_finite_pixels_read_as_zero():
  stamp = np.zeros((4, 4, 5), np.float32)
  stamp[0, 0, 3] = input_pipeline.STAMP_MAX_NMGY      # i band at the cap
  stamp[1, 1, 3] = 10 * input_pipeline.STAMP_MAX_NMGY  # above the cap
  stamp[2, 2, 2] = np.nan                             # r band
  stamp[3, 3, 1] = -1.0                               # g band, negative
  rgb = input_pipeline.stamp_to_rgb(stamp, 'irg').numpy()
  assert rgb.shape == (4, 4, 3)
  assert rgb[0, 0, 0] == pytest.approx(255.0)
  assert rgb[1, 1, 0] == pytest.approx(255.0)
  assert rgb[2, 2, 1] == 0.0
  assert rgb[3, 3, 2] == 0.0
  assert rgb[0, 0, 1:].tolist() == [0.0, 0.0]


def test_image_from_stamp_resizes_and_checks_the_shape():
  stamp = np.ones((64, 64, 5), np.float32)
  assert input_pipeline.image_from_stamp(stamp, 32).shape == (32, 32, 3)
  with pytest.raises(input_pipeline.DatasetError, match=r'\[H, W, 5\]'):
    input_pipeline.image_from_stamp(np.ones((64, 64, 3)), 32)


def test_image_from_bytes_decodes_jpeg_and_refuses_other_bytes():
  out = io.BytesIO()
  PIL.Image.new('RGB', (240, 240), (200, 100, 50)).save(out, format='JPEG')
  image = input_pipeline.image_from_bytes(out.getvalue(), 224)
  assert image.shape == (224, 224, 3) and image.dtype == np.float32
  assert abs(float(image[..., 0].mean()) - 200) < 3
  with pytest.raises(input_pipeline.DatasetError) as error:
    input_pipeline.image_from_bytes(b'ra,dec\n180.1,0.5\n', 224)
  message = str(error.value)
  assert message.startswith('not a PNG or JPEG image (Unknown image file format.')
  assert message.endswith('required.)'), message
  assert '{{' not in message and 'Op:' not in message


def test_build_command_names_the_dataset_and_data_dir():
  assert input_pipeline.build_command('sdss_rgb/tiny', '/data') == (
      'tfds build sdss_rgb/tiny --imports=skytfds --data_dir=/data')
  assert input_pipeline.build_command('sdss_rgb/tiny', None) == (
      'tfds build sdss_rgb/tiny --imports=skytfds')


def test_a_dataset_not_built_names_the_build_command(tmp_path):
  with pytest.raises(input_pipeline.DatasetError) as error:
    input_pipeline.get_builder('sdss_cutouts/tiny', tmp_path)
  assert 'is not built under' in str(error.value)
  assert f'tfds build sdss_cutouts/tiny --imports=skytfds --data_dir={tmp_path}' in str(
      error.value)


def test_a_misspelt_config_names_the_valid_configs(tmp_path):
  with pytest.raises(input_pipeline.DatasetError) as error:
    input_pipeline.get_builder('sdss_rgb/tinny', tmp_path)
  assert str(error.value) == (
      "dataset 'sdss_rgb' has no config 'tinny': choose one of tiny, small, "
      'full, tiny_dense, small_dense, full_dense, custom (e.g. sdss_rgb/tiny)')


def test_tfds_build_with_a_misspelt_config_names_the_valid_configs(tmp_path):
  """`tfds build ... --config=tinny` and tfds.builder: TFDS' own message
  lists close matches by name:version and so ended in nothing."""
  process = subprocess.run(
      [str(pathlib.Path(sys.executable).parent / 'tfds'), 'build',
       str(REPO / 'skytfds' / 'datasets' / 'sdss_rgb'), '--config=tinny',
       f'--data_dir={tmp_path}'], capture_output=True, text=True, timeout=300)
  assert process.returncode != 0
  assert process.stderr.strip().splitlines()[-1] == (
      "ValueError: sdss_rgb has no config 'tinny': choose one of tiny, small, "
      'full, tiny_dense, small_dense, full_dense, custom (e.g. --config=tiny_dense)')
  assert not (tmp_path / 'sdss_rgb').exists()


def test_a_misspelt_dataset_names_the_datasets_and_no_build_command(tmp_path):
  with pytest.raises(input_pipeline.DatasetError) as error:
    input_pipeline.get_builder('sdss_cutout/tiny', tmp_path)
  message = str(error.value)
  assert message.startswith("dataset 'sdss_cutout/tiny' is unknown")
  assert 'sdss_filters, sdss_rgb, sdss_cutouts, ps1_cutouts' in message
  assert 'tfds build' not in message


def test_a_dataset_without_validation_is_refused_in_words():
  builder = mock.Mock()
  builder.info.full_name = 'sdss_cutouts/custom/1.0.0'
  builder.info.splits = {'train': mock.Mock(num_examples=3)}
  with pytest.raises(input_pipeline.DatasetError) as error:
    input_pipeline.require_splits(builder, ('train', 'validation', 'test'))
  assert str(error.value).startswith(
      'dataset sdss_cutouts/custom/1.0.0 has no validation or test split (it '
      "has {'train': 3}): its catalogue was too small to fill every split")


def test_native_input_keeps_every_band_unstretched_with_the_mask_as_a_channel():
  stamp = np.full((64, 64, 5), 2.5, np.float32)
  stamp[0, 0, 3] = np.nan
  mask = np.zeros((64, 64), bool)
  mask[:, :10] = True
  native = input_pipeline.native_from_stamp(stamp, mask, 64).numpy()
  assert native.shape == (64, 64, 6)
  assert native[5, 5, 0] == 2.5  # nanomaggies as stored, no stretch
  assert native[0, 0, 3] == 0.0  # non-finite reads as 0
  np.testing.assert_array_equal(native[..., 5], mask.astype(np.float32))
  image = np.full((128, 128, 3), 255, np.uint8)
  native = input_pipeline.native_from_image(image, 64).numpy()
  assert native.shape == (64, 64, 4)
  np.testing.assert_allclose(native[..., :3], 1.0)
  assert (native[..., 3] == 0).all()
