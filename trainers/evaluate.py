r"""Evaluate a trained run on any split of any dataset; rewrite metrics and plots.

  python -m trainers.evaluate --workdir=DIR [--data_dir=DIR] \
      [--dataset=sdss_cutouts/small] [--split=test]

The dataset and data_dir default to the run's own (workdir/run_config.json).
The report goes into metrics.json under evaluations['<dataset>:<split>'] (and
under '<split>' when it is the run's own dataset); history.png and
confusion.png are redrawn. Where the dataset records the catalogue's ugriz
magnitudes (every skytfds dataset does), the report also breaks accuracy down
by r magnitude (`by_r_mag`: n, accuracy and standard error per bin of
metrics.R_MAG_BINS).
"""

import json
import pathlib
import time
from typing import Any

from absl import app
from absl import flags
import numpy as np

from skytfds import input_pipeline
from skytfds import models
from skytfds import survey
from trainers import flags as trainer_flags
from trainers import metrics as metrics_lib
from trainers import plots
from trainers import run_files

FLAGS = flags.FLAGS
MAGS_FEATURE = 'mags'  # ugriz, as the catalogue gave them
R_BAND = survey.BANDS.index('r')


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  trainer_flags.define_workdir_flag(fv)
  trainer_flags.define_dataset_flags(fv, required=False)
  flags.DEFINE_string('split', 'test', 'Split to evaluate.', flag_values=fv)
  flags.DEFINE_integer('batch_size', 32, 'Images per batch.', lower_bound=1,
                       flag_values=fv)


def evaluate(workdir: str, *, dataset: str | None = None,
             data_dir: str | None = None, split: str = 'test',
             batch_size: int = 32) -> dict[str, Any]:
  """Evaluate workdir/model.keras on one split; update metrics.json and plots.

  Returns:
    The classification report (metrics.classification_report) with the
    dataset, split, wall time and images/s added.
  """
  start = time.perf_counter()
  workdir_path = pathlib.Path(workdir)
  run_config = trainer_flags.read_run_config(workdir_path)
  dataset = dataset or run_config['dataset']
  if data_dir is None and dataset == run_config['dataset']:
    data_dir = run_config.get('data_dir')
  builder = input_pipeline.get_builder(dataset, data_dir)
  input_pipeline.num_examples(builder, split)  # a clear error for a bad split
  names = input_pipeline.class_names(builder)
  if names != run_config['class_names']:
    raise trainer_flags.RunError(
        f'dataset {dataset} has classes {names}, the model was trained on '
        f'{run_config["class_names"]}')
  model_path = workdir_path / run_files.MODEL_FILE
  if not model_path.exists():
    raise trainer_flags.RunError(
        f'{model_path} not found: the run has not finished; rerun '
        f'trainers.train with the same --workdir')
  model = models.load_classifier(model_path)
  native = run_files.reads_native_input(run_config)
  if native and model.input_shape[-1] != input_pipeline.native_channels(builder):
    raise trainer_flags.RunError(
        f'the {run_config["model"]} model reads {model.input_shape[-1] - 1} '
        f'channels ({run_config["dataset"]}); {dataset} has '
        f'{input_pipeline.native_channels(builder) - 1}: evaluate it on a '
        'dataset of the same kind')
  images = input_pipeline.make_dataset(
      builder, split, image_size=model.input_shape[1], batch_size=batch_size,
      bands=run_config.get('bands', input_pipeline.DEFAULT_BANDS),
      native=native)
  truth, predicted = metrics_lib.predict_labels(model, images)
  report = metrics_lib.classification_report(truth, predicted, names)
  r_mags = _catalogue_r_mags(builder, split, truth)
  if r_mags is not None:
    report['by_r_mag'] = metrics_lib.accuracy_in_bins(
        truth, predicted, r_mags, metrics_lib.R_MAG_BINS)
  seconds = time.perf_counter() - start

  metrics_path = workdir_path / run_files.METRICS_FILE
  result = (json.loads(metrics_path.read_text()) if metrics_path.exists()
            else {'dataset': run_config['dataset'], 'model': run_config['model'],
                  'class_names': names, 'history': [], 'evaluations': {}})
  result.setdefault('evaluations', {})[f'{dataset}:{split}'] = report
  if dataset == run_config['dataset']:
    result[split] = report
  run_files.write_json(metrics_path, result)
  plots.write_run_plots(workdir_path, result)
  return {**report, 'dataset': dataset, 'split': split, 'wall_time_s': seconds,
          'images_per_s': len(truth) / seconds if seconds > 0 else None}


def _catalogue_r_mags(builder, split: str, truth: np.ndarray) -> np.ndarray | None:
  """The catalogue r magnitude of each example, in make_dataset's order.

  None when the dataset has no `mags` feature. Both read the split in file
  order (no shuffling); the labels are compared to make sure of it.
  """
  if MAGS_FEATURE not in builder.info.features:
    return None
  ds = builder.as_dataset(split=split, shuffle_files=False).map(
      lambda ex: (ex[MAGS_FEATURE][R_BAND], ex[input_pipeline.LABEL_FEATURE]))
  rows = list(ds.as_numpy_iterator())
  r_mags = np.array([r for r, _ in rows], np.float64)
  labels = np.array([label for _, label in rows], np.int64)
  if not np.array_equal(labels, truth):
    raise AssertionError(f'{builder.name}:{split} read in another order than '
                         'make_dataset: the r-magnitude breakdown would not match')
  return r_mags


def main(argv):
  if len(argv) > 1:
    trainer_flags.exit_with_error('evaluate', f'unexpected arguments {argv[1:]}')
  try:
    report = evaluate(FLAGS.workdir, dataset=FLAGS.dataset,
                      data_dir=FLAGS.data_dir, split=FLAGS.split,
                      batch_size=FLAGS.batch_size)
  except (input_pipeline.DatasetError, trainer_flags.RunError) as e:
    trainer_flags.exit_with_error('evaluate', e)
  print(f'{report["dataset"]}:{report["split"]}: accuracy '
        f'{report["accuracy"]:.4f}, macro-F1 {report["macro_f1"]:.4f} '
        f'({report["num_examples"]} images, {report["wall_time_s"]:.1f} s)')
  for name, scores in report['per_class'].items():
    print(f'  {name:8s} precision {scores["precision"]:.3f}  recall '
          f'{scores["recall"]:.3f}  F1 {scores["f1"]:.3f}  ({scores["support"]})')
  for label, cell in report.get('by_r_mag', {}).items():
    if cell['n']:
      print(f'  {label:8s} accuracy {cell["accuracy"]:.3f} ± {cell["stderr"]:.3f} '
            f'({cell["n"]})')
  print('confusion (rows true, columns predicted):')
  print(np.array(report['confusion_matrix']))


if __name__ == '__main__':
  define_flags()
  # Listed by --help, not only by --helpfull.
  flags.adopt_module_key_flags(trainer_flags)
  app.run(main)
