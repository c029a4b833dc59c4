"""Flags shared by the trainers, their validators, and the run configuration.

Flags are declared by `define_*` functions on a FlagValues (the global FLAGS
by default) so that tests can parse command lines on a fresh one. A flag that
is invalid on its face (unknown model, batch size 0, a weights file that does
not exist) fails at parse time with absl's one-line message; what can only be
checked later (a dataset not built, a weights file of another backbone) fails
in `main` through `exit_with_error`: one line on stderr, exit status 1.
"""

import dataclasses
import json
import os
import pathlib
import re
import sys
from typing import Any, NoReturn

from absl import flags

from skytfds import hyperparams
from skytfds import input_pipeline
from skytfds import models

FLAGS = flags.FLAGS
RUN_CONFIG = 'run_config.json'
_DATASET_NAME = re.compile(r'^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+){0,2}$')
# Flags that make a workdir's checkpoints and caches belong to one run.
IDENTITY_FIELDS = ('model', 'dataset', 'weights', 'bands', 'seed')


class RunError(ValueError):
  """A run that cannot go on as asked; str() is one clear line."""


def exit_with_error(program: str, error: BaseException | str) -> NoReturn:
  """Print `program: error: message` on stderr and exit 1 (no traceback)."""
  print(f'{program}: error: {error}', file=sys.stderr)
  sys.exit(1)


def require(condition: bool, message: str) -> bool:
  """A flag validator's check: True, or flags.ValidationError(message)."""
  if not condition:
    raise flags.ValidationError(message)
  return True


def check_weights(value: str) -> bool:
  """'imagenet', 'none', or an existing local weights file."""
  if value in (models.WEIGHTS_IMAGENET, models.WEIGHTS_NONE):
    return True
  return require(
      os.path.isfile(value),
      f'weights file {value!r} not found: pass imagenet, none or the path of '
      f'a local weights file of the backbone (.h5 / .weights.h5)')


def check_dataset(value: str | None) -> bool:
  return value is None or require(
      bool(_DATASET_NAME.match(value)),
      f'{value!r} is not a dataset name: expected NAME or NAME/CONFIG, e.g. '
      f'sdss_cutouts/tiny')


def check_bands(value: str) -> bool:
  try:
    input_pipeline.validate_bands(value)
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def define_dataset_flags(fv: flags.FlagValues = FLAGS, *,
                         required: bool = True) -> None:
  """--dataset and --data_dir."""
  flags.DEFINE_string(
      'dataset', None,
      'TFDS name and config, e.g. sdss_cutouts/tiny (`import skytfds` '
      'registers the builders).'
      + ('' if required else ' Default: the dataset of the run in --workdir.'),
      flag_values=fv)
  flags.DEFINE_string(
      'data_dir', None,
      'Where the datasets are built (default: TFDS\' own, ~/tensorflow_datasets).',
      flag_values=fv)
  flags.register_validator('dataset', check_dataset, flag_values=fv)
  if required:
    flags.mark_flag_as_required('dataset', flag_values=fv)


