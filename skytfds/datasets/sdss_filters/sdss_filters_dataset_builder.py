"""sdss_filters: Per-band ugriz stamps cut from SDSS calibrated frames (nanomaggies)."""

import numpy as np
import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import products


class Builder(builder.SkyDatasetBuilder):
  """Per-band ugriz stamps cut from SDSS calibrated frames (nanomaggies)."""

  PRODUCT = products.FILTERS

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.PRODUCT.size
    return self.sky_info(images={
        'stamp': tfds.features.Tensor(
            shape=(size, size, 5), dtype=np.float32, encoding='zlib',
            doc='ugriz flux in nanomaggies, every band resampled onto the '
                'r-band pixel grid (0.396 arcsec/pixel), object at the centre.'),
        'mask': tfds.features.Tensor(
            shape=(size, size), dtype=np.bool_, encoding='zlib',
            doc='True where the stamp ran off the frame and was padded with 0.'),
    }, supervised_keys=('stamp', 'label'))

  def _split_generators(self, dl_manager):
    """Selects the objects and stages their frames; one generator per split."""
    build = self.start_build(dl_manager)
    return {split: self._generate_examples(build, objects)
            for split, objects in build.by_split.items()}

  def _generate_examples(self, build, objects):
    """(object key, stamp, mask and the catalogue values) per written object."""
    return build.examples(objects)
