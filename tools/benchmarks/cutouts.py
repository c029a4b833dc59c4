"""The data of input and train: emulator cutouts, as TFRecords and JPEGs."""

import csv
import hashlib
import os
import pathlib
import shutil
from typing import Any, Iterator

from absl import flags

from benchmarks import common
from skytfds import settings
from skytfds import survey

FLAGS = flags.FLAGS  # those of tools/benchmark.py

IMAGE_SIZE = 224        # MobileNet's input, pixels.
BATCH_SIZE = 32         # The study's batch size.


def balanced_catalog(per_class: int) -> str:
  """The first `per_class` rows of each class of specobj_35k.csv, as CSV text."""
  path = pathlib.Path(FLAGS.shared_data) / 'catalogs' / 'specobj_35k.csv'
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader)
    cls = header.index('class')
    taken = {c: 0 for c in survey.CLASSES}
    lines = [','.join(header)]
    for row in reader:
      if row[cls] in taken and taken[row[cls]] < per_class:
        taken[row[cls]] += 1
        lines.append(','.join(row))
  return '\n'.join(lines) + '\n'


class CutoutData:
  """sdss_cutouts/custom built against the emulator, and its JPEGs in folders.

  Attributes:
    data_dir: the TFDS data_dir holding sdss_cutouts/custom.
    jpeg_dir: <split>/<CLASS>/<key>.jpg, the same bytes as the TFRecords.
    builder: the prepared builder.
  """

  def __init__(self, work: pathlib.Path, per_class: int):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
    text = balanced_catalog(per_class)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    root = work / f'cutouts-{per_class}-{digest}'
    root.mkdir(parents=True, exist_ok=True)
    catalog_path = root / 'catalog.csv'
    catalog_path.write_text(text)
    self.data_dir = root / 'data'
    self.jpeg_dir = root / 'jpeg'
    builder = tfds.builder('sdss_cutouts/custom', data_dir=str(self.data_dir))
    if not builder.is_prepared():
      common.log(f'input: building sdss_cutouts/custom ({3 * per_class} '
                 'objects) against the emulator (first run only)')
      emulator = common.start_emulator(
          text, str(catalog_path), sas_root=None,
          cache_dir=work / 'emulator-cache', latency_ms=0)
      try:
        with common.environment(**emulator.environ(),
                                **{settings.CATALOG_ENV: str(catalog_path)}):
          builder.download_and_prepare(download_dir=str(root / 'dl'))
      finally:
        emulator.stop()
      if self.jpeg_dir.exists():
        shutil.rmtree(self.jpeg_dir)
    self.builder = builder
    if not self.jpeg_dir.exists():
      self._export_jpegs()

  def _export_jpegs(self) -> None:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    names = self.builder.info.features['label'].names
    tmp = common.fresh_dir(self.jpeg_dir.with_name('jpeg.tmp'))
    for split in self.builder.info.splits:
      ds = self.builder.as_dataset(
          split=split, decoders={'image': tfds.decode.SkipDecoding()})
      for example in tfds.as_numpy(ds):
        folder = tmp / split / names[example['label']]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'{example["objid"]}.jpg').write_bytes(example['image'])
    os.replace(tmp, self.jpeg_dir)

  def jpeg_bytes(self, split: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((self.jpeg_dir / split).rglob('*.jpg'))]

  def count(self, split: str) -> int:
    return self.builder.info.splits[split].num_examples


def flow_from_directory(directory: pathlib.Path, *, shuffle: bool,
                        preprocess: bool = True):
  """The study's Keras generator: 224 px, batch 32, categorical, RGB."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # Keras 3 keeps the deprecated generator only under tf.keras (legacy).
  generator = tf.keras.preprocessing.image.ImageDataGenerator(
      preprocessing_function=(keras.applications.mobilenet.preprocess_input
                              if preprocess else None))
  return generator.flow_from_directory(
      str(directory), target_size=(IMAGE_SIZE, IMAGE_SIZE), color_mode='rgb',
      batch_size=BATCH_SIZE, class_mode='categorical', shuffle=shuffle, seed=0)


def generator_batches(generator) -> Iterator[Any]:
  """Endless batches, pass after pass, as model.fit consumes the generator."""
  while True:
    for i in range(len(generator)):
      yield generator[i]
    generator.on_epoch_end()
