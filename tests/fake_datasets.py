"""Tiny TFDS builders for the trainer tests, with the features of .contracts.md.

`fake_sdss_cutouts` holds JPEG colour images and `fake_sdss_filters` ugriz
stamps (nanomaggies). Each class carries a signal a frozen random backbone can
see: GALAXY a large red blob, QSO a small blue point, STAR a bright green point
(and in the stamps, the matching bands). Test-only names: the real builders are
registered by `import skytfds`.
"""

import io
import pathlib

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

CLASSES = ('GALAXY', 'QSO', 'STAR')
SPLIT_SIZES = {'train': 36, 'validation': 18, 'test': 18}
IMAGE_SIZE = 64  # pixels
STAMP_SIZE = 64  # pixels

# Per class: (blob sigma in pixels, R, G, B peak in [0, 255]).
_IMAGE_SIGNAL = {0: (10.0, 230, 60, 40), 1: (2.5, 40, 80, 250), 2: (3.5, 60, 250, 60)}
# Per class: (blob sigma in pixels, ugriz peak nanomaggies).
_STAMP_SIGNAL = {
    0: (8.0, (0.2, 0.8, 2.0, 4.0, 5.0)),
    1: (2.0, (6.0, 5.0, 3.0, 1.0, 0.8)),
    2: (2.5, (0.5, 6.0, 10.0, 4.0, 2.0)),
}


def _blob(size: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
  centre = (size - 1) / 2 + rng.uniform(-2, 2, size=2)
  y, x = np.mgrid[0:size, 0:size]
  r2 = (y - centre[0]) ** 2 + (x - centre[1]) ** 2
  return np.exp(-r2 / (2 * sigma ** 2))


def _seed(split: str, index: int) -> int:
  return 1000 * list(SPLIT_SIZES).index(split) + 10 * index


def _common(split: str, index: int, label: int) -> dict:
  objid = 1237648720693755918 + {'train': 0, 'validation': 10_000,
                                 'test': 20_000}[split] + index
  return {
      'objid': objid,
      'specobjid': str(2**63 + objid),  # exceeds int64, as real ones may
      'ra': 180.0 + index * 1e-3,
      'dec': 1.0 - index * 1e-3,
      'label': label,
      'mags': np.array([19.0, 18.0, 17.5, 17.2, np.nan], np.float32),
      'redshift': np.float32(0.1 * label),
      'run': 3918, 'rerun': 301, 'camcol': 3, 'field': 213,
  }


def _common_features() -> dict:
  return {
      'objid': tfds.features.Scalar(np.int64),
      'specobjid': tfds.features.Text(),
      'ra': tfds.features.Scalar(np.float64),
      'dec': tfds.features.Scalar(np.float64),
      'label': tfds.features.ClassLabel(names=CLASSES),
      'mags': tfds.features.Tensor(shape=(5,), dtype=np.float32),
      'redshift': tfds.features.Scalar(np.float32),
      'run': tfds.features.Scalar(np.int32),
      'rerun': tfds.features.Scalar(np.int32),
      'camcol': tfds.features.Scalar(np.int32),
      'field': tfds.features.Scalar(np.int32),
  }


def cutout_jpeg(label: int, seed: int) -> bytes:
  """A JPEG colour image of class `label` (the fake SkyServer cutout)."""
  rng = np.random.default_rng(seed)
  sigma, *peak = _IMAGE_SIGNAL[label]
  blob = _blob(IMAGE_SIZE, sigma, rng)[..., None] * np.array(peak)[None, None]
  image = np.clip(blob + rng.normal(12, 4, blob.shape), 0, 255).astype(np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='JPEG', quality=90)
  return buffer.getvalue()


def ugriz_stamp(label: int, seed: int) -> np.ndarray:
  """float32 [64, 64, 5] nanomaggies of class `label`, sky noise 0.01 nmgy."""
  rng = np.random.default_rng(seed)
  sigma, peak = _STAMP_SIGNAL[label]
  blob = _blob(STAMP_SIZE, sigma, rng)[..., None] * np.array(peak)[None, None]
  return (blob + rng.normal(0, 0.01, blob.shape)).astype(np.float32)


class FakeSdssCutouts(tfds.core.GeneratorBasedBuilder):
  """JPEG colour cutouts, three classes, a few dozen per split."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self) -> tfds.core.DatasetInfo:
    features = _common_features()
    features['image'] = tfds.features.Image(
        shape=(None, None, 3), encoding_format='jpeg')
    # As a build against the emulator records it (datasets/builder.py).
    return tfds.core.DatasetInfo(builder=self,
        features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict(provenance={
            'simulated': True, 'selection': 'spread',
            'services': {'skyserver': 'http://127.0.0.1:1'}}))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in SPLIT_SIZES}

  def _generate_examples(self, split):
    for index in range(SPLIT_SIZES[split]):
      label = index % len(CLASSES)
      example = _common(split, index, label)
      # Raw JPEG bytes are stored as served, as the real cutout builders do.
      example['image'] = io.BytesIO(cutout_jpeg(label, _seed(split, index)))
      yield example['objid'], example


class FakeSdssFilters(tfds.core.GeneratorBasedBuilder):
  """ugriz float stamps (nanomaggies) and masks, three classes."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self) -> tfds.core.DatasetInfo:
    features = _common_features()
    features['stamp'] = tfds.features.Tensor(
        shape=(STAMP_SIZE, STAMP_SIZE, 5), dtype=np.float32, encoding='zlib')
    features['mask'] = tfds.features.Tensor(
        shape=(STAMP_SIZE, STAMP_SIZE), dtype=np.bool_)
    return tfds.core.DatasetInfo(builder=self,
        features=tfds.features.FeaturesDict(features))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in SPLIT_SIZES}

  def _generate_examples(self, split):
    for index in range(SPLIT_SIZES[split]):
      label = index % len(CLASSES)
      example = _common(split, index, label)
      example['stamp'] = ugriz_stamp(label, _seed(split, index) + 7)
      example['mask'] = np.zeros((STAMP_SIZE, STAMP_SIZE), np.bool_)
      yield example['objid'], example


def build(builder_class, data_dir: pathlib.Path) -> tfds.core.DatasetBuilder:
  """Build one fake dataset into data_dir (seconds) and return its builder."""
  builder = builder_class(data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  return builder
