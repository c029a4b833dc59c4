"""ugriz_cnn: a compact CNN trained from scratch on the survey's own pixels.

The four frozen ImageNet backbones see three channels scaled to [0, 255];
this model reads what a dataset holds (`input_pipeline.native_input`):

  sdss_filters: [64, 64, 6] = ugriz flux in nanomaggies and a padding
                channel (1 where the stamp ran off the frame, else 0);
  image sets:   [64, 64, 4] = R, G, B in [0, 1] and a zero padding channel.

  inputs -> SkyAugment (training only: the eight flips and quarter turns,
            a sub-pixel shift, extra noise at the stamp's own noise level)
         -> BandStretch (flux: asinh(x / b_k) per band, b_k learnt, started
            at one sigma of real SDSS sky noise per pixel; padded pixels 0)
         -> 4 blocks of two 3x3 convolutions (BatchNorm, ReLU), 2x2 pooling
            between them: 64 -> 32 -> 16 -> 8 px, WIDTHS channels
         -> global average and max pooling, beside ApertureColours (the
            central object's asinh aperture magnitudes and colours, measured
            on the augmented fluxes)
         -> dropout -> dense -> softmax.

About 0.3 M parameters; everything trains (no frozen part, no feature cache).
The layers are registered Keras serializables in this module, which
`keras.saving.load_model` imports by name from the saved config, so
`model.keras` loads in a plain Keras session once skytfds is installed.
"""

import math

import keras
import tensorflow as tf

NAME = 'ugriz_cnn'
INPUT_SIZE = 64            # pixels, the sdss_filters stamp side
WIDTHS = (16, 32, 64, 128)  # channels of the four convolution blocks
DENSE_UNITS = 64
DROPOUT = 0.3
# Keras' 0.99 needs hundreds of steps before the moving statistics match the
# data; a `tiny` run has 8 steps an epoch and evaluated near chance.
BATCH_NORM_MOMENTUM = 0.9
# One sigma of the sky noise per pixel in real SDSS frames, nanomaggies: the
# median absolute deviation of frames 003918-3-0213 and 002583-2-0136 in
# ../shared/data/sas (u 0.04-0.07, g 0.016-0.037, r 0.023-0.056, i 0.04-0.10,
# z 0.16-0.28). The stretch is linear below it and logarithmic above.
SOFTENING_NMGY = {'u': 0.05, 'g': 0.025, 'r': 0.035, 'i': 0.06, 'z': 0.2}
# Largest sub-pixel shift and extra noise (in units of the stamp's own noise)
# that SkyAugment applies.
MAX_SHIFT_PX = 0.5
MAX_EXTRA_NOISE = 1.0
# Dimming: DIM_FRACTION of the training stamps are made fainter by up to
# DIM_MAX_MAG magnitudes (uniform), flux stamps only (see SkyAugment).
DIM_FRACTION = 0.5
DIM_MAX_MAG = 2.5
NOISE_ROW_STEP = 4
# Radius of ApertureColours' aperture: about the seeing FWHM (1.4 arcsec).
APERTURE_PX = 4.0
# Softening of image channels in [0, 1] (after their colour stretch).
IMAGE_SOFTENING = 0.01

STRETCH_ASINH = 'asinh'    # flux channels (nanomaggies)
STRETCH_LINEAR = 'linear'  # image channels already in [0, 1]


def robust_noise(images: tf.Tensor) -> tf.Tensor:
  """Per image and channel, the pixel noise sigma: [B, H, W, C] -> [B, 1, 1, C].

  From differences of horizontally adjacent pixels, which cancel smooth
  sources: for Gaussian noise, median |x[i+1] - x[i]| = 0.6745 * sqrt(2) *
  sigma. Sources cover a small part of a stamp, so the median ignores them.
  Every NOISE_ROW_STEP-th row is enough (~1,000 differences per channel at
  64 px) and makes the sort 3x cheaper than over all rows.
  """
  rows = images[:, ::NOISE_ROW_STEP]
  diffs = tf.abs(rows[:, :, 1:, :] - rows[:, :, :-1, :])
  flat = tf.reshape(tf.transpose(diffs, [0, 3, 1, 2]),
                    [tf.shape(diffs)[0], tf.shape(diffs)[3], -1])
  middle = tf.shape(flat)[-1] // 2
  median = tf.sort(flat, axis=-1)[:, :, middle]
  sigma = median / (0.6745 * math.sqrt(2.0))
  return sigma[:, None, None, :]


