"""What the four skytfds builders share: configs, features, the build report, errors.

Each dataset's `<name>_dataset_builder.py` reads like a TFDS builder: `_info`
(its features), `_split_generators` (start the build, one generator per
split) and `_generate_examples`. This base adds what all four share:

* `download_and_prepare` (TFDS' public entry point) writes
  `build_report.json` next to the data, and turns an error the user must fix
  into one `BuildError` whose message starts `skytfds:`;
* `start_build` selects the objects and stages their images (`build.Build`).
"""

import re
import sys

import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import settings
from skytfds.datasets import beam_stage
from skytfds.datasets import build as build_lib
from skytfds.datasets import configs
from skytfds.datasets import context as context_lib
from skytfds.datasets import features
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.services import http

# Errors the user must fix (or the service must come back for): one message.
_USER_ERRORS = (http.FetchError, catalog.CatalogError, settings.SettingsError,
                build_lib.NothingToWrite)
# How TFDS' BeamWriter refuses a split that ended up with no example.
_EMPTY_BEAM_SPLIT = re.compile(
    r'total number of generated examples is 0 for split (\w+)')


class BuildError(RuntimeError):
  """A build that cannot go on; the message says what to fix (catalogue
  errors list the offending lines under a one-line header)."""


class SkyDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of sdss_filters, sdss_rgb, sdss_cutouts and ps1_cutouts.

  Attributes:
    PRODUCT: what the dataset's images are (products.FILTERS, RGB, SDSS, PS1).
    report: the BuildReport of this builder's latest `download_and_prepare`
      (also written as `build_report.json` next to the data).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = configs.make_configs()
  PRODUCT: products.Product
  report: report_lib.BuildReport | None = None

  def sky_info(self, images: dict[str, tfds.features.FeatureConnector],
               supervised_keys: tuple[str, str]) -> tfds.core.DatasetInfo:
    """DatasetInfo with the dataset's image features and the catalogue features."""
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {**images, **features.common_features()}),
        homepage=features.HOMEPAGE,
        license=features.LICENSE,
        supervised_keys=supervised_keys,
    )

  def start_build(self, dl_manager) -> build_lib.Build:
    """Selects this config's objects and (default path) stages their images."""
    ctx = context_lib.BuildContext(
        workdir=str(dl_manager.download_dir / 'skytfds'),
        release=self.builder_config.release)
    config = self.builder_config
    return build_lib.Build.start(self.PRODUCT, ctx, config.per_class,
                                 config.selection, self.report)

  def download_and_prepare(self, **kwargs) -> None:
    """TFDS' download_and_prepare, then build_report.json; see the module doc."""
    download_config = kwargs.get('download_config') or tfds.download.DownloadConfig()
    self.report = report_lib.BuildReport(
        dataset=self.name, config=self.builder_config.name,
        beam=bool(download_config.beam_runner or download_config.beam_options))
    try:
      super().download_and_prepare(**kwargs)
    except _USER_ERRORS as e:
      # Per-object fetch failures are skips; what reaches here stops the build.
      raise BuildError(f'skytfds: {e}') from e
    except Exception as e:  # pylint: disable=broad-except  (any Beam runner's wrapper)
      empty = _EMPTY_BEAM_SPLIT.search(str(e)) if self.report.beam else None
      if not empty:
        raise
      # The default path leaves such a split out; a Beam pipeline cannot.
      split = empty.group(1)
      raise BuildError(
          f'skytfds: split {split}: all {self.report.requested_by_split[split]} '
          'objects were skipped on the Beam path, and TFDS cannot write an '
          'empty split. Build without --beam_pipeline_options: the default '
          'path leaves an empty split out and lists every skip with its '
          'reason in build_report.json.') from e
    for name, info in self.info.splits.items():
      self.report.written[name] = info.num_examples
    self.report.finish()
    self.report.write(self.data_path / 'build_report.json')
    self.report.log()
    print(self.report.summary(), file=sys.stderr)

  def _process_pipeline_result(self, pipeline_result):
    beam_stage.merge_metrics(pipeline_result, self.report)


def _print_build_errors(hook):
  """sys.excepthook that prints an uncaught BuildError as its message alone.

  Under `tfds build`, an error the user must fix (a bad catalogue row, a
  service that is down) then reads as one message and exit status 1, not a
  traceback through TFDS' internals. Every other exception goes to `hook`.
  Set SKYTFDS_TRACEBACK=1 to see BuildError's traceback too.
  """

  def excepthook(kind, value, traceback):
    if issubclass(kind, BuildError) and not settings.show_tracebacks():
      print(value, file=sys.stderr)
      return
    hook(kind, value, traceback)

  excepthook.skytfds = True
  return excepthook


if not getattr(sys.excepthook, 'skytfds', False):
  sys.excepthook = _print_build_errors(sys.excepthook)
