r"""Plots benchmark results: speed-up over the original workflow, per suite.

  python tools/benchmark_plot.py BENCHMARKS.md docs/benchmarks.png

Reads every line of the input files that is a JSON object with a "suite" key
(the lines `tools/benchmark.py` prints, or appends with --results; the JSON
block of BENCHMARKS.md works too) and keeps, per suite, the last full
(non-quick) result, else the last quick one. Draws, on a log scale, the
project's and the limit's speed relative to the baseline (= 1), with the
issue's target as a tick, and writes a small PNG.
"""

import json
import pathlib
import sys
from typing import Any

SUITE_ORDER = ('build', 'download', 'input', 'train')


def read_results(paths: list[str]) -> dict[str, dict[str, Any]]:
  """Suite -> the result to plot (last full run, else last quick run)."""
  chosen: dict[str, dict[str, Any]] = {}
  for path in paths:
    for line in pathlib.Path(path).read_text().splitlines():
      line = line.strip()
      if not line.startswith('{"suite"'):
        continue
      item = json.loads(line)
      old = chosen.get(item['suite'])
      if old is None or not item.get('quick') or old.get('quick'):
        chosen[item['suite']] = item
  return chosen


def speedups(item: dict[str, Any]) -> tuple[float, float | None]:
  """(project, limit) as multiples of the baseline's speed."""
  if item['unit'] == 's':  # Times: lower is better.
    project = item['baseline'] / item['project']
    # train has no machine limit; its floor (the least work) stands in.
    least = item.get('limit') or item.get('floor_s')
    limit = item['baseline'] / least if least else None
  else:
    project = item['project'] / item['baseline']
    limit = item['limit'] / item['baseline'] if item.get('limit') else None
  return project, limit


def plot(results: dict[str, dict[str, Any]], out: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  suites = [s for s in SUITE_ORDER if s in results]
  fig, ax = plt.subplots(figsize=(7.0, 3.6), dpi=100)
  width = 0.36
  for i, suite in enumerate(suites):
    item = results[suite]
    project, limit = speedups(item)
    met = item.get('meets_target')
    ax.bar(i - width / 2, project, width, color='tab:green' if met else
           'tab:red', label='project' if i == 0 else None)
    ax.text(i - width / 2, project * 1.08, f'{project:.2f}x', ha='center',
            fontsize=8)
    if limit:
      ax.bar(i + width / 2, limit, width, color='tab:gray',
             label='machine limit (train: floor)')
      ax.text(i + width / 2, limit * 1.08, f'{limit:.1f}x', ha='center',
              fontsize=8)
    target = item['target_ratio']
    ax.plot([i - 0.45, i + 0.45], [target, target], color='black', lw=1.2,
            ls='--', label='target' if i == 0 else None)
  ax.axhline(1.0, color='tab:blue', lw=1, label='baseline (study) = 1')
  handles, labels = ax.get_legend_handles_labels()
  unique = dict(zip(labels, handles))
  ax.legend(unique.values(), unique.keys(), fontsize=8, loc='upper left')
  ax.set_yscale('log')
  ax.set_xticks(range(len(suites)))
  ax.set_xticklabels([
      f'{s}\n({results[s]["unit"]}{", quick" if results[s].get("quick") else ""})'
      for s in suites], fontsize=8)
  ax.set_ylabel('speed relative to the original workflow (= 1)')
  first = results[suites[0]]
  ax.set_title(f'skytfds vs the original workflow, {first.get("nproc")} cores '
               f'({first.get("cpu")}); red: target missed', fontsize=9)
  fig.tight_layout()
  fig.savefig(out)
  plt.close(fig)


def main(argv: list[str]) -> int:
  if len(argv) < 3:
    print('usage: benchmark_plot.py RESULTS [RESULTS...] OUT.png',
          file=sys.stderr)
    return 2
  results = read_results(argv[1:-1])
  if not results:
    print(f'benchmark_plot.py: no result lines in {", ".join(argv[1:-1])}',
          file=sys.stderr)
    return 1
  plot(results, argv[-1])
  print(f'wrote {argv[-1]} ({", ".join(results)})')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