@keras.saving.register_keras_serializable(package='skytfds')
class SkyAugment(keras.layers.Layer):
  """Training-time changes that leave a sky image's class as it was.

  The sky has no up, down or handedness: each image gets one of the eight
  flips and quarter turns. The object is centred only to a pixel or so: a
  random shift of up to MAX_SHIFT_PX (bilinear, with the noise that the
  interpolation smooths away put back). A fainter or noisier observation of
  the same object: Gaussian noise of up to MAX_EXTRA_NOISE times the image's
  own noise per channel. The same object farther away (max_dim_mag > 0, for
  flux stamps: a linear scale): a fraction dim_fraction of the stamps have
  their flux multiplied by f = 10^(-0.4 dm), dm uniform in [0, max_dim_mag],
  with the sky noise that the scaling took away put back, so the object is
  dm magnitudes fainter on the same sky (colours and PSF unchanged). The
  spectroscopic training catalogues stop near r = 22 while a field's
  photometric objects go 2-3 magnitudes fainter. The padding channel (the
  last) is turned and shifted with the image but gets no noise. At inference
  (training=False) the layer passes its input through.
  """

  def __init__(self, seed: int | None = None, max_dim_mag: float = 0.0,
               dim_fraction: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.seed = seed
    self.max_dim_mag = float(max_dim_mag)
    self.dim_fraction = float(dim_fraction)
    self._generator = keras.random.SeedGenerator(seed)

  def call(self, images, training=None):
    if not training:
      return images
    inputs = images = tf.convert_to_tensor(images)
    batch = tf.shape(images)[0]
    coins = keras.random.uniform((3, batch, 1, 1, 1), seed=self._generator) < 0.5
    images = tf.where(coins[0], images[:, :, ::-1, :], images)
    images = tf.where(coins[1], images[:, ::-1, :, :], images)
    images = tf.where(coins[2], tf.transpose(images, [0, 2, 1, 3]), images)
    own_noise = robust_noise(images[..., :-1])
    shift = keras.random.uniform((batch, 2), -MAX_SHIFT_PX, MAX_SHIFT_PX,
                                 seed=self._generator)
    ones, zeros = tf.ones([batch]), tf.zeros([batch])
    # Output pixel (x, y) reads input (x + dx, y + dy): [a0 a1 a2 b0 b1 b2 c0 c1].
    transforms = tf.stack([ones, zeros, shift[:, 0], zeros, ones, shift[:, 1],
                           zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms,
        output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation='BILINEAR', fill_mode='CONSTANT')
    signal, padding = images[..., :-1], images[..., -1:]
    # Bilinear resampling averages neighbours, which lowers the noise:
    # by (1 - d)^2 + d^2 in variance per axis for a shift of d pixels (0.25
    # at half a pixel both ways). Dimming by f lowers it by f^2 more. What
    # was lost is put back, so that the stamp is as noisy as a real one,
    # and then the extra noise: variance sigma^2 (1 + level^2) in the end.
    d = tf.abs(shift)
    kept = tf.reduce_prod((1.0 - d) ** 2 + d ** 2, axis=1)[:, None, None, None]
    scale = self._dimming(batch)
    level = keras.random.uniform((batch, 1, 1, 1), 0.0, MAX_EXTRA_NOISE,
                                 seed=self._generator)
    added = own_noise * tf.sqrt(1.0 + level ** 2 - kept * scale ** 2)
    noise = keras.random.normal(tf.shape(signal), seed=self._generator)
    signal = signal * scale + noise * added * (1.0 - padding)
    # The projective transform forgets the static size; the layers after
    # this one (ApertureColours) need it.
    return tf.ensure_shape(tf.concat([signal, padding], axis=-1), inputs.shape)

  def _dimming(self, batch) -> tf.Tensor:
    """Per stamp, the flux scale f (1 for the stamps left as they are)."""
    if self.max_dim_mag <= 0.0 or self.dim_fraction <= 0.0:
      return tf.ones((batch, 1, 1, 1))
    magnitudes = keras.random.uniform((batch, 1, 1, 1), 0.0, self.max_dim_mag,
                                      seed=self._generator)
    chosen = keras.random.uniform((batch, 1, 1, 1),
                                  seed=self._generator) < self.dim_fraction
    return tf.where(chosen, 10.0 ** (-0.4 * magnitudes), 1.0)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'seed': self.seed,
            'max_dim_mag': self.max_dim_mag, 'dim_fraction': self.dim_fraction}


@keras.saving.register_keras_serializable(package='skytfds')
class BandStretch(keras.layers.Layer):
  """Per-channel scaling of the signal channels; the padding channel kept.

  asinh: y_k = asinh(x_k / b_k) / 4 with b_k > 0 learnt per band (stored as
  log b_k, started at `softening`): linear for faint pixels, logarithmic for
  bright ones, as in SDSS's asinh magnitudes (Lupton, Gunn & Szalay 1999).
  linear: y_k = x_k. Padded pixels are set to 0 either way.
  """

  def __init__(self, stretch: str = STRETCH_ASINH,
               softening: tuple[float, ...] = (), **kwargs):
    super().__init__(**kwargs)
    if stretch not in (STRETCH_ASINH, STRETCH_LINEAR):
      raise ValueError(f'stretch={stretch!r}: expected {STRETCH_ASINH!r} or '
                       f'{STRETCH_LINEAR!r}')
    self.stretch = stretch
    self.softening = tuple(float(b) for b in softening)

  def build(self, input_shape):
    channels = input_shape[-1] - 1
    if self.stretch == STRETCH_ASINH:
      if len(self.softening) != channels:
        raise ValueError(f'{len(self.softening)} softening values for '
                         f'{channels} flux channels')
      initial = [math.log(b) for b in self.softening]
      self.log_softening = self.add_weight(
          name='log_softening', shape=(channels,),
          initializer=keras.initializers.Constant(initial))
    super().build(input_shape)

  def call(self, images):
    signal, padding = images[..., :-1], images[..., -1:]
    if self.stretch == STRETCH_ASINH:
      signal = tf.math.asinh(signal * tf.exp(-self.log_softening)) / 4.0
    return tf.concat([signal * (1.0 - padding), padding], axis=-1)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'stretch': self.stretch,
            'softening': list(self.softening)}


