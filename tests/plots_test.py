"""trainers.plots: the run's figures."""

import matplotlib.pyplot as plt

from trainers import plots


def test_history_epochs_are_whole_numbers_on_a_short_run():
  history = [{'epoch': e, 'stage': 'head', 'accuracy': 0.5 + e / 10, 'loss': 1 / e,
              'val_accuracy': 0.5, 'val_loss': 1.0} for e in (1, 2)]
  figure = plots.history_figure(history)
  try:
    for axis in figure.axes:
      ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
      assert ticks and all(float(t).is_integer() for t in ticks), ticks
  finally:
    plt.close(figure)
