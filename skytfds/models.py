"""The model registry: four frozen-backbone classifiers and ugriz_cnn.

`MODEL_NAMES` lists every `--model`: the four frozen ImageNet backbones below
and `ugriz_cnn` (skytfds/ugriz_cnn.py), a compact CNN trained from scratch
on each dataset's native input (`input_pipeline.native_input`). Both kinds
come out of `build_model` as a `Classifier` (features, head, model), so the
trainer, checkpoints, evaluate and predict treat them alike.

Each backbone is a Keras application without its top, with its own
`preprocess_input` (MobileNet and Xception map [0, 255] to [-1, 1]; ResNet50
and VGG16 use `caffe` mode: BGR, ImageNet mean subtracted, no scaling) and its
natural input size in pixels (224, or 299 for Xception).

The classifier is split in two so that embeddings can be cached:

  features: images float32 [N, size, size, 3] in [0, 255]
            -> Preprocess (the application's own preprocess_input)
            -> application (frozen, called with training=False)
            -> GlobalAveragePooling2D                   -> embeddings [N, D]
  head:     embeddings -> Dense 1024 relu -> Dense 1024 relu -> Dense 512 relu
            -> Dense num_classes softmax (float32 under mixed precision)
  model:    head(features(images)), the model saved as `model.keras`.
"""

import dataclasses
import os
import warnings
from typing import Callable

import keras
import tensorflow as tf

from skytfds import ugriz_cnn

WEIGHTS_IMAGENET = 'imagenet'
WEIGHTS_NONE = 'none'
HEAD_UNITS = (1024, 1024, 512)
# How calibrate_random_backbone made a random backbone usable.
CALIBRATE_BATCH_NORM = 'batch_norm'
CALIBRATE_CONVOLUTIONS = 'convolutions'


class ModelError(ValueError):
  """A backbone or weights choice skytfds cannot use; str() is one clear line."""


@dataclasses.dataclass(frozen=True)
class Backbone:
  """One Keras application usable as a frozen feature extractor."""
  name: str
  constructor: Callable[..., keras.Model]
  preprocess_input: Callable  # float [0, 255] RGB -> what the application expects
  input_size: int             # natural input size, pixels (square)
  embedding_dim: int          # channels after global average pooling


BACKBONES: dict[str, Backbone] = {
    'mobilenet': Backbone(
        'mobilenet', keras.applications.MobileNet,
        keras.applications.mobilenet.preprocess_input, 224, 1024),
    'resnet50': Backbone(
        'resnet50', keras.applications.ResNet50,
        keras.applications.resnet50.preprocess_input, 224, 2048),
    'vgg16': Backbone(
        'vgg16', keras.applications.VGG16,
        keras.applications.vgg16.preprocess_input, 224, 512),
    'xception': Backbone(
        'xception', keras.applications.Xception,
        keras.applications.xception.preprocess_input, 299, 2048),
}


# Trained from scratch on the datasets' native input.
FROM_SCRATCH = (ugriz_cnn.NAME,)
MODEL_NAMES = tuple(sorted(BACKBONES)) + FROM_SCRATCH


def check_model(name: str) -> str:
  """`name` if it is a known model; ModelError naming every model."""
  if name not in MODEL_NAMES:
    raise ModelError(
        f'unknown model {name!r}: choose one of {", ".join(MODEL_NAMES)}')
  return name


def is_from_scratch(name: str) -> bool:
  """Whether model `name` trains every layer from its native input."""
  return check_model(name) in FROM_SCRATCH


def get_backbone(name: str) -> Backbone:
  """The registry entry of backbone `name`; ModelError naming the models."""
  try:
    return BACKBONES[check_model(name)]
  except KeyError:
    raise ModelError(
        f'{name!r} is not a frozen backbone: choose one of '
        f'{", ".join(sorted(BACKBONES))}') from None


@keras.saving.register_keras_serializable(package='skytfds')
class Preprocess(keras.layers.Layer):
  """The backbone's own `preprocess_input`, as a layer saved with the model."""

  def __init__(self, backbone: str, **kwargs):
    super().__init__(**kwargs)
    self.backbone = get_backbone(backbone).name

  def call(self, images):
    return BACKBONES[self.backbone].preprocess_input(images)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'backbone': self.backbone}


