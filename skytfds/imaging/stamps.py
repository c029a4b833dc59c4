"""Stamps around sky positions, cut through each band's own WCS.

Pure numpy/scipy/astropy; no I/O.

Conventions:
  * A stamp is indexed [row, column] with the frame's own orientation (row 0 is
    FITS row 0: JPEG renderings such as SDSS's frame-irg flip it vertically).
  * Sub-pixel centring: the object's (ra, dec) falls exactly on the stamp
    centre ((size - 1) / 2, (size - 1) / 2) in stamp pixel coordinates; for an
    even size that is between the four central pixels.
  * Pixels whose sample position lies off the frame (outside the pixel
    footprint [-0.5, n - 0.5]) are 0 and flagged True in the mask. An object
    entirely off the frame gives an all-True mask: callers skip it.

Resampling is a cubic B-spline (scipy.ndimage.map_coordinates, order=3) on a
window of the frame around the stamp (prefiltered with an 8-pixel margin, so
the result equals a whole-frame spline to ~1e-5). Cubic rather than bilinear
because bilinear interpolation blurs by a sub-pixel-phase-dependent amount (up
to 0.25 px^2 extra variance per axis at half-pixel shifts, ~10% of the SDSS
PSF width), which would make star sizes depend on where the object fell on
the pixel grid; the cubic spline keeps the PSF shape, interpolates the pixel
values exactly and conserves flux under translation. Its price is mild
ringing next to saturated stars and cosmic rays.

The map from the reference band's pixels to another band's pixels (through
sky coordinates) is evaluated exactly at the stamp centre and at probe points
one half-size away, and applied as the resulting local affine map (TAN-to-TAN
between bands is affine to ~1e-4 px over a whole frame); if the affine map
misses the exact one by more than 0.01 px at the stamp corners (a WCS with
distortion terms), every pixel is mapped exactly instead.

A WCS that cannot map the stamp (a distortion that sky-to-pixel cannot invert:
astropy's NoConvergence, or any wcslib error) raises `StampError`, naming the
frame's band; values are never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

from astropy import wcs as astropy_wcs
import numpy as np
from scipy import ndimage

from skytfds.imaging.frames import Frame

# Frame pixels around a stamp's footprint given to the spline prefilter.
_MARGIN = 8
# Largest error (pixels) accepted from the affine band-to-band pixel map.
_AFFINE_TOLERANCE_PX = 0.01


class StampError(ValueError):
  """A band's WCS cannot map a stamp; the message names the frame and band."""


def _wcs_failure(frame: Frame, error: Exception) -> StampError:
  name = frame.source or f'band {frame.band}'
  text = ' '.join(str(error).split())[:200]
  return StampError(f'{name}: the WCS cannot map the stamp '
                    f'({type(error).__name__}: {text})')


def _check_size(size: int) -> int:
  if isinstance(size, bool) or int(size) != size or size < 1:
    raise ValueError(f'stamp size must be a positive integer of pixels, got '
                     f'{size!r}')
  return int(size)


def _offsets(size: int) -> np.ndarray:
  """Pixel offsets of a stamp's rows (or columns) from its centre."""
  return np.arange(size, dtype=np.float64) - (size - 1) / 2.0


