r"""Train a frozen-backbone classifier on one dataset; everything under --workdir.

  python -m trainers.train --model=mobilenet --dataset=sdss_cutouts/tiny \
      --data_dir=DIR --workdir=DIR [--epochs=10] [--weights=imagenet|none|PATH]

Stage 1 trains the head (backbone frozen), on cached embeddings when
--cache_features resolves to on, else on images streamed through the backbone.
Stage 2 (--fine_tune_layers=N > 0) unfreezes the top N backbone layers and
streams images at --fine_tune_learning_rate. Each stage checkpoints weights,
optimizer state and history at every epoch end; rerunning with the same
workdir resumes after the last completed epoch.

metrics.json holds, besides the per-split reports (accuracy, macro_f1,
per_class precision/recall/f1/support, confusion_matrix): epochs, history,
wall_time_s (the whole run), train_time_s and train_images_per_s (training
images per second of model.fit, validation included), features (per split:
computed or reused, seconds, images/s through the backbone), the precision
policy, jit_compile, cache_features and the flags.
"""

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
import time
from typing import Any

from absl import app
from absl import logging
import keras
import numpy as np
import tensorflow as tf

from skytfds import hyperparams
from skytfds import input_pipeline
from skytfds import models
from trainers import flags as trainer_flags
from trainers import metrics as metrics_lib
from trainers import plots

HEAD_STAGE = 'head'
FINE_TUNE_STAGE = 'fine_tune'
METRICS_FILE = 'metrics.json'
MODEL_FILE = 'model.keras'
# Images that calibrate a randomly initialised backbone (weights=none): its
# BatchNorm statistics, or for VGG16 the scale and offset of each convolution.
CALIBRATION_IMAGES = 64


def write_json(path: pathlib.Path, value: Any) -> None:
  """Write JSON atomically (temporary file, then os.replace)."""
  temporary = path.with_name(path.name + '.tmp')
  temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + '\n')
  os.replace(temporary, path)


def make_strategy(name: str) -> tf.distribute.Strategy:
  """default | mirrored (all local GPUs) | multi_worker (TF_CONFIG cluster)."""
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def worker_workdir(strategy: tf.distribute.Strategy,
                   workdir: pathlib.Path) -> pathlib.Path:
  """The chief writes the workdir; other workers a scratch folder inside it."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None)
  task_id = getattr(resolver, 'task_id', 0) or 0
  if task_type in (None, 'chief') or (task_type == 'worker' and task_id == 0
                                       and 'chief' not in
                                       resolver.cluster_spec().as_dict()):
    return workdir
  return workdir / 'workers' / f'{task_type}_{task_id}'


class EpochCheckpoint(keras.callbacks.Callback):
  """Saves weights, optimizer state and history at each epoch end; restores.

  Keras' BackupAndRestore keeps weights only; resuming Adam without its
  moments would change the run, so the optimizer variables are kept too.
  Epochs on cached embeddings take milliseconds, so after the first epoch a
  checkpoint is written at most every `min_interval_s` seconds, and always
  after the last epoch: an interruption loses at most that much training.
  """

  min_interval_s = 10.0

  def __init__(self, directory: pathlib.Path, weights_model: keras.Model,
               stage: str, first_epoch: int = 0):
    super().__init__()
    self.directory = directory
    self.weights_model = weights_model  # what changes: the head, or all
    self.stage = stage
    self.first_epoch = first_epoch      # epochs of earlier stages
    self.rows: list[dict[str, Any]] = []
    self._last_save = -float('inf')

  @property
  def _state_path(self) -> pathlib.Path:
    return self.directory / 'state.json'

  def restore(self, model: keras.Model) -> int:
    """Load the last completed epoch into model; the epochs already done."""
    if not self._state_path.exists():
      return 0
    state = json.loads(self._state_path.read_text())
    self.weights_model.load_weights(self.directory / 'model.weights.h5')
    model.optimizer.build(model.trainable_variables)
    with np.load(self.directory / 'optimizer.npz') as saved:
      values = [saved[f'v{i}'] for i in range(len(saved.files))]
    variables = model.optimizer.variables
    if len(values) != len(variables):
      raise trainer_flags.RunError(
          f'{self.directory}: checkpoint optimizer state does not fit this '
          f'model; use a new --workdir')
    for variable, value in zip(variables, values):
      variable.assign(value)
    self.rows = state['history']
    return int(state['epoch'])

  def on_epoch_end(self, epoch, logs=None):
    self.directory.mkdir(parents=True, exist_ok=True)
    row = {key: float(value) for key, value in (logs or {}).items()}
    row.update(stage=self.stage, epoch=self.first_epoch + epoch + 1)
    self.rows = [r for r in self.rows if r['epoch'] < row['epoch']] + [row]
    last_epoch = epoch + 1 >= (self.params or {}).get('epochs', 0)
    if not last_epoch and time.time() - self._last_save < self.min_interval_s:
      return
    self._last_save = time.time()
    weights = self.directory / 'model.weights.h5'
    temporary = self.directory / 'model.tmp.weights.h5'
    self.weights_model.save_weights(temporary)
    os.replace(temporary, weights)
    values = {f'v{i}': np.asarray(v) for i, v in
              enumerate(self.model.optimizer.variables)}
    with open(self.directory / 'optimizer.tmp.npz', 'wb') as f:
      np.savez(f, **values)
    os.replace(self.directory / 'optimizer.tmp.npz',
               self.directory / 'optimizer.npz')
    # The state file last: it marks the epoch complete.
    write_json(self._state_path, {'epoch': epoch + 1, 'history': self.rows})


def discard_checkpoints(workdir: pathlib.Path, reason: str) -> None:
  """Remove every stage's checkpoint: the next fit starts from epoch 0."""
  checkpoints = workdir / 'checkpoints'
  if checkpoints.exists():
    logging.warning('%s: %s, so training starts again from epoch 0',
                    checkpoints, reason)
    shutil.rmtree(checkpoints)


