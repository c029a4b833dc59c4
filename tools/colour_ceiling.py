r"""What the catalogue's colours alone can tell: a ceiling for pixel models.

  python tools/colour_ceiling.py --dataset=sdss_filters/small_dense \
      [--data_dir=~/tensorflow_datasets] \
      [--catalog=../shared/data/catalogs/specobj_35k.csv] [--out=ceiling_out]

The emulator draws every labelled object at its catalogue ugriz magnitudes,
stars and quasars alike as point sources with the same PSF: on its sky a
STAR and a QSO differ only in their colours and brightness. No pixel model can
then separate them better than a classifier given the *true*, noiseless
colours (u-g, g-r, r-i, i-z) and r magnitude of the same objects. This tool
fits such classifiers (k nearest neighbours; a small dense network) on the
dataset's train split, and with --catalog also on the whole catalogue less
the test split's objects, and scores them on the test split:

* `colours`: GALAXY, QSO, STAR from colours and r alone (no morphology);
* `colours + perfect morphology`: every GALAXY right (a pixel model sees that
  it is extended), every point source called STAR or QSO by the colour
  classifier: an estimate of the best a pixel model can score on that test
  split, since its photometry from noisy pixels is worse than the truth.

It is an estimate, not a proof (another classifier might separate the
colours a little better); the spread between the classifiers says how firm
it is.

With --catalog and --draws=N (no images needed, --dataset='' to skip the
dataset) it also asks whether another sample would allow more: N times, it
draws --per_class objects of each class at random from the catalogue's
objects within the builds' default r cut, splits them as a build does
(`skytfds.splits`, by objid: 80/10/10), and scores the 15-NN ceiling on that
draw's test split. A spread `small` build takes its objects this way (a hash
stride over the footprint); a dense one takes whole fields instead.

Writes colour_ceiling.json and colour_ceiling.md under --out.
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trainers import metrics  # pylint: disable=wrong-import-position

NEIGHBOURS = (5, 15)
DRAW_NEIGHBOURS = 15
POINT_SOURCES = ('QSO', 'STAR')


def colour_features(mags: np.ndarray) -> np.ndarray:
  """[n, 5] ugriz magnitudes -> [n, 5]: u-g, g-r, r-i, i-z, r."""
  mags = np.asarray(mags, dtype=np.float64)
  return np.concatenate([mags[:, :4] - mags[:, 1:], mags[:, 2:3]], axis=1)


class Standardise:
  """Scales features by the train set's mean and spread; NaN -> the mean.

  numpy's nanmean would warn on a band missing everywhere (the fakes' z).
  """

  def __init__(self, train: np.ndarray):
    finite = np.isfinite(train)
    count = np.maximum(finite.sum(0), 1)  # a column with no value: mean 0
    values = np.where(finite, train, 0.0)
    self.mean = values.sum(0) / count
    spread = np.where(finite, train - self.mean, 0.0)
    std = np.sqrt((spread**2).sum(0) / count)
    self.scale = np.where(std > 0, std, 1.0)  # constant columns stay constant

  def __call__(self, x: np.ndarray) -> np.ndarray:
    return np.nan_to_num((x - self.mean) / self.scale)


def knn_scores(train_x, train_y, test_x, k: int, n_classes: int) -> np.ndarray:
  """[n_test, n_classes] vote fractions of the k nearest train objects."""
  d = ((test_x[:, None, :] - train_x[None, :, :])**2).sum(-1)
  nearest = np.argsort(d, axis=1)[:, :k]
  return np.stack([(train_y[nearest] == c).mean(1) for c in range(n_classes)], 1)


def mlp_scores(train_x, train_y, test_x, n_classes: int, seed: int) -> np.ndarray:
  """[n_test, n_classes] softmax of a small dense net fit on class-balanced data."""
  import keras  # pylint: disable=import-outside-toplevel
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([
      keras.Input((train_x.shape[1],)),
      keras.layers.Dense(64, activation='relu'),
      keras.layers.Dense(64, activation='relu'),
      keras.layers.Dense(n_classes, activation='softmax')])
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  counts = np.bincount(train_y, minlength=n_classes)
  weights = (len(train_y) / (n_classes * np.maximum(counts, 1)))[train_y]
  # About 40,000 gradient steps' worth of examples, whatever the train size.
  epochs = int(np.clip(400_000 // max(len(train_y), 1), 20, 200))
  model.fit(train_x, train_y, sample_weight=weights, batch_size=64,
            epochs=epochs, verbose=0)
  return model.predict(test_x, verbose=0)


def ceiling_predictions(scores: np.ndarray, truth: np.ndarray,
                        names: list[str]) -> np.ndarray:
  """Perfect morphology: true GALAXYs kept, point sources STAR/QSO by `scores`."""
  galaxy = names.index('GALAXY')
  point = [names.index(n) for n in POINT_SOURCES]
  best_point = np.array(point)[scores[:, point].argmax(1)]
  return np.where(truth == galaxy, galaxy, best_point)


def score(truth, scores, names) -> dict:
  colours = metrics.classification_report(truth, scores.argmax(1), names)
  perfect = metrics.classification_report(
      truth, ceiling_predictions(scores, truth, names), names)
  point = np.isin(truth, [names.index(n) for n in POINT_SOURCES])
  errors = int((ceiling_predictions(scores, truth, names) != truth)[point].sum())
  return {'colours': colours, 'perfect_morphology': perfect,
          'point_source_errors': errors, 'point_sources': int(point.sum())}


def load_split(builder, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(mags [n, 5], labels [n], objids [n]) of one split, without the stamps."""
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  ds = builder.as_dataset(split=split).map(
      lambda x: (x['mags'], x['label'], x['objid']))
  rows = list(tfds.as_numpy(ds))
  if not rows:
    raise SystemExit(f'{builder.name}: split {split!r} is empty')
  mags, labels, objids = (np.array(column) for column in zip(*rows))
  return mags, labels.astype(np.int64), objids.astype(np.int64)


