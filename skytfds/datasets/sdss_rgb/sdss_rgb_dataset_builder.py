"""sdss_rgb: Band-merged colour stamps: Lupton asinh i,r,g from SDSS calibrated frames."""

import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import products


class Builder(builder.SkyDatasetBuilder):
  """Band-merged colour stamps: Lupton asinh i,r,g from SDSS calibrated frames."""

  PRODUCT = products.RGB

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.PRODUCT.size
    return self.sky_info(images={
        'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='png',
            doc='Lupton et al. (2004) asinh i,r,g as R,G,B, bands aligned '
                'through their own WCS on the r-band grid (0.396 arcsec/pixel).'),
    }, supervised_keys=('image', 'label'))

  def _split_generators(self, dl_manager):
    """Selects the objects and stages their frames; one generator per split."""
    build = self.start_build(dl_manager)
    return {split: self._generate_examples(build, objects)
            for split, objects in build.by_split.items()}

  def _generate_examples(self, build, objects):
    """(object key, colour image and the catalogue values) per written object."""
    return build.examples(objects)
