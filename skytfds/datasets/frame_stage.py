"""Stamps cut from SAS frames: each frame fetched once, decoded once, all its objects cut.

Objects are grouped by frame (run, rerun, camcol, field). For each frame the
bands a product needs are fetched concurrently through the one HTTP client,
bz2-decoded in a thread pool (bz2 releases the GIL, so frames decode in
parallel on all cores), and every object of the frame is cut from that one
decode. The result of a frame is staged as one `.npz` under the download
directory (a local folder or any fsspec URL; written atomically, see
`skytfds.files`), so an interrupted build resumes where it stopped and the
split writers read stamps back without decoding anything again. A staged
file that cannot be read whole is dropped and staged again.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import io
import json
import os
import zipfile
from typing import Iterable, Iterator, Mapping

from absl import logging
import numpy as np
import tqdm

from skytfds import catalog
from skytfds import files
from skytfds.datasets import context as context_lib
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.services import http

# Bump when staged files change meaning (their layout or the stamp maths).
STAGE_VERSION = 1


def staging_name(product: products.FrameProduct) -> str:
  """The staging folder of a product: changes whenever its stamps would."""
  return f'{product.name}-{product.bands}-{product.size}px-v{STAGE_VERSION}'


def stage_frame(
    product: products.FrameProduct,
    band_bytes: Mapping[str, bytes],
    objects: list[catalog.CatalogObject],
    path: files.Location,
) -> None:
  """Decodes one frame's bands, cuts every object, writes `path` (.npz) atomically.

  Objects that cannot be cut (off the frame, near its edge, a WCS that cannot
  place them, inf/NaN values) are staged as skips with their reason.

  Raises products.CorruptBand if a band cannot be used (the caller refetches it
  as often as the failure deserves, then skips the frame's objects).
  """
  decoded = product.decode(band_bytes, objects[0].frame)
  arrays, keys, skips = {}, [], {}
  for obj in objects:
    try:
      cut = product.cut(decoded, obj.ra, obj.dec)
    except products.Skip as s:
      skips[obj.key] = [s.reason, s.detail]
      continue
    for name, value in cut.items():
      arrays[f'{len(keys)}.{name}'] = value
    keys.append(obj.key)
  # Built in memory, then written in one go: an object store's upload
  # stream cannot seek, which zipfile needs.
  buffer = io.BytesIO()
  np.savez(buffer, keys=np.array(keys, dtype=str),
           skips=np.array(json.dumps(skips)), **arrays)
  files.write_bytes(path, buffer.getvalue())


@dataclasses.dataclass
class StagedFrame:
  """One frame's staged stamps, read back without pickle."""

  arrays: dict[str, dict[str, np.ndarray]]   # key -> feature arrays
  skips: dict[str, tuple[str, str]]          # key -> (reason, detail)

  @classmethod
  def read(cls, path: files.Location) -> 'StagedFrame':
    """Reads a staged file (one read: one GET on an object store).

    Raises FileNotFoundError, or ValueError for a file that is not a whole
    staged frame (truncated, damaged, of another layout).
    """
    data = path.read_bytes()
    try:
      return cls._parse(data)
    except (ValueError, KeyError, IndexError, EOFError, OSError,
            zipfile.BadZipFile) as e:
      raise ValueError(f'{path}: not a whole staged frame ({type(e).__name__}: '
                       f'{e})') from e

  @classmethod
  def _parse(cls, data: bytes) -> 'StagedFrame':
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
      keys = [str(k) for k in npz['keys']]
      skips = {k: tuple(v) for k, v in json.loads(str(npz['skips'])).items()}
      arrays = {k: {} for k in keys}
      for member in npz.files:
        index, _, name = member.partition('.')
        if name:
          arrays[keys[int(index)]][name] = npz[member]
    return cls(arrays, skips)

  def covers(self, objects: Iterable[catalog.CatalogObject]) -> bool:
    return all(o.key in self.arrays or o.key in self.skips for o in objects)


def group_by_frame(objects: Iterable[catalog.CatalogObject]
                   ) -> dict[catalog.FrameId, list[catalog.CatalogObject]]:
  """Objects per frame, frames in (run, rerun, camcol, field) order."""
  groups: dict[catalog.FrameId, list[catalog.CatalogObject]] = {}
  for obj in objects:
    groups.setdefault(obj.frame, []).append(obj)
  return dict(sorted(groups.items()))


class FrameStage:
  """Fetches, decodes and cuts the frames of a build; reads the stamps back."""

  def __init__(self, product: products.FrameProduct,
               ctx: context_lib.BuildContext):
    self.product = product
    self.ctx = ctx
    self.dir = ctx.staging_dir(staging_name(product))

  def staged_path(self, frame: catalog.FrameId) -> files.Location:
    return self.dir / f'{frame.name}-r{frame.rerun}.npz'

  def read_staged(self, frame: catalog.FrameId) -> StagedFrame | None:
    """The frame's staged stamps; None if not staged, or damaged (then dropped)."""
    path = self.staged_path(frame)
    try:
      return StagedFrame.read(path)
    except FileNotFoundError:
      return None
    except ValueError as e:
      logging.warning('%s; staging it again', e)
      path.unlink(missing_ok=True)
      return None

  def prepare(self, objects: list[catalog.CatalogObject],
              report: report_lib.BuildReport) -> None:
    """Stages every frame the objects need (resuming) and counts skips in `report`."""
    groups = group_by_frame(objects)
    todo = self.unstaged(groups)
    if todo:
      report.fetch = http.run(self.stage_frames(todo, report))
    report.notes.append(
        f'{len(groups)} frames needed, {len(groups) - len(todo)} already staged')
    self.count_staged_skips(groups, report)

  def unstaged(self, groups: Mapping[catalog.FrameId, list[catalog.CatalogObject]]
               ) -> dict[catalog.FrameId, list[catalog.CatalogObject]]:
    """The frames whose staged file is missing or lacks some of their objects."""
    todo = {}  # (Writing a staged file makes its folder.)
    for frame, objs in groups.items():
      staged = self.read_staged(frame)
      if staged is not None:
        if staged.covers(objs):
          continue
        # Staged for another object list: stage again.
        self.staged_path(frame).unlink(missing_ok=True)
      todo[frame] = objs
    return todo

  def count_staged_skips(self, groups, report: report_lib.BuildReport) -> None:
    """Counts the objects that staged frames could not cut (off frame, near edge)."""
    for frame, objs in groups.items():
      staged = self.read_staged(frame)
      if staged is None:
        continue  # Its fetch failures were counted when they happened.
      for obj in objs:
        if obj.key in staged.skips:
          report.skip(obj.key, *staged.skips[obj.key])

  async def stage_frames(self, todo, report: report_lib.BuildReport) -> dict:
    """Fetches, decodes and stages `todo` (frame -> objects); returns fetch stats."""
    workers = os.cpu_count() or 1
    decoder = concurrent.futures.ThreadPoolExecutor(workers, 'frame-decode')
    # Frames held in memory at once: enough to keep downloads and decoders busy.
    in_memory = asyncio.Semaphore(max(4, 2 * workers))
    progress = tqdm.tqdm(total=len(todo), desc=f'{self.product.name} frames',
                         unit=' frames')
    async with http.Fetcher(str(self.ctx.cache_dir),
                            max_concurrency=self.ctx.max_concurrency) as fetcher:

      async def one(frame, objs):
        async with in_memory:
          await self._stage_one(fetcher, decoder, frame, objs, report)
        progress.update()

      try:
        await asyncio.gather(*(one(f, o) for f, o in todo.items()))
      finally:
        progress.close()
        decoder.shutdown()
      return fetcher.stats.as_dict()

  async def _stage_one(self, fetcher, decoder, frame, objs, report) -> None:
    loop = asyncio.get_running_loop()
    bands = self.product.bands
    try:
      blobs = await asyncio.gather(*(self.product.fetch_band(fetcher, frame, b, self.ctx) for b in bands))
    except http.ServiceUnreachable:
      raise
    except http.FetchError as e:
      reason = 'frame_missing' if e.reason == 'not_found' else 'fetch_failed'
      for obj in objs:
        report.skip(obj.key, reason, str(e))
      return
    band_bytes = dict(zip(bands, blobs))
    downloads = collections.Counter()  # Per band: copies that failed to decode.
    while True:
      try:
        await loop.run_in_executor(
            decoder, stage_frame, self.product, band_bytes, objs,
            self.staged_path(frame))
        report.frames_decoded += len(bands)
        return
      except products.CorruptBand as e:
        # It passed the download checks but cannot be used: drop the cached
        # copy, and fetch it afresh as often as its kind of failure deserves
        # (a corrupt stream: the client's whole retry budget).
        fetcher.evict(self.product.band_cache_name(frame, e.band, self.ctx))
        downloads[e.band] += 1
        if downloads[e.band] >= e.retry.tries(fetcher.max_attempts):
          detail = str(e)
          if downloads[e.band] > 1:
            detail += f' (gave up after {downloads[e.band]} downloads)'
          for obj in objs:
            report.skip(obj.key, e.reason, detail)
          return
        try:
          band_bytes[e.band] = await self.product.fetch_band(fetcher, frame, e.band, self.ctx)
        except http.ServiceUnreachable:
          raise
        except http.FetchError as err:
          for obj in objs:
            report.skip(obj.key, 'fetch_failed', str(err))
          return

  def examples(self, objects: list[catalog.CatalogObject]
               ) -> Iterator[tuple[catalog.CatalogObject, dict]]:
    """(object, feature arrays) for the staged, not skipped objects, frame by frame."""
    for frame, objs in group_by_frame(objects).items():
      staged = self.read_staged(frame)
      if staged is None:
        continue
      for obj in objs:
        if obj.key in staged.arrays:
          yield obj, staged.arrays[obj.key]
