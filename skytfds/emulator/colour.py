"""SDSS's colour images: i, r, g as R, G, B through an asinh stretch, as JPEG.

`irg_rgb` is djs_rgb_make's mapping: each band scaled by its weight and
clipped at 0; at each pixel, with r = b (R + G + B), every channel is
multiplied by asinh(r) / r (colours are those of the fluxes, not of a
per-channel stretch); where a channel would pass 1, the pixel is divided by
its largest channel instead (saturating to the object's colour, not to
white); bytes are floor(256 x), clipped to 0..255. djs_rgb_make's grouping of
saturated pixels into objects (SATVALUE) is not done. Written for the
emulator (the clients' own rendering lives in skytfds.imaging.color): an
oracle must not share the code it checks.
"""

# Follows sdss/idlutils pro/rgbcolor/djs_rgb_make.pro (D. Schlegel 2004, after
# N. Wherry's nw_rgb_make; Lupton et al. 2004, PASP 116, 133), the routine
# that made SDSS's frame-irg JPEGs and the ImgCutout images that SkyServer's
# ImgCutout/ImgCutout.cs cuts from.

from __future__ import annotations

import io
from collections.abc import Mapping

from astropy import wcs as astropy_wcs
import numpy as np
from PIL import Image
from scipy import ndimage

JPEG_QUALITY = 75             # djs_rgb_make's default quality
# Weights of (i, r, g) nanomaggies and the nonlinearity b: chosen so that a
# frame looks like SDSS's frame-irg JPEG of it (faint sky dark, mean ~7/255).
SCALES = (2.0, 2.8, 3.9)
NONLINEARITY = 2.0


def irg_rgb(i: np.ndarray, r: np.ndarray, g: np.ndarray, *,
            scales: tuple[float, float, float] = SCALES,
            nonlinearity: float = NONLINEARITY) -> np.ndarray:
  """uint8 [H, W, 3] (R = i, G = r, B = g) from nanomaggy images on one grid."""
  rgb = np.stack([np.maximum(np.asarray(band, np.float32) * np.float32(w), 0)
                  for band, w in zip((i, r, g), scales)], axis=-1)
  radius = rgb.sum(axis=-1) * np.float32(nonlinearity)
  radius += radius <= 0
  factor = np.arcsinh(radius) / radius
  peak = rgb.max(axis=-1)
  saturated = peak * factor > 1
  factor[saturated] = 1 / peak[saturated]
  rgb *= factor[..., None]
  return np.clip(np.floor(rgb * 256), 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray) -> bytes:
  """JPEG bytes of a uint8 [H, W, 3] image (row 0 at the top)."""
  buf = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format='JPEG',
                                                   quality=JPEG_QUALITY)
  return buf.getvalue()


def field_rgb(bands: Mapping[str, tuple[np.ndarray, astropy_wcs.WCS]],
              reference: str = 'r') -> np.ndarray:
  """A whole field as SDSS's frame-irg JPEG: i, r, g on one band's grid.

  Each band is resampled (bilinear) through its own WCS onto the reference
  band's pixels (bands are not aligned); rows flipped so that row 0 is the
  last FITS row, as in SDSS's JPEGs.
  """
  ref_image, ref_wcs = bands[reference]
  rows, cols = np.indices(ref_image.shape)
  world = ref_wcs.wcs_pix2world(cols.ravel(), rows.ravel(), 0)
  aligned = {}
  for band in 'irg':
    image, wcs = bands[band]
    if band == reference:
      aligned[band] = image
      continue
    x, y = wcs.wcs_world2pix(world[0], world[1], 0)
    aligned[band] = ndimage.map_coordinates(
        image, [y, x], order=1, mode='constant', cval=0.0).reshape(
            ref_image.shape)
  return irg_rgb(aligned['i'], aligned['r'], aligned['g'])[::-1]
