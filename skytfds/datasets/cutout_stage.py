"""Colour cutouts served as JPEG (SkyServer getjpeg, Pan-STARRS fitscut), one per object.

Cutouts are fetched concurrently through the one HTTP client into the build's
cache (atomic writes), fully decoded once to prove they are whole images, and
stored in the dataset byte for byte as served, never re-encoded. A cutout that
passed the download checks but does not decode is evicted and fetched again.
"""

import asyncio
import dataclasses
import io
from typing import Awaitable, Callable, Iterator

import PIL.Image
import tqdm

from skytfds import catalog
from skytfds.datasets import context as context_lib
from skytfds.datasets import report as report_lib
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import skyserver

# Fetch failures that mean the service answered, but not with an image.
_BAD_BODY_REASONS = ('html', 'bad_magic', 'wrong_type', 'truncated', 'empty')


class BadImage(ValueError):
  """Bytes that are not a whole JPEG of the expected size."""


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


@dataclasses.dataclass(frozen=True)
class CutoutProduct:
  """A cutout service and its parameters.

  Attributes:
    name: 'sdss' (SkyServer getjpeg) or 'ps1' (Pan-STARRS fitscut y,i,g).
    size: cutout side in pixels.
    scale: arcsec per pixel (0.4 for SDSS as in the original study; PS1's
      native 0.25).
  """

  name: str
  size: int
  scale: float

  def fetch(self, fetcher: http.Fetcher, obj: catalog.CatalogObject,
            ctx: context_lib.BuildContext) -> Awaitable[bytes]:
    if self.name == 'sdss':
      return skyserver.fetch_cutout(
          fetcher, obj.ra, obj.dec, scale=self.scale, width=self.size,
          height=self.size, release=ctx.release, base=ctx.skyserver_url)
    if self.name == 'ps1':
      return ps1.fetch_color_cutout(
          fetcher, obj.ra, obj.dec, size=self.size, base=ctx.ps1_url)
    raise ValueError(f'unknown cutout product {self.name!r}')

  def cache_name(self, obj: catalog.CatalogObject,
                 ctx: context_lib.BuildContext) -> str:
    if self.name == 'sdss':
      return skyserver.cutout_cache_name(
          obj.ra, obj.dec, scale=self.scale, width=self.size, height=self.size,
          release=ctx.release)
    return ps1.cutout_cache_name(obj.ra, obj.dec, size=self.size)


SDSS = CutoutProduct('sdss', 240, 0.4)
PS1 = CutoutProduct('ps1', 240, 0.25)


class CutoutStage:
  """Fetches and checks every object's cutout; reads them back for the writers."""

  def __init__(self, product: CutoutProduct, ctx: context_lib.BuildContext):
    self.product = product
    self.ctx = ctx
    self._ok: set[str] = set()

  def prepare(self, objects: list[catalog.CatalogObject],
              report: report_lib.BuildReport) -> None:
    """Fetches (or finds in the cache) every cutout; skips are counted in `report`."""
    report.fetch = http.run(self._fetch_all(objects, report))

  async def _fetch_all(self, objects, report) -> dict:
    progress = tqdm.tqdm(total=len(objects), desc=f'{self.product.name} cutouts',
                         unit=' cutouts')
    async with http.Fetcher(self.ctx.cache_dir,
                            max_concurrency=self.ctx.max_concurrency) as fetcher:

      async def one(obj):
        reason, detail = await self._fetch_one(fetcher, obj)
        if reason:
          report.skip(obj.key, reason, detail)
        else:
          self._ok.add(obj.key)
        progress.update()

      try:
        await asyncio.gather(*(one(o) for o in objects))
      finally:
        progress.close()
      return fetcher.stats.as_dict()

  async def _fetch_one(self, fetcher, obj) -> tuple[str, str]:
    """('', '') when the cutout is cached and whole, else (skip reason, detail)."""
    for attempt in range(2):
      try:
        data = await self.product.fetch(fetcher, obj, self.ctx)
      except ps1.NoCoverage as e:
        return 'no_ps1_coverage', str(e)
      except http.ServiceUnreachable:
        raise
      except http.FetchError as e:
        reason = 'bad_image' if e.reason in _BAD_BODY_REASONS else 'fetch_failed'
        return reason, str(e)
      try:
        check_jpeg(data, self.product.size)
        return '', ''
      except BadImage as e:
        fetcher.evict(self.product.cache_name(obj, self.ctx))
        if attempt:
          return 'bad_image', str(e)
    raise AssertionError('unreachable')

  def examples(self, objects: list[catalog.CatalogObject]
               ) -> Iterator[tuple[catalog.CatalogObject, dict]]:
    """(object, {'image': JPEG bytes as served}) for the objects whose cutout is whole."""
    cache = http.Fetcher(self.ctx.cache_dir)  # Only to locate cached files.
    for obj in objects:
      if obj.key in self._ok:
        path = cache.cache_path(self.product.cache_name(obj, self.ctx))
        yield obj, {'image': path.read_bytes()}
