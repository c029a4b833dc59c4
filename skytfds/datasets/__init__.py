"""The four skytfds datasets. Importing this package registers them with TFDS."""

from skytfds.datasets.ps1_cutouts import ps1_cutouts_dataset_builder
from skytfds.datasets.sdss_cutouts import sdss_cutouts_dataset_builder
from skytfds.datasets.sdss_filters import sdss_filters_dataset_builder
from skytfds.datasets.sdss_rgb import sdss_rgb_dataset_builder

NAMES = ('sdss_filters', 'sdss_rgb', 'sdss_cutouts', 'ps1_cutouts')
