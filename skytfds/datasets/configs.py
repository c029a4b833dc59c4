"""Builder configs shared by the four datasets: how many objects, which release."""

import dataclasses

import tensorflow_datasets as tfds

from skytfds import survey

# Objects per class; `full` is the scale of the original study (60k train / 15k test).
SIZES = {'tiny': 100, 'small': 1_000, 'full': 25_000}


@dataclasses.dataclass(eq=False)
class SkyConfig(tfds.core.BuilderConfig):
  """A dataset size.

  Attributes:
    per_class: objects requested per class (GALAXY, QSO, STAR) from SkyServer.
      Ignored when SKYTFDS_CATALOG names a user catalogue: all its rows are used.
    release: SDSS data release (12..17) for the query, frames and cutouts.
  """

  per_class: int = 100
  release: int = survey.DEFAULT_RELEASE


def make_configs() -> list[SkyConfig]:
  """The `tiny`, `small` and `full` configs, smallest first."""
  return [
      SkyConfig(
          name=name,
          description=(
              f'{per_class:,} objects per class (GALAXY, QSO, STAR) from '
              f'SDSS DR{survey.DEFAULT_RELEASE}, or every row of SKYTFDS_CATALOG.'
          ),
          per_class=per_class,
      )
      for name, per_class in SIZES.items()
  ]