def load_catalog(path: pathlib.Path, names: list[str]):
  """(mags [n, 5], labels [n], objids [n]) of a labelled catalogue's objects."""
  from skytfds import catalog  # pylint: disable=import-outside-toplevel
  parsed = catalog.parse_catalog(path.read_bytes(), str(path))
  kept = [o for o in parsed.objects if o.cls in names]
  mags = np.array([o.mags for o in kept], dtype=np.float64)
  labels = np.array([names.index(o.cls) for o in kept], dtype=np.int64)
  objids = np.array([o.objid for o in kept], dtype=np.int64)
  return mags, labels, objids


def draw_ceilings(mags, labels, objids, names: list[str], per_class: int,
                  draws: int, seed: int) -> list[dict]:
  """The 15-NN ceiling of `draws` random class-balanced samples of a catalogue.

  Each draw takes `per_class` objects of every class (fewer where the class
  has fewer) among those within the builds' default r cut, splits them by
  objid as a build does, fits on the train split and scores the test split.
  """
  from skytfds import splits  # pylint: disable=import-outside-toplevel
  from skytfds.catalog import queries  # pylint: disable=import-outside-toplevel
  r_lo, r_hi = queries.DEFAULT_MAG_LIMITS['r']
  usable = (mags[:, 2] >= r_lo) & (mags[:, 2] <= r_hi)
  split = np.array([splits.split_of(int(i)) for i in objids])
  rng = np.random.default_rng(seed)
  rows = []
  for _ in range(draws):
    picked = np.concatenate([
        rng.choice(pool, min(per_class, len(pool)), replace=False)
        for pool in (np.flatnonzero(usable & (labels == c))
                     for c in range(len(names)))])
    train = picked[split[picked] == 'train']
    test = picked[split[picked] == 'test']
    scale = Standardise(colour_features(mags[train]))
    rows.append(score(labels[test], knn_scores(
        scale(colour_features(mags[train])), labels[train],
        scale(colour_features(mags[test])), DRAW_NEIGHBOURS, len(names)),
                      names))
  return rows


def draws_summary(rows: list[dict]) -> dict:
  """Mean, spread and range of the draws' perfect-morphology macro-F1."""
  f1 = np.array([r['perfect_morphology']['macro_f1'] for r in rows])
  return {'draws': len(rows), 'macro_f1_mean': float(f1.mean()),
          'macro_f1_std': float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
          'macro_f1_min': float(f1.min()), 'macro_f1_max': float(f1.max()),
          'macro_f1': [float(v) for v in f1]}


