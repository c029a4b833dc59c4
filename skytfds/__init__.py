"""skytfds: SDSS imaging as TensorFlow Datasets.

Importing the package registers the four dataset builders (`sdss_filters`,
`sdss_rgb`, `sdss_cutouts`, `ps1_cutouts`) with TFDS, so that
`tfds.load('sdss_rgb/tiny')` works by name.
"""

__version__ = '0.1.0'

from skytfds import datasets  # pylint: disable=g-import-not-at-top,unused-import
