"""DatasetBuilderTestCase for ps1_cutouts over dummy_data, against the emulator."""

import tensorflow_datasets as tfds

from skytfds.datasets import testing
from skytfds.datasets.ps1_cutouts import ps1_cutouts_dataset_builder


class Ps1CutoutsTest(testing.SkyBuilderTestCase):
  DATASET_CLASS = ps1_cutouts_dataset_builder.Builder


if __name__ == '__main__':
  tfds.testing.test_main()
