"""`make demo`: the whole job end to end against the local SDSS-compatible emulator.

Starts the emulator on 127.0.0.1, builds the four datasets (config `tiny_dense`:
100 objects per class from the fewest imaging fields, so few frames) with
`tfds build`, trains ugriz_cnn from scratch on the five-band stamps of
sdss_filters and the four frozen-backbone models on sdss_cutouts
(weights=none, cached features), evaluates them, and writes a summary table
and plots under --out. The emulator is stopped on exit, Ctrl-C or failure.

All datasets are built first; then each model is trained on each dataset in
turn, model by model, and summary.md grows by a row after every run, so a
long run (the README's `small` table: `--config=small --train_datasets=all
--epochs=50 --evaluate=none`) has complete rows for the cheap models while
the heavy ones still run. Rerunning reuses finished builds and runs.
"""

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import results_table  # tools/results_table.py, beside this file

REPO = pathlib.Path(__file__).resolve().parents[1]
DATASETS = results_table.DATASET_ORDER
MODELS = ('mobilenet', 'resnet50', 'vgg16', 'xception')
# The five-band model trains on the stamps, whatever --train_datasets says.
NATIVE_MODEL, NATIVE_DATASET = 'ugriz_cnn', 'sdss_filters'


def say(message: str) -> None:
  print(f'\n==> {message}', flush=True)


@contextlib.contextmanager
def emulator(cache_dir: pathlib.Path):
  """Runs tools/sky_server.py on 127.0.0.1:<free port>; yields its env settings."""
  cmd = [sys.executable, str(REPO / 'tools' / 'sky_server.py'), '--host=127.0.0.1',
         '--port=0', f'--cache_dir={cache_dir}']
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
  try:
    env = {}
    deadline = time.time() + 120
    while len(env) < 3:
      line = proc.stdout.readline()
      if not line:
        raise SystemExit(f'the emulator exited early (status {proc.wait()}); '
                         f'run {" ".join(cmd)} to see why')
      if time.time() > deadline:
        raise SystemExit('the emulator did not print its URLs within 120 s')
      name, sep, value = line.strip().partition('=')
      if sep and name.startswith('SKYTFDS_'):
        env[name] = value
    print('\n'.join(f'    {k}={v}' for k, v in env.items()), flush=True)
    yield env
  finally:
    proc.send_signal(signal.SIGTERM)
    try:
      proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
      proc.kill()


def run(cmd: list[str], env: dict[str, str]) -> None:
  """Runs a command with the emulator's environment."""
  print('    $ ' + ' '.join(cmd), flush=True)
  subprocess.run(cmd, env={**os.environ, **env}, check=True, cwd=REPO)


def finished(workdir: pathlib.Path, dataset: str, epochs: int) -> bool:
  """Whether workdir holds a completed run of `dataset` for `epochs` epochs.

  trainers.train writes metrics.json last, so its presence means the run
  ended; rerunning the trainer on it would only reload what it computed.
  """
  try:
    flags = json.loads((workdir / 'metrics.json').read_text())['flags']
  except (OSError, ValueError, KeyError):
    return False
  return flags.get('dataset') == dataset and flags.get('epochs') == epochs


def train_one(args, model: str, name: str, data_dir: pathlib.Path,
              runs: pathlib.Path, env: dict[str, str]) -> None:
  """Trains (and evaluates) one model on one dataset under runs/."""
  dataset = f'{name}/{args.config}'
  workdir = runs / f'{model}_{name}'
  if finished(workdir, dataset, args.epochs):
    say(f'{model} on {dataset}: reusing the finished run in {workdir}')
    return
  native = model == NATIVE_MODEL
  first = not any(runs.glob('*/metrics.json'))
  say(f'training {model} on {dataset} ' + ('(from scratch, all five bands)'
      if native else '(weights=none, cached features)'))
  run([
      sys.executable, '-m', 'trainers.train', f'--model={model}',
      f'--dataset={dataset}', f'--data_dir={data_dir}', f'--workdir={workdir}',
      f'--epochs={args.epochs}', '--weights=none',
      *([] if native else ['--cache_features=on']),
  ], env)
  if args.evaluate == 'all' or (args.evaluate == 'first' and first):
    say(f'evaluating {model} on the test split (trainers.evaluate)')
    run([sys.executable, '-m', 'trainers.evaluate', f'--workdir={workdir}',
         f'--data_dir={data_dir}', '--split=test'], env)


