"""Builder configs shared by the four datasets: how many objects, how picked, which release."""

import dataclasses

import tensorflow_datasets as tfds

from skytfds import survey

# Objects per class; `full` is the scale of the original study (60k train / 15k test).
SIZES = {'tiny': 100, 'small': 1_000, 'full': 25_000}
# How the objects are picked (datasets.selection): the config name's suffix.
SELECTIONS = {
    'spread': '',        # spread over the survey's footprint (the default)
    'dense': '_dense',   # from the fields holding most objects: few frames
}
SELECTION_TEXT = {
    'spread': 'spread over the whole survey footprint (a hash stride on objid)',
    'dense': ('from the fewest imaging fields that hold them (frame-'
              'economical: sdss_filters/sdss_rgb fetch far fewer frames)'),
}


@dataclasses.dataclass(eq=False)
class SkyConfig(tfds.core.BuilderConfig):
  """A dataset size and selection.

  Attributes:
    per_class: objects requested per class (GALAXY, QSO, STAR) from SkyServer
      (0 for `custom`: all rows of the user's catalogue).
    selection: 'spread' (over the footprint), 'dense' (fewest fields) or
      'catalogue' (`custom`: SKYTFDS_CATALOG).
    release: SDSS data release (12..17) for the query, frames and cutouts.
  """

  per_class: int = 100
  selection: str = 'spread'
  release: int = survey.DEFAULT_RELEASE


def config_name(size: str, selection: str) -> str:
  """'tiny', 'tiny_dense', ..."""
  return size + SELECTIONS[selection]


# A user's catalogue (SKYTFDS_CATALOG) is built as this config and no other,
# so that `tiny` always means SkyServer's 300 objects.
CUSTOM = 'custom'
NAMES = tuple(config_name(size, selection)
              for selection in SELECTIONS for size in SIZES) + (CUSTOM,)


def make_configs() -> list[SkyConfig]:
  """tiny, small, full (spread), tiny_dense, small_dense, full_dense, custom."""
  return [
      SkyConfig(
          name=config_name(size, selection),
          description=(
              f'{per_class:,} objects per class (GALAXY, QSO, STAR) from '
              f'SDSS DR{survey.DEFAULT_RELEASE}, {SELECTION_TEXT[selection]}.'
          ),
          per_class=per_class,
          selection=selection,
      )
      for selection in SELECTIONS
      for size, per_class in SIZES.items()
  ] + [SkyConfig(
      name=CUSTOM,
      description=('Every row of the catalogue named by SKYTFDS_CATALOG (a '
                   'CSV or JSON path or URL); required for it.'),
      per_class=0, selection='catalogue')]