def _describe(error: BaseException, limit: int = 240) -> str:
  """The first two lines of an error message, on one line."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  text = ' '.join(lines[:2]) or type(error).__name__
  return text if len(text) <= limit else text[:limit - 3] + '...'


def build_application(name: str, *, weights: str = WEIGHTS_IMAGENET,
                      input_size: int | None = None) -> keras.Model:
  """The application without its top, weights loaded.

  Args:
    name: a key of BACKBONES.
    weights: 'imagenet' (Keras' own download and cache under ~/.keras/models),
      'none' (random initialisation) or the path of a local weights file of
      this backbone without top (.h5 or .weights.h5).
    input_size: pixels; default the backbone's natural size.

  Raises:
    ModelError: unknown backbone, ImageNet weights that cannot be downloaded,
      a weights file that is missing or does not fit this backbone.
  """
  backbone = get_backbone(name)
  size = input_size or backbone.input_size
  shape = (size, size, 3)
  if weights == WEIGHTS_NONE:
    return backbone.constructor(include_top=False, weights=None,
                                input_shape=shape)
  if weights == WEIGHTS_IMAGENET:
    try:
      return backbone.constructor(include_top=False, weights='imagenet',
                                  input_shape=shape)
    except Exception as e:  # Keras raises a bare Exception on fetch failure.
      raise ModelError(
          f'could not get the ImageNet weights of {name} ({_describe(e)}); '
          f'offline, pass --weights=none or --weights=PATH to a local '
          f'{name} weights file (.h5)') from None
  path = os.fspath(weights)
  if not os.path.isfile(path):
    raise ModelError(
        f'weights file {path!r} not found: pass --weights=imagenet, '
        f'--weights=none or the path of a {name} weights file (.h5)')
  if not path.endswith('.h5'):
    raise ModelError(
        f'weights file {path!r}: expected a Keras .h5 or .weights.h5 file '
        f'of {name} without its top')
  application = backbone.constructor(include_top=False, weights=None,
                                     input_shape=shape)
  _load_weights(application, path, (
      f'does not match {name} without top at {size} px', 'use weights saved '
      'from the same backbone, or --weights=imagenet|none'))
  return application


def _load_weights(model: keras.Model, path: str,
                  mismatch: tuple[str, str]) -> None:
  """model.load_weights(path); ModelError 'weights file P <mismatch[0]>
  (why); <mismatch[1]>' when the file does not fit."""
  try:
    model.load_weights(path)
  except Exception as e:  # h5py, shape and layer-count errors alike.
    raise ModelError(f'weights file {path!r} {mismatch[0]} ({_describe(e)}); '
                     f'{mismatch[1]}') from None


def build_head(embedding_dim: int, num_classes: int = 3) -> keras.Model:
  """Dense 1024, 1024, 512 (relu) and a float32 softmax over the classes."""
  embeddings = keras.Input((embedding_dim,), name='embeddings')
  x = embeddings
  for i, units in enumerate(HEAD_UNITS):
    x = keras.layers.Dense(units, activation='relu', name=f'dense_{i}')(x)
  # Keep the softmax in float32 under mixed precision (numerical stability).
  probabilities = keras.layers.Dense(
      num_classes, activation='softmax', dtype='float32', name='probabilities')(x)
  return keras.Model(embeddings, probabilities, name='head')


@dataclasses.dataclass
class Classifier:
  """The parts of one classifier; `model` shares its layers with the others.

  For ugriz_cnn, `backbone` is None and `application` is `features`: every
  layer trains, and the inputs are the native ones, not RGB in [0, 255].
  """
  backbone: Backbone | None
  application: keras.Model   # the Keras application (frozen)
  features: keras.Model      # images [0, 255] -> embeddings
  head: keras.Model          # embeddings -> class probabilities
  model: keras.Model         # images [0, 255] -> class probabilities

  @property
  def input_size(self) -> int:
    return self.features.input_shape[1]

  @property
  def native(self) -> bool:
    """Whether the model reads the native input (input_pipeline)."""
    return self.backbone is None


def build_from_scratch(name: str, input_shape: tuple[int, int, int], *,
                       weights: str = WEIGHTS_NONE, num_classes: int = 3,
                       bands: str | None = None, seed: int | None = None,
                       dim_max_mag: float = ugriz_cnn.DIM_MAX_MAG
                       ) -> Classifier:
  """A model of FROM_SCRATCH for native inputs of `input_shape`.

  Args:
    name: 'ugriz_cnn'.
    input_shape: (size, size, channels + 1), the last channel padding.
    weights: 'none' (random), or a `.weights.h5` file saved from the same
      model on inputs of the same shape (e.g. a run's
      checkpoints/model/model.weights.h5) to start from.
    bands: the flux bands of a stamp's channels ('ugriz'), or None for
      image channels in [0, 1].
    seed: of the augmentation and dropout.
    dim_max_mag: the training-time dimming of flux stamps, magnitudes (0:
      off; never for image channels).

  Raises:
    ModelError: 'imagenet' weights (there are none), a weights file that is
      missing or does not fit.
  """
  check_model(name)
  if weights == WEIGHTS_IMAGENET:
    raise ModelError(
        f'{name} is trained from scratch and has no ImageNet weights: pass '
        f'--weights=none, or --weights=PATH of a {name} .weights.h5 file')
  features, head, model = ugriz_cnn.build(input_shape, num_classes,
                                          bands=bands, seed=seed,
                                          dim_max_mag=dim_max_mag)
  if weights != WEIGHTS_NONE:
    path = os.fspath(weights)
    if not os.path.isfile(path) or not path.endswith('.weights.h5'):
      raise ModelError(
          f'weights {path!r}: expected an existing {name} .weights.h5 file '
          f'(e.g. a run\'s checkpoints/model/model.weights.h5), or none')
    _load_weights(model, path, (
        f'does not fit {name} on inputs {tuple(input_shape)}',
        f'use weights saved from a {name} run on the same kind of dataset, '
        'or --weights=none'))
  return Classifier(None, features, features, head, model)


def build_model(name: str, *, weights: str = WEIGHTS_IMAGENET,
                num_classes: int = 3, fine_tune_layers: int = 0,
                input_size: int | None = None) -> Classifier:
  """The frozen-backbone classifier for backbone `name`.

  Build it under the mixed-precision policy and distribution strategy scope
  wanted: the layers take the global policy when created.

  Args:
    name: a key of BACKBONES.
    weights: see build_application.
    num_classes: softmax outputs.
    fine_tune_layers: how many of the application's top layers are trainable
      (BatchNormalization layers stay frozen); 0 freezes it all.
    input_size: pixels; default the backbone's natural size.
  """
  backbone = get_backbone(name)
  application = build_application(name, weights=weights, input_size=input_size)
  size = application.input_shape[1]
  images = keras.Input((size, size, 3), name='images')
  x = Preprocess(backbone.name, name='preprocess')(images)
  # training=False: BatchNorm stays in inference mode even when fine-tuning.
  x = application(x, training=False)
  embeddings = keras.layers.GlobalAveragePooling2D(name='pool')(x)
  features = keras.Model(images, embeddings, name=f'{name}_features')
  head = build_head(backbone.embedding_dim, num_classes)
  model = keras.Model(images, head(features(images)), name=f'{name}_classifier')
  classifier = Classifier(backbone, application, features, head, model)
  set_fine_tune_layers(classifier, fine_tune_layers)
  return classifier


def set_fine_tune_layers(classifier: Classifier, count: int) -> None:
  """Freeze the application except its top `count` layers (not BatchNorm)."""
  application = classifier.application
  if count < 0 or count > len(application.layers):
    raise ModelError(
        f'fine_tune_layers={count}: {classifier.backbone.name} has '
        f'{len(application.layers)} layers; pass 0..{len(application.layers)}')
  if count == 0:
    application.trainable = False
    return
  application.trainable = True
  top = set(id(layer) for layer in application.layers[-count:])
  for layer in application.layers:
    layer.trainable = (id(layer) in top and
                       not isinstance(layer, keras.layers.BatchNormalization))


def calibrate_batch_norm(classifier: Classifier, images) -> int:
  """Set the application's BatchNorm moving statistics from real images.

  For randomly initialised backbones (weights='none') only: their BatchNorm
  layers hold mean 0, variance 1, which does not match the activations, and
  through a deep frozen stack the embeddings vanish (random MobileNet gives
  ~1e-19) so the head cannot learn. One forward pass in training mode with
  momentum 0 makes every layer's moving statistics those of these images.

  Args:
    classifier: from build_model.
    images: float32 [N, size, size, 3] in [0, 255]; a few dozen are plenty.

  Returns:
    How many BatchNormalization layers were calibrated (0 for VGG16).
  """
  application = classifier.application
  norms = [layer for layer in application.layers
           if isinstance(layer, keras.layers.BatchNormalization)]
  if not norms:
    return 0
  trainable = [layer.trainable for layer in application.layers]
  was_trainable, momenta = application.trainable, [n.momentum for n in norms]
  application.trainable = True  # frozen BatchNorm never updates its statistics
  for norm in norms:
    norm.momentum = 0.0
  try:
    # As a graph: run eagerly, the first pass through a fresh model costs
    # several times more (every op's kernel set up one by one).
    tf.function(lambda x: application(x, training=True))(
        classifier.backbone.preprocess_input(
            keras.ops.convert_to_tensor(images, 'float32')))
  finally:
    for norm, momentum in zip(norms, momenta):
      norm.momentum = momentum
    application.trainable = was_trainable
    for layer, value in zip(application.layers, trainable):
      layer.trainable = value
  return len(norms)


def calibrate_convolutions(classifier: Classifier, images) -> int:
  """Centre and scale every convolution of a BatchNorm-free backbone (VGG16).

  The counterpart of calibrate_batch_norm for random backbones without
  BatchNorm (weights='none' only). With zero biases and random kernels, a
  deep ReLU stack maps every image to nearly the same embedding (random
  VGG16: 1.1% spread across images, mean cosine similarity 0.99997), so the
  head has nothing to learn from. Walking the layers in order, each
  convolution's kernel and bias are rescaled so that its pre-activations have
  mean 0 and variance 1 per channel on these images, which is what a
  calibrated BatchNorm after it would do (a data-dependent initialisation, as
  in Mishkin & Matas 2016, "All you need is a good init"). Afterwards the
  embeddings of random VGG16 spread ~28% with mean cosine similarity ~0.96.

  Args:
    classifier: from build_model.
    images: float32 [N, size, size, 3] in [0, 255]; a few dozen are plenty.

  Returns:
    How many convolutions were calibrated.

  Raises:
    ModelError: the application has a layer other than convolutions and
      pooling (this walk only handles plain stacks such as VGG).
  """
  pooling = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
  layers = [layer for layer in classifier.application.layers
            if not isinstance(layer, keras.layers.InputLayer)]
  for layer in layers:  # all checked before any weight changes
    if not isinstance(layer, (keras.layers.Conv2D, *pooling)):
      raise ModelError(
          f'cannot calibrate {classifier.backbone.name}: layer {layer.name} '
          f'({type(layer).__name__}) is neither a convolution nor pooling')
  x = classifier.backbone.preprocess_input(
      keras.ops.convert_to_tensor(images, 'float32'))
  count = 0
  for layer in layers:
    if isinstance(layer, keras.layers.Conv2D):
      z = layer.convolution_op(x, layer.kernel) + layer.bias
      mean, variance = tf.nn.moments(z, axes=[0, 1, 2])
      scale = tf.math.rsqrt(variance + 1e-6)
      layer.kernel.assign(layer.kernel * scale)
      layer.bias.assign((layer.bias - mean) * scale)
      x = layer.activation((z - mean) * scale)
      count += 1
    else:
      x = keras.ops.cast(layer(x), 'float32')  # pooling may run in bf16
  return count


def calibrate_random_backbone(classifier: Classifier, images
                              ) -> tuple[str, int]:
  """Make a randomly initialised backbone usable (weights='none' only).

  BatchNorm statistics where the backbone has BatchNorm (MobileNet, ResNet50,
  Xception), else its convolutions (VGG16).

  Returns:
    (method, layers): CALIBRATE_BATCH_NORM or CALIBRATE_CONVOLUTIONS, and how
    many layers it changed.
  """
  layers = calibrate_batch_norm(classifier, images)
  if layers:
    return CALIBRATE_BATCH_NORM, layers
  return CALIBRATE_CONVOLUTIONS, calibrate_convolutions(classifier, images)


def compile_for_training(model: keras.Model, learning_rate: float, *,
                         jit_compile: bool = False,
                         decay_steps: int | None = None,
                         steps_per_execution: int = 1) -> None:
  """Adam and categorical cross-entropy, accuracy as the metric.

  decay_steps: if given, the learning rate follows a cosine from
  `learning_rate` down to 1% of it over that many steps (used for models
  trained from scratch, whose last epochs then settle instead of jumping
  between minima); else it stays constant.
  steps_per_execution: training steps per call into the compiled function
  (hyperparams.steps_per_execution); the updates do not depend on it.
  """
  if decay_steps:
    learning_rate = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps, alpha=0.01)
  model.compile(
      optimizer=keras.optimizers.Adam(learning_rate),
      loss='categorical_crossentropy',
      metrics=['accuracy'],
      jit_compile=jit_compile,
      steps_per_execution=steps_per_execution,
  )


def load_classifier(path: str | os.PathLike) -> keras.Model:
  """A saved full model (`model.keras`), custom layers registered."""
  with warnings.catch_warnings():
    # Keras 3.15 warns for weightless nested containers of the application.
    warnings.filterwarnings('ignore', message='Skipping nested container')
    return keras.models.load_model(os.fspath(path), compile=False)
