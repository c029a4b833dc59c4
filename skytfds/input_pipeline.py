"""TFDS datasets, loaded by name, as tf.data pipelines of (images, one-hot).

One readable chain (big_transfer style): read the encoded examples, shuffle
them while they are small, decode and resize in a parallel `map` (AUTOTUNE),
batch, prefetch. Images come out float32 [N, size, size, 3] in [0, 255], RGB;
each backbone's own `preprocess_input` lives inside the model (models.py), so
the same pipeline feeds every backbone. A pipeline read many times (streaming
training, per-epoch validation) can ask for `cache=True`: the decoded, resized
images are then kept in memory after the first pass (float32, exactly what an
uncached pass delivers) and shuffled there, so later epochs skip decoding, if
the split fits in CACHE_MAX_BYTES.

Image datasets (sdss_rgb, sdss_cutouts, ps1_cutouts) carry `image` (uint8
[H, W, 3], PNG or JPEG bytes). `sdss_filters` carries `stamp` (float32
[H, W, 5], ugriz in nanomaggies): three bands are chosen with `bands` (default
'irg' as R, G, B, the SDSS colour convention) and put through an asinh stretch
to [0, 255].

Models trained from scratch (ugriz_cnn) take the `native` input instead
(`make_dataset(native=True)`): every channel the dataset has, unstretched,
plus a padding channel. A stamp gives [H, W, 6]: ugriz nanomaggies (non-finite
read as 0) and its mask (1.0 where the stamp ran off the frame); an image
gives [H, W, 4]: R, G, B / 255 and a zero channel. Both are resized to
`image_size` (bilinear) only when their size differs.
"""

import os
import pathlib
import re
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from skytfds import datasets  # noqa: F401  (registers the four builders with TFDS)
from skytfds import survey
from skytfds.datasets import configs

IMAGE_FEATURE = 'image'
STAMP_FEATURE = 'stamp'
MASK_FEATURE = 'mask'
LABEL_FEATURE = 'label'
STAMP_BANDS = ''.join(survey.BANDS)
DEFAULT_BANDS = 'irg'
# asinh stretch of stamps: linear below the softening (about 5 sigma of SDSS
# sky noise per pixel), logarithmic above; STAMP_MAX_NMGY maps to 255.
STAMP_SOFTENING_NMGY = 0.05
STAMP_MAX_NMGY = 100.0
SHUFFLE_BUFFER = 10_000
# Decoded images kept in memory by `make_dataset(cache=True)` (the shuffle
# buffer after the cache holds as much again). 2,400 images at 224 px: 1.4 GB.
CACHE_MAX_BYTES = 2 << 30


class DatasetError(ValueError):
  """A dataset that cannot be used as asked; str() is one clear line."""


def build_command(name: str, data_dir: str | os.PathLike | None) -> str:
  """The command line that builds dataset `name` ('sdss_rgb/tiny') into data_dir."""
  command = f'tfds build {name} --imports=skytfds'
  if data_dir:
    command += f' --data_dir={os.fspath(data_dir)}'
  return command


