"""Resumable training stages: per-epoch checkpoints of weights, optimizer, history.

Each stage writes workdir/checkpoints/<stage>/: model.weights.h5 (what the
stage trains), optimizer.npz (every optimizer variable, Adam's moments
included) and state.json (the epochs done and their history), the state file
last. Rerunning a stage with the same workdir resumes after its last
completed epoch.
"""

import dataclasses
import functools
import importlib.util
import json
import pathlib
import shutil
import time
from typing import Any

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from skytfds import files
from trainers import flags as trainer_flags
from trainers import run_files

CHECKPOINTS_DIR = 'checkpoints'
WEIGHTS_FILE = 'model.weights.h5'
OPTIMIZER_FILE = 'optimizer.npz'
STATE_FILE = 'state.json'


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
    return self.directory / STATE_FILE

  def restore(self, model: keras.Model) -> int:
    """Load the last completed epoch into model; the epochs already done."""
    if not self._state_path.exists():
      return 0
    state = json.loads(self._state_path.read_text())
    self.weights_model.load_weights(self.directory / WEIGHTS_FILE)
    model.optimizer.build(model.trainable_variables)
    with np.load(self.directory / OPTIMIZER_FILE) as saved:
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
    row = {key: float(value) for key, value in (logs or {}).items()}
    row.update(stage=self.stage, epoch=self.first_epoch + epoch + 1)
    self.rows = [r for r in self.rows if r['epoch'] < row['epoch']] + [row]
    last_epoch = epoch + 1 >= (self.params or {}).get('epochs', 0)
    if not last_epoch and time.time() - self._last_save < self.min_interval_s:
      return
    self._last_save = time.time()
    with files.atomic_path(self.directory / WEIGHTS_FILE) as temporary:
      self.weights_model.save_weights(temporary)
    values = {f'v{i}': np.asarray(v) for i, v in
              enumerate(self.model.optimizer.variables)}
    with files.atomic_path(self.directory / OPTIMIZER_FILE) as temporary:
      with open(temporary, 'wb') as f:
        np.savez(f, **values)
    # The state file last: it marks the epoch complete.
    run_files.write_json(self._state_path,
                         {'epoch': epoch + 1, 'history': self.rows})


def discard_checkpoints(workdir: pathlib.Path, reason: str) -> None:
  """Remove every stage's checkpoint: the next fit starts from epoch 0."""
  checkpoints = workdir / CHECKPOINTS_DIR
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
  """model.fit with per-epoch checkpoints, resuming where the last run stopped.

  weights_model is the part of model that the stage changes (and saves).
  """
  checkpoint = EpochCheckpoint(workdir / CHECKPOINTS_DIR / stage,
                               weights_model, stage, first_epoch)
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
