"""Band-merged colour images: the Lupton et al. (2004) asinh stretch.

Pure numpy; no I/O. SDSS renders i, r, g as R, G, B: each band is scaled by a
per-band weight, the summed intensity I = (R + G + B) / 3 is stretched as
asinh(q I / stretch) / q, every channel is multiplied by the same factor
f(I) / I (so colours are those of the fluxes, not of a per-channel stretch),
pixels brighter than 1 in some channel are divided by their largest channel
(saturating to the object's colour, not to white) and the result is scaled to
0..255.

This is the algorithm of astropy.visualization.make_lupton_rgb (and of
SDSS's djs_rgb_make), written out here so that it runs in float32 on whole
2048 x 1489 frames and takes per-band weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from skytfds.imaging.frames import Frame
from skytfds.imaging.stamps import align_to

# Weights for (i, r, g) nanomaggies, the linear range (weighted nanomaggies;
# below it the stretch is linear, 255 * weight * flux / stretch) and the asinh
# softening q. Tuned on frame 003918-3-0213 against SDSS's frame-irg JPEG
# (a djs_rgb_make-style rendering): with these, each channel of the JPEG and of
# this rendering, both stored as 4:2:0 JPEG, correlate at 0.96 / 0.98 / 0.93
# at the JPEG's 2x2 colour resolution, and the mean levels match (~7/255).
SDSS_SCALES = (2.0, 2.8, 3.9)
SDSS_STRETCH = 1.0
SDSS_Q = 6.0
# Weighted fluxes are clipped here before the stretch, so that values near the
# float32 limit (a damaged frame) saturate instead of overflowing to inf/NaN.
_MAX_WEIGHTED = np.float32(1e30)


def lupton_rgb(i: np.ndarray, r: np.ndarray, g: np.ndarray, *,
               stretch: float = SDSS_STRETCH, q: float = SDSS_Q,
               scales: Sequence[float] = SDSS_SCALES,
               minimum: float = 0.0) -> np.ndarray:
  """Renders i, r, g images as an 8-bit RGB image (R = i, G = r, B = g).

  Args:
    i: [H, W] i-band flux, nanomaggies per pixel.
    r: [H, W] r-band flux on the same pixel grid.
    g: [H, W] g-band flux on the same pixel grid.
    stretch: the linear range of the stretch, in weighted nanomaggies.
    q: asinh softening (0 < q; larger is more logarithmic).
    scales: weights for (i, r, g) applied before the stretch.
    minimum: flux (nanomaggies) mapped to black.

  Returns:
    uint8 [H, W, 3] image, same orientation as the inputs. Fluxes beyond
    float32's range saturate; NaN becomes black.
  """
  if stretch <= 0 or q <= 0:
    raise ValueError(f'stretch and q must be > 0, got stretch={stretch}, q={q}')
  if not i.shape == r.shape == g.shape:
    raise ValueError(f'i, r, g shapes differ: {i.shape}, {r.shape}, {g.shape}')
  rgb = np.empty(i.shape + (3,), np.float32)
  with np.errstate(over='ignore', invalid='ignore'):
    for k, (band, weight) in enumerate(zip((i, r, g), scales)):
      np.multiply(np.asarray(band, np.float32) - np.float32(minimum),
                  np.float32(weight), out=rgb[..., k])
    np.nan_to_num(rgb, copy=False, nan=0.0)
    np.clip(rgb, 0, _MAX_WEIGHTED, out=rgb)
  intensity = rgb.sum(axis=-1) / np.float32(3)
  # Common factor f(I) / I, f(I) = asinh(q I / stretch) / q: 1 / stretch for
  # faint pixels, logarithmic compression for bright ones.
  with np.errstate(divide='ignore', invalid='ignore'):
    factor = np.arcsinh(intensity * np.float32(q / stretch)) / (
        np.float32(q) * intensity)
  factor[intensity <= 0] = 0
  rgb *= factor[..., None]
  peak = rgb.max(axis=-1)
  over = peak > 1
  rgb[over] /= peak[over][:, None]
  return np.round(rgb * np.float32(255)).clip(0, 255).astype(np.uint8)


def frame_rgb(frames: Mapping[str, Frame], *, reference: str = 'r',
              flip: bool = True, **stretch_args) -> np.ndarray:
  """Renders a whole field as SDSS does: i, r, g aligned on one band's grid.

  Args:
    frames: band -> Frame with at least 'i', 'r' and 'g'.
    reference: band whose pixel grid the image uses.
    flip: flip rows so that row 0 is the last FITS row (as SDSS's JPEGs).
    **stretch_args: passed to `lupton_rgb`.

  Returns:
    uint8 [1489, 2048, 3] image.
  """
  aligned, _ = align_to(frames, reference, bands='irg')
  rgb = lupton_rgb(aligned['i'], aligned['r'], aligned['g'], **stretch_args)
  return rgb[::-1] if flip else rgb
