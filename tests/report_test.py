"""datasets.report: every skipped object is counted under a known reason."""

import json

import pytest

from skytfds.datasets import report as report_lib


def test_skips_are_counted_with_examples_and_reasons(tmp_path):
  report = report_lib.BuildReport(dataset='sdss_rgb', config='tiny', requested=3)
  report.skip('a', 'off_frame', 'ra=1 dec=2')
  report.skip('b', 'off_frame')
  report.written['train'] = 1
  report.write(tmp_path / 'build_report.json')
  written = json.loads((tmp_path / 'build_report.json').read_text())
  assert written['objects_requested'] == 3
  assert written['objects_written'] == 1
  assert written['objects_skipped'] == 2
  assert written['skipped_by_reason'] == {'off_frame': 2}
  assert written['skipped_examples'] == {'off_frame': ['a: ra=1 dec=2', 'b']}
  assert written['skip_reasons'] == {'off_frame': report_lib.SKIP_REASONS['off_frame']}
  assert written['pipeline'] == 'default'
  assert 'off_frame 2' in report.summary()


def test_unknown_reason_is_refused():
  report = report_lib.BuildReport(dataset='d', config='c')
  with pytest.raises(ValueError, match='unknown skip reason'):
    report.skip('a', 'cosmic_ray')


def test_a_worker_report_counts_only_its_own_keys():
  report = report_lib.BuildReport(dataset='beam', config='', only=frozenset({'a'}))
  report.skip('a', 'near_edge')
  report.skip('b', 'near_edge')
  assert report.skipped == {'near_edge': 1}


def test_examples_are_capped_but_counts_are_not():
  report = report_lib.BuildReport(dataset='d', config='c')
  for i in range(100):
    report.skip(str(i), 'fetch_failed')
  assert report.skipped['fetch_failed'] == 100
  assert len(report.skipped_examples['fetch_failed']) < 100