def write_summary(out: pathlib.Path, config: str) -> str:
  """Writes summary.md (every run under out/runs of this config); returns it."""
  summary = results_table.table(out / 'runs', config)
  (out / 'summary.md').write_text(summary)
  return summary


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--out', default='demo_out', help='where everything goes')
  parser.add_argument('--config', default='tiny_dense',
                      help='config of every dataset (default tiny_dense: 100 '
                      'objects per class from the fewest fields)')
  parser.add_argument('--datasets', default=','.join(DATASETS),
                      help='which datasets to build, in this order')
  parser.add_argument('--train_datasets', default='sdss_cutouts',
                      help="comma-separated datasets to train on, or 'all'")
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--models', default=','.join(MODELS))
  parser.add_argument('--skip_native', action='store_true',
                      help=f'do not train {NATIVE_MODEL} on {NATIVE_DATASET}')
  parser.add_argument('--evaluate', choices=('first', 'all', 'none'),
                      default='first',
                      help='which runs also get a trainers.evaluate pass over '
                      'the test split (train already reports it; first: the '
                      'first run, to show the command)')
  args = parser.parse_args()
  out = (REPO / args.out).resolve()
  data_dir, runs = out / 'data', out / 'runs'
  out.mkdir(parents=True, exist_ok=True)
  bin_dir = pathlib.Path(sys.executable).parent
  tfds_cli = str(bin_dir / 'tfds') if (bin_dir / 'tfds').exists() else 'tfds'
  started = time.time()

  datasets = args.datasets.split(',')
  train_datasets = (datasets if args.train_datasets == 'all'
                    else args.train_datasets.split(','))
  unknown = sorted(set(datasets + train_datasets) - set(DATASETS))
  if unknown or not set(train_datasets) <= set(datasets):
    parser.error(f'--datasets and --train_datasets take {", ".join(DATASETS)}; '
                 'every trained dataset must also be built')
  say('starting the SDSS-compatible emulator on 127.0.0.1')
  with emulator(out / 'emulator_cache') as env:
    for name in datasets:
      say(f'building {name}/{args.config} (tfds build)')
      run([
          tfds_cli, 'build', str(REPO / 'skytfds' / 'datasets' / name),
          f'--config={args.config}', f'--data_dir={data_dir}',
          f'--download_dir={out / "downloads"}',
      ], env)
      report = next(data_dir.glob(f'{name}/{args.config}/*/build_report.json'))
      shutil.copy(report, out / f'build_report_{name}.json')
      run([sys.executable, str(REPO / 'tools' / 'example_grid.py'),
           f'--dataset={name}/{args.config}', f'--data_dir={data_dir}',
           f'--out={out / f"examples_{name}.png"}'], env)

    if NATIVE_DATASET in datasets and not args.skip_native:
      train_one(args, NATIVE_MODEL, NATIVE_DATASET, data_dir, runs, env)
      write_summary(out, args.config)
    for model in args.models.split(','):
      for name in train_datasets:
        train_one(args, model, name, data_dir, runs, env)
        write_summary(out, args.config)

  summary = write_summary(out, args.config)
  say(f'done in {time.time() - started:.0f} s')
  print(summary)
  print(f'datasets:      {data_dir}')
  print(f'build reports: {out}/build_report_*.json')
  print(f'examples:      {out}/examples_*.png')
  print(f'runs:          {runs}/<model>_<dataset>/ '
        '(metrics.json, history.png, confusion.png, model.keras)')
  print(f'summary:       {out / "summary.md"}')


if __name__ == '__main__':
  main()
