"""What the four skytfds builders share: configs, catalogue features, splits, report.

A dataset builder subclasses `SkyDatasetBuilder` and names its image features
and its stage (frame stamps or cutouts); everything else is here, so every
dataset reads like the same table of contents.
"""

import abc
import collections
import re
import sys

from absl import logging
import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import settings
from skytfds import splits
from skytfds.datasets import beam_stage
from skytfds.datasets import configs
from skytfds.datasets import context as context_lib
from skytfds.datasets import features
from skytfds.datasets import frame_stage
from skytfds.datasets import report as report_lib
from skytfds.datasets import selection
from skytfds.services import http

SDSS_CITATION_NOTE = (
    'Funding for the Sloan Digital Sky Survey has been provided by the Alfred '
    'P. Sloan Foundation, the U.S. Department of Energy Office of Science, and '
    'the Participating Institutions. SDSS acknowledges support and resources '
    'from the Center for High-Performance Computing at the University of Utah. '
    'https://www.sdss.org/collaboration/citing-sdss/'
)


class BuildError(RuntimeError):
  """A build that cannot go on; the message says what to fix (catalogue
  errors list the offending lines under a one-line header)."""


class NothingToWrite(ValueError):
  """Every object of the build was skipped."""


# How TFDS' BeamWriter refuses a split that ended up with no example.
_EMPTY_BEAM_SPLIT = re.compile(
    r'total number of generated examples is 0 for split (\w+)')


class SkyDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of sdss_filters, sdss_rgb, sdss_cutouts and ps1_cutouts."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = configs.make_configs()

  @abc.abstractmethod
  def _image_features(self) -> dict[str, tfds.features.FeatureConnector]:
    """The dataset's own features (image or stamp), added to the common ones."""

  @abc.abstractmethod
  def _make_stage(self, ctx: context_lib.BuildContext):
    """A FrameStage or CutoutStage that fetches and reads back this dataset's images."""

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {**self._image_features(), **features.common_features()}),
        homepage=features.HOMEPAGE,
        supervised_keys=None,
    )

  def _download_and_prepare(self, dl_manager, download_config):
    use_beam = bool(download_config.beam_runner or download_config.beam_options)
    self._report = report_lib.BuildReport(
        dataset=self.name, config=self.builder_config.name)
    self._use_beam = use_beam
    try:
      super()._download_and_prepare(dl_manager, download_config)
    except (http.FetchError, catalog.CatalogError, settings.SettingsError,
            NothingToWrite) as e:
      # Per-object fetch failures are skips; what reaches here stops the build.
      _fail(e)
    except Exception as e:  # pylint: disable=broad-except  (any Beam runner's wrapper)
      empty = _EMPTY_BEAM_SPLIT.search(str(e)) if use_beam else None
      if not empty:
        raise
      # The default path leaves such a split out; a Beam pipeline cannot.
      split = empty.group(1)
      size = sum(splits.split_of(obj.key) == split for obj in self._objects)
      _fail(NothingToWrite(
          f'split {split}: all {size} objects '
          'were skipped on the Beam path, and TFDS cannot write an empty '
          'split. Build without --beam_pipeline_options: the default path '
          'leaves an empty split out and lists every skip with its reason '
          'in build_report.json.'))
    if use_beam and isinstance(self._stage, frame_stage.FrameStage):
      self._stage.count_staged_skips(
          frame_stage.group_by_frame(self._objects), self._report)
    for name, info in self.info.splits.items():
      self._report.written[name] = info.num_examples
    self._report.finish()
    self._report.write(self.data_path / 'build_report.json')
    self._report.log()
    print(self._report.summary(), file=sys.stderr)

  def _split_generators(self, dl_manager):
    config = self.builder_config
    ctx = context_lib.BuildContext(
        workdir=str(dl_manager.download_dir / 'skytfds'), release=config.release)
    objects = self._select(ctx)
    by_split = collections.defaultdict(list)
    for obj in objects:
      by_split[splits.split_of(obj.key)].append(obj)
    stage = self._stage = self._make_stage(ctx)
    self._objects = objects
    if self._use_beam:
      return {
          name: beam_stage.examples_transform(stage, by_split[name], objects)
          for name in splits.SPLITS if by_split[name]
      }
    stage.prepare(objects, self._report)
    written = [name for name in splits.SPLITS
               if any(True for _ in stage.examples(by_split[name]))]
    for name in splits.SPLITS:
      if by_split[name] and name not in written:
        self._report.notes.append(
            f'split {name}: all {len(by_split[name])} objects were skipped; '
            'the split is left out')
    if not written:
      raise NothingToWrite(
          f'all {len(objects)} objects were skipped '
          f'({dict(sorted(self._report.skipped.items()))}); nothing to write. '
          f'Examples: {dict(self._report.skipped_examples)}')
    return {name: self._generate_examples(stage, by_split[name]) for name in written}

  def _process_pipeline_result(self, pipeline_result):
    beam_stage.merge_metrics(pipeline_result, self._report)

  def _select(self, ctx: context_lib.BuildContext) -> list[catalog.CatalogObject]:
    async def select():
      async with http.Fetcher(ctx.cache_dir, max_concurrency=ctx.max_concurrency) as f:
        return await selection.select_objects(
            f, per_class=self.builder_config.per_class, release=ctx.release)

    selected = http.run(select())
    self._report.source = selected.source
    self._report.requested = len(selected.objects)
    self._report.notes.extend(selected.notes)
    logging.info('%s: %d objects from %s', self.name, len(selected.objects),
                 selected.source)
    return selected.objects

  def _generate_examples(self, stage, objects):
    for obj, images in stage.examples(objects):
      yield obj.key, {**images, **features.common_values(obj)}


def _fail(error: Exception) -> None:
  """Ends a build on an error the user must fix: one line, no traceback, under the CLI."""
  message = f'skytfds: {error}'
  if _running_tfds_cli():
    print(message, file=sys.stderr)
    raise SystemExit(1)
  raise BuildError(message) from error


def _running_tfds_cli() -> bool:
  return bool(sys.argv) and sys.argv[0].rsplit('/', 1)[-1] == 'tfds'