@keras.saving.register_keras_serializable(package='skytfds')
class ApertureColours(keras.layers.Layer):
  """Aperture magnitudes and colours of the central object, per channel.

  QSOs and stars are both point sources; the survey tells them apart by
  colour (a QSO's ultraviolet excess, u - g), which convolutions would have
  to reconstruct from stretched pixels. This layer measures it directly: the
  flux within APERTURE_PX of the centre per channel, as an asinh magnitude
  (22.5 - 2.5 log10 of nanomaggies for bright objects, finite for faint or
  negative ones; Lupton, Gunn & Szalay 1999) with the softening b scaled to
  the aperture's noise, then the differences of adjacent channels. Output:
  [B, 2 * channels - 1], centred and scaled to about unit range.
  """

  def __init__(self, softening: tuple[float, ...] = (), **kwargs):
    super().__init__(**kwargs)
    self.softening = tuple(float(b) for b in softening)

  def call(self, images):
    signal = images[..., :-1]
    size = signal.shape[1]
    centre = (size - 1) / 2.0
    offsets = tf.range(size, dtype=signal.dtype) - centre
    inside = tf.cast(offsets[:, None] ** 2 + offsets[None, :] ** 2
                     <= APERTURE_PX ** 2, signal.dtype)
    flux = tf.einsum('bhwc,hw->bc', signal, inside)
    b = tf.constant(self.softening, signal.dtype) * tf.sqrt(tf.reduce_sum(inside))
    magnitudes = 22.5 - 2.5 / math.log(10.0) * (
        tf.math.asinh(flux / (2.0 * b)) + tf.math.log(b))
    colours = magnitudes[:, :-1] - magnitudes[:, 1:]
    return tf.concat([(magnitudes - 20.0) / 3.0, colours], axis=-1)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], 2 * (input_shape[-1] - 1) - 1)

  def get_config(self):
    return {**super().get_config(), 'softening': list(self.softening)}


