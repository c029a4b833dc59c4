"""Suite input: images per second delivered to the model.

Baseline: the same JPEGs in class folders through Keras
ImageDataGenerator.flow_from_directory. Project: sdss_cutouts TFRecords
through input_pipeline.make_dataset as the trainer streams them. Limit:
tf.io.decode_jpeg + resize of the same bytes in a parallel tf.data map.
"""

import pathlib
import time
from typing import Any, Iterator

from absl import flags

from benchmarks import common
from benchmarks import cutouts
from benchmarks.cutouts import BATCH_SIZE, IMAGE_SIZE

FLAGS = flags.FLAGS  # those of tools/benchmark.py


def images_per_s(batches: Iterator[Any], min_seconds: float
                 ) -> tuple[float, int, float]:
  """Takes batches from an endless iterator until min_seconds have gone by.

  One batch is taken first, untimed (pipeline start-up, thread pools), then
  the steady state is measured. Returns (images/s, images, seconds).
  """
  def size(batch) -> int:  # (images, labels) or a bare images tensor.
    return int((batch[0] if isinstance(batch, tuple) else batch).shape[0])

  next(batches)
  images, start = 0, time.perf_counter()
  while True:
    images += size(next(batches))
    seconds = time.perf_counter() - start
    if seconds >= min_seconds:
      return images / seconds, images, seconds


def run(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  per_class = FLAGS.per_class or (40 if quick else 100)
  repeats = FLAGS.repeats or (1 if quick else 2)
  min_seconds = 4.0 if quick else 8.0
  data = cutouts.CutoutData.custom(work, per_class)
  split = 'train'
  common.log(f'input: {data.count(split)} {split} images, each measurement '
             f'>= {min_seconds:g} s, {repeats} interleaved repeats')
  encoded = data.jpeg_bytes(split)

  def decode_resize(value):
    image = tf.io.decode_jpeg(value, channels=3)
    return tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE))

  def limit_batches():
    # The same bytes, decode_jpeg + resize, parallel map on all cores.
    return iter(tf.data.Dataset.from_tensor_slices(encoded).repeat()
                .map(decode_resize, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE))

  def project_batches(cache=True):
    # The trainer's streaming pipeline, repeated as epochs follow epochs: it
    # keeps the decoded images in memory after the first pass (cache=True).
    return iter(input_pipeline.make_dataset(
        data.builder, split, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
        shuffle=True, cache=cache).repeat())

  def decoding_batches():
    # The same pipeline decoding every pass: its first epoch, or a split too
    # big for input_pipeline.CACHE_MAX_BYTES.
    return project_batches(cache=False)

  def baseline_batches():
    return cutouts.generator_batches(
        cutouts.flow_from_directory(data.jpeg_dir / split, shuffle=True))

  makers = {'limit': limit_batches, 'project': project_batches,
            'baseline': baseline_batches,
            'project_decoding_every_epoch': decoding_batches}
  rates = {name: [] for name in makers}
  load_before = common.load_average()
  for _ in range(repeats):  # Interleaved, so load changes hit all of them.
    for name, make in makers.items():
      rate, n, _ = images_per_s(make(), min_seconds)
      rates[name].append(rate)
      common.log(f'input: {name} {rate:.0f} images/s ({n} images)')
  best = {k: max(v) for k, v in rates.items()}
  return common.result(
      'input', project=best['project'], baseline=best['baseline'],
      limit=best['limit'], unit='images/s', images=data.count(split),
      image_size=IMAGE_SIZE, batch_size=BATCH_SIZE, jpeg_px=240,
      repeats=repeats,
      all_rates={k: [round(x) for x in v] for k, v in rates.items()},
      project_decoding_every_epoch=best['project_decoding_every_epoch'],
      load_before=load_before, load_after=common.load_average(),
      note='steady state (iterators repeat); project delivers [0, 255] floats '
      '(preprocess_input is inside the model), baseline applies '
      'preprocess_input in the generator; project keeps decoded images in '
      'memory after its first pass, project_decoding_every_epoch does not')
