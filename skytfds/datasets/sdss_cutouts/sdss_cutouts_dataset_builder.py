"""sdss_cutouts: SkyServer ImgCutout getjpeg colour cutouts, stored as served."""

import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import products


class Builder(builder.SkyDatasetBuilder):
  """SkyServer ImgCutout getjpeg colour cutouts, stored as served."""

  PRODUCT = products.SDSS

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.PRODUCT.size
    return self.sky_info(images={
        'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='jpeg',
            doc='SkyServer getjpeg cutout (i,r,g Lupton rendering by SDSS, '
                '0.4 arcsec/pixel), JPEG bytes exactly as served.'),
    }, supervised_keys=('image', 'label'))

  def _split_generators(self, dl_manager):
    """Selects the objects and fetches and checks their cutouts; one generator per split."""
    build = self.start_build(dl_manager)
    return {split: self._generate_examples(build, objects)
            for split, objects in build.by_split.items()}

  def _generate_examples(self, build, objects):
    """(object key, JPEG cutout and the catalogue values) per written object."""
    return build.examples(objects)