def _block(x, width: int, index: int):
  for k in range(2):
    x = keras.layers.Conv2D(width, 3, padding='same', use_bias=False,
                            name=f'block{index}_conv{k}')(x)
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                        name=f'block{index}_norm{k}')(x)
    x = keras.layers.ReLU(name=f'block{index}_relu{k}')(x)
  return x


def build(input_shape: tuple[int, int, int], num_classes: int = 3, *,
          bands: str | None = 'ugriz', seed: int | None = None,
          dim_max_mag: float = DIM_MAX_MAG
          ) -> tuple[keras.Model, keras.Model, keras.Model]:
  """(features, head, model) of a fresh ugriz_cnn.

  Args:
    input_shape: (size, size, channels + 1): the last channel is padding.
    num_classes: softmax outputs.
    bands: the flux bands of the signal channels, in order (asinh stretch
      with SOFTENING_NMGY), or None for image channels in [0, 1] (no stretch).
    seed: of the augmentation's random draws.
    dim_max_mag: SkyAugment's dimming of flux stamps (0: off); image
      channels, already stretched, are never dimmed.
  """
  channels = input_shape[-1]
  if bands is not None and len(bands) != channels - 1:
    raise ValueError(f'bands {bands!r} for {channels - 1} signal channels')
  inputs = keras.Input(input_shape, name='images')
  # Dimming scales flux linearly: not for image channels already stretched.
  augmented = SkyAugment(
      seed=seed, name='augment',
      max_dim_mag=dim_max_mag if bands is not None else 0.0,
      dim_fraction=DIM_FRACTION)(inputs)
  if bands is None:
    softening = (IMAGE_SOFTENING,) * (channels - 1)
    x = BandStretch(STRETCH_LINEAR, name='stretch')(augmented)
  else:
    softening = tuple(SOFTENING_NMGY[b] for b in bands)
    x = BandStretch(STRETCH_ASINH, softening, name='stretch')(augmented)
  colours = ApertureColours(softening, name='colours')(augmented)
  for index, width in enumerate(WIDTHS):
    if index:
      x = keras.layers.MaxPooling2D(2, name=f'pool{index}')(x)
    x = _block(x, width, index)
  pooled = keras.layers.Concatenate(name='pool')([
      keras.layers.GlobalAveragePooling2D(name='mean_pool')(x),
      keras.layers.GlobalMaxPooling2D(name='max_pool')(x), colours])
  features = keras.Model(inputs, pooled, name=f'{NAME}_features')
  embeddings = keras.Input((pooled.shape[-1],), name='embeddings')
  h = keras.layers.Dropout(DROPOUT, seed=seed, name='dropout')(embeddings)
  h = keras.layers.Dense(DENSE_UNITS, activation='relu', name='dense')(h)
  probabilities = keras.layers.Dense(
      num_classes, activation='softmax', dtype='float32',
      name='probabilities')(h)
  head = keras.Model(embeddings, probabilities, name='head')
  model = keras.Model(inputs, head(features(inputs)), name=f'{NAME}_classifier')
  return features, head, model
