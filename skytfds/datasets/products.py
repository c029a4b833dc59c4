"""The four image products: how each one fetches its pixels, names them, and cuts an example.

A product carries its own settings (bands, size, scale) and knows the whole
path from a catalogue object to the arrays of one example:

* a `CutoutProduct` (SkyServer getjpeg, Pan-STARRS fitscut) fetches one JPEG
  per object and stores it byte for byte as served, after a strict check of
  its coded data (`imaging.jpeg`) and a full decode have shown it is a whole
  image of the expected size;
* a `FrameProduct` (ugriz stamps, Lupton colour stamps) fetches the bands of
  a SAS frame once, decodes them, and cuts every object of the frame.

The builders' stages (`frame_stage`, `cutout_stage`, `beam_stage`) and
`trainers.predict` all go through these objects, so a model input is made
exactly the way its training images were.

A body that fails here says how often it is worth downloading again
(`Retry`): damage a transfer can cause (a corrupt bz2 stream, corrupt JPEG
data) gets the HTTP client's whole retry budget, a whole file that is wrong
one fresh download, and one over a size cap none.
"""

import abc
import dataclasses
import enum
import io
from typing import Any, Awaitable, Mapping, Sequence

import numpy as np
import PIL.Image

from skytfds import catalog
from skytfds import survey
from skytfds.datasets import context as context_lib
from skytfds.imaging import color
from skytfds.imaging import frames as frames_lib
from skytfds.imaging import jpeg
from skytfds.imaging import stamps
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import sas
from skytfds.services import skyserver

# A stamp with more of its area off the frame than this is skipped as `near_edge`.
MAX_PADDED_FRACTION = 0.5
# Largest stamp value kept, nanomaggies per pixel: far beyond any real source
# (a whole bright galaxy is < 1e7), and where float32 arithmetic on stamps
# (squares above 1.8e19) starts to overflow. Beyond it, or inf/NaN (the cubic
# spline overshooting next to extreme frame pixels): skipped as `non_finite`.
MAX_STAMP_VALUE = 1e19
# Largest cutout accepted: a 240x240 colour JPEG is 10-40 KB (its raw pixels
# 169 KiB); anything near this is padding (COM/APP segments), not an image.
MAX_CUTOUT_BYTES = 512 * 2**10


class Retry(enum.Enum):
  """How many downloads a body that failed a check deserves."""
  BUDGET = 'budget'   # Transient damage: the HTTP client's retry budget.
  ONCE = 'once'       # A whole but wrong file: one fresh download.
  NEVER = 'never'     # Over a size cap: none.

  def tries(self, budget: int) -> int:
    """Downloads in all (the first included), given the client's budget."""
    return {Retry.BUDGET: budget, Retry.ONCE: 2, Retry.NEVER: 1}[self]


class Skip(Exception):
  """An object that cannot become an example; `reason` is a report.SKIP_REASONS key."""

  def __init__(self, reason: str, detail: str = ''):
    super().__init__(f'{reason}: {detail}')
    self.reason = reason
    self.detail = detail


class BadImage(ValueError):
  """Bytes that are not a whole JPEG of the expected size."""
  reason = 'bad_image'
  retry = Retry.ONCE


class CorruptImage(BadImage):
  """A JPEG whose coded data is damaged (libjpeg would fill it with grey)."""
  reason = 'corrupt_image'
  retry = Retry.BUDGET


class ImageTooLarge(BadImage):
  """A cutout over its product's size cap."""
  reason = 'too_large'
  retry = Retry.NEVER


class CorruptBand(Exception):
  """A fetched band file cannot be used.

  Attributes:
    band: the band whose file failed.
    error: the decoder's error (its message names the frame and band).
    reason: the skip reason if it keeps failing ('corrupt_download',
      'bad_frame', 'too_large').
    retry: how many downloads it deserves.
  """

  def __init__(self, band: str, error: Exception,
               reason: str = 'corrupt_download', retry: Retry = Retry.ONCE):
    super().__init__(str(error))
    self.band = band
    self.error = error
    self.reason = reason
    self.retry = retry


def check_jpeg(data: bytes, size: int, max_bytes: int = MAX_CUTOUT_BYTES) -> None:
  """Raises BadImage unless `data` is a whole size x size RGB JPEG.

  Refuses, in this order: more than `max_bytes` (ImageTooLarge), another
  format, a wrong size or colour mode, more pixels than PIL's cap (BadImage),
  coded data that does not hold exactly the image (CorruptImage:
  `imaging.jpeg.verify`, which catches what libjpeg only warns about), and
  what PIL cannot open or decode (CorruptImage).
  """
  if len(data) > max_bytes:
    raise ImageTooLarge(f'{len(data)} bytes, more than the {max_bytes}-byte '
                        f'cap for a {size}x{size} cutout: refusing it as too large')
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      if image.format != 'JPEG':
        raise BadImage(f'a {image.format} image, not JPEG')
      if image.size != (size, size):
        raise BadImage(f'{image.size[0]}x{image.size[1]} px, expected {size}x{size}')
      if image.mode != 'RGB':
        raise BadImage(f'colour mode {image.mode}')
      try:
        jpeg.verify(data)
      except jpeg.JpegError as e:
        raise CorruptImage(f'does not decode as JPEG (corrupt data: {e})') from e
      image.load()  # Decodes every scan.
  except PIL.Image.DecompressionBombError as e:
    raise BadImage(f'does not decode as JPEG ({e})') from e
  except (OSError, SyntaxError) as e:  # Damaged bytes: as corrupt as above.
    raise CorruptImage(f'does not decode as JPEG ({e})') from e


