"""The results table (markdown) of every trainer run under a folder.

    python tools/results_table.py results_small/runs [--config=small]

Reads `<runs>/*/metrics.json` as trainers.train writes them and prints one
row per run, ordered by model then dataset: accuracy and macro-F1 on the
validation and test splits, how many images each split has, and where the
time went (the backbone pass that computed the cached embeddings, and the
fit: the head's, or all of ugriz_cnn, which has no backbone pass).
`make demo` writes its summary.md with this; ugriz_cnn's rows come first.
"""

import argparse
import json
import pathlib
from typing import Any

MODEL_ORDER = ('ugriz_cnn', 'mobilenet', 'resnet50', 'xception', 'vgg16')
DATASET_ORDER = ('sdss_filters', 'sdss_rgb', 'sdss_cutouts', 'ps1_cutouts')
HEADER = ('| model | dataset | data | images (train/val/test) | '
          'validation accuracy | test accuracy | test macro-F1 | '
          'backbone pass (s) | fit (s) |\n'
          '|---|---|---|---|---|---|---|---|---|')


def _order(name: str, known: tuple[str, ...]) -> tuple[int, str]:
  return (known.index(name) if name in known else len(known), name)


def _seconds(metrics: dict[str, Any]) -> str:
  stats = metrics.get('features') or {}
  if not stats:
    return '-'
  if any(s.get('status') == 'reused' for s in stats.values()):
    return 'reused'
  return f'{sum(s.get("seconds") or 0.0 for s in stats.values()):.0f}'


def load_runs(runs: pathlib.Path, config: str | None = None
              ) -> list[dict[str, Any]]:
  """metrics.json of each run under `runs` (only `*/config` datasets if given)."""
  found = []
  for path in sorted(runs.glob('*/metrics.json')):
    metrics = json.loads(path.read_text())
    if config and metrics['dataset'].partition('/')[2] != config:
      continue
    found.append(metrics)
  return sorted(found, key=lambda m: (_order(m['model'], MODEL_ORDER),
                                      _order(m['dataset'].split('/')[0],
                                             DATASET_ORDER)))


def table(runs: pathlib.Path, config: str | None = None) -> str:
  """The markdown table, one row per run."""
  lines = [HEADER]
  for m in load_runs(runs, config):
    counts = m.get('num_examples') or {}
    images = '/'.join(str(counts.get(s, '?'))
                      for s in ('train', 'validation', 'test'))
    lines.append(
        f'| {m["model"]} | {m["dataset"]} | '
        f'{m.get("data_source", "unknown source")} | {images} | '
        f'{m["validation"]["accuracy"]:.3f} | {m["test"]["accuracy"]:.3f} | '
        f'{m["test"]["macro_f1"]:.3f} | {_seconds(m)} | '
        f'{m.get("train_time_s") or 0.0:.0f} |')
  return '\n'.join(lines) + '\n'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('runs', type=pathlib.Path,
                      help='folder holding one workdir per run')
  parser.add_argument('--config', help='only datasets of this config, e.g. small')
  args = parser.parse_args()
  if not args.runs.is_dir():
    raise SystemExit(f'{args.runs}: no such folder')
  print(table(args.runs, args.config), end='')


if __name__ == '__main__':
  main()
