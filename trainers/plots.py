"""The two pictures of a run: history.png and confusion.png (matplotlib Agg)."""

import os
import pathlib
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402

from trainers import run_files  # noqa: E402


def plot_history(history: Sequence[Mapping[str, Any]],
                 path: str | os.PathLike, title: str = '') -> None:
  """Accuracy and loss per epoch, train vs validation, stages marked.

  Args:
    history: one row per epoch: 'epoch' (1-based, over all stages), 'stage',
      'accuracy', 'loss', 'val_accuracy', 'val_loss'.
    path: the PNG to write.
    title: above both panels (the run: model, dataset, where its data came
      from).
  """
  figure = history_figure(history, title)
  figure.savefig(os.fspath(path), dpi=100)
  plt.close(figure)


def history_figure(history: Sequence[Mapping[str, Any]],
                   title: str = '') -> 'plt.Figure':
  """The figure of `plot_history`; epochs are whole numbers on its x axes."""
  figure, axes = plt.subplots(1, 2, figsize=(10, 4))
  epochs = [row['epoch'] for row in history]
  for axis, key, panel in ((axes[0], 'accuracy', 'Accuracy'),
                           (axes[1], 'loss', 'Loss')):
    for prefix, label in (('', 'train'), ('val_', 'validation')):
      values = [row.get(prefix + key, np.nan) for row in history]
      axis.plot(epochs, values, marker='o', label=label)
    stages = [row.get('stage') for row in history]
    for i in range(1, len(stages)):
      if stages[i] != stages[i - 1]:
        axis.axvline(epochs[i] - 0.5, color='grey', linestyle='--')
        axis.text(epochs[i] - 0.45, axis.get_ylim()[1], stages[i],
                  va='top', fontsize=8, color='grey')
    axis.set_title(panel)
    axis.set_xlabel('epoch')
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend()
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  return figure


def plot_confusion(reports: Mapping[str, Mapping[str, Any]],
                   path: str | os.PathLike, title: str = '') -> None:
  """One confusion matrix per titled report (metrics.classification_report).

  Cells show counts; colour is the fraction of the true class (row).
  """
  figure, axes = plt.subplots(1, len(reports), squeeze=False,
                              figsize=(4.2 * len(reports), 4))
  for axis, (title, report) in zip(axes[0], reports.items()):
    matrix = np.asarray(report['confusion_matrix'])
    names = report['class_names']
    rows = matrix.sum(axis=1, keepdims=True)
    fraction = matrix / np.where(rows > 0, rows, 1)
    axis.imshow(fraction, cmap='Blues', vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
      axis.text(j, i, str(count), ha='center', va='center',
                color='white' if fraction[i, j] > 0.5 else 'black')
    axis.set_xticks(range(len(names)), names)
    axis.set_yticks(range(len(names)), names)
    axis.set_xlabel('predicted')
    axis.set_ylabel('true')
    axis.set_title(f'{title}\naccuracy {report["accuracy"]:.3f}, '
                   f'macro-F1 {report["macro_f1"]:.3f}', fontsize=9)
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  figure.savefig(os.fspath(path), dpi=100)
  plt.close(figure)


def write_run_plots(workdir: str | os.PathLike, result: Mapping[str, Any]
                    ) -> None:
  """history.png and confusion.png of a workdir from its metrics.json values."""
  workdir = pathlib.Path(workdir)
  title = run_title(result)
  if result.get('history'):
    plot_history(result['history'], workdir / run_files.HISTORY_PLOT, title)
  plot_confusion(result['evaluations'], workdir / run_files.CONFUSION_PLOT,
                 title)


def run_title(result: Mapping[str, Any]) -> str:
  """'mobilenet on sdss_cutouts/tiny (simulated (skytfds emulator))'."""
  source = result.get('data_source')
  return (f'{result.get("model", "?")} on {result.get("dataset", "?")}'
          + (f' ({source})' if source else ''))