def _sample(image: np.ndarray, rows: np.ndarray,
            cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Cubic-spline samples of `image` at (rows, cols), 0 + mask off the frame.

  Args:
    image: [H, W] frame pixels.
    rows: sample positions (row coordinate, pixels, 0-based), any shape.
    cols: same shape as `rows`, column coordinate.

  Returns:
    (float32 values, bool mask True off the frame), both of rows' shape.
  """
  height, width = image.shape
  with np.errstate(invalid='ignore'):
    inside = ((rows >= -0.5) & (rows <= height - 0.5) &
              (cols >= -0.5) & (cols <= width - 0.5))
  values = np.zeros(rows.shape, np.float32)
  if not inside.any():
    return values, ~inside
  r_in = rows[inside]
  c_in = cols[inside]
  r0 = max(math.floor(r_in.min()) - _MARGIN, 0)
  r1 = min(math.ceil(r_in.max()) + _MARGIN + 1, height)
  c0 = max(math.floor(c_in.min()) - _MARGIN, 0)
  c1 = min(math.ceil(c_in.max()) + _MARGIN + 1, width)
  window = image[r0:r1, c0:c1]
  values[inside] = ndimage.map_coordinates(
      window, np.stack([r_in - r0, c_in - c0]), order=3, mode='mirror',
      output=np.float32)
  return values, ~inside


def _sky_to_pixel(wcs: astropy_wcs.WCS, ra, dec) -> tuple[np.ndarray,
                                                          np.ndarray]:
  """(x = column, y = row) 0-based pixel positions of (ra, dec) degrees."""
  x, y = wcs.all_world2pix(np.asarray(ra, np.float64),
                           np.asarray(dec, np.float64), 0)
  return np.asarray(x), np.asarray(y)


def _frame_pixels(frame: Frame, ra, dec) -> tuple[np.ndarray, np.ndarray]:
  """`_sky_to_pixel` through a frame's WCS; StampError if the WCS fails."""
  try:
    return _sky_to_pixel(frame.wcs, ra, dec)
  except Exception as e:  # pylint: disable=broad-except
    raise _wcs_failure(frame, e) from None  # NoConvergence, wcslib errors...


def _transform(src: astropy_wcs.WCS, dst: astropy_wcs.WCS, x: np.ndarray,
               y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pixel positions in `src` -> sky -> pixel positions in `dst`."""
  ra, dec = src.all_pix2world(x, y, 0)
  return _sky_to_pixel(dst, ra, dec)


def _map_grid(src: astropy_wcs.WCS, dst: astropy_wcs.WCS, x0: float,
              y0: float, half_x: float, half_y: float, cols: np.ndarray,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Maps the `src` pixel grid (cols, rows) around (x0, y0) into `dst` pixels.

  Uses the local affine map from exact transforms of the centre and of probe
  points at +-(half_x, half_y); checks it at the grid corners and falls back
  to exact per-pixel transforms when it is off by more than 0.01 px.
  """
  hx = max(half_x, 1.0)
  hy = max(half_y, 1.0)
  px = x0 + np.array([0, hx, -hx, 0, 0, hx, -hx, hx, -hx])
  py = y0 + np.array([0, 0, 0, hy, -hy, hy, hy, -hy, -hy])
  qx, qy = _transform(src, dst, px, py)
  jac = np.array([[(qx[1] - qx[2]) / (2 * hx), (qx[3] - qx[4]) / (2 * hy)],
                  [(qy[1] - qy[2]) / (2 * hx), (qy[3] - qy[4]) / (2 * hy)]])

  def affine(x, y):
    dx = x - x0
    dy = y - y0
    return (qx[0] + jac[0, 0] * dx + jac[0, 1] * dy,
            qy[0] + jac[1, 0] * dx + jac[1, 1] * dy)

  ax, ay = affine(px[5:], py[5:])
  error = np.hypot(ax - qx[5:], ay - qy[5:])
  if np.all(error <= _AFFINE_TOLERANCE_PX):
    return affine(cols, rows)
  bx, by = _transform(src, dst, cols.ravel(), rows.ravel())
  return bx.reshape(cols.shape), by.reshape(rows.shape)


def cut_stamp(frame: Frame, ra: float, dec: float,
              size: int) -> tuple[np.ndarray, np.ndarray]:
  """Cuts a stamp centred on (ra, dec) from one band through its own WCS.

  Args:
    frame: the band's frame (image in nanomaggies).
    ra: right ascension, degrees.
    dec: declination, degrees.
    size: stamp side, pixels (0.396 arcsec each).

  Returns:
    (stamp float32 [size, size] nanomaggies per pixel, mask bool [size, size]
    True where the stamp is off the frame and padded with 0). The object lies
    exactly at stamp pixel ((size - 1) / 2, (size - 1) / 2).
  """
  size = _check_size(size)
  x, y = _frame_pixels(frame, ra, dec)
  offsets = _offsets(size)
  rows = np.broadcast_to(float(y) + offsets[:, None], (size, size))
  cols = np.broadcast_to(float(x) + offsets[None, :], (size, size))
  return _sample(frame.image, rows, cols)


def cut_stamps(frame: Frame, ra: Sequence[float] | np.ndarray,
               dec: Sequence[float] | np.ndarray,
               size: int) -> tuple[np.ndarray, np.ndarray]:
  """`cut_stamp` for many objects of one frame (one WCS call for all).

  Args:
    frame: the band's frame.
    ra: [N] right ascensions, degrees.
    dec: [N] declinations, degrees.
    size: stamp side, pixels.

  Returns:
    (float32 [N, size, size] stamps, bool [N, size, size] masks).
  """
  size = _check_size(size)
  xs, ys = _frame_pixels(frame, np.atleast_1d(ra), np.atleast_1d(dec))
  offsets = _offsets(size)
  stamps = np.zeros((len(xs), size, size), np.float32)
  masks = np.ones((len(xs), size, size), bool)
  for n, (x, y) in enumerate(zip(xs, ys)):
    rows = np.broadcast_to(y + offsets[:, None], (size, size))
    cols = np.broadcast_to(x + offsets[None, :], (size, size))
    stamps[n], masks[n] = _sample(frame.image, rows, cols)
  return stamps, masks


def _frame_of(frames: Mapping[str, Frame], band: str) -> Frame:
  try:
    return frames[band]
  except KeyError:
    raise ValueError(f'no frame for band {band!r}: have bands '
                     f'{"".join(sorted(frames))}') from None


def cut_bands(frames: Mapping[str, Frame], ra: float, dec: float, size: int,
              *, bands: str | Sequence[str] = 'ugriz',
              reference: str = 'r') -> tuple[np.ndarray, np.ndarray]:
  """Cuts aligned multi-band stamps on the reference band's pixel grid.

  The stamp grid is the reference band's pixel grid centred (sub-pixel) on
  (ra, dec); each pixel of it is mapped to sky through the reference WCS and
  back to each band's pixels through that band's WCS, where the band is
  sampled. So all bands of a stamp show the same sky, whatever the offsets
  between the bands' frames (g is ~9 px from r in SDSS).

  Args:
    frames: band -> Frame of the same field.
    ra: right ascension, degrees.
    dec: declination, degrees.
    size: stamp side, reference-band pixels.
    bands: bands to stack, in order.
    reference: the band whose pixel grid the stamp uses.

  Returns:
    (float32 [size, size, len(bands)] nanomaggies per pixel, bool mask
    [size, size] True where any band is off its frame and padded with 0).

  Raises:
    StampError: a band's WCS cannot map the stamp (named in the message).
  """
  size = _check_size(size)
  ref = _frame_of(frames, reference)
  x0, y0 = (float(v) for v in _frame_pixels(ref, ra, dec))
  offsets = _offsets(size)
  rows = np.broadcast_to(y0 + offsets[:, None], (size, size))
  cols = np.broadcast_to(x0 + offsets[None, :], (size, size))
  half = (size - 1) / 2.0
  stack = np.zeros((size, size, len(bands)), np.float32)
  mask = np.zeros((size, size), bool)
  for k, band in enumerate(bands):
    frame = _frame_of(frames, band)
    if frame is ref:
      band_rows, band_cols = rows, cols
    else:
      try:
        band_cols, band_rows = _map_grid(ref.wcs, frame.wcs, x0, y0, half,
                                         half, cols, rows)
      except Exception as e:  # pylint: disable=broad-except
        raise _wcs_failure(frame, e) from None
    stack[..., k], band_mask = _sample(frame.image, band_rows, band_cols)
    mask |= band_mask
  return stack, mask


def align_to(frames: Mapping[str, Frame], reference: str = 'r',
             bands: str | Sequence[str] | None = None
            ) -> tuple[dict[str, np.ndarray], np.ndarray]:
  """Resamples whole frames onto the reference band's pixel grid.

  Args:
    frames: band -> Frame of one field.
    reference: the band whose grid is kept (returned unchanged).
    bands: bands to resample; default all of `frames`.

  Returns:
    (band -> float32 [H, W] nanomaggies on the reference grid, bool [H, W]
    mask True where any band falls off its frame, padded with 0).
  """
  ref = _frame_of(frames, reference)
  height, width = ref.image.shape
  rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
  x0 = (width - 1) / 2.0
  y0 = (height - 1) / 2.0
  aligned = {}
  mask = np.zeros((height, width), bool)
  for band in (frames if bands is None else bands):
    frame = _frame_of(frames, band)
    if frame is ref:
      aligned[band] = ref.image
      continue
    band_cols, band_rows = _map_grid(ref.wcs, frame.wcs, x0, y0, x0, y0, cols,
                                     rows)
    aligned[band], band_mask = _sample(frame.image, band_rows, band_cols)
    mask |= band_mask
  return aligned, mask
