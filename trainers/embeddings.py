"""The frozen-backbone embedding cache: backbone outputs computed once per split.

With a frozen backbone and no augmentation, an epoch of the head over cached
embeddings costs milliseconds instead of a forward pass of every image.
Stored as workdir/features/<split>.npz with the key beside it (<split>.json):
a changed dataset, backbone, weights, calibration, input size, bands or
precision gives another key and a recomputation.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import time
from typing import Any, Callable, Iterable

from absl import logging
import keras
import numpy as np
import tensorflow as tf
import tqdm

from skytfds import files
from skytfds import input_pipeline
from skytfds import models
from trainers import flags as trainer_flags
from trainers import run_files

FEATURES_DIR = 'features'


def features_key(config: trainer_flags.TrainConfig, builder, split: str, *,
                 policy: str, input_size: int, calibration: str | None
                 ) -> dict[str, Any]:
  """What the cached embeddings of one split depend on."""
  weights = config.weights
  if weights not in (models.WEIGHTS_IMAGENET, models.WEIGHTS_NONE):
    stat = os.stat(weights)
    weights = [os.path.abspath(weights), stat.st_size, stat.st_mtime_ns]
  return {
      'data': input_pipeline.fingerprint(builder, split),
      'model': config.model,
      'weights': weights,
      # Random initial weights depend on the seed.
      'seed': config.seed if config.weights == models.WEIGHTS_NONE else None,
      'calibration': calibration,
      'input_size': input_size,
      'bands': (config.bands if input_pipeline.image_feature(builder)
                == input_pipeline.STAMP_FEATURE else None),
      'precision': policy,
  }


def cached_embeddings(classifier: models.Classifier, dataset: tf.data.Dataset,
                      directory: pathlib.Path, split: str, key: dict[str, Any]
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
  """Embeddings float32 [N, D] and labels int [N] of one split, computed once."""
  data_path, key_path = directory / f'{split}.npz', directory / f'{split}.json'
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
  if key_path.exists() and data_path.exists():
    saved = json.loads(key_path.read_text())
    if saved.get('sha256') == digest:
      with np.load(data_path) as data:
        return (data['embeddings'], data['labels'],
                {'status': 'reused', 'seconds': 0.0, 'images_per_s': None})
    logging.info('features/%s: dataset, model or weights changed; recomputing',
                 split)
  start = time.perf_counter()
  embeddings, labels = [], []
  batches = int(dataset.cardinality())
  # The backbone pass is the long part of a cached run (minutes on `small`):
  # show it as the builds show theirs.
  with tqdm.tqdm(total=batches if batches > 0 else None,
                 desc=f'embedding {split} ({classifier.backbone.name})',
                 unit=' batches') as progress:
    for images, one_hot in dataset:
      embeddings.append(np.asarray(
          classifier.features.predict_on_batch(images), np.float32))
      labels.append(np.argmax(one_hot.numpy(), axis=-1))
      progress.update()
      progress.set_postfix(images=sum(len(b) for b in labels), refresh=False)
  seconds = time.perf_counter() - start
  embeddings = np.concatenate(embeddings) if embeddings else np.zeros(
      (0, classifier.backbone.embedding_dim), np.float32)
  labels = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
  with files.atomic_path(data_path) as temporary:
    with open(temporary, 'wb') as f:
      np.savez(f, embeddings=embeddings, labels=labels)
  run_files.write_json(key_path, {'sha256': digest, 'key': key})
  return embeddings, labels, {
      'status': 'computed', 'seconds': seconds,
      'images_per_s': len(labels) / seconds if seconds > 0 else None}


def embedding_dataset(embeddings: np.ndarray, labels: np.ndarray,
                      num_classes: int, batch_size: int, *,
                      shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
  ds = tf.data.Dataset.from_tensor_slices(
      (embeddings, tf.one_hot(labels, num_classes, dtype=tf.float32)))
  if shuffle:
    ds = ds.shuffle(max(len(labels), 1), seed=seed, reshuffle_each_iteration=True)
  return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class Embeddings:
  """Per split: (embeddings [N, D], labels [N]), and how they were obtained."""
  arrays: dict[str, tuple[np.ndarray, np.ndarray]]
  stats: dict[str, dict[str, Any]]

  @property
  def computed(self) -> bool:
    """Whether any split was (re)computed rather than reused."""
    return any(s['status'] == 'computed' for s in self.stats.values())

  def dataset(self, split: str, num_classes: int, batch_size: int, *,
              shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """Batches of (embeddings, one-hot labels) of one split."""
    return embedding_dataset(*self.arrays[split], num_classes, batch_size,
                             shuffle=shuffle, seed=seed)

  def predict_labels(self, head: keras.Model, split: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, labels the head predicts) of one split."""
    embeddings, labels = self.arrays[split]
    return labels, np.argmax(head.predict(embeddings, verbose=0), axis=-1)


def embed_splits(classifier: models.Classifier,
                 images: Callable[[str], tf.data.Dataset],
                 splits: Iterable[str], directory: pathlib.Path,
                 key_of: Callable[[str], dict[str, Any]]) -> Embeddings:
  """The embeddings of each split, reused where their key is unchanged.

  Args:
    classifier: whose backbone (classifier.features) embeds the images.
    images: split -> batches of (images, one-hot labels), unshuffled.
    splits: the splits to embed.
    directory: the cache, workdir/features.
    key_of: split -> what its embeddings depend on (features_key).
  """
  arrays, stats = {}, {}
  for split in splits:
    embeddings, labels, stats[split] = cached_embeddings(
        classifier, images(split), directory, split, key_of(split))
    arrays[split] = (embeddings, labels)
  return Embeddings(arrays, stats)
