"""DatasetBuilderTestCase for sdss_cutouts over dummy_data, against the emulator."""

import tensorflow_datasets as tfds

from skytfds.datasets import testing
from skytfds.datasets.sdss_cutouts import sdss_cutouts_dataset_builder


class SdssCutoutsTest(testing.SkyBuilderTestCase):
  DATASET_CLASS = sdss_cutouts_dataset_builder.Builder


if __name__ == '__main__':
  tfds.testing.test_main()