# -- cutouts ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CutoutProduct(abc.ABC):
  """A colour cutout service and its parameters.

  Attributes:
    name: short name, used in progress bars.
    size: cutout side in pixels.
    scale: arcsec per pixel.
    max_bytes: the largest cutout accepted (ImageTooLarge above it).
  """

  name: str
  size: int
  scale: float
  max_bytes: int = MAX_CUTOUT_BYTES

  @abc.abstractmethod
  def fetch(self, fetcher: http.Fetcher, ra: float, dec: float,
            ctx: context_lib.BuildContext, hint: Any = None) -> Awaitable[bytes]:
    """The cutout's bytes as served (through the fetcher's cache).

    `hint`: this position's answer from `look_up`, when there was one.
    """

  async def look_up(self, fetcher: http.Fetcher,
                    positions: Sequence[tuple[float, float]],
                    ctx: context_lib.BuildContext) -> list[Any] | None:
    """What `fetch` needs to know of many positions, asked in bulk; None: nothing.

    A service that must be asked where each image lives before it serves it
    (Pan-STARRS) answers that for all positions at once here.
    """
    del fetcher, positions, ctx
    return None

  @abc.abstractmethod
  def cache_name(self, ra: float, dec: float,
                 ctx: context_lib.BuildContext) -> str:
    """The fetcher cache entry that `fetch` fills."""

  def example(self, data: bytes) -> dict[str, bytes]:
    """The image feature: the JPEG as served; raises BadImage if it is not whole."""
    check_jpeg(data, self.size, self.max_bytes)
    return {'image': data}


class SdssCutout(CutoutProduct):
  """SkyServer ImgCutout getjpeg: SDSS's own colour rendering of g, r, i."""

  def fetch(self, fetcher, ra, dec, ctx, hint=None):
    del hint  # getjpeg needs no lookup.
    return skyserver.fetch_cutout(
        fetcher, ra, dec, scale=self.scale, width=self.size, height=self.size,
        release=ctx.release, base=ctx.skyserver_url)

  def cache_name(self, ra, dec, ctx):
    return skyserver.cutout_cache_name(
        ra, dec, scale=self.scale, width=self.size, height=self.size,
        release=ctx.release)


class Ps1Cutout(CutoutProduct):
  """Pan-STARRS fitscut colour cutout of y, i, g at PS1's native scale."""

  def fetch(self, fetcher, ra, dec, ctx, hint=None):
    return ps1.fetch_color_cutout(fetcher, ra, dec, size=self.size,
                                  base=ctx.ps1_url, files=hint)

  async def look_up(self, fetcher, positions, ctx):
    """Each position's y, i, g file names, from POSTed lists of positions."""
    return await ps1.fetch_filenames_bulk(fetcher, positions, base=ctx.ps1_url)

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
      source = f'{frame.name} band {band}'
      data = band_bytes[band]
      try:
        decoded[band] = frames_lib.decode_frame(data, band=band, source=source)
      except Exception as e:  # pylint: disable=broad-except
        raise _band_failure(band, source, e) from e
    return decoded

  def cut(self, frames: Mapping[str, frames_lib.Frame], ra: float, dec: float
          ) -> dict[str, np.ndarray]:
    """Feature arrays for the object at (ra, dec) degrees; raises Skip."""
    try:
      stack, mask = stamps.cut_bands(
          frames, ra, dec, self.size, bands=self.bands, reference='r')
    except stamps.StampError as e:
      raise Skip('bad_frame', str(e)) from e
    padded = float(mask.mean())
    if padded >= 1.0:
      raise Skip('off_frame', f'ra={ra:.6f} dec={dec:.6f}')
    if padded > MAX_PADDED_FRACTION:
      raise Skip('near_edge', f'{padded:.0%} of the stamp is off the frame')
    with np.errstate(invalid='ignore'):
      finite = np.abs(stack) <= MAX_STAMP_VALUE  # False for inf and NaN too.
    if not finite.all():
      raise Skip('non_finite', _non_finite_detail(frames, stack, finite, self.bands))
    return self._features(stack, mask)


def _band_failure(band: str, source: str, error: Exception) -> CorruptBand:
  """The CorruptBand for a band file that did not decode, by how it failed."""
  if isinstance(error, frames_lib.FrameTooLarge):
    return CorruptBand(band, error, 'too_large', Retry.NEVER)
  if isinstance(error, frames_lib.CorruptStream):
    return CorruptBand(band, error, 'corrupt_download', Retry.BUDGET)
  if isinstance(error, frames_lib.BadFrame):
    return CorruptBand(band, error, 'bad_frame', Retry.ONCE)
  if isinstance(error, frames_lib.FrameError):
    return CorruptBand(band, error, 'corrupt_download', Retry.ONCE)
  # Anything else the FITS or WCS libraries raise on odd bytes: one skip.
  text = ' '.join(str(error).split())[:200]
  return CorruptBand(band, frames_lib.BadFrame(
      f'{source}: cannot decode the frame ({type(error).__name__}: {text})'),
                     'bad_frame', Retry.ONCE)


def _non_finite_detail(frames, stack: np.ndarray, finite: np.ndarray,
                       bands: str) -> str:
  bad = [b for k, b in enumerate(bands) if not finite[..., k].all()]
  where = frames['r'].source or 'the frame'
  return (f'{where}: {int(np.count_nonzero(~finite))} of {stack.size} stamp '
          f'values are inf, NaN or beyond +-{MAX_STAMP_VALUE:g} nanomaggies '
          f'after resampling, in band {", ".join(bad)}: frame pixels near the '
          'object are too large for float32')


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
