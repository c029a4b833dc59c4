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


def test_titles_say_where_the_data_came_from():
  result = {'model': 'mobilenet', 'dataset': 'sdss_cutouts/tiny',
            'data_source': 'simulated (skytfds emulator)'}
  title = plots.run_title(result)
  assert title == 'mobilenet on sdss_cutouts/tiny (simulated (skytfds emulator))'
  history = [{'epoch': 1, 'stage': 'head', 'accuracy': 0.5, 'loss': 1.0,
              'val_accuracy': 0.5, 'val_loss': 1.0}]
  figure = plots.history_figure(history, title)
  try:
    assert figure._suptitle.get_text() == title  # pylint: disable=protected-access
  finally:
    plt.close(figure)
