"""sdss_filters and sdss_rgb built from real SDSS frames (a local SAS mirror).

SKYTFDS_SAS_URL points at ../shared/data/sas and SKYTFDS_CATALOG at the 643
photometrically labelled objects of frame 003918-3-0213, as a user would.
"""

import csv
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

import skytfds  # pylint: disable=unused-import  (registers the builders)

LABELS = 'labels/photometric_003918-3-0213.csv'


@pytest.fixture(scope='module')
def real_builds(shared_data, tmp_path_factory):
  """Both frame datasets built from the real frames, sharing one download dir."""
  root = tmp_path_factory.mktemp('real')
  env = {'SKYTFDS_SAS_URL': str(shared_data / 'sas'),
         'SKYTFDS_CATALOG': str(shared_data / LABELS)}
  with pytest.MonkeyPatch.context() as mp:
    for k, v in env.items():
      mp.setenv(k, v)
    builders = {}
    for name in ('sdss_filters', 'sdss_rgb'):
      builder = tfds.builder(f'{name}/custom', data_dir=root / 'data')
      builder.download_and_prepare(download_dir=root / 'dl')
      builders[name] = builder
  return builders


def _labels(shared_data):
  with open(shared_data / LABELS) as f:
    return list(csv.DictReader(f))


def _examples(builder):
  out = []
  for split in builder.info.splits:
    out.extend(tfds.as_numpy(builder.as_dataset(split=split)))
  return out


def test_every_object_written_or_skipped_with_a_reason(real_builds, shared_data):
  n = len(_labels(shared_data))
  for name, builder in real_builds.items():
    report = json.loads((builder.data_path / 'build_report.json').read_text())
    assert report['objects_requested'] == n
    assert report['objects_written'] + report['objects_skipped'] == n, report
    assert report['objects_written'] == builder.info.splits.total_num_examples
    assert report['objects_written'] >= 0.9 * n
    assert set(report['skipped_by_reason']) <= {'off_frame', 'near_edge'}
  # One frame, each of its five bands decoded once.
  filters = json.loads(
      (real_builds['sdss_filters'].data_path / 'build_report.json').read_text())
  assert filters['frames_decoded'] == 5


def test_star_stamps_are_centred(real_builds, shared_data):
  """>= 90% of stars with 15 < r_aper < 21 peak within 1.5 px of the centre."""
  stars = {(float(r['ra']), float(r['dec']))
           for r in _labels(shared_data)
           if r['class'] == 'STAR' and 15 < float(r['r_aper']) < 21}
  offsets = []
  for ex in _examples(real_builds['sdss_filters']):
    if (float(ex['ra']), float(ex['dec'])) not in stars:  # Exact float64.
      continue
    stamp = ex['stamp'][..., 2]  # r band
    assert stamp.shape == (64, 64)
    centre = stamp[24:40, 24:40]
    row, col = np.unravel_index(np.argmax(centre), centre.shape)
    offsets.append(np.hypot(row + 24 - 31.5, col + 24 - 31.5))
  assert len(offsets) >= 0.9 * len(stars) > 50
  assert np.mean(np.array(offsets) <= 1.5) >= 0.9


def test_rgb_stamps_are_colour_images_of_the_same_objects(real_builds):
  rgb = _examples(real_builds['sdss_rgb'])
  filters = {ex['ra']: ex for ex in _examples(real_builds['sdss_filters'])}
  assert rgb and all(ex['image'].shape == (128, 128, 3) for ex in rgb)
  assert all(ex['image'].dtype == np.uint8 for ex in rgb)
  # Same objects, same labels, same splits in both datasets.
  assert {ex['ra'] for ex in rgb} == set(filters)
  for ex in rgb:
    assert ex['label'] == filters[ex['ra']]['label']
  # Stars are bright in the middle of their stamp.
  centre = np.mean([ex['image'][60:68, 60:68].mean() for ex in rgb])
  edge = np.mean([ex['image'][:8, :8].mean() for ex in rgb])
  assert centre > edge + 20
