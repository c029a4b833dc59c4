"""sdss_cutouts: SkyServer ImgCutout getjpeg colour cutouts, stored as served."""

import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import cutout_stage


class Builder(builder.SkyDatasetBuilder):
  """SkyServer ImgCutout getjpeg colour cutouts, stored as served."""

  def _image_features(self):
    size = cutout_stage.SDSS.size
    return {
        'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='jpeg',
            doc='SkyServer getjpeg cutout (i,r,g Lupton rendering by SDSS, '
                '0.4 arcsec/pixel), JPEG bytes exactly as served.'),
    }

  def _make_stage(self, ctx):
    return cutout_stage.CutoutStage(cutout_stage.SDSS, ctx)
