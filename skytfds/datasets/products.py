"""The four image products: how each one fetches its pixels, names them, and cuts an example.

A product carries its own settings (bands, size, scale) and knows the whole
path from a catalogue object to the arrays of one example:

* a `CutoutProduct` (SkyServer getjpeg, Pan-STARRS fitscut) fetches one JPEG
  per object and stores it byte for byte as served, after a full decode has
  shown it is a whole image of the expected size;
* a `FrameProduct` (ugriz stamps, Lupton colour stamps) fetches the bands of
  a SAS frame once, decodes them, and cuts every object of the frame.

The builders' stages (`frame_stage`, `cutout_stage`, `beam_stage`) and
`trainers.predict` all go through these objects, so a model input is made
exactly the way its training images were.
"""

import abc
import dataclasses
import io
from typing import Awaitable, Mapping

import numpy as np
import PIL.Image

from skytfds import catalog
from skytfds import survey
from skytfds.datasets import context as context_lib
from skytfds.imaging import color
from skytfds.imaging import frames as frames_lib
from skytfds.imaging import stamps
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import sas
from skytfds.services import skyserver

# A stamp with more of its area off the frame than this is skipped as `near_edge`.
MAX_PADDED_FRACTION = 0.5


class Skip(Exception):
  """An object that cannot become an example; `reason` is a report.SKIP_REASONS key."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


class BadImage(ValueError):
  """Bytes that are not a whole JPEG of the expected size."""


class CorruptBand(Exception):
  """A fetched band file did not decode."""

  def __init__(self, band: str, error: Exception):
    super().__init__(str(error))  # FrameError names the frame and band already.
    self.band = band
    self.error = error


def check_jpeg(data: bytes, size: int) -> None:
  """Raises BadImage unless `data` decodes fully as a size x size RGB JPEG."""
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      if image.format != 'JPEG':
        raise BadImage(f'a {image.format} image, not JPEG')
      image.load()  # Decodes every scan: a truncated file fails here.
      if image.size != (size, size):
        raise BadImage(f'{image.size[0]}x{image.size[1]} px, expected {size}x{size}')
      if image.mode != 'RGB':
        raise BadImage(f'colour mode {image.mode}')
  except (OSError, SyntaxError, PIL.Image.DecompressionBombError) as e:
    raise BadImage(f'does not decode as JPEG ({e})') from e


# -- cutouts ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CutoutProduct(abc.ABC):
  """A colour cutout service and its parameters.

  Attributes:
    name: short name, used in progress bars.
    size: cutout side in pixels.
    scale: arcsec per pixel.
  """

  name: str
  size: int
  scale: float

  @abc.abstractmethod
  def fetch(self, fetcher: http.Fetcher, ra: float, dec: float,
            ctx: context_lib.BuildContext) -> Awaitable[bytes]:
    """The cutout's bytes as served (through the fetcher's cache)."""

  @abc.abstractmethod
  def cache_name(self, ra: float, dec: float,
                 ctx: context_lib.BuildContext) -> str:
    """The fetcher cache entry that `fetch` fills."""

  def example(self, data: bytes) -> dict[str, bytes]:
    """The image feature: the JPEG as served; raises BadImage if it is not whole."""
    check_jpeg(data, self.size)
    return {'image': data}


class SdssCutout(CutoutProduct):
  """SkyServer ImgCutout getjpeg: SDSS's own colour rendering of g, r, i."""

  def fetch(self, fetcher, ra, dec, ctx):
    return skyserver.fetch_cutout(
        fetcher, ra, dec, scale=self.scale, width=self.size, height=self.size,
        release=ctx.release, base=ctx.skyserver_url)

  def cache_name(self, ra, dec, ctx):
    return skyserver.cutout_cache_name(
        ra, dec, scale=self.scale, width=self.size, height=self.size,
        release=ctx.release)


