"""ugriz_cnn: its augmentation, per-band stretch, size and saved form."""

import numpy as np
import pytest
import tensorflow as tf

from skytfds import models
from skytfds import ugriz_cnn


def stamp_batch(batch=4, size=64, channels=5, seed=0):
  """Sky noise (sigma 1) with a bright point at the centre, no padding."""
  rng = np.random.default_rng(seed)
  signal = rng.normal(0.0, 1.0, (batch, size, size, channels)).astype(np.float32)
  signal[:, size // 2, size // 2, :] += 50.0
  padding = np.zeros((batch, size, size, 1), np.float32)
  return np.concatenate([signal, padding], axis=-1)


def dihedral(image):
  """The eight flips and quarter turns of an [H, W, C] image."""
  out = []
  for turned in (image, np.transpose(image, (1, 0, 2))):
    for flip_rows in (False, True):
      for flip_cols in (False, True):
        x = turned[::-1] if flip_rows else turned
        out.append(x[:, ::-1] if flip_cols else x)
  return out


def test_robust_noise_reads_the_sky_not_the_sources():
  images = stamp_batch(batch=2)
  sigma = ugriz_cnn.robust_noise(tf.constant(images[..., :5])).numpy()
  assert sigma.shape == (2, 1, 1, 5)
  np.testing.assert_allclose(sigma, 1.0, rtol=0.12)
  # Ten times the noise reads ten times as large.
  louder = ugriz_cnn.robust_noise(tf.constant(10 * images[..., :5])).numpy()
  np.testing.assert_allclose(louder / sigma, 10.0, rtol=1e-5)


def test_augment_passes_through_at_inference():
  layer = ugriz_cnn.SkyAugment(seed=0)
  images = stamp_batch()
  np.testing.assert_array_equal(layer(images, training=False).numpy(), images)
  np.testing.assert_array_equal(layer(images).numpy(), images)


def test_augment_turns_and_flips_into_all_eight_orientations(monkeypatch):
  monkeypatch.setattr(ugriz_cnn, 'MAX_SHIFT_PX', 0.0)
  monkeypatch.setattr(ugriz_cnn, 'MAX_EXTRA_NOISE', 0.0)
  rng = np.random.default_rng(1)
  image = rng.normal(size=(16, 16, 3)).astype(np.float32)
  image[..., -1] = 0.0
  batch = np.repeat(image[None], 64, axis=0)
  out = ugriz_cnn.SkyAugment(seed=3)(batch, training=True).numpy()
  candidates = dihedral(image)
  seen = set()
  for x in out:
    matches = [k for k, c in enumerate(candidates) if np.allclose(x, c, atol=1e-5)]
    assert matches, 'an output that is no flip or turn of the input'
    seen.add(matches[0])
  assert seen == set(range(8))


def test_augment_shifts_by_under_a_pixel_and_adds_noise_only_to_signal():
  images = stamp_batch(batch=16)
  images[:, :8, :, -1] = 1.0  # a padded strip
  images[:, :8, :, :5] = 0.0
  out = ugriz_cnn.SkyAugment(seed=0)(images, training=True).numpy()
  # The bright point stays within a pixel of the centre (any orientation).
  for x in out:
    peak = np.unravel_index(np.argmax(x[..., 2]), x.shape[:2])
    assert all(abs(p - c) <= 1.5 for p, c in zip(peak, (32, 32)))
  # Padding is moved, never noised: its values stay in [0, 1].
  assert out[..., -1].min() >= -1e-6 and out[..., -1].max() <= 1 + 1e-6
  # The noise that the bilinear shift smooths away is put back (pixel
  # scatter never below the input's), then up to MAX_EXTRA_NOISE more in
  # quadrature. Off the central point source:
  sky = out[:, 12:28, 12:52, :5].reshape(16, -1, 5)
  sigma = 1.4826 * np.median(np.abs(sky - np.median(sky, axis=1, keepdims=True)),
                             axis=1)
  assert (sigma >= 0.85).all(), sigma  # 0.46 without the put-back noise
  assert (sigma <= 1.1 * np.sqrt(1 + ugriz_cnn.MAX_EXTRA_NOISE ** 2)).all(), sigma
  assert sigma.max() > 1.15  # some images did get noisier


def test_dimming_scales_every_band_alike_and_keeps_the_sky_noise(monkeypatch):
  monkeypatch.setattr(ugriz_cnn, 'MAX_SHIFT_PX', 0.0)
  monkeypatch.setattr(ugriz_cnn, 'MAX_EXTRA_NOISE', 0.0)
  images = stamp_batch(batch=64)
  amplitudes = np.array([1000.0, 2000.0, 3000.0, 4000.0, 5000.0], np.float32)
  images[:, 32, 32, :5] += amplitudes
  layer = ugriz_cnn.SkyAugment(seed=0, max_dim_mag=2.5, dim_fraction=0.5)
  out = layer(images, training=True).numpy()
  # Flips and turns move the point by a pixel at most: read it as each
  # band's brightest pixel, against the input's (sky noise 1 beside it).
  scale = out[..., :5].max(axis=(1, 2)) / images[..., :5].max(axis=(1, 2))
  untouched = np.abs(scale[:, -1] - 1.0) < 0.002
  assert 16 <= untouched.sum() <= 48, untouched.sum()  # about half dimmed
  dimmed, scale = out[~untouched], scale[~untouched]
  # One scale for all five bands (colours kept), within [10^-1, 1): each
  # band's peak is the brightest band's scale times its own, to the noise.
  peaks_in = images[~untouched][..., :5].max(axis=(1, 2))
  peaks_out = dimmed[..., :5].max(axis=(1, 2))
  np.testing.assert_allclose(peaks_out, scale[:, -1:] * peaks_in, atol=5.0)
  assert (scale > 10 ** (-0.4 * 2.5) - 0.01).all() and (scale < 1.0).all()
  assert scale.min() < 0.3  # the range is used, not just its top
  # The sky noise is put back: still sigma 1 off the source (f alone
  # without it; each stamp's own noise estimate is good to a few per cent).
  sky = dimmed[:, 4:28, 4:60, :5].reshape(len(dimmed), -1, 5)
  sigma = sky.std(axis=1)
  assert abs(np.median(sigma) - 1.0) < 0.05, np.median(sigma)
  np.testing.assert_allclose(sigma, 1.0, atol=0.2)


def test_dimming_only_for_flux_stamps():
  flux, _, _ = ugriz_cnn.build((64, 64, 6), 3, bands='ugriz', seed=0)
  image, _, _ = ugriz_cnn.build((64, 64, 4), 3, bands=None, seed=0)
  assert flux.get_layer('augment').max_dim_mag == ugriz_cnn.DIM_MAX_MAG > 0
  assert image.get_layer('augment').max_dim_mag == 0.0


def test_stretch_is_asinh_per_band_and_zero_where_padded():
  softening = (0.5, 1.0, 2.0)
  layer = ugriz_cnn.BandStretch('asinh', softening)
  x = np.zeros((1, 2, 2, 4), np.float32)
  x[0, 0, 0, :3] = [0.5 * np.sinh(4.0), 1.0 * np.sinh(4.0), 2.0 * np.sinh(4.0)]
  x[0, 1, 1, :3] = 100.0
  x[0, 1, 1, 3] = 1.0  # padded
  y = layer(x).numpy()
  np.testing.assert_allclose(y[0, 0, 0, :3], 1.0, rtol=1e-5)
  np.testing.assert_array_equal(y[0, 1, 1, :3], 0.0)
  assert y[0, 1, 1, 3] == 1.0
  assert len(layer.trainable_weights) == 1  # log softening, one per band
  with pytest.raises(ValueError, match='softening'):
    ugriz_cnn.BandStretch('asinh', (1.0,))(x)


def test_under_two_million_parameters_on_every_input_kind():
  for shape, bands in (((64, 64, 6), 'ugriz'), ((64, 64, 4), None)):
    features, head, model = ugriz_cnn.build(shape, 3, bands=bands, seed=0)
    assert model.count_params() < 2_000_000
    p = model(stamp_batch(2, channels=shape[-1] - 1)).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert features.output_shape[-1] == head.input_shape[-1]


def test_saved_model_reloads_with_the_same_predictions(tmp_path):
  classifier = models.build_from_scratch('ugriz_cnn', (64, 64, 6),
                                         bands='ugriz', seed=0)
  images = stamp_batch(3)
  before = classifier.model.predict(images, verbose=0)
  classifier.model.save(tmp_path / 'model.keras')
  reloaded = models.load_classifier(tmp_path / 'model.keras')
  np.testing.assert_allclose(reloaded.predict(images, verbose=0), before,
                             rtol=1e-5, atol=1e-6)


def test_weights_choices(tmp_path):
  with pytest.raises(models.ModelError, match='no ImageNet weights'):
    models.build_from_scratch('ugriz_cnn', (64, 64, 6), weights='imagenet',
                              bands='ugriz')
  first = models.build_from_scratch('ugriz_cnn', (64, 64, 6), bands='ugriz',
                                    seed=0)
  path = tmp_path / 'start.weights.h5'
  first.model.save_weights(path)
  second = models.build_from_scratch('ugriz_cnn', (64, 64, 6), weights=str(path),
                                     bands='ugriz', seed=1)
  images = stamp_batch(2)
  np.testing.assert_allclose(second.model.predict(images, verbose=0),
                             first.model.predict(images, verbose=0), rtol=1e-5)
  with pytest.raises(models.ModelError, match='does not fit'):
    models.build_from_scratch('ugriz_cnn', (64, 64, 4), weights=str(path))
  with pytest.raises(models.ModelError, match='weights.h5'):
    models.build_from_scratch('ugriz_cnn', (64, 64, 6), weights=str(tmp_path),
                              bands='ugriz')


def test_aperture_colours_are_the_object_s_magnitudes_and_colours():
  # Bright against the softening: asinh magnitudes are Pogson's.
  layer = ugriz_cnn.ApertureColours((0.001, 0.001))
  x = np.zeros((1, 64, 64, 3), np.float32)
  # 10 and 1 nanomaggies in the central pixels: magnitudes 20 and 22.5.
  x[0, 31:33, 31:33, 0] = 10.0 / 4
  x[0, 31:33, 31:33, 1] = 1.0 / 4
  x[0, 0, 0, :2] = 1000.0  # outside the aperture: ignored
  y = layer(x).numpy()[0]
  magnitudes = 20.0 + 3.0 * y[:2]
  np.testing.assert_allclose(magnitudes, [20.0, 22.5], atol=0.02)
  np.testing.assert_allclose(y[2], -2.5, atol=0.02)  # the colour
  assert layer.compute_output_shape((None, 64, 64, 3)) == (None, 3)
  # Negative or zero flux (sky-subtracted noise) stays finite.
  assert np.isfinite(layer(-x).numpy()).all()
  assert np.isfinite(layer(0 * x).numpy()).all()
