"""Tests of skytfds.models, skytfds.hyperparams and the stamp stretch."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from skytfds import hyperparams
from skytfds import input_pipeline
from skytfds import models

import fake_datasets

EXPECTED = {
    'mobilenet': (224, keras.applications.mobilenet.preprocess_input),
    'resnet50': (224, keras.applications.resnet50.preprocess_input),
    'vgg16': (224, keras.applications.vgg16.preprocess_input),
    'xception': (299, keras.applications.xception.preprocess_input),
}


@pytest.fixture(scope='module')
def cutouts(tmp_path_factory):
  return fake_datasets.build(fake_datasets.FakeSdssCutouts,
                             tmp_path_factory.mktemp('tfds'))


def test_registry_has_each_backbone_with_its_own_preprocessing_and_size():
  assert set(models.BACKBONES) == set(EXPECTED)
  for name, (size, preprocess) in EXPECTED.items():
    backbone = models.get_backbone(name)
    assert backbone.input_size == size
    assert backbone.preprocess_input is preprocess


def test_preprocess_layer_is_tf_mode_for_mobilenet_and_caffe_for_resnet():
  pixel = np.array([[[[255.0, 0.0, 127.5]]]], np.float32)  # R, G, B
  mobilenet = np.asarray(models.Preprocess('mobilenet')(pixel))
  np.testing.assert_allclose(mobilenet[0, 0, 0], [1.0, -1.0, 0.0], atol=1e-6)
  resnet = np.asarray(models.Preprocess('resnet50')(pixel))
  # caffe: BGR order, ImageNet means subtracted, no scaling.
  np.testing.assert_allclose(
      resnet[0, 0, 0], [127.5 - 103.939, 0.0 - 116.779, 255.0 - 123.68],
      atol=1e-3)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_backbone_builds_frozen_and_trains_one_step(name, cutouts):
  size, _ = EXPECTED[name]
  keras.utils.set_random_seed(0)
  classifier = models.build_model(name, weights='none')
  assert classifier.model.input_shape == (None, size, size, 3)
  assert classifier.features.get_layer('preprocess').backbone == name
  assert classifier.model.output_shape == (None, 3)
  assert not classifier.application.trainable
  # Only the head trains: 4 Dense layers, kernel and bias each.
  assert len(classifier.model.trainable_weights) == 8
  images, labels = next(iter(input_pipeline.make_dataset(
      cutouts, 'train', image_size=size, batch_size=2)))
  assert images.shape == (2, size, size, 3)
  # As the trainer does for weights='none'.
  models.calibrate_random_backbone(classifier, images)
  backbone_before = [w.numpy().copy() for w in classifier.application.weights[:3]]
  output_kernel = classifier.head.get_layer('probabilities').kernel
  head_before = output_kernel.numpy().copy()
  models.compile_for_training(classifier.model, 1e-3)
  logs = classifier.model.train_on_batch(images, labels, return_dict=True)
  assert np.isfinite(logs['loss'])
  assert not np.array_equal(head_before, output_kernel.numpy())
  for before, weight in zip(backbone_before, classifier.application.weights):
    np.testing.assert_array_equal(before, weight.numpy())


def test_unknown_model_names_the_choices():
  with pytest.raises(models.ModelError, match='unknown model .resnet18.: '
                     'choose one of mobilenet, resnet50, vgg16, xception, '
                     'ugriz_cnn'):
    models.build_model('resnet18', weights='none')
  with pytest.raises(models.ModelError, match='not a frozen backbone'):
    models.build_model('ugriz_cnn', weights='none')


def test_weights_file_round_trip(tmp_path):
  keras.utils.set_random_seed(1)
  source = models.build_model('mobilenet', weights='none')
  path = tmp_path / 'mobilenet.weights.h5'
  source.application.save_weights(path)
  loaded = models.build_model('mobilenet', weights=str(path))
  for a, b in zip(source.application.weights, loaded.application.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_weights_file_missing_or_of_another_backbone(tmp_path):
  with pytest.raises(models.ModelError, match="weights file .*nope.h5' not "
                     'found: pass --weights=imagenet, --weights=none'):
    models.build_model('mobilenet', weights=str(tmp_path / 'nope.h5'))
  path = tmp_path / 'mobilenet.weights.h5'
  models.build_application('mobilenet', weights='none').save_weights(path)
  with pytest.raises(models.ModelError) as error:
    models.build_model('vgg16', weights=str(path))
  assert 'does not match vgg16 without top' in str(error.value)
  assert '\n' not in str(error.value)
  text = tmp_path / 'weights.txt'
  text.write_text('not weights')
  with pytest.raises(models.ModelError, match='expected a Keras .h5'):
    models.build_model('mobilenet', weights=str(text))


def test_imagenet_offline_fails_in_one_line(monkeypatch):
  from keras.src.utils import file_utils

  def offline(*args, **kwargs):
    raise Exception('URL fetch failure on https://storage.googleapis.com/x.h5:'
                    ' None -- [Errno -3] Temporary failure in name resolution')

  monkeypatch.setattr(file_utils, 'get_file', offline)
  with pytest.raises(models.ModelError) as error:
    models.build_model('mobilenet', weights='imagenet')
  message = str(error.value)
  assert '\n' not in message
  assert 'pass --weights=none or --weights=PATH' in message
  assert 'Temporary failure in name resolution' in message


def test_fine_tune_layers_unfreezes_the_top_layers_but_not_batch_norm():
  classifier = models.build_model('mobilenet', weights='none',
                                  fine_tune_layers=6)
  layers = classifier.application.layers
  assert all(not layer.trainable for layer in layers[:-6])
  top = layers[-6:]
  assert any(layer.trainable for layer in top)
  assert all(not layer.trainable for layer in top
             if isinstance(layer, keras.layers.BatchNormalization))
  assert len(classifier.model.trainable_weights) > 8
  models.set_fine_tune_layers(classifier, 0)
  assert len(classifier.model.trainable_weights) == 8
  with pytest.raises(models.ModelError, match='fine_tune_layers=1000'):
    models.set_fine_tune_layers(classifier, 1000)


def test_batch_norm_calibration_rescues_random_mobilenet_embeddings(cutouts):
  keras.utils.set_random_seed(0)
  classifier = models.build_model('mobilenet', weights='none')
  images, _ = next(iter(input_pipeline.make_dataset(
      cutouts, 'train', image_size=224, batch_size=8)))
  before = np.abs(classifier.features.predict(images, verbose=0)).mean()
  assert before < 1e-6  # BatchNorm stats of (0, 1) make activations vanish
  assert models.calibrate_batch_norm(classifier, images) == 27
  # With momentum 0 the first BatchNorm's moving mean is exactly the batch
  # mean of its input (the first convolution of the preprocessed images).
  app = classifier.application
  norm = next(layer for layer in app.layers
              if isinstance(layer, keras.layers.BatchNormalization))
  conv = keras.Model(app.inputs, norm.input)
  expected = conv(classifier.backbone.preprocess_input(
      tf.cast(images, tf.float32))).numpy().mean(axis=(0, 1, 2))
  np.testing.assert_allclose(norm.moving_mean.numpy(), expected,
                             rtol=1e-3, atol=1e-5)
  after = np.abs(classifier.features.predict(images, verbose=0)).mean()
  assert 1e-2 < after < 1e2
  assert not classifier.application.trainable
  assert len(classifier.model.trainable_weights) == 8


def mean_cosine_similarity(embeddings: np.ndarray) -> float:
  unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
  return float((unit @ unit.T)[np.triu_indices(len(unit), 1)].mean())


def test_convolution_calibration_rescues_random_vgg16_embeddings(cutouts):
  keras.utils.set_random_seed(0)
  classifier = models.build_model('vgg16', weights='none', input_size=64)
  images, _ = next(iter(input_pipeline.make_dataset(
      cutouts, 'train', image_size=64, batch_size=16)))
  before = classifier.features.predict(images, verbose=0)
  # No BatchNorm: the random ReLU stack maps every image to ~one direction.
  assert mean_cosine_similarity(before) > 0.995
  assert models.calibrate_random_backbone(classifier, images) == (
      models.CALIBRATE_CONVOLUTIONS, 13)
  # Every convolution now sees pre-activations of mean 0, variance 1 per
  # channel on these images; check the last one.
  app = classifier.application
  last = app.get_layer('block5_conv3')
  inputs = keras.Model(app.inputs, last.input)(
      classifier.backbone.preprocess_input(tf.cast(images, tf.float32)))
  z = (last.convolution_op(inputs, last.kernel) + last.bias).numpy()
  np.testing.assert_allclose(z.mean(axis=(0, 1, 2)), 0.0, atol=1e-3)
  np.testing.assert_allclose(z.var(axis=(0, 1, 2)), 1.0, rtol=1e-2)
  after = classifier.features.predict(images, verbose=0)
  assert mean_cosine_similarity(after) < 0.99
  assert not classifier.application.trainable


def test_convolution_calibration_refuses_other_layers_untouched(cutouts):
  keras.utils.set_random_seed(0)
  classifier = models.build_model('mobilenet', weights='none')
  before = [w.numpy().copy() for w in classifier.application.weights]
  images = np.zeros((2, 224, 224, 3), np.float32)
  with pytest.raises(models.ModelError, match='BatchNormalization'):
    models.calibrate_convolutions(classifier, images)
  for old, weight in zip(before, classifier.application.weights):
    np.testing.assert_array_equal(old, weight.numpy())


def test_softmax_stays_float32_under_mixed_precision():
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    classifier = models.build_model('mobilenet', weights='none')
  finally:
    keras.mixed_precision.set_global_policy(previous)
  assert classifier.head.get_layer('dense_0').compute_dtype == 'bfloat16'
  output = classifier.model(np.zeros((1, 224, 224, 3), np.float32))
  assert output.dtype == tf.float32


def test_saved_model_keeps_preprocessing(tmp_path):
  classifier = models.build_model('resnet50', weights='none')
  path = tmp_path / 'model.keras'
  classifier.model.save(path)
  loaded = models.load_classifier(path)
  assert loaded.get_layer('resnet50_features').get_layer(
      'preprocess').backbone == 'resnet50'
  images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3))
  np.testing.assert_allclose(loaded.predict(images, verbose=0),
                             classifier.model.predict(images, verbose=0),
                             atol=1e-5)


@pytest.mark.parametrize('setting, model, on_gpu, expected', [
    ('auto', 'mobilenet', False, 'mixed_bfloat16'),
    ('auto', 'resnet50', False, 'float32'),
    ('auto', 'xception', True, 'mixed_float16'),
    ('off', 'mobilenet', True, 'float32'),
    ('mixed_float16', 'vgg16', False, 'mixed_float16'),
])
def test_precision_policy(setting, model, on_gpu, expected):
  assert hyperparams.precision_policy(setting, model, on_gpu=on_gpu) == expected


def test_jit_and_feature_cache_choices():
  assert hyperparams.use_jit('auto', on_gpu=True)
  assert not hyperparams.use_jit('auto', on_gpu=False)
  assert hyperparams.use_jit('auto', on_gpu=False, dense_only=True)
  assert not hyperparams.use_jit('off', on_gpu=False, dense_only=True)
  assert hyperparams.use_jit('on', on_gpu=False)
  assert hyperparams.steps_per_execution(cached=True, steps_per_epoch=75) == 75
  assert hyperparams.steps_per_execution(cached=False, steps_per_epoch=75) == 1
  cache = hyperparams.use_feature_cache
  assert cache('auto', fine_tune_layers=0, augment=False)
  assert not cache('auto', fine_tune_layers=3, augment=False)
  assert not cache('auto', fine_tune_layers=0, augment=True)
  assert cache('on', fine_tune_layers=3, augment=False)
  assert not cache('off', fine_tune_layers=0, augment=False)
  with pytest.raises(ValueError, match='jit_compile=.maybe.'):
    hyperparams.use_jit('maybe', on_gpu=False)


def test_stamp_stretch_maps_bands_to_rgb():
  stamp = np.zeros((4, 4, 5), np.float32)
  stamp[..., 3] = 1000.0   # i: saturates red
  stamp[..., 2] = 0.05     # r: the softening, asinh(1) of the range
  stamp[0, 0, 1] = np.nan  # g: non-finite reads as 0
  rgb = input_pipeline.stamp_to_rgb(stamp, 'irg').numpy()
  assert rgb.shape == (4, 4, 3)
  np.testing.assert_allclose(rgb[..., 0], 255.0)
  expected_green = 255 * np.arcsinh(1.0) / np.arcsinh(100.0 / 0.05)
  np.testing.assert_allclose(rgb[..., 1], expected_green, rtol=1e-5)
  np.testing.assert_allclose(rgb[..., 2], 0.0)
  with pytest.raises(ValueError, match='three distinct letters'):
    input_pipeline.stamp_to_rgb(stamp, 'iig')


def _epoch(ds):
  images, labels = zip(*((i.numpy(), l.numpy()) for i, l in ds))
  return np.concatenate(images), np.concatenate(labels)


def test_cached_pipeline_delivers_the_same_images_every_epoch(cutouts,
                                                              monkeypatch):
  plain = _epoch(input_pipeline.make_dataset(
      cutouts, 'train', image_size=96, batch_size=8))
  cached_ds = input_pipeline.make_dataset(
      cutouts, 'train', image_size=96, batch_size=8, cache=True)
  for _ in range(2):  # The first pass fills the cache, the second reads it.
    images, labels = _epoch(cached_ds)
    assert images.dtype == np.float32 and images.shape == plain[0].shape
    np.testing.assert_array_equal(labels, plain[1])
    np.testing.assert_array_equal(images, plain[0])
  # Shuffled epochs differ in order but hold the same images.
  shuffled = input_pipeline.make_dataset(
      cutouts, 'train', image_size=96, batch_size=8, cache=True, shuffle=True)
  first, second = _epoch(shuffled)[0], _epoch(shuffled)[0]
  assert not np.array_equal(first, second)
  np.testing.assert_allclose(np.sort(first.sum(axis=(1, 2, 3))),
                             np.sort(second.sum(axis=(1, 2, 3))), rtol=1e-6)
  # A split over the memory budget is decoded every pass, as without cache.
  monkeypatch.setattr(input_pipeline, 'CACHE_MAX_BYTES', 1)
  over = _epoch(input_pipeline.make_dataset(
      cutouts, 'train', image_size=96, batch_size=8, cache=True))
  np.testing.assert_array_equal(over[0], plain[0])