class Ps1Cutout(CutoutProduct):
  """Pan-STARRS fitscut colour cutout of y, i, g at PS1's native scale."""

  def fetch(self, fetcher, ra, dec, ctx):
    return ps1.fetch_color_cutout(fetcher, ra, dec, size=self.size,
                                  base=ctx.ps1_url)

  def cache_name(self, ra, dec, ctx):
    del ctx  # PS1 has one data release.
    return ps1.cutout_cache_name(ra, dec, size=self.size)


# -- stamps cut from SAS frames ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrameProduct(abc.ABC):
  """Stamps cut from calibrated SAS frames.

  Attributes:
    name: short name, used in staged-file names and progress bars.
    bands: the bands to fetch and stack, in stamp channel order.
    size: stamp side in pixels of the r-band grid (0.396 arcsec/pixel).
  """

  name: str
  bands: str
  size: int

  @abc.abstractmethod
  def _features(self, stack: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The example's arrays from the aligned band stack [size, size, bands]."""

  @property
  @abc.abstractmethod
  def model_feature(self) -> str:
    """The feature a model reads ('stamp' or 'image')."""

  def fetch_band(self, fetcher: http.Fetcher, frame: catalog.FrameId, band: str,
                 ctx: context_lib.BuildContext) -> Awaitable[bytes]:
    """One band's frame file, bz2-compressed as served (through the cache)."""
    return sas.fetch_frame(fetcher, frame, band, release=ctx.release,
                           base=ctx.sas_url)

  def band_cache_name(self, frame: catalog.FrameId, band: str,
                      ctx: context_lib.BuildContext) -> str:
    return sas.cache_name(frame, band, ctx.release)

  def decode(self, band_bytes: Mapping[str, bytes], frame: catalog.FrameId
             ) -> dict[str, frames_lib.Frame]:
    """Every band decoded; raises CorruptBand naming the band that failed."""
    decoded = {}
    for band in self.bands:
      try:
        decoded[band] = frames_lib.decode_frame(
            band_bytes[band], band=band, source=f'{frame.name} band {band}')
      except frames_lib.FrameError as e:
        raise CorruptBand(band, e) from e
    return decoded

  def cut(self, frames: Mapping[str, frames_lib.Frame], ra: float, dec: float
          ) -> dict[str, np.ndarray]:
    """Feature arrays for the object at (ra, dec) degrees; raises Skip."""
    stack, mask = stamps.cut_bands(
        frames, ra, dec, self.size, bands=self.bands, reference='r')
    padded = float(mask.mean())
    if padded >= 1.0:
      raise Skip('off_frame', f'ra={ra:.6f} dec={dec:.6f}')
    if padded > MAX_PADDED_FRACTION:
      raise Skip('near_edge', f'{padded:.0%} of the stamp is off the frame')
    return self._features(stack, mask)


class UgrizStamps(FrameProduct):
  """Calibrated ugriz flux stamps (nanomaggies) and their off-frame mask."""

  model_feature = 'stamp'

  def _features(self, stack, mask):
    return {'stamp': stack.astype(np.float32), 'mask': mask}


class LuptonStamps(FrameProduct):
  """Lupton et al. (2004) asinh colour stamps of i, r, g as R, G, B."""

  model_feature = 'image'

  def _features(self, stack, mask):
    del mask  # Off-frame pixels are black in the colour image.
    i, r, g = (stack[..., self.bands.index(b)] for b in 'irg')
    return {'image': color.lupton_rgb(i, r, g)}


FILTERS = UgrizStamps('filters', ''.join(survey.BANDS), 64)
RGB = LuptonStamps('rgb', 'irg', 128)
# 0.4 arcsec/pixel for SDSS as in the original study; PS1's native scale.
SDSS = SdssCutout('sdss', 240, 0.4)
PS1 = Ps1Cutout('ps1', 240, survey.PS1_PIXEL_ARCSEC)

Product = CutoutProduct | FrameProduct
BY_DATASET: dict[str, Product] = {
    'sdss_filters': FILTERS,
    'sdss_rgb': RGB,
    'sdss_cutouts': SDSS,
    'ps1_cutouts': PS1,
}
