"""The shared parts of the benchmark suites (tools/benchmarks/): fast, no emulator."""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
try:
  from benchmarks import common  # pylint: disable=g-import-not-at-top
  from benchmarks import fields  # pylint: disable=g-import-not-at-top
finally:
  sys.path.remove(str(REPO / 'tools'))


def test_result_ratio_is_the_project_speed_up_for_rates_and_times():
  rate = common.result('input', project=300.0, baseline=100.0, limit=500.0,
                       unit='images/s', images=7)
  assert (rate['ratio'], rate['of_limit'], rate['meets_target']) == (3.0, 0.6,
                                                                      True)
  assert rate['images'] == 7 and rate['target_ratio'] == 3.0
  time = common.result('train', project=10.0, baseline=100.0, limit=None,
                       unit='s', higher_is_better=False)
  assert (time['ratio'], time['of_limit'], time['meets_target']) == (10.0, None,
                                                                      False)


def test_mirror_fields_serves_each_real_field_under_other_numbers(shared_data,
                                                                  tmp_path):
  sas_root = shared_data / 'sas'
  served = fields.mirror_fields(sas_root, tmp_path / 'sas', copies=2)
  real = set(served.values())
  assert real == set(fields.real_fields(sas_root))
  assert len(served) == 2 * len(real)
  for frame, source in served.items():
    assert frame.field - source.field in (0, fields.FIELD_COPY_STEP)
  assert len(list((tmp_path / 'sas').rglob('*.fits.bz2'))) == 5 * len(served)
  with pytest.raises(SystemExit, match='use fewer copies'):
    fields.mirror_fields(sas_root, tmp_path / 'more', copies=99)
