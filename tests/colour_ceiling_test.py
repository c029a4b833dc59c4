"""tools/colour_ceiling.py: colours, the perfect-morphology ceiling, the tool."""

import json
import pathlib
import sys

import numpy as np
import pytest

import fake_datasets

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
try:
  import colour_ceiling  # pylint: disable=g-import-not-at-top
finally:
  sys.path.remove(str(REPO / 'tools'))

NAMES = ['GALAXY', 'QSO', 'STAR']


def test_colour_features_are_adjacent_band_differences_and_r():
  mags = np.array([[20.0, 19.0, 18.5, 18.3, 18.2]])
  np.testing.assert_allclose(colour_ceiling.colour_features(mags),
                             [[1.0, 0.5, 0.2, 0.1, 18.5]])


def test_standardise_uses_the_train_set_and_fills_missing_with_its_mean():
  train = np.array([[0.0, 1.0], [2.0, np.nan], [4.0, 3.0]])
  scale = colour_ceiling.Standardise(train)
  out = scale(np.array([[2.0, np.nan], [4.0, 3.0]]))
  np.testing.assert_allclose(out[0], [0.0, 0.0])
  # A band missing everywhere is no feature, not an error.
  np.testing.assert_array_equal(
      colour_ceiling.Standardise(np.full((3, 1), np.nan))(np.ones((2, 1))),
      np.ones((2, 1)))
  assert out[1, 0] > 1 and out[1, 1] == pytest.approx(1.0)


def test_perfect_morphology_keeps_galaxies_and_splits_point_sources_by_colour():
  truth = np.array([0, 0, 1, 2, 2])
  # The colour scores think the first galaxy is a QSO and the last star a
  # galaxy: morphology fixes the first, and the star is called by its better
  # point-source score (QSO 0.3 > STAR 0.2).
  scores = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.2, 0.7, 0.1],
                     [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]])
  np.testing.assert_array_equal(
      colour_ceiling.ceiling_predictions(scores, truth, NAMES), [0, 0, 1, 2, 1])
  result = colour_ceiling.score(truth, scores, NAMES)
  assert result['point_source_errors'] == 1 and result['point_sources'] == 3
  assert result['perfect_morphology']['accuracy'] == 0.8
  assert result['colours']['accuracy'] == 0.6


def test_knn_separates_separate_colours():
  rng = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
  train_y = np.repeat(np.arange(3), 20)
  train_x = centres[train_y] + rng.normal(0, 0.3, (60, 2))
  test_y = np.arange(3)
  scores = colour_ceiling.knn_scores(train_x, train_y, centres, 5, 3)
  np.testing.assert_array_equal(scores.argmax(1), test_y)
  np.testing.assert_allclose(scores.sum(1), 1.0)


def test_the_tool_on_a_dataset_whose_colours_say_nothing(tmp_path, monkeypatch):
  # Every fake object has the same magnitudes: colours alone can only guess
  # one class for all (1/3 of a balanced split), perfect morphology adds the
  # galaxies (2/3), for every classifier.
  fake_datasets.build(fake_datasets.FakeSdssFilters, tmp_path / 'data')
  out = tmp_path / 'out'
  monkeypatch.setattr(sys, 'argv', [
      'colour_ceiling.py', '--dataset=fake_sdss_filters',
      f'--data_dir={tmp_path / "data"}', f'--out={out}'])
  colour_ceiling.main()
  result = json.loads((out / 'colour_ceiling.json').read_text())
  test_size = fake_datasets.SPLIT_SIZES['test']
  assert result['test_objects'] == test_size
  rows = result['classifiers']
  assert set(rows) == {'5-NN, train split', '15-NN, train split',
                       'dense net, train split'}
  for row in rows.values():
    assert row['colours']['accuracy'] == 1 / 3
    assert row['perfect_morphology']['accuracy'] == 2 / 3
    assert row['point_source_errors'] == test_size // 3
  table = (out / 'colour_ceiling.md').read_text()
  assert '| 5-NN, train split | 0.333 |' in table and 'STAR/QSO errors' in table


def _catalogue_csv(path, per_class, star_like_qsos, seed=0):
  """A labelled catalogue: galaxies red, stars on one colour, QSOs bluer
  (or, with star_like_qsos, drawn from the stars' own colours)."""
  rng = np.random.default_rng(seed)
  lines = ['objid,ra,dec,u,g,r,i,z,class']
  offsets = {'GALAXY': 1.5, 'STAR': 0.5, 'QSO': 0.5 if star_like_qsos else -0.5}
  for k, cls in enumerate(NAMES * per_class):
    r = rng.uniform(17, 21.5)
    step = offsets[cls] + rng.normal(0, 0.05, 4)
    mags = r + np.array([step[0] + step[1], step[1], 0, -step[2],
                         -step[2] - step[3]])
    lines.append(f'{1237645879579967591 + 7919 * k},10,0,'
                 + ','.join(f'{m:.4f}' for m in mags) + f',{cls}')
  path.write_text('\n'.join(lines) + '\n')
  return path


@pytest.mark.parametrize('star_like_qsos', [False, True])
def test_catalogue_draws_find_the_ceiling_the_colours_allow(
    tmp_path, monkeypatch, star_like_qsos):
  # Separate QSO colours: a perfect ceiling. QSOs drawn from the stars' own
  # colours: the point sources are a coin toss (about half of them wrong), the
  # galaxies still right.
  path = _catalogue_csv(tmp_path / 'cat.csv', 150, star_like_qsos)
  out = tmp_path / 'out'
  monkeypatch.setattr(sys, 'argv', [
      'colour_ceiling.py', '--dataset=', f'--catalog={path}', '--draws=3',
      '--per_class=100', f'--out={out}'])
  colour_ceiling.main()
  drawn = json.loads((out / 'colour_ceiling.json').read_text())[
      'catalogue_draws']
  assert drawn['draws'] == 3 and len(drawn['macro_f1']) == 3
  # About 10% of 300 objects, two thirds of them point sources.
  assert all(10 <= n <= 35 for n in drawn['point_sources'])
  errors = np.array(drawn['point_source_errors']) / drawn['point_sources']
  if star_like_qsos:
    assert np.all((errors > 0.2) & (errors < 0.8))
    assert drawn['macro_f1_max'] < 0.85
  else:
    assert drawn['macro_f1_min'] == 1.0 and errors.max() == 0
  assert 'random draws of 100 per class' in (out / 'colour_ceiling.md').read_text()


def test_draws_take_their_test_split_as_a_build_does():
  from skytfds import splits  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  n = 600
  objids = 1237645879579967591 + 7919 * np.arange(n)
  labels = np.tile(np.arange(3), n // 3)
  mags = np.full((n, 5), 20.0) + rng.normal(0, 0.01, (n, 5))
  mags[:5, 2] = 22.5   # outside the builds' r cut: never drawn
  rows = colour_ceiling.draw_ceilings(mags, labels, objids, NAMES,
                                      per_class=200, draws=1, seed=0)
  in_cut = np.ones(n, bool)
  in_cut[:5] = False
  expected = sum(splits.split_of(int(i)) == 'test' for i in objids[in_cut])
  total = sum(rows[0]['colours']['per_class'][c]['support'] for c in NAMES)
  assert total == expected


def test_draws_need_a_catalogue(monkeypatch):
  monkeypatch.setattr(sys, 'argv', ['colour_ceiling.py', '--draws=2'])
  with pytest.raises(SystemExit):
    colour_ceiling.main()
