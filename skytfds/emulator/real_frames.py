"""Real SDSS frames held in a local SAS mirror, resampled onto cutout grids.

When the mirror holds the i, r and g frames of a field that covers a cutout,
the cutout is resampled from them (bilinear, smoothed first when the cutout's
pixels are much coarser), as SkyServer cuts its images from real frames.
"""

# Follows sciserver/SkyServerWS ImgCutout/ImgCutout.cs (a cutout is cut from
# the frames that cover it, the deepest first, resampled onto a north-up TAN
# grid of the asked scale) and the frame data model page
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html.

from __future__ import annotations

import dataclasses
import pathlib
import threading

from astropy import wcs as astropy_wcs
import numpy as np
from scipy import ndimage

from skytfds import survey
from skytfds.emulator import fields
from skytfds.emulator import frame_files
from skytfds.emulator import payload_cache

DECODED_CACHE_SIZE = 6          # decoded real frames kept (12 MB each)


@dataclasses.dataclass(frozen=True)
class RealField:
  """A field whose i, r and g frames are held under sas_root."""
  paths: dict[str, pathlib.Path]   # band -> file
  wcs_r: astropy_wcs.WCS


class RealFrames:
  """The fields of a local SAS mirror (headers read once); thread-safe."""

  def __init__(self, sas_root: pathlib.Path | None):
    self.sas_root = sas_root
    self._lock = threading.Lock()
    self._fields: list[RealField] | None = None
    self._decoded = payload_cache.Lru(DECODED_CACHE_SIZE)

  def index(self) -> list[RealField]:
    """Fields whose i, r, g frames sas_root holds."""
    with self._lock:
      if self._fields is not None:
        return self._fields
    found = []
    if self.sas_root is not None and self.sas_root.is_dir():
      for r_path in sorted(self.sas_root.glob('dr*/*/photoObj/frames/*/*/*/'
                                              'frame-r-*.fits.bz2')):
        paths = {b: r_path.with_name(r_path.name.replace('frame-r-',
                                                         f'frame-{b}-'))
                 for b in 'irg'}
        if all(p.is_file() for p in paths.values()):
          found.append(RealField(paths, frame_files.read_wcs(r_path)))
    with self._lock:
      self._fields = found
    return found

  def cover(self, ra: float, dec: float) -> list[RealField]:
    """Real fields holding (ra, dec), the deepest inside first."""
    found = []
    h, w = fields.FRAME_SHAPE
    for field in self.index():
      x, y = field.wcs_r.wcs_world2pix([[ra, dec]], 0)[0]
      depth = min(x + 0.5, w - 0.5 - x, y + 0.5, h - 0.5 - y)
      if depth > 0:
        found.append((-depth, str(field.paths['r']), field))
    return [f for _, _, f in sorted(found)]

  def _decode(self, path: pathlib.Path) -> frame_files.Frame:
    return self._decoded.get(
        str(path), lambda: frame_files.decode_frame(path.read_bytes()))

  def resample(self, cover: list[RealField], wcs: astropy_wcs.WCS,
               scale: float, width: int, height: int
               ) -> dict[str, np.ndarray]:
    """i, r, g of the covering frames resampled onto a cutout's grid."""
    rows, cols = np.mgrid[0:height, 0:width]
    world = wcs.wcs_pix2world(np.stack([cols.ravel(), rows.ravel()], axis=1), 0)
    ratio = scale / survey.SDSS_PIXEL_ARCSEC
    out = {}
    for band in 'irg':
      image = np.zeros(height * width, np.float32)
      filled = np.zeros(height * width, bool)
      for field in cover:
        frame = self._decode(field.paths[band])
        xy = frame.wcs.wcs_world2pix(world, 0)
        fh, fw = frame.image.shape
        inside = (~filled & (xy[:, 0] > -0.5) & (xy[:, 0] < fw - 0.5)
                  & (xy[:, 1] > -0.5) & (xy[:, 1] < fh - 0.5))
        if not inside.any():
          continue
        x, y = xy[inside, 0], xy[inside, 1]
        pad = int(3 * ratio) + 3
        x0, x1 = max(int(x.min()) - pad, 0), min(int(x.max()) + pad + 2, fw)
        y0, y1 = max(int(y.min()) - pad, 0), min(int(y.max()) + pad + 2, fh)
        window = frame.image[y0:y1, x0:x1]
        if ratio > 1.5:       # average over the coarser output pixel
          window = ndimage.gaussian_filter(window, 0.42 * ratio)
        image[inside] = ndimage.map_coordinates(
            window, [y - y0, x - x0], order=1, mode='nearest')
        filled |= inside
        if filled.all():
          break
      out[band] = image.reshape(height, width)
    return out