def get_builder(name: str, data_dir: str | os.PathLike | None
                ) -> tfds.core.DatasetBuilder:
  """The builder of an already built dataset `name` ('sdss_cutouts/tiny').

  Raises:
    DatasetError: unknown name or config, or not built under data_dir (the
      message names the build command).
  """
  where = os.fspath(data_dir) if data_dir else tfds.core.constants.DATA_DIR
  _check_name(name)
  try:
    builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir else None)
  except (ValueError, KeyError, tfds.core.registered.DatasetNotFoundError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise DatasetError(f'dataset {name!r} is unknown ({first}); '
                       f'{_KNOWN_NAMES}') from None
  if not builder.is_prepared():
    raise DatasetError(
        f'dataset {name!r} is not built under {where}; '
        f'build it with: {build_command(name, data_dir)}')
  features = builder.info.features
  if LABEL_FEATURE not in features or not (
      IMAGE_FEATURE in features or STAMP_FEATURE in features):
    raise DatasetError(
        f'dataset {name!r} has features {sorted(features.keys())}: expected '
        f'{LABEL_FEATURE!r} and {IMAGE_FEATURE!r} or {STAMP_FEATURE!r}')
  return builder


_KNOWN_NAMES = (
    f'skytfds datasets are {", ".join(datasets.NAMES)}, each with configs '
    f'{", ".join(configs.NAMES)} (e.g. sdss_rgb/tiny)')


def _check_name(name: str) -> None:
  """Refuses a skytfds dataset name with a config it does not have."""
  dataset, _, rest = name.partition('/')
  config = rest.split('/')[0]
  if dataset in datasets.NAMES and config and config not in configs.NAMES:
    raise DatasetError(
        f'dataset {dataset!r} has no config {config!r}: choose one of '
        f'{", ".join(configs.NAMES)} (e.g. {dataset}/tiny)')


def image_feature(builder: tfds.core.DatasetBuilder) -> str:
  """'image' for the image datasets, 'stamp' for sdss_filters."""
  return (STAMP_FEATURE if STAMP_FEATURE in builder.info.features
          else IMAGE_FEATURE)


def provenance(builder: tfds.core.DatasetBuilder) -> dict[str, Any]:
  """Where a skytfds dataset came from (its DatasetInfo metadata); {} if unknown."""
  metadata = builder.info.metadata
  return dict(metadata.get('provenance') or {}) if metadata else {}


def data_source(builder: tfds.core.DatasetBuilder) -> str:
  """A few words for reports: 'simulated (skytfds emulator)', 'SDSS services',
  with ', user catalogue' for a SKYTFDS_CATALOG build; 'unknown' when the
  dataset recorded no provenance (or every byte came from a cache)."""
  recorded = provenance(builder)
  simulated = recorded.get('simulated')
  words = {True: 'simulated (skytfds emulator)',
           False: 'real services'}.get(simulated, 'unknown source')
  if recorded.get('selection') == 'catalogue':
    words += ', user catalogue'
  return words


def require_splits(builder: tfds.core.DatasetBuilder,
                   splits: tuple[str, ...]) -> None:
  """Refuses, in words, a dataset that lacks a split a trainer needs."""
  missing = [s for s in splits if s not in builder.info.splits]
  if missing:
    have = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
    raise DatasetError(
        f'dataset {builder.info.full_name} has no {" or ".join(missing)} '
        f'split (it has {have}): its catalogue was too small to fill every '
        'split (about 80/10/10 by object key). Training needs train, '
        'validation and test: rebuild it from a catalogue of at least ~50 '
        'objects.')


def class_names(builder: tfds.core.DatasetBuilder) -> list[str]:
  return list(builder.info.features[LABEL_FEATURE].names)


def num_examples(builder: tfds.core.DatasetBuilder, split: str) -> int:
  if split not in builder.info.splits:
    raise DatasetError(
        f'dataset {builder.info.full_name} has no split {split!r}: choose one '
        f'of {", ".join(sorted(builder.info.splits.keys()))}')
  return builder.info.splits[split].num_examples


def fingerprint(builder: tfds.core.DatasetBuilder, split: str) -> dict[str, Any]:
  """What identifies the built data of one split (changes when it is rebuilt)."""
  data_path = pathlib.Path(os.fspath(builder.data_path)).resolve()
  files = []
  for path in sorted(data_path.iterdir()):
    if path.is_file() and (f'-{split}.' in path.name or path.suffix == '.json'):
      stat = path.stat()
      files.append([path.name, stat.st_size, stat.st_mtime_ns])
  return {
      'dataset': builder.info.full_name,
      'data_path': str(data_path),
      'split': split,
      'num_examples': num_examples(builder, split),
      'files': files,
  }


def validate_bands(bands: str) -> str:
  """Three distinct SDSS bands as R, G, B, e.g. 'irg'; ValueError otherwise."""
  if (len(bands) != 3 or len(set(bands)) != 3
      or any(b not in STAMP_BANDS for b in bands)):
    raise ValueError(
        f'bands={bands!r}: expected three distinct letters of {STAMP_BANDS!r} '
        f'as R, G, B, e.g. {DEFAULT_BANDS!r}')
  return bands


def stamp_to_rgb(stamp: tf.Tensor, bands: str = DEFAULT_BANDS) -> tf.Tensor:
  """ugriz stamp [H, W, 5] nanomaggies -> float32 [H, W, 3] in [0, 255].

  Each chosen band goes through the same fixed asinh stretch, so colours (flux
  ratios) and brightness compare across objects; non-finite pixels read as 0.
  """
  validate_bands(bands)
  stamp = tf.convert_to_tensor(stamp, tf.float32)
  channels = tf.gather(stamp, [STAMP_BANDS.index(b) for b in bands], axis=-1)
  channels = tf.where(tf.math.is_finite(channels), channels, 0.0)
  scale = float(np.arcsinh(STAMP_MAX_NMGY / STAMP_SOFTENING_NMGY))
  stretched = tf.math.asinh(channels / STAMP_SOFTENING_NMGY) / scale
  return tf.clip_by_value(stretched, 0.0, 1.0) * 255.0


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
  """PNG or JPEG bytes -> uint8 [H, W, 3]."""
  return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def resize(image: tf.Tensor, size: int) -> tf.Tensor:
  """float32 [H, W, 3] in [0, 255] -> [size, size, 3], bilinear.

  Antialiasing costs ~4x in the input pipeline and only matters when an image
  shrinks by more than 2x (dataset images are 128-240 px for 224-299 px
  models), so it is applied only then.
  """
  image = tf.cast(image, tf.float32)
  shrinks = tf.reduce_max(tf.shape(image)[:2]) > 2 * size
  image = tf.cond(
      shrinks,
      lambda: tf.image.resize(image, (size, size), method='bilinear', antialias=True),
      lambda: tf.image.resize(image, (size, size), method='bilinear'))
  return tf.clip_by_value(image, 0.0, 255.0)


def to_image(value: tf.Tensor, feature: str, *, image_size: int,
             bands: str = DEFAULT_BANDS) -> tf.Tensor:
  """One example's encoded image or stamp -> float32 [size, size, 3], 0..255."""
  if feature == STAMP_FEATURE:
    return resize(stamp_to_rgb(value, bands), image_size)
  return resize(decode_image(value), image_size)


def native_input(value: tf.Tensor, mask: tf.Tensor | None, feature: str, *,
                 image_size: int) -> tf.Tensor:
  """One example's stamp (and mask) or encoded image -> the native input."""
  if feature == STAMP_FEATURE:
    return native_from_stamp(value, mask, image_size)
  return native_from_image(decode_image(value), image_size)


def native_from_stamp(stamp: tf.Tensor, mask: tf.Tensor | None,
                      image_size: int) -> tf.Tensor:
  """ugriz stamp [H, W, 5] nanomaggies (and its mask) -> [size, size, 6].

  Non-finite pixels read as 0; the last channel is 1.0 where the mask says
  the stamp was padded (0.0 everywhere without a mask).
  """
  signal = tf.convert_to_tensor(stamp, tf.float32)
  signal = tf.where(tf.math.is_finite(signal), signal, 0.0)
  padding = (tf.zeros_like(signal[..., :1]) if mask is None
             else tf.cast(mask, tf.float32)[..., None])
  return _native_size(tf.concat([signal, padding], axis=-1), image_size)


def native_from_image(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """uint8 RGB [H, W, 3] -> [size, size, 4]: R, G, B / 255 and zero padding."""
  signal = tf.cast(image, tf.float32) / 255.0
  return _native_size(tf.concat([signal, tf.zeros_like(signal[..., :1])], -1),
                      image_size)


def _native_size(native: tf.Tensor, image_size: int) -> tf.Tensor:
  if native.shape[0] == image_size and native.shape[1] == image_size:
    return native
  return tf.image.resize(native, (image_size, image_size), method='bilinear')


def native_channels(builder: tfds.core.DatasetBuilder) -> int:
  """Channels of the native input of a dataset (padding included)."""
  feature = image_feature(builder)
  return (builder.info.features[feature].shape[-1] + 1
          if feature == STAMP_FEATURE else 4)


def augment(image: tf.Tensor) -> tf.Tensor:
  """Random flips and quarter turns: the sky has no up, down or handedness."""
  image = tf.image.random_flip_left_right(image)
  image = tf.image.random_flip_up_down(image)
  return tf.image.rot90(image, k=tf.random.uniform([], 0, 4, dtype=tf.int32))


def decoded_bytes(builder: tfds.core.DatasetBuilder, split: str,
                  image_size: int, channels: int = 3) -> int:
  """Memory that a split's decoded, resized float32 images take."""
  return num_examples(builder, split) * image_size * image_size * channels * 4


def make_dataset(builder: tfds.core.DatasetBuilder, split: str, *,
                 image_size: int, batch_size: int, bands: str = DEFAULT_BANDS,
                 shuffle: bool = False, augment_images: bool = False,
                 seed: int = 0, drop_remainder: bool = False,
                 cache: bool = False, native: bool = False) -> tf.data.Dataset:
  """(images float32 [B, size, size, 3] in [0, 255], labels one-hot [B, C]).

  Args:
    native: the native input of from-scratch models instead (see the
      module docstring): [B, size, size, channels + 1], `bands` unused.
    cache: the caller will iterate several times: keep the decoded images
      in memory after the first pass, if the split takes at most
      CACHE_MAX_BYTES; otherwise decode every pass as without it. Rounding
      them to uint8 would save memory but not be exact: through a random
      (weights='none') backbone, rounding moves embeddings as much as a
      different image does.
  """
  if batch_size <= 0:
    raise ValueError(f'batch_size={batch_size}: expected a positive number')
  feature = image_feature(builder)
  count = num_examples(builder, split)
  num_classes = len(class_names(builder))
  decoders = ({IMAGE_FEATURE: tfds.decode.SkipDecoding()}
              if feature == IMAGE_FEATURE else None)
  # TFDS' autocache would keep the encoded split in memory for one pass, and
  # warn when a pass stops early (calibration reads 64 images); `cache` above
  # is what keeps decoded images for the passes that repeat.
  read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
  ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=shuffle,
                          read_config=read_config)
  with_mask = native and MASK_FEATURE in builder.info.features
  ds = ds.map(lambda ex: ((ex[feature], ex[MASK_FEATURE] if with_mask else 0),
                          ex[LABEL_FEATURE]))

  def decode(value, label):
    value, mask = value
    if native:
      return native_input(value, mask if with_mask else None, feature,
                          image_size=image_size), label
    return to_image(value, feature, image_size=image_size, bands=bands), label

  def finish(image, label):
    if augment_images:
      image = augment(image)
    return image, tf.one_hot(label, num_classes, dtype=tf.float32)

  buffer = min(max(count, 1), SHUFFLE_BUFFER)
  channels = native_channels(builder) if native else 3
  if cache and (decoded_bytes(builder, split, image_size, channels)
                <= CACHE_MAX_BYTES):
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
      ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
  else:
    if shuffle:  # While the examples are still small, encoded.
      ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda v, l: finish(*decode(v, l)),
                num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  return ds.prefetch(tf.data.AUTOTUNE)


def decoded_image_from_bytes(data: bytes) -> tf.Tensor:
  """A local PNG/JPEG file's bytes -> uint8 [H, W, 3]; DatasetError if not one."""
  try:
    return decode_image(tf.constant(data))
  except (tf.errors.InvalidArgumentError, ValueError) as e:
    # TF's text is '{{function_node __wrapped__...}} <the reason> [Op:...]'.
    reason = re.sub(r'\{\{.*?\}\}|\[Op:\w+\]|\bname:\s*$', '',
                    str(e).splitlines()[0]).strip()
    raise DatasetError(f'not a PNG or JPEG image ({reason})') from None


def image_from_bytes(data: bytes, image_size: int) -> np.ndarray:
  """A local PNG/JPEG file's bytes -> float32 [size, size, 3] in [0, 255]."""
  return resize(decoded_image_from_bytes(data), image_size).numpy()


def image_from_stamp(stamp: np.ndarray, image_size: int,
                     bands: str = DEFAULT_BANDS) -> np.ndarray:
  """A ugriz stamp [H, W, 5] (nanomaggies) -> float32 [size, size, 3]."""
  stamp = np.asarray(stamp, np.float32)
  if stamp.ndim != 3 or stamp.shape[-1] != len(STAMP_BANDS):
    raise DatasetError(
        f'stamp of shape {stamp.shape}: expected [H, W, 5] ugriz nanomaggies')
  return resize(stamp_to_rgb(stamp, bands), image_size).numpy()
