"""ps1_cutouts: Pan-STARRS1 colour cutouts (y,i,g as R,G,B) from the STScI fitscut service."""

import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import cutout_stage


class Builder(builder.SkyDatasetBuilder):
  """Pan-STARRS1 colour cutouts (y,i,g as R,G,B) from the STScI fitscut service."""

  def _image_features(self):
    size = cutout_stage.PS1.size
    return {
        'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='jpeg',
            doc='Pan-STARRS1 3pi stack cutout, y,i,g as R,G,B, 0.25 '
                'arcsec/pixel, JPEG bytes exactly as served.'),
    }

  def _make_stage(self, ctx):
    return cutout_stage.CutoutStage(cutout_stage.PS1, ctx)
