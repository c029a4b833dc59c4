"""Colour cutouts served as JPEG (SkyServer getjpeg, Pan-STARRS fitscut), one per object.

Cutouts are fetched concurrently through the one HTTP client into the build's
cache (atomic writes), checked strictly and fully decoded once to prove they
are whole images (`products.check_jpeg`), and stored in the dataset byte for
byte as served, never re-encoded. A cutout that passed the download checks but
is not a whole image is evicted and fetched again: corrupt coded data as often
as the client retries any transient fault, a wrong image once, one over the
size cap never.
"""

import asyncio
from typing import Iterator

from absl import logging
import tqdm

from skytfds import catalog
from skytfds.datasets import context as context_lib
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import skyserver

# Fetch failures that mean the service answered, but not with an image.
_BAD_BODY_REASONS = ('html', 'bad_magic', 'wrong_type', 'truncated', 'empty')


class CutoutStage:
  """Fetches and checks every object's cutout; reads them back for the writers."""

  def __init__(self, product: products.CutoutProduct, ctx: context_lib.BuildContext):
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
    async with http.Fetcher(str(self.ctx.cache_dir),
                            max_concurrency=self.ctx.max_concurrency) as fetcher:
      hints = await self._look_up(fetcher, objects)

      async def one(obj):
        reason, detail = await self._fetch_one(fetcher, obj, hints.get(obj.key))
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

  async def _look_up(self, fetcher, objects) -> dict:
    """key -> the product's bulk answer, for the objects not cached yet.

    A bulk lookup that fails (other than an unreachable service) is logged
    and each object is then asked on its own, as without one.
    """
    todo = [o for o in objects if not fetcher.cache_path(
        self.product.cache_name(o.ra, o.dec, self.ctx)).exists()]
    if not todo:
      return {}
    try:
      answers = await self.product.look_up(
          fetcher, [(o.ra, o.dec) for o in todo], self.ctx)
    except http.ServiceUnreachable:
      raise
    except http.FetchError as e:
      logging.warning('%s: the bulk lookup failed (%s); asking per object',
                      self.product.name, e)
      return {}
    if answers is None:
      return {}
    return {o.key: answer for o, answer in zip(todo, answers)}

  async def _fetch_one(self, fetcher, obj, hint=None) -> tuple[str, str]:
    """('', '') when the cutout is cached and whole, else (skip reason, detail)."""
    downloads = 0
    while True:
      try:
        data = await self.product.fetch(fetcher, obj.ra, obj.dec, self.ctx,
                                        hint)
      except ps1.NoCoverage as e:
        return 'no_ps1_coverage', str(e)
      except skyserver.OutsideFootprint as e:
        return 'outside_footprint', str(e)
      except http.ServiceUnreachable:
        raise
      except http.FetchError as e:
        reason = 'bad_image' if e.reason in _BAD_BODY_REASONS else 'fetch_failed'
        return reason, str(e)
      try:
        # A full decode (~10 ms): in a worker thread, off the event loop.
        await asyncio.to_thread(self.product.example, data)
        return '', ''
      except products.BadImage as e:
        # Not a whole image: drop the cached copy and fetch it afresh as often
        # as its kind of failure deserves (corrupt data: the retry budget).
        fetcher.evict(self.product.cache_name(obj.ra, obj.dec, self.ctx))
        downloads += 1
        if downloads >= e.retry.tries(fetcher.max_attempts):
          suffix = f' (gave up after {downloads} downloads)' if downloads > 1 else ''
          return e.reason, f'{e}{suffix}'

  def examples(self, objects: list[catalog.CatalogObject]
               ) -> Iterator[tuple[catalog.CatalogObject, dict]]:
    """(object, {'image': JPEG bytes as served}) for the objects whose cutout is whole."""
    cache = http.Fetcher(str(self.ctx.cache_dir))  # Only to locate cached files.
    for obj in objects:
      if obj.key in self._ok:
        path = cache.cache_path(
            self.product.cache_name(obj.ra, obj.dec, self.ctx))
        yield obj, {'image': path.read_bytes()}
