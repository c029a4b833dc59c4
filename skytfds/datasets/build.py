"""One build of a dataset: its objects, their splits, the stage that makes their images.

`Build.start` selects the objects (SkyServer query or the user's catalogue),
assigns each to its split by key, and on the default path fetches and stages
every image before any split is written, so a split whose objects were all
skipped is left out (and said so in the report) rather than written empty.
On the Beam path the same stages run inside the workers.
"""

import collections
import dataclasses
from typing import Any, Iterator

from absl import logging

from skytfds import catalog
from skytfds import splits
from skytfds import survey
from skytfds.datasets import beam_stage
from skytfds.datasets import context as context_lib
from skytfds.datasets import cutout_stage
from skytfds.datasets import features
from skytfds.datasets import frame_stage
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.datasets import selection
from skytfds.services import http
from skytfds.services import sas


class NothingToWrite(ValueError):
  """Every object of the build was skipped."""


def make_stage(product: products.Product, ctx: context_lib.BuildContext):
  """The stage that fetches and reads back `product`'s images."""
  if isinstance(product, products.FrameProduct):
    return frame_stage.FrameStage(product, ctx)
  return cutout_stage.CutoutStage(product, ctx)


@dataclasses.dataclass
class Build:
  """The objects of one build, by split, and the stage that makes their images."""

  objects: list[catalog.CatalogObject]
  by_split: dict[str, list[catalog.CatalogObject]]
  stage: frame_stage.FrameStage | cutout_stage.CutoutStage
  report: report_lib.BuildReport

  @classmethod
  def start(cls, product: products.Product, ctx: context_lib.BuildContext,
            per_class: int, selection: str,
            report: report_lib.BuildReport) -> 'Build':
    """Selects the objects; on the default path, fetches and stages them all."""
    if isinstance(product, products.FrameProduct):
      sas.check_mirror_root(ctx.sas_url, ctx.release)
    objects = _select(ctx, per_class, selection, report)
    if isinstance(product, products.FrameProduct):
      _plan_frames(product, objects, report)
    by_split = collections.defaultdict(list)
    for obj in objects:
      by_split[splits.split_of(obj.key)].append(obj)
    report.requested_by_split = {s: len(by_split[s]) for s in splits.SPLITS}
    empty = [s for s in splits.SPLITS if not by_split[s]]
    if empty:
      note = (f'{len(objects)} objects leave split(s) {", ".join(empty)} '
              'empty (splits are about 80/10/10 by a hash of the key): give '
              'at least ~50 objects to fill every split; a trainer needs '
              'train and validation')
      logging.warning('%s: %s', report.dataset, note)
      report.notes.append(note)
    build = cls(objects, {s: by_split[s] for s in splits.SPLITS if by_split[s]},
                make_stage(product, ctx), report)
    if not report.beam:
      build.stage.prepare(objects, report)
      build.by_split = build._splits_with_examples(objects)
    return build

  def _splits_with_examples(self, objects) -> dict[str, list[catalog.CatalogObject]]:
    written = {}
    for name, objs in self.by_split.items():
      if any(True for _ in self.stage.examples(objs)):
        written[name] = objs
      else:
        self.report.notes.append(
            f'split {name}: all {len(objs)} objects were skipped; '
            'the split is left out')
    if not written:
      raise NothingToWrite(
          f'all {len(objects)} objects were skipped '
          f'({dict(sorted(self.report.skipped.items()))}); nothing to write. '
          f'Examples: {dict(self.report.skipped_examples)}')
    return written

  def examples(self, objects: list[catalog.CatalogObject]) -> Any:
    """(key, example) pairs of `objects`: a generator, or on Beam a PTransform."""
    if self.report.beam:
      return beam_stage.examples_transform(self.stage, objects, self.objects)
    return self._examples(objects)

  def _examples(self, objects) -> Iterator[tuple[str, dict]]:
    for obj, images in self.stage.examples(objects):
      yield obj.key, {**images, **features.common_values(obj)}


def _select(ctx: context_lib.BuildContext, per_class: int, how: str,
            report: report_lib.BuildReport) -> list[catalog.CatalogObject]:

  async def select():
    async with http.Fetcher(str(ctx.cache_dir), max_concurrency=ctx.max_concurrency) as f:
      got = await selection.select_objects(f, per_class=per_class,
                                           release=ctx.release, selection=how)
      return got, f.stats

  selected, stats = http.run(select())
  report.emulated.update(stats.emulated)
  if selected.selection != 'catalogue':
    # Reading the user's own catalogue asked no service anything: it says
    # nothing of whether the images come from the emulator (`simulated`).
    report.requests += stats.requests
  objects = selected.catalog
  report.source = http.redact_url(objects.source)
  report.selection = selected.selection
  report.provenance['catalogue'] = selected.catalogue
  report.requested = len(objects)
  report.notes.extend(objects.notes)
  logging.info('%s: %d objects from %s', report.dataset, len(objects),
               report.source)
  return objects.objects


def _plan_frames(product: products.FrameProduct,
                 objects: list[catalog.CatalogObject],
                 report: report_lib.BuildReport) -> None:
  """Logs, before any frame is fetched, how many frames and bytes the build needs."""
  frames = len({obj.frame for obj in objects})
  files = frames * len(product.bands)
  estimate = files * survey.FRAME_FILE_BYTES
  report.frames = frames
  report.estimated_frame_bytes = estimate
  logging.info(
      '%s: %d objects in %d frames: %d band files (%s), about %.1f GB at '
      '~%.0f MB a file (less if already cached or staged)', report.dataset,
      len(objects), frames, files, product.bands, estimate / 1e9,
      survey.FRAME_FILE_BYTES / 1e6)