@functools.cache
def tensorboard_available() -> bool:
  """tf.summary needs the tensorboard package, which TensorFlow 2.21 no longer pulls in."""
  if importlib.util.find_spec('tensorboard') is not None:
    return True
  logging.warning('tensorboard is not installed: no TensorBoard logs '
                  '(pip install tensorboard to get them)')
  return False


@dataclasses.dataclass
class StageResult:
  rows: list[dict[str, Any]]
  epochs_run: int
  resumed_from: int
  seconds: float


def fit_stage(stage: str, model: keras.Model, weights_model: keras.Model,
              train_ds: tf.data.Dataset, validation_ds: tf.data.Dataset, *,
              epochs: int, workdir: pathlib.Path, first_epoch: int = 0
              ) -> StageResult:
  """model.fit with per-epoch checkpoints, resuming where the last run stopped."""
  checkpoint = EpochCheckpoint(workdir / 'checkpoints' / stage, weights_model,
                               stage, first_epoch)
  done = checkpoint.restore(model)
  if done:
    logging.info('%s: resuming after epoch %d of %d', stage, done, epochs)
  if done >= epochs:
    return StageResult(checkpoint.rows, 0, done, 0.0)
  callbacks = [checkpoint]
  if tensorboard_available():
    callbacks.append(keras.callbacks.TensorBoard(
        log_dir=str(workdir / 'logs' / stage), write_graph=False))
  start = time.perf_counter()
  model.fit(train_ds, validation_data=validation_ds, epochs=epochs,
            initial_epoch=done, callbacks=callbacks, verbose=2,
            shuffle=False)  # the tf.data pipeline shuffles
  return StageResult(checkpoint.rows, epochs - done, done,
                     time.perf_counter() - start)