def markdown(dataset: str, rows: dict[str, dict],
             drawn: dict | None = None) -> str:
  lines = []
  if rows:
    lines += [f'Colour-only classifiers on {dataset} (test split; true '
              'catalogue magnitudes, no pixels)', '',
              '| classifier | accuracy, colours | macro-F1, colours | accuracy, '
              '+ perfect morphology | macro-F1, + perfect morphology | '
              'STAR/QSO errors |', '|---|---|---|---|---|---|']
  for name, r in rows.items():
    c, p = r['colours'], r['perfect_morphology']
    lines.append(f'| {name} | {c["accuracy"]:.3f} | {c["macro_f1"]:.3f} | '
                 f'{p["accuracy"]:.3f} | {p["macro_f1"]:.3f} | '
                 f'{r["point_source_errors"]} of {r["point_sources"]} |')
  if drawn:
    if rows:
      lines.append('')
    lines.append(
        f'{DRAW_NEIGHBOURS}-NN ceiling (perfect morphology) over '
        f'{drawn["draws"]} random draws of {drawn["per_class"]:,} per class '
        f'from {drawn["catalog"]}: macro-F1 {drawn["macro_f1_mean"]:.3f} +- '
        f'{drawn["macro_f1_std"]:.3f} (range {drawn["macro_f1_min"]:.3f}-'
        f'{drawn["macro_f1_max"]:.3f}; STAR/QSO errors '
        f'{min(drawn["point_source_errors"])}-'
        f'{max(drawn["point_source_errors"])} of about '
        f'{round(np.mean(drawn["point_sources"]))} point sources)')
  return '\n'.join(lines) + '\n'


def dataset_rows(builder, names, catalog_path, seed) -> tuple[dict, int]:
  """The classifiers' scores on a built dataset's test split, and its size."""
  train_mags, train_y, _ = load_split(builder, 'train')
  test_mags, test_y, test_ids = load_split(builder, 'test')
  scale = Standardise(colour_features(train_mags))
  train_x = scale(colour_features(train_mags))
  test_x = scale(colour_features(test_mags))
  n = len(names)
  rows = {}
  for k in NEIGHBOURS:
    rows[f'{k}-NN, train split'] = score(
        test_y, knn_scores(train_x, train_y, test_x, k, n), names)
  rows['dense net, train split'] = score(
      test_y, mlp_scores(train_x, train_y, test_x, n, seed), names)
  if catalog_path:
    cat_mags, cat_y, cat_ids = load_catalog(catalog_path, names)
    keep = ~np.isin(cat_ids, test_ids)
    rows[f'dense net, catalogue ({int(keep.sum())} objects)'] = score(
        test_y, mlp_scores(scale(colour_features(cat_mags[keep])), cat_y[keep],
                           test_x, n, seed), names)
  return rows, int(len(test_y))


def main() -> None:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dataset', default='sdss_filters/small_dense',
                      help="a built dataset; '' for --draws only")
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--catalog', default=None,
                      help='also fit on this labelled catalogue (less the '
                           'test objects), e.g. the one the dataset was drawn from')
  parser.add_argument('--draws', type=int, default=0,
                      help='with --catalog: random class-balanced samples of '
                           'it to score the ceiling of (see above)')
  parser.add_argument('--per_class', type=int, default=1000,
                      help="objects per class in each draw (a `small` build's)")
  parser.add_argument('--out', default='ceiling_out')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  if args.draws and not args.catalog:
    parser.error('--draws needs --catalog (the catalogue to draw from)')
  if not args.dataset and not args.draws:
    parser.error("--dataset='' leaves nothing to do without --catalog and --draws")

  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  from skytfds import survey  # pylint: disable=import-outside-toplevel
  catalog_path = pathlib.Path(args.catalog) if args.catalog else None
  names, rows, test_objects = list(survey.CLASSES), {}, 0
  if args.dataset:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    import skytfds.datasets  # pylint: disable=import-outside-toplevel,unused-import
    builder = tfds.builder(args.dataset, data_dir=args.data_dir)
    names = builder.info.features['label'].names
    rows, test_objects = dataset_rows(builder, names, catalog_path, args.seed)
  drawn = None
  if args.draws:
    draw_rows = draw_ceilings(*load_catalog(catalog_path, names), names,
                              args.per_class, args.draws, args.seed)
    drawn = dict(draws_summary(draw_rows), catalog=str(catalog_path),
                 per_class=args.per_class,
                 point_source_errors=[r['point_source_errors'] for r in draw_rows],
                 point_sources=[r['point_sources'] for r in draw_rows])

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'colour_ceiling.json').write_text(json.dumps(
      {'dataset': args.dataset, 'test_objects': test_objects,
       'classifiers': rows, 'catalogue_draws': drawn}, indent=1))
  table = markdown(args.dataset, rows, drawn)
  (out / 'colour_ceiling.md').write_text(table)
  print(table)


if __name__ == '__main__':
  main()