def define_workdir_flag(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string(
      'workdir', None, 'Where the run writes (and resumes) everything.',
      flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def define_train_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Every flag of trainers/train.py."""
  define_dataset_flags(fv)
  define_workdir_flag(fv)
  flags.DEFINE_enum('model', 'mobilenet', sorted(models.BACKBONES),
                    'Backbone (Keras application, frozen).', flag_values=fv)
  flags.DEFINE_string(
      'weights', models.WEIGHTS_IMAGENET,
      'imagenet (Keras download and cache), none (random init, calibrated '
      'on 64 training images) or the path of a local weights file of the '
      'backbone without top (.h5).',
      flag_values=fv)
  flags.DEFINE_integer('epochs', 10, 'Epochs of the head.', lower_bound=1,
                       flag_values=fv)
  flags.DEFINE_integer('batch_size', 32, 'Images per batch (all replicas).',
                       flag_values=fv)
  flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate of the head.',
                     flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of initialisation and shuffling.',
                       flag_values=fv)
  flags.DEFINE_enum(
      'mixed_precision', 'auto', list(hyperparams.PRECISIONS),
      'auto: mixed_float16 on GPU; on CPU mixed_bfloat16 where measured '
      'faster (MobileNet), else float32. off: float32.', flag_values=fv)
  flags.DEFINE_enum('jit_compile', 'auto', list(hyperparams.SWITCHES),
                    'XLA; auto: on for GPU, off for CPU (7x slower there).',
                    flag_values=fv)
  flags.DEFINE_enum(
      'cache_features', 'auto', list(hyperparams.SWITCHES),
      'Compute backbone embeddings once per split and train the head on '
      'them; auto: on when fine_tune_layers=0 and no augmentation.',
      flag_values=fv)
  flags.DEFINE_integer(
      'fine_tune_layers', 0,
      'After the head, unfreeze the top N backbone layers (BatchNorm stays '
      'frozen) for a second stage at --fine_tune_learning_rate.',
      lower_bound=0, flag_values=fv)
  flags.DEFINE_integer('fine_tune_epochs', 5, 'Epochs of the second stage.',
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_float('fine_tune_learning_rate', 1e-5,
                     'Adam learning rate of the second stage.', flag_values=fv)
  flags.DEFINE_string(
      'bands', input_pipeline.DEFAULT_BANDS,
      'sdss_filters only: three ugriz bands shown as R, G, B.', flag_values=fv)
  flags.DEFINE_bool('augment', False,
                    'Random flips and quarter turns of training images.',
                    flag_values=fv)
  flags.DEFINE_enum('strategy', 'default', ['default', 'mirrored', 'multi_worker'],
                    'tf.distribute strategy.', flag_values=fv)

  flags.register_validator('weights', check_weights, flag_values=fv)
  flags.register_validator('bands', check_bands, flag_values=fv)
  flags.register_validator(
      'batch_size', lambda v: require(v is not None and v > 0,
                                     f'batch size must be at least 1, got {v}'),
      flag_values=fv)
  for name in ('learning_rate', 'fine_tune_learning_rate'):
    flags.register_validator(
        name, lambda v, name=name: require(
            v is not None and 0 < v < 1, f'{name} must be in (0, 1), got {v}'),
        flag_values=fv)
  flags.register_multi_flags_validator(
      ['cache_features', 'augment'],
      lambda d: require(not (d['cache_features'] == 'on' and d['augment']),
                       '--cache_features=on would train on unaugmented '
                       'embeddings: drop --augment or use --cache_features=off'),
      flag_values=fv)


@dataclasses.dataclass
class TrainConfig:
  """One training run: the flags of trainers/train.py, as plain values."""
  dataset: str
  workdir: str
  data_dir: str | None = None
  model: str = 'mobilenet'
  weights: str = models.WEIGHTS_IMAGENET
  epochs: int = 10
  batch_size: int = 32
  learning_rate: float = 1e-3
  seed: int = 0
  mixed_precision: str = 'auto'
  jit_compile: str = 'auto'
  cache_features: str = 'auto'
  fine_tune_layers: int = 0
  fine_tune_epochs: int = 5
  fine_tune_learning_rate: float = 1e-5
  bands: str = input_pipeline.DEFAULT_BANDS
  augment: bool = False
  strategy: str = 'default'

  @classmethod
  def from_flags(cls, fv: flags.FlagValues = FLAGS) -> 'TrainConfig':
    return cls(**{f.name: fv[f.name].value for f in dataclasses.fields(cls)})

  def to_json(self) -> dict[str, Any]:
    values = dataclasses.asdict(self)
    for key in ('workdir', 'data_dir'):
      if values[key] is not None:
        values[key] = os.path.abspath(values[key])
    if values['weights'] not in (models.WEIGHTS_IMAGENET, models.WEIGHTS_NONE):
      values['weights'] = os.path.abspath(values['weights'])
    return values


def read_run_config(workdir: str | os.PathLike) -> dict[str, Any]:
  """The saved run configuration of a workdir; RunError when there is none."""
  path = pathlib.Path(workdir) / RUN_CONFIG
  try:
    return json.loads(path.read_text())
  except FileNotFoundError:
    raise RunError(
        f'{path} not found: --workdir must be the workdir of a '
        f'trainers.train run') from None
  except json.JSONDecodeError as e:
    raise RunError(f'{path}: not valid JSON ({e}); rerun trainers.train') from None


def check_same_run(saved: dict[str, Any], config: TrainConfig) -> None:
  """A workdir resumes only the run it holds (same model, data, weights)."""
  wanted = config.to_json()
  changed = [f'{key} {saved.get(key)!r} -> {wanted[key]!r}'
             for key in IDENTITY_FIELDS if saved.get(key) != wanted[key]]
  if changed:
    raise RunError(
        f'workdir {config.workdir} holds another run ({", ".join(changed)}): '
        f'use a new --workdir, or the same flags to resume')
