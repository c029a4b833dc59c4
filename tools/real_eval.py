r"""Accuracy on real pixels: k-fold cross-validation on a real labelled SDSS field.

  python tools/real_eval.py [--out=real_eval_out] [--folds=5] [--epochs=30] \
      [--models=ugriz_cnn,mobilenet,resnet50,vgg16,xception] [--weights=none] \
      [--transfer=RUN_WORKDIR ...] [--init_from=RUN_WORKDIR] [--tta]

`../shared/data/labels/photometric_003918-3-0213.csv` holds 643 objects of
field 003918-3-0213 labelled STAR or GALAXY by the SDSS photometric pipeline,
and `../shared/data/sas` that field's real calibrated frames. This tool

1. builds `sdss_filters/custom` and `sdss_rgb/custom` from them with
   `tfds build` (the labels file as SKYTFDS_CATALOG, the frames folder as the
   SAS mirror; nothing is fetched from any network service);
2. splits the objects both datasets wrote into --folds folds, stratified by
   class, by a hash of the position (the same folds for every model);
3. per fold, trains each model on the other folds and predicts the held-out
   one: ugriz_cnn from scratch on the sdss_filters stamps (all five bands),
   the frozen backbones' dense heads on embeddings of the sdss_rgb colour
   stamps (--weights=none: random backbones calibrated as in trainers.train);
4. evaluates every --transfer run (a trainers.train workdir, e.g. ugriz_cnn
   trained on the emulator's sdss_filters/small_dense) on all the objects: how
   far the simulated sky carries over to real pixels;
5. reports STAR/GALAXY accuracy overall and by `r_aper` (< 19, 19-21, > 21,
   and < 21 together: the goal),
   with the count and the binomial standard error sqrt(p (1 - p) / n) of each
   cell, as real_eval.json and real_eval.md under --out.

--init_from=RUN_WORKDIR starts ugriz_cnn's every fold from a trained run's
weights (sim-to-real: learnt on the emulator's sky, then on the real folds);
--tta adds a row with ugriz_cnn's held-out predictions averaged over the 8
flips and quarter turns of each stamp.

Two classes: the models have a QSO output (the datasets' labels are GALAXY,
QSO, STAR); a QSO answer counts as STAR, since both are point sources.
"""

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainers import metrics  # pylint: disable=wrong-import-position
LABELS = 'labels/photometric_003918-3-0213.csv'
FIELD = '003918-3-0213'
DATASETS = ('sdss_filters', 'sdss_rgb')
MODELS = ('ugriz_cnn', 'mobilenet', 'resnet50', 'vgg16', 'xception')
# r_aper bins: (label, low, high); >= 90 in the file means no flux.
BINS = (('r < 19', -np.inf, 19.0), ('19-21', 19.0, 21.0), ('r > 21', 21.0, np.inf))
# Beside the bins: the goal, r_aper < 21 (the first two bins together).
GOAL = ('r < 21', -np.inf, 21.0)
BATCH = 32


def say(message: str) -> None:
  print(f'==> {message}', flush=True)


# -- data ----------------------------------------------------------------------


