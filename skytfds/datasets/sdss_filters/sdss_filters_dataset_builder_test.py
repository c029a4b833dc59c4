"""DatasetBuilderTestCase for sdss_filters over dummy_data, against the emulator."""

import tensorflow_datasets as tfds

from skytfds.datasets import testing
from skytfds.datasets.sdss_filters import sdss_filters_dataset_builder


class SdssFiltersTest(testing.SkyBuilderTestCase):
  DATASET_CLASS = sdss_filters_dataset_builder.Builder


if __name__ == '__main__':
  tfds.testing.test_main()