def features_key(config: trainer_flags.TrainConfig, builder, split: str,
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
  """Embeddings float32 [N, D] and labels int [N] of one split, computed once.

  Stored as features/<split>.npz with the key beside it (<split>.json): a
  changed dataset, backbone or weights gives another key and a recomputation.
  """
  directory.mkdir(parents=True, exist_ok=True)
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
  for images, one_hot in dataset:
    embeddings.append(np.asarray(classifier.features.predict_on_batch(images),
                                 np.float32))
    labels.append(np.argmax(one_hot.numpy(), axis=-1))
  seconds = time.perf_counter() - start
  embeddings = np.concatenate(embeddings) if embeddings else np.zeros(
      (0, classifier.backbone.embedding_dim), np.float32)
  labels = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
  with open(directory / f'{split}.tmp.npz', 'wb') as f:
    np.savez(f, embeddings=embeddings, labels=labels)
  os.replace(directory / f'{split}.tmp.npz', data_path)
  write_json(key_path, {'sha256': digest, 'key': key})
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


def predict_labels(model: keras.Model, dataset: tf.data.Dataset
                   ) -> tuple[np.ndarray, np.ndarray]:
  """(true labels, predicted labels) over a dataset of (inputs, one-hot)."""
  truth, predicted = [], []
  for inputs, one_hot in dataset:
    probabilities = model.predict_on_batch(inputs)
    truth.append(np.argmax(one_hot.numpy(), axis=-1))
    predicted.append(np.argmax(probabilities, axis=-1))
  return np.concatenate(truth), np.concatenate(predicted)


def first_images(dataset: tf.data.Dataset, count: int) -> np.ndarray:
  """Up to `count` images from a dataset of (images, labels) batches."""
  batches, total = [], 0
  for images, _ in dataset:
    batches.append(images.numpy())
    total += len(batches[-1])
    if total >= count:
      break
  return np.concatenate(batches)[:count]


def on_gpu() -> bool:
  return bool(tf.config.list_physical_devices('GPU'))


def run(config: trainer_flags.TrainConfig) -> dict[str, Any]:
  """Train, evaluate and write everything under config.workdir; the metrics."""
  start = time.perf_counter()
  # First: MultiWorkerMirroredStrategy must exist before other TF operations.
  strategy = make_strategy(config.strategy)
  builder = input_pipeline.get_builder(config.dataset, config.data_dir)
  models.get_backbone(config.model)
  if config.batch_size <= 0:
    raise trainer_flags.RunError(
        f'batch_size={config.batch_size}: must be at least 1')
  workdir = worker_workdir(strategy, pathlib.Path(config.workdir))
  workdir.mkdir(parents=True, exist_ok=True)
  run_config_path = workdir / trainer_flags.RUN_CONFIG
  if run_config_path.exists():
    trainer_flags.check_same_run(
        trainer_flags.read_run_config(workdir), config)

  gpu = on_gpu()
  policy = hyperparams.precision_policy(config.mixed_precision, config.model,
                                        on_gpu=gpu)
  jit = hyperparams.use_jit(config.jit_compile, on_gpu=gpu)
  use_cache = hyperparams.use_feature_cache(
      config.cache_features, fine_tune_layers=config.fine_tune_layers,
      augment=config.augment)
  names = input_pipeline.class_names(builder)
  feature = input_pipeline.image_feature(builder)
  logging.info('%s on %s: precision %s, jit %s, cached features %s',
               config.model, config.dataset, policy, jit, use_cache)

  keras.utils.set_random_seed(config.seed)
  previous_policy = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy)
  try:
    with strategy.scope():
      classifier = models.build_model(config.model, weights=config.weights,
                                      num_classes=len(names))
      # Checked now rather than after the first stage has run.
      models.set_fine_tune_layers(classifier, config.fine_tune_layers)
      models.set_fine_tune_layers(classifier, 0)
    size = classifier.input_size
    write_json(run_config_path, {
        **config.to_json(), 'class_names': names, 'image_feature': feature,
        'feature_shape': list(builder.info.features[feature].shape),
        'input_size': size, 'precision': policy})

    def images(split: str, training: bool = False, *, every_epoch: bool = False
               ) -> tf.data.Dataset:
      # every_epoch: streamed once per epoch, so worth keeping decoded.
      return input_pipeline.make_dataset(
          builder, split, image_size=size, batch_size=config.batch_size,
          bands=config.bands, shuffle=training,
          augment_images=training and config.augment, seed=config.seed,
          cache=every_epoch)

    counts = {split: input_pipeline.num_examples(builder, split)
              for split in ('train', 'validation', 'test')}
    calibration, calibrated = None, 0
    if config.weights == models.WEIGHTS_NONE:
      # Deterministic (unshuffled) images, so a resumed run rebuilds the
      # same backbone.
      calibration, calibrated = models.calibrate_random_backbone(
          classifier, first_images(images('train'), CALIBRATION_IMAGES))
    feature_stats = {}
    with strategy.scope():
      if use_cache:
        cache = {}
        for split in counts:
          key = features_key(config, builder, split, policy, size,
                             calibration)
          *cache[split], feature_stats[split] = cached_embeddings(
              classifier, images(split), workdir / 'features', split, key)
        if any(stats['status'] == 'computed'
               for stats in feature_stats.values()):
          # A checkpointed head was fitted to other embeddings (the data,
          # backbone or calibration changed, or the cache was removed).
          discard_checkpoints(workdir, 'embeddings were (re)computed')
        head_model = classifier.head
        train_ds = embedding_dataset(*cache['train'], len(names),
                                     config.batch_size, shuffle=True,
                                     seed=config.seed)
        validation_ds = embedding_dataset(*cache['validation'], len(names),
                                          config.batch_size)
      else:
        head_model = classifier.model
        train_ds = images('train', True, every_epoch=True)
        validation_ds = images('validation', every_epoch=True)
      models.compile_for_training(head_model, config.learning_rate,
                                  jit_compile=jit)
    head = fit_stage(HEAD_STAGE, head_model, classifier.head, train_ds,
                     validation_ds, epochs=config.epochs, workdir=workdir)
    stages = {HEAD_STAGE: head}
    if config.fine_tune_layers:
      with strategy.scope():
        models.set_fine_tune_layers(classifier, config.fine_tune_layers)
        models.compile_for_training(classifier.model,
                                    config.fine_tune_learning_rate,
                                    jit_compile=jit)
      stages[FINE_TUNE_STAGE] = fit_stage(
          FINE_TUNE_STAGE, classifier.model, classifier.model,
          images('train', True, every_epoch=True),
          images('validation', every_epoch=True),
          epochs=config.fine_tune_epochs, workdir=workdir,
          first_epoch=config.epochs)
    classifier.model.save(workdir / MODEL_FILE)

    reports = {}
    for split in ('validation', 'test'):
      if use_cache and not config.fine_tune_layers:
        truth, predicted = cache[split][1], np.argmax(
            classifier.head.predict(cache[split][0], verbose=0), axis=-1)
      else:
        truth, predicted = predict_labels(classifier.model, images(split))
      reports[split] = metrics_lib.classification_report(truth, predicted, names)
  finally:
    keras.mixed_precision.set_global_policy(previous_policy)

  history = [row for stage in stages.values() for row in stage.rows]
  train_seconds = sum(s.seconds for s in stages.values())
  images_trained = sum(s.epochs_run for s in stages.values()) * counts['train']
  result = {
      'dataset': config.dataset,
      'model': config.model,
      'class_names': names,
      'validation': reports['validation'],
      'test': reports['test'],
      'evaluations': {f'{config.dataset}:{split}': reports[split]
                      for split in reports},
      'epochs': len(history),
      'epochs_run': {name: s.epochs_run for name, s in stages.items()},
      'resumed_from_epoch': {name: s.resumed_from for name, s in stages.items()},
      'history': history,
      'wall_time_s': time.perf_counter() - start,
      'train_time_s': train_seconds,
      'train_images_per_s': (images_trained / train_seconds
                             if train_seconds > 0 else None),
      'features': feature_stats,
      'calibration': calibration,
      'calibrated_layers': calibrated,
      'num_examples': counts,
      'precision': policy,
      'jit_compile': jit,
      'cache_features': use_cache,
      'device': 'gpu' if gpu else 'cpu',
      'flags': config.to_json(),
  }
  write_json(workdir / METRICS_FILE, result)
  write_plots(workdir, result)
  return result


def write_plots(workdir: pathlib.Path, result: dict[str, Any]) -> None:
  """history.png and confusion.png from a metrics.json dictionary."""
  if result.get('history'):
    plots.plot_history(result['history'], workdir / 'history.png')
  plots.plot_confusion(result['evaluations'], workdir / 'confusion.png')


def main(argv):
  if len(argv) > 1:
    trainer_flags.exit_with_error('train', f'unexpected arguments {argv[1:]}')
  config = trainer_flags.TrainConfig.from_flags()
  try:
    result = run(config)
  except (input_pipeline.DatasetError, models.ModelError,
          trainer_flags.RunError) as e:
    trainer_flags.exit_with_error('train', e)
  for split in ('validation', 'test'):
    report = result[split]
    print(f'{split}: accuracy {report["accuracy"]:.4f}, '
          f'macro-F1 {report["macro_f1"]:.4f} ({report["num_examples"]} images)')
  print(f'wrote {config.workdir}/{METRICS_FILE}, {MODEL_FILE}, history.png, '
        f'confusion.png')


if __name__ == '__main__':
  trainer_flags.define_train_flags()
  app.run(main)