def build_real_datasets(shared: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
  """`tfds build` of both datasets from the real frames and labels; data_dir."""
  data_dir = out / 'data'
  env = {**os.environ,
         'SKYTFDS_CATALOG': str(shared / LABELS),
         'SKYTFDS_SAS_URL': str(shared / 'sas'),
         # A labelled catalogue with frames needs neither: unreachable on purpose.
         'SKYTFDS_SKYSERVER_URL': 'http://127.0.0.1:9',
         'SKYTFDS_PS1_URL': 'http://127.0.0.1:9'}
  tfds_cli = pathlib.Path(sys.executable).parent / 'tfds'
  for name in DATASETS:
    if list(data_dir.glob(f'{name}/custom/*/dataset_info.json')):
      say(f'{name}/custom: reusing the build in {data_dir}')
      continue
    say(f'building {name}/custom from the real frames of {FIELD}')
    subprocess.run([str(tfds_cli if tfds_cli.exists() else 'tfds'), 'build',
                    str(REPO / 'skytfds' / 'datasets' / name), '--config=custom',
                    f'--data_dir={data_dir}', f'--download_dir={out / "downloads"}'],
                   env=env, check=True, cwd=REPO)
  return data_dir


def position_key(ra: float, dec: float) -> str:
  return f'{ra:.7f}{dec:+.7f}'


def read_r_aper(path: pathlib.Path) -> dict[str, float]:
  """position key -> r_aper of every row of the labels file."""
  with open(path, newline='') as f:
    return {position_key(float(row['ra']), float(row['dec'])): float(row['r_aper'])
            for row in csv.DictReader(f)}


@dataclasses.dataclass
class Objects:
  """The objects both datasets wrote, in one order (by position key)."""
  keys: list[str]
  labels: np.ndarray     # 0 GALAXY, 1 STAR (two classes)
  r_aper: np.ndarray
  stamps: np.ndarray     # sdss_filters native inputs [N, 64, 64, 6]
  rgb: np.ndarray        # sdss_rgb uint8 [N, 128, 128, 3]
  class_names: list[str]  # the datasets' three labels


def load_objects(data_dir: pathlib.Path, r_aper: dict[str, float]) -> Objects:
  """Every split of both custom builds, joined by position."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  from skytfds import input_pipeline  # pylint: disable=import-outside-toplevel

  def read(name):
    builder = input_pipeline.get_builder(f'{name}/custom', data_dir)
    rows = {}
    for split in builder.info.splits:
      for ex in tfds.as_numpy(builder.as_dataset(split=split)):
        rows[position_key(float(ex['ra']), float(ex['dec']))] = ex
    return builder, rows

  filters_builder, filters = read('sdss_filters')
  _, rgb = read('sdss_rgb')
  names = input_pipeline.class_names(filters_builder)
  keys = sorted(set(filters) & set(rgb))
  star = names.index('STAR')
  labels = np.array([int(filters[k]['label'] == star) for k in keys])
  stamps = np.stack([input_pipeline.native_from_stamp(
      filters[k]['stamp'], filters[k]['mask'], 64).numpy() for k in keys])
  return Objects(keys, labels, np.array([r_aper[k] for k in keys]), stamps,
                 np.stack([rgb[k]['image'] for k in keys]), names)


def stratified_folds(keys: list[str], labels: np.ndarray, k: int) -> np.ndarray:
  """Fold index per object: within each class, round robin in hash order."""
  folds = np.zeros(len(keys), int)
  for label in np.unique(labels):
    members = [i for i in range(len(keys)) if labels[i] == label]
    members.sort(key=lambda i: hashlib.sha256(keys[i].encode()).hexdigest())
    for rank, i in enumerate(members):
      folds[i] = rank % k
  return folds


# -- scoring (pure) ------------------------------------------------------------


def two_class(probabilities: np.ndarray, names: list[str]) -> np.ndarray:
  """1 (STAR) where STAR + QSO outweigh GALAXY, else 0 (GALAXY)."""
  galaxy = probabilities[:, names.index('GALAXY')]
  return (galaxy < 0.5 * probabilities.sum(axis=1)).astype(int)


def accuracy_cells(truth: np.ndarray, predicted: np.ndarray,
                   r_aper: np.ndarray) -> dict[str, dict[str, float]]:
  """{'all', each bin and 'r < 21': {'n', 'accuracy', 'stderr'}} (None where n is 0)."""
  return metrics.accuracy_in_bins(truth, predicted, r_aper,
                                  (('all', -np.inf, np.inf),) + BINS + (GOAL,))


def markdown(results: dict[str, dict]) -> str:
  """The README table: a row per model, accuracy +- stderr per column."""
  columns = ['all'] + [label for label, _, _ in BINS] + [GOAL[0]]
  any_row = next(iter(results.values()))['cells']
  header = ' | '.join(f'{c} (n={any_row[c]["n"]})' for c in columns)
  lines = [f'| model | trained on | {header} |',
           '|' + '---|' * (len(columns) + 2)]
  for name, result in results.items():
    cells = []
    for c in columns:
      cell = result['cells'][c]
      cells.append('-' if cell['accuracy'] is None else
                   f'{cell["accuracy"]:.3f} ± {cell["stderr"]:.3f}')
    lines.append(f'| {name} | {result["trained_on"]} | {" | ".join(cells)} |')
  return '\n'.join(lines) + '\n'


# -- models --------------------------------------------------------------------


def dihedral_views(images: np.ndarray) -> list[np.ndarray]:
  """The 8 flips and quarter turns of square images [N, H, W, C].

  A stamp's centre stays where it was, so the object is still the one in
  the middle; none of them changes a sky object's class.
  """
  views = []
  for quarter_turns in range(4):
    turned = np.rot90(images, quarter_turns, axes=(1, 2))
    views += [turned, turned[:, :, ::-1]]
  return views


def fit_predict(make, train_x, train_y, test_x, *, epochs: int, seed: int,
                num_classes: int, decay: bool, learning_rate: float = 1e-3,
                tta: bool = False) -> dict[str, np.ndarray]:
  """Fits make() as trainers.train would and predicts test_x.

  decay: the cosine learning-rate decay of from-scratch models.
  Returns {'': probabilities} and, with tta, also {'tta': the mean of the
  probabilities over test_x's 8 dihedral views}.
  """
  import keras  # pylint: disable=import-outside-toplevel
  from skytfds import models  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(seed)
  model = make()
  steps = epochs * -(-len(train_x) // BATCH)
  models.compile_for_training(model, learning_rate,
                              decay_steps=steps if decay else None)
  model.fit(train_x, keras.utils.to_categorical(train_y, num_classes),
            batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0)
  out = {'': model.predict(test_x, batch_size=BATCH, verbose=0)}
  if tta:
    out['tta'] = np.mean([model.predict(view, batch_size=BATCH, verbose=0)
                          for view in dihedral_views(test_x)], axis=0)
  return out


def cross_validate(name: str, objects: Objects, folds: np.ndarray, *,
                   epochs: int, weights: str, seed: int,
                   init_from: pathlib.Path | None = None,
                   learning_rate: float = 1e-3, tta: bool = False,
                   dim_max_mag: float | None = None
                   ) -> dict[str, np.ndarray]:
  """Held-out class probabilities [N, 3] of model `name`, fold by fold.

  init_from: a trainers.train workdir of the same from-scratch model; each
  fold then starts from its trained weights (e.g. learnt on the emulator)
  instead of random ones. tta: also the 8-view average ('tta'), for models
  that read images (ugriz_cnn); the backbones' heads read embeddings.
  dim_max_mag: ugriz_cnn's training-time dimming (None: its default); a run
  started --init_from keeps the dimming it was saved with.
  Returns {'': probabilities} (and 'tta').
  """
  from skytfds import input_pipeline  # pylint: disable=import-outside-toplevel
  from skytfds import models  # pylint: disable=import-outside-toplevel
  from trainers import run_files  # pylint: disable=import-outside-toplevel
  names = objects.class_names
  # Training labels in the datasets' three classes (GALAXY, QSO, STAR).
  labels3 = np.where(objects.labels == 1, names.index('STAR'), names.index('GALAXY'))
  from_scratch = models.is_from_scratch(name)
  if from_scratch:
    inputs = objects.stamps

    def make():
      if init_from is not None:
        return models.load_classifier(init_from / run_files.MODEL_FILE)
      return models.build_from_scratch(
          name, inputs.shape[1:], num_classes=len(names),
          bands=input_pipeline.STAMP_BANDS, seed=seed,
          dim_max_mag=dimming_used(dim_max_mag)).model
  else:
    if init_from is not None:
      raise ValueError(f'{name}: --init_from is for from-scratch models')
    classifier = models.build_model(name, weights=weights, num_classes=len(names))
    size = classifier.input_size
    images = np.stack([input_pipeline.resize(im, size).numpy() for im in objects.rgb])
    if weights == models.WEIGHTS_NONE:
      models.calibrate_random_backbone(classifier, images[:64])
    started = time.perf_counter()
    inputs = classifier.features.predict(images, batch_size=BATCH, verbose=0)
    say(f'{name}: embedded {len(images)} images in '
        f'{time.perf_counter() - started:.0f} s')

    def make():
      return models.build_head(inputs.shape[1], len(names))
  probabilities = {}
  for fold in range(folds.max() + 1):
    held = folds == fold
    predicted = fit_predict(
        make, inputs[~held], labels3[~held], inputs[held], epochs=epochs,
        seed=seed + fold, num_classes=len(names), decay=from_scratch,
        learning_rate=learning_rate, tta=tta and from_scratch)
    for variant, values in predicted.items():
      probabilities.setdefault(
          variant, np.zeros((len(objects.keys), len(names))))[held] = values
  return probabilities


def transfer(workdir: pathlib.Path, objects: Objects
             ) -> tuple[np.ndarray, str, str]:
  """A trained run's class probabilities on the real objects, its dataset
  and its model name."""
  from skytfds import input_pipeline  # pylint: disable=import-outside-toplevel
  from skytfds import models  # pylint: disable=import-outside-toplevel
  from trainers import flags as trainer_flags  # pylint: disable=import-outside-toplevel
  from trainers import run_files  # pylint: disable=import-outside-toplevel
  run_config = trainer_flags.read_run_config(workdir)
  dataset = run_config['dataset']
  model = models.load_classifier(workdir / run_files.MODEL_FILE)
  size = model.input_shape[1]
  kind = dataset.split('/')[0]
  if run_files.reads_native_input(run_config):
    if kind == 'sdss_filters':
      inputs = objects.stamps
    else:
      inputs = np.stack([input_pipeline.native_from_image(im, size).numpy()
                         for im in objects.rgb])
  elif kind == 'sdss_filters':
    bands = run_config.get('bands', input_pipeline.DEFAULT_BANDS)
    inputs = np.stack([input_pipeline.image_from_stamp(s[..., :5], size, bands)
                       for s in objects.stamps])
  else:
    inputs = np.stack([input_pipeline.resize(im, size).numpy() for im in objects.rgb])
  probabilities = model.predict(inputs, batch_size=BATCH, verbose=0)
  # The run's class order may differ from the datasets' (it is the same today).
  order = [run_config['class_names'].index(n) for n in objects.class_names]
  return probabilities[:, order], dataset, run_config['model']


# -- main ----------------------------------------------------------------------


def dimming_used(asked: float | None) -> float:
  """The dimming that ugriz_cnn trains with from scratch."""
  from skytfds import ugriz_cnn  # pylint: disable=import-outside-toplevel
  return ugriz_cnn.DIM_MAX_MAG if asked is None else asked


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out', default='real_eval_out')
  parser.add_argument('--shared_data', default=str(REPO.parent / 'shared' / 'data'),
                      help='the folder with sas/ and labels/ (../shared/data)')
  parser.add_argument('--folds', type=int, default=5)
  parser.add_argument('--epochs', type=int, default=30,
                      help='per fold, for ugriz_cnn and the dense heads alike')
  parser.add_argument('--models', default=','.join(MODELS),
                      help="cross-validated models; '' for --transfer runs only")
  parser.add_argument('--weights', default='none',
                      help='backbone weights: none (random, calibrated) or imagenet')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--learning_rate', type=float, default=1e-3,
                      help='per fold (cosine-decayed for ugriz_cnn)')
  parser.add_argument('--init_from', default=None,
                      help='a trainers.train workdir of ugriz_cnn: each fold '
                      'starts from its trained weights (e.g. learnt on the '
                      "emulator's sky) instead of random ones")
  parser.add_argument('--tta', action='store_true',
                      help='also report ugriz_cnn with its predictions '
                      'averaged over the 8 flips and quarter turns')
  parser.add_argument('--dim_max_mag', type=float, default=None,
                      help="ugriz_cnn from scratch: its training-time dimming "
                      "in magnitudes (default: the model's, "
                      "ugriz_cnn.DIM_MAX_MAG; 0: off)")
  parser.add_argument('--transfer', action='append', default=[],
                      help='a trainers.train workdir to evaluate on the real field')
  args = parser.parse_args()
  shared = pathlib.Path(args.shared_data).resolve()
  if not (shared / LABELS).is_file():
    raise SystemExit(f'real_eval: {shared / LABELS} not found: pass '
                     '--shared_data=<folder with labels/ and sas/>')
  if args.folds < 2:
    raise SystemExit('real_eval: --folds must be at least 2')
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  data_dir = build_real_datasets(shared, out)
  objects = load_objects(data_dir, read_r_aper(shared / LABELS))
  folds = stratified_folds(objects.keys, objects.labels, args.folds)
  say(f'{len(objects.keys)} real objects ({int(objects.labels.sum())} STAR, '
      f'{int((1 - objects.labels).sum())} GALAXY) in {args.folds} folds')
  init_from = pathlib.Path(args.init_from).resolve() if args.init_from else None
  dim_max_mag = dimming_used(args.dim_max_mag)
  results = {}
  for name in [m for m in args.models.split(',') if m]:
    started = time.perf_counter()
    variants = cross_validate(
        name, objects, folds, epochs=args.epochs, weights=args.weights,
        seed=args.seed, init_from=init_from if name == 'ugriz_cnn' else None,
        learning_rate=args.learning_rate, tta=args.tta,
        dim_max_mag=dim_max_mag)
    seconds = time.perf_counter() - started
    for variant, probabilities in variants.items():
      label = name
      trained_on = (f'real field, {args.folds}-fold, '
                    + ('sdss_filters' if name == 'ugriz_cnn' else 'sdss_rgb'))
      if name == 'ugriz_cnn' and init_from is not None:
        label += f' (from {init_from.name})'
        trained_on += ', started from the emulator-trained weights'
      if variant == 'tta':
        label += ' + 8-view TTA'
      results[label] = {
          'trained_on': trained_on,
          'cells': accuracy_cells(objects.labels,
                                  two_class(probabilities, objects.class_names),
                                  objects.r_aper),
          'seconds': seconds}
      say(f'{label}: accuracy {results[label]["cells"]["all"]["accuracy"]:.3f} '
          f'({seconds:.0f} s)')
  for workdir in args.transfer:
    probabilities, dataset, model = transfer(pathlib.Path(workdir), objects)
    predicted = two_class(probabilities, objects.class_names)
    results[f'{model} ({pathlib.Path(workdir).name})'] = {
        'trained_on': f'{dataset} (emulator), no real pixels',
        'cells': accuracy_cells(objects.labels, predicted, objects.r_aper)}
  report = {'field': FIELD, 'objects': len(objects.keys),
            'stars': int(objects.labels.sum()), 'folds': args.folds,
            'epochs': args.epochs, 'weights': args.weights,
            'learning_rate': args.learning_rate,
            'init_from': None if init_from is None else str(init_from),
            # ugriz_cnn from scratch; a run --init_from keeps its own.
            'dim_max_mag': dim_max_mag,
            'results': results}
  (out / 'real_eval.json').write_text(json.dumps(report, indent=2) + '\n')
  table = markdown(results)
  (out / 'real_eval.md').write_text(table)
  print(table)


if __name__ == '__main__':
  main()
