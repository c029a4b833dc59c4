"""tools/benchmark.py and tools/benchmark_plot.py on a tiny download suite.

Runs the real command line (emulator in-process, wget or urllib against it) on
3 real fields x 2 objects, 20 ms latency: a few seconds.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
KEYS = ('suite', 'project', 'baseline', 'limit', 'unit', 'ratio', 'of_limit')


@pytest.mark.network
def test_download_suite_prints_one_json_line_and_plots(shared_data, tmp_path):
  results = tmp_path / 'results.jsonl'
  run = subprocess.run(
      [sys.executable, str(REPO / 'tools' / 'benchmark.py'), '--suite=download',
       '--quick', '--copies=1', '--objects_per_field=2', '--latency_ms=20',
       f'--workdir={tmp_path / "work"}', f'--results={results}',
       f'--shared_data={shared_data}'],
      capture_output=True, text=True, timeout=120, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  last = run.stdout.strip().splitlines()[-1]
  item = json.loads(last)
  assert all(key in item for key in KEYS), item
  assert item['suite'] == 'download'
  assert item['unit'] == 'listed files/s'
  # 3 fields x 2 objects x 5 bands listed; each (field, band) fetched once.
  assert item['listed_files'] == 30 and item['distinct_files'] == 15
  assert item['dedup_factor'] == 2.0
  assert item['project_requests'] == 15 and item['baseline_requests'] == 30
  assert item['project'] > 0 and item['baseline'] > 0
  assert item['ratio'] == pytest.approx(item['project'] / item['baseline'],
                                        rel=0.02)
  assert item['quick'] is True and item['nproc'] >= 1
  assert json.loads(results.read_text().strip().splitlines()[-1]) == item

  png = tmp_path / 'plot.png'
  plot = subprocess.run(
      [sys.executable, str(REPO / 'tools' / 'benchmark_plot.py'), str(results),
       str(png)], capture_output=True, text=True, timeout=60, check=False)
  assert plot.returncode == 0, plot.stderr[-3000:]
  assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_plot_reads_json_lines_from_markdown(tmp_path):
  sys.path.insert(0, str(REPO / 'tools'))
  try:
    import benchmark_plot  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.remove(str(REPO / 'tools'))
  quick = {'suite': 'train', 'project': 10.0, 'baseline': 100.0, 'limit': None,
           'unit': 's', 'ratio': 10.0, 'quick': True}
  full = dict(quick, project=5.0, ratio=20.0, quick=False)
  doc = tmp_path / 'BENCHMARKS.md'
  doc.write_text('# x\n```\n' + json.dumps(full) + '\n' + json.dumps(quick)
                 + '\n```\n')
  chosen = benchmark_plot.read_results([str(doc)])
  assert chosen['train']['quick'] is False  # A full run wins over a quick one.
  assert benchmark_plot.speedups(chosen['train']) == (20.0, None)
  # train's floor (the least work the project must do) stands in for a limit.
  assert benchmark_plot.speedups(dict(full, floor_s=4.0)) == (20.0, 25.0)


@pytest.mark.slow
@pytest.mark.network
def test_train_suite_quick_reports_scaling_floor_and_five_band(shared_data,
                                                              tmp_path):
  # About 40 s: the quick cutouts (95 training images) built against the
  # emulator, MobileNet's 10 epochs, three baseline epochs, the floor, ugriz_cnn.
  run = subprocess.run(
      [sys.executable, str(REPO / 'tools' / 'benchmark.py'), '--suite=train',
       '--quick', f'--workdir={tmp_path / "work"}',
       f'--shared_data={shared_data}'],
      capture_output=True, text=True, timeout=600, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  item = json.loads(run.stdout.strip().splitlines()[-1])
  assert item['suite'] == 'train' and item['unit'] == 's'
  assert item['train_images'] == 95 and item['epochs'] == 10
  # The baseline's 3 measured epochs, each every image once, scaled by the
  # median epoch to 10.
  assert len(item['baseline_epoch_s']) == item['baseline_epochs_run'] == 3
  assert item['baseline_steps_per_epoch'] == 3  # 95 images, batch 32
  assert item['baseline'] == pytest.approx(
      10 * sorted(item['baseline_epoch_s'])[1], rel=0.01)
  assert item['ratio'] == pytest.approx(item['baseline'] / item['project'],
                                        rel=0.02)
  assert item['floor_s'] == pytest.approx(
      item['floor_backbone_pass_s'] + item['floor_head_s'], rel=0.01)
  assert item['project_over_floor'] == pytest.approx(
      item['project'] / item['floor_s'], rel=0.02)
  five = item['five_band']
  assert five['ugriz_cnn']['epochs'] == 2
  assert five['ugriz_cnn']['train_images'] == 95
  assert five['mobilenet']['run_s'] == pytest.approx(item['project'], abs=0.1)
