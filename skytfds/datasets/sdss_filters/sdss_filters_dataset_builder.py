"""sdss_filters: Per-band ugriz stamps cut from SDSS calibrated frames (nanomaggies)."""

import numpy as np
import tensorflow_datasets as tfds

from skytfds.datasets import builder
from skytfds.datasets import frame_stage


class Builder(builder.SkyDatasetBuilder):
  """Per-band ugriz stamps cut from SDSS calibrated frames (nanomaggies)."""

  def _image_features(self):
    size = frame_stage.FILTERS.size
    return {
        'stamp': tfds.features.Tensor(
            shape=(size, size, 5), dtype=np.float32, encoding='zlib',
            doc='ugriz flux in nanomaggies, every band resampled onto the '
                'r-band pixel grid (0.396 arcsec/pixel), object at the centre.'),
        'mask': tfds.features.Tensor(
            shape=(size, size), dtype=np.bool_, encoding='zlib',
            doc='True where the stamp ran off the frame and was padded with 0.'),
    }

  def _make_stage(self, ctx):
    return frame_stage.FrameStage(frame_stage.FILTERS, ctx)
