"""DatasetBuilderTestCase for sdss_rgb over dummy_data, against the emulator."""

import tensorflow_datasets as tfds

from skytfds.datasets import testing
from skytfds.datasets.sdss_rgb import sdss_rgb_dataset_builder


class SdssRgbTest(testing.SkyBuilderTestCase):
  DATASET_CLASS = sdss_rgb_dataset_builder.Builder


if __name__ == '__main__':
  tfds.testing.test_main()
