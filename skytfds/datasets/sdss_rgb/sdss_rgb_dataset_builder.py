"""sdss_rgb: Band-merged colour stamps: Lupton asinh i,r,g from SDSS calibrated frames."""

import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import frame_stage


class Builder(builder.SkyDatasetBuilder):
  """Band-merged colour stamps: Lupton asinh i,r,g from SDSS calibrated frames."""

  def _image_features(self):
    size = frame_stage.RGB.size
    return {
        'image': tfds.features.Image(
            shape=(size, size, 3), encoding_format='png',
            doc='Lupton et al. (2004) asinh i,r,g as R,G,B, bands aligned '
                'through their own WCS on the r-band grid (0.396 arcsec/pixel).'),
    }

  def _make_stage(self, ctx):
    return frame_stage.FrameStage(frame_stage.RGB, ctx)
