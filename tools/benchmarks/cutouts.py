"""The data of input and train: emulator cutouts, as TFRecords and JPEGs."""

import csv
import hashlib
import json
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


def specobj_catalog() -> tuple[str, str]:
  """(text, path) of the bundled 35,000-object catalogue the emulator serves."""
  path = pathlib.Path(FLAGS.shared_data) / 'catalogs' / 'specobj_35k.csv'
  return path.read_text(), str(path)


def prepare_against_emulator(builder, work: pathlib.Path, catalog_text: str,
                             catalog_path: str, *, user_catalog: bool) -> None:
  """Builds `builder` against an in-process emulator (first run only).

  The emulator serves `catalog_text` (the objects a SkyServer query selects)
  and the real frames of ../shared/data/sas where a field has them, as
  `tools/sky_server.py` does. user_catalog: the build reads the catalogue file
  itself (a `custom` config) instead of querying SkyServer.
  """
  if builder.is_prepared():
    return
  sas = pathlib.Path(FLAGS.shared_data) / 'sas'
  common.log(f'building {builder.name}/{builder.builder_config.name} against '
             f'the emulator into {builder.data_dir} (first run only, untimed)')
  emulator = common.start_emulator(
      catalog_text, catalog_path, sas_root=str(sas) if sas.is_dir() else None,
      cache_dir=work / 'emulator-cache', latency_ms=0)
  extra = {settings.CATALOG_ENV: catalog_path} if user_catalog else {}
  try:
    with common.environment(**emulator.environ(), **extra):
      builder.download_and_prepare(
          download_dir=str(work / 'downloads' / builder.name))
  finally:
    emulator.stop()


def prepared_builder(work: pathlib.Path, data_dir: pathlib.Path, name: str):
  """tfds.builder(name) in data_dir, built against the emulator if absent."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
  builder = tfds.builder(name, data_dir=str(data_dir))
  prepare_against_emulator(builder, work, *specobj_catalog(),
                           user_catalog=False)
  return builder


def data_dir_of(builder) -> str:
  """The TFDS data_dir holding a builder's data (<it>/<name>/<config>/<version>)."""
  return str(pathlib.Path(builder.data_dir).parents[2])


class CutoutData:
  """An sdss_cutouts dataset built against the emulator, and its JPEGs.

  Attributes:
    builder: the prepared builder.
    jpeg_dir: <split>/<CLASS>/<objid>.jpg, the same bytes as the TFRecords
      (for the study's Keras generator).
  """

  def __init__(self, builder, jpeg_dir: pathlib.Path):
    self.builder = builder
    self.jpeg_dir = jpeg_dir
    if not self.jpeg_dir.exists():
      self._export_jpegs()

  @classmethod
  def custom(cls, work: pathlib.Path, per_class: int) -> 'CutoutData':
    """sdss_cutouts/custom of the first `per_class` objects of each class."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
    text = balanced_catalog(per_class)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    root = work / f'cutouts-{per_class}-{digest}'
    root.mkdir(parents=True, exist_ok=True)
    catalog_path = root / 'catalog.csv'
    catalog_path.write_text(text)
    builder = tfds.builder('sdss_cutouts/custom', data_dir=str(root / 'data'))
    if not builder.is_prepared():
      shutil.rmtree(root / 'jpeg', ignore_errors=True)  # of an older build
    prepare_against_emulator(builder, work, text, str(catalog_path),
                             user_catalog=True)
    return cls(builder, root / 'jpeg')

  @classmethod
  def from_config(cls, work: pathlib.Path, data_dir: pathlib.Path,
                  config: str) -> 'CutoutData':
    """sdss_cutouts/<config> in data_dir (e.g. `small`), built if absent.

    Its JPEGs go under work, keyed by the dataset's fingerprint, so a rebuilt
    dataset gets fresh folders.
    """
    from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
    builder = prepared_builder(work, data_dir, f'sdss_cutouts/{config}')
    digest = hashlib.sha256(json.dumps(
        [input_pipeline.fingerprint(builder, split)
         for split in sorted(builder.info.splits)],
        sort_keys=True).encode()).hexdigest()[:12]
    return cls(builder, work / f'cutouts-{config}-{digest}' / 'jpeg')

  @property
  def data_dir(self) -> str:
    """The TFDS data_dir holding the dataset."""
    return data_dir_of(self.builder)

  @property
  def dataset(self) -> str:
    """name/config, as the trainer's --dataset takes it."""
    return f'{self.builder.name}/{self.builder.builder_config.name}'

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
