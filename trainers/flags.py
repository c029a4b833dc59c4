"""Flags shared by the trainers, their validators, and the run configuration.

The options of trainers/train.py are declared once, as the fields of
`TrainConfig` (default, help, validator: `option`); their absl flags are
defined from those fields (`define_flag`), so a default lives in one place.

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
from trainers import run_files

FLAGS = flags.FLAGS
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


def check_batch_size(value: int | None) -> bool:
  return require(value is not None and value > 0,
                 f'batch size must be at least 1, got {value}')


def check_learning_rate(name: str):
  """A validator of a learning rate flag: a value in (0, 1)."""
  return lambda value: require(value is not None and 0 < value < 1,
                               f'{name} must be in (0, 1), got {value}')


def option(define, default: Any, help_text: str, *, validator=None,
           **define_args) -> Any:
  """A TrainConfig field that is also an absl flag.

  The field's default and help are the flag's: they live here only.

  Args:
    define: the absl function that defines the flag (flags.DEFINE_integer...).
    default: the default value; dataclasses.MISSING for a required flag.
    help_text: the flag's help.
    validator: checks the parsed value (flags.ValidationError), or None.
    **define_args: more arguments of `define` (enum_values, lower_bound).
  """
  return dataclasses.field(default=default, metadata={
      'define': define, 'help': help_text, 'validator': validator,
      'define_args': define_args})


@dataclasses.dataclass
class TrainConfig:
  """One training run: the flags of trainers/train.py, as plain values."""
  dataset: str = option(
      flags.DEFINE_string, dataclasses.MISSING,
      'TFDS name and config, e.g. sdss_cutouts/tiny (`import skytfds` '
      'registers the builders).', validator=check_dataset)
  workdir: str = option(flags.DEFINE_string, dataclasses.MISSING,
                        'Where the run writes (and resumes) everything.')
  data_dir: str | None = option(
      flags.DEFINE_string, None,
      'Where the datasets are built (default: TFDS\' own, ~/tensorflow_datasets).')
  model: str = option(flags.DEFINE_enum, 'mobilenet',
                      'A frozen ImageNet backbone (Keras application) with '
                      'a dense head, or ugriz_cnn: a compact CNN trained from '
                      'scratch on all of a dataset\'s bands (needs '
                      '--weights=none or its own .weights.h5).',
                      enum_values=list(models.MODEL_NAMES))
  weights: str = option(
      flags.DEFINE_string, models.WEIGHTS_IMAGENET,
      'imagenet (Keras download and cache), none (random init, calibrated '
      'on 64 training images) or the path of a local weights file of the '
      'backbone without top (.h5); ugriz_cnn: none or a .weights.h5 of it.',
      validator=check_weights)
  epochs: int = option(flags.DEFINE_integer, 10, 'Epochs of the head.',
                       lower_bound=1)
  batch_size: int = option(flags.DEFINE_integer, 32,
                           'Images per batch (all replicas).',
                           validator=check_batch_size)
  learning_rate: float = option(
      flags.DEFINE_float, 1e-3, 'Adam learning rate of the head.',
      validator=check_learning_rate('learning_rate'))
  seed: int = option(flags.DEFINE_integer, 0,
                     'Seed of initialisation and shuffling.')
  mixed_precision: str = option(
      flags.DEFINE_enum, 'auto',
      'auto: mixed_float16 on GPU; on CPU mixed_bfloat16 where measured '
      'faster (MobileNet), else float32. off: float32.',
      enum_values=list(hyperparams.PRECISIONS))
  jit_compile: str = option(
      flags.DEFINE_enum, 'auto',
      'XLA; auto: on for GPU; on CPU only for the head on cached embeddings '
      '(1.7x faster there; convolutions are 7x slower).',
      enum_values=list(hyperparams.SWITCHES))
  cache_features: str = option(
      flags.DEFINE_enum, 'auto',
      'Compute backbone embeddings once per split and train the head on '
      'them; auto: on when fine_tune_layers=0 and no augmentation.',
      enum_values=list(hyperparams.SWITCHES))
  fine_tune_layers: int = option(
      flags.DEFINE_integer, 0,
      'After the head, unfreeze the top N backbone layers (BatchNorm stays '
      'frozen) for a second stage at --fine_tune_learning_rate.',
      lower_bound=0)
  fine_tune_epochs: int = option(flags.DEFINE_integer, 5,
                                 'Epochs of the second stage.', lower_bound=1)
  fine_tune_learning_rate: float = option(
      flags.DEFINE_float, 1e-5, 'Adam learning rate of the second stage.',
      validator=check_learning_rate('fine_tune_learning_rate'))
  bands: str = option(
      flags.DEFINE_string, input_pipeline.DEFAULT_BANDS,
      'sdss_filters only: three ugriz bands shown as R, G, B.',
      validator=check_bands)
  augment: bool = option(flags.DEFINE_bool, False,
                         'Random flips and quarter turns of training images.')
  dim_max_mag: float = option(
      flags.DEFINE_float, models.ugriz_cnn.DIM_MAX_MAG,
      'ugriz_cnn on sdss_filters only: half the training stamps are made up '
      'to this many magnitudes fainter on the same sky (the spectroscopic '
      'catalogues stop near r = 22, fields go deeper); 0: off.',
      lower_bound=0.0, upper_bound=5.0)
  strategy: str = option(flags.DEFINE_enum, 'default',
                         'tf.distribute strategy.',
                         enum_values=['default', 'mirrored', 'multi_worker'])

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


_FIELDS = {field.name: field for field in dataclasses.fields(TrainConfig)}
# Defined by define_dataset_flags and define_workdir_flag, for every trainer.
_SHARED_FIELDS = ('dataset', 'data_dir', 'workdir')


def define_flag(name: str, fv: flags.FlagValues = FLAGS, *,
                help_suffix: str = '') -> None:
  """The absl flag of TrainConfig field `name`, with its validator."""
  field = _FIELDS[name]
  meta = field.metadata
  required = field.default is dataclasses.MISSING
  meta['define'](name=name, default=None if required else field.default,
                 help=meta['help'] + help_suffix, flag_values=fv,
                 **meta['define_args'])
  if meta['validator'] is not None:
    flags.register_validator(name, meta['validator'], flag_values=fv)


def define_dataset_flags(fv: flags.FlagValues = FLAGS, *,
                         required: bool = True) -> None:
  """--dataset and --data_dir."""
  define_flag('dataset', fv, help_suffix='' if required else
              ' Default: the dataset of the run in --workdir.')
  define_flag('data_dir', fv)
  if required:
    flags.mark_flag_as_required('dataset', flag_values=fv)


def define_workdir_flag(fv: flags.FlagValues = FLAGS) -> None:
  define_flag('workdir', fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def define_train_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Every flag of trainers/train.py: one per TrainConfig field."""
  define_dataset_flags(fv)
  define_workdir_flag(fv)
  for name in _FIELDS:
    if name not in _SHARED_FIELDS:
      define_flag(name, fv)
  flags.register_multi_flags_validator(
      ['cache_features', 'augment'],
      lambda d: require(not (d['cache_features'] == 'on' and d['augment']),
                       '--cache_features=on would train on unaugmented '
                       'embeddings: drop --augment or use --cache_features=off'),
      flag_values=fv)
  flags.register_multi_flags_validator(
      ['model', 'cache_features', 'fine_tune_layers', 'weights'],
      _check_from_scratch, flag_values=fv)
  flags.register_multi_flags_validator(
      ['model', 'dim_max_mag'],
      lambda d: require(d['model'] in models.FROM_SCRATCH
                        or d['dim_max_mag'] == models.ugriz_cnn.DIM_MAX_MAG,
                        f'--dim_max_mag is a ugriz_cnn augmentation, not one '
                        f'of --model={d["model"]}: drop it'),
      flag_values=fv)


def _check_from_scratch(values: dict[str, Any]) -> bool:
  """Flags that only mean something for a frozen backbone, refused for ugriz_cnn."""
  model = values['model']
  if model not in models.FROM_SCRATCH:
    return True
  require(values['weights'] != models.WEIGHTS_IMAGENET,
          f'--model={model} is trained from scratch and has no ImageNet '
          f'weights: pass --weights=none (or a {model} .weights.h5 file)')
  require(values['cache_features'] != 'on',
          f'--model={model} trains every layer, so there are no fixed '
          'embeddings to cache: drop --cache_features=on')
  return require(values['fine_tune_layers'] == 0,
                 f'--model={model} trains every layer already: drop '
                 '--fine_tune_layers')


def read_run_config(workdir: str | os.PathLike) -> dict[str, Any]:
  """The saved run configuration of a workdir; RunError when there is none."""
  path = pathlib.Path(workdir) / run_files.RUN_CONFIG
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
