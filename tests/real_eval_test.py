"""tools/real_eval.py: folds, two-class scoring, the table, and real objects."""

import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
try:
  import real_eval  # pylint: disable=g-import-not-at-top
finally:
  sys.path.remove(str(REPO / 'tools'))

NAMES = ['GALAXY', 'QSO', 'STAR']


def test_folds_are_stratified_deterministic_and_cover_everyone():
  keys = [f'{i:.7f}+1.0000000' for i in range(103)]
  labels = np.array([i % 3 == 0 for i in range(103)], int)
  folds = real_eval.stratified_folds(keys, labels, 5)
  np.testing.assert_array_equal(folds, real_eval.stratified_folds(keys, labels, 5))
  assert set(folds) == set(range(5))
  for label in (0, 1):
    sizes = np.bincount(folds[labels == label], minlength=5)
    assert sizes.max() - sizes.min() <= 1  # each class spread evenly
  # A fold depends on the object, not on where it sits in the list.
  order = list(reversed(range(103)))
  again = real_eval.stratified_folds([keys[i] for i in order], labels[order], 5)
  np.testing.assert_array_equal(again, folds[order])


def test_a_qso_answer_counts_as_a_point_source():
  probabilities = np.array([[0.6, 0.3, 0.1],   # GALAXY wins
                            [0.45, 0.35, 0.2],  # QSO + STAR outweigh GALAXY
                            [0.1, 0.1, 0.8]])
  np.testing.assert_array_equal(real_eval.two_class(probabilities, NAMES), [0, 1, 1])


def test_cells_count_each_bin_with_its_standard_error():
  truth = np.array([0, 1, 1, 0, 1])
  predicted = np.array([0, 1, 0, 0, 1])
  r_aper = np.array([18.0, 19.5, 20.0, 22.0, 99.0])
  cells = real_eval.accuracy_cells(truth, predicted, r_aper)
  assert cells['all'] == {'n': 5, 'accuracy': 0.8, 'stderr': pytest.approx(np.sqrt(0.8 * 0.2 / 5))}
  assert cells['r < 19']['n'] == 1 and cells['r < 19']['accuracy'] == 1.0
  assert cells['19-21']['accuracy'] == 0.5
  assert cells['r > 21']['n'] == 2  # r_aper >= 90 (no flux) is faint
  assert cells['r < 21']['n'] == 3 and cells['r < 21']['accuracy'] == pytest.approx(2 / 3)
  table = real_eval.markdown({'m': {'trained_on': 'x', 'cells': cells}})
  assert ('| m | x | 0.800 ± 0.179 | 1.000 ± 0.000 | 0.500 ± 0.354 | 1.000 ± 0.000 '
          '| 0.667 ± 0.272 |') in table
  assert 'all (n=5)' in table


def test_dihedral_views_are_the_eight_distinct_symmetries_of_the_square():
  images = np.arange(2 * 4 * 4 * 3, dtype=float).reshape(2, 4, 4, 3)
  views = real_eval.dihedral_views(images)
  assert len(views) == 8
  assert len({v.tobytes() for v in views}) == 8
  np.testing.assert_array_equal(views[0], images)
  for view in views:  # each image stays itself, its channels untouched
    assert view.shape == images.shape
    np.testing.assert_array_equal(np.sort(view[1].ravel()), np.sort(images[1].ravel()))
  # The 4x4 centre block of an even-sized stamp maps onto itself.
  centre = {tuple(sorted(images[0, 1:3, 1:3, 0].ravel()))}
  assert {tuple(sorted(v[0, 1:3, 1:3, 0].ravel())) for v in views} == centre


@pytest.mark.slow
def test_real_field_cross_validation_end_to_end(shared_data, tmp_path):
  """The documented command on the real frames, cut to one model and 2 folds."""
  data_dir = real_eval.build_real_datasets(shared_data, tmp_path)
  objects = real_eval.load_objects(
      data_dir, real_eval.read_r_aper(shared_data / real_eval.LABELS))
  assert len(objects.keys) >= 600  # of 643; near-edge objects are skipped
  assert objects.stamps.shape[1:] == (64, 64, 6)
  assert 0.35 < objects.labels.mean() < 0.5  # 271 STAR of 643
  assert np.isfinite(objects.r_aper).all()
  folds = real_eval.stratified_folds(objects.keys, objects.labels, 2)
  variants = real_eval.cross_validate(
      'ugriz_cnn', objects, folds, epochs=8, weights='none', seed=0, tta=True)
  assert set(variants) == {'', 'tta'}
  np.testing.assert_allclose(variants['tta'].sum(axis=1), 1.0, rtol=1e-4)
  probabilities = variants['']
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)
  predicted = real_eval.two_class(probabilities, objects.class_names)
  cells = real_eval.accuracy_cells(objects.labels, predicted, objects.r_aper)
  assert sum(cells[b]['n'] for b in ('r < 19', '19-21', 'r > 21')) == len(objects.keys)
  # Bright objects are easy: even 8 epochs on half the field beat the
  # majority class (GALAXY, 58%) there.
  assert cells['r < 19']['accuracy'] > 0.7, cells
