"""What the four skytfds builders share: configs, features, the build report, errors.

Each dataset's `<name>_dataset_builder.py` reads like a TFDS builder: `_info`
(its features), `_split_generators` (start the build, one generator per
split) and `_generate_examples`. This base adds what all four share:

* `download_and_prepare` (TFDS' public entry point) checks the source,
  selects the objects and stages their images (`build.Build`) before TFDS
  deletes or writes anything, so a rebuild with `--overwrite` while a service
  is down keeps the old version; records where the data came from
  (`info.metadata['provenance']`, `build_report.json`), and turns an error
  the user must fix into one `BuildError` whose message starts `skytfds:`;
* `start_build` hands `_split_generators` that Build.
"""

import hashlib
import json
import os
import re
import sys
from typing import Any

from absl import logging
import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import files
from skytfds import settings
from skytfds.datasets import beam_stage
from skytfds.datasets import build as build_lib
from skytfds.datasets import configs
from skytfds.datasets import context as context_lib
from skytfds.datasets import features
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.services import http
from skytfds import version

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
    build: the Build of that `download_and_prepare` (objects, splits, stage).
  """

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = configs.make_configs()
  PRODUCT: products.Product
  report: report_lib.BuildReport | None = None
  build: build_lib.Build | None = None

  def __init__(self, *, config=None, **kwargs):
    # TFDS' own message for an unknown config lists close matches by
    # "name:version", which never match configs without a version, so it
    # ends in nothing ("...whose name closely match: "). Name them instead.
    name = config.partition(':')[0] if isinstance(config, str) else None
    if name is not None and name not in configs.NAMES:
      raise ValueError(
          f'{self.name} has no config {name!r}: choose one of '
          f'{", ".join(configs.NAMES)} (e.g. --config=tiny_dense)')
    super().__init__(config=config, **kwargs)

  def sky_info(self, images: dict[str, tfds.features.FeatureConnector],
               supervised_keys: tuple[str, str]) -> tfds.core.DatasetInfo:
    """DatasetInfo with the dataset's image features and the catalogue features."""
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {**images, **features.common_features()}),
        homepage=features.HOMEPAGE,
        license=features.LICENSE,
        supervised_keys=supervised_keys,
        metadata=tfds.core.MetadataDict(),
    )

  def start_build(self, dl_manager) -> build_lib.Build:
    """The Build that download_and_prepare started (or one started now)."""
    if self.build is None:
      self.build = self._start(self._context(dl_manager.download_dir))
    return self.build

  def _context(self, download_dir) -> context_lib.BuildContext:
    # The download dir TFDS' download manager uses (its default too); a URL
    # (gs://, s3://, file://, memory://) stays a string: pathlib would make
    # 'gs:/...' of it.
    if not download_dir:
      download_dir = self.data_dir_root / 'downloads'
    return context_lib.BuildContext(workdir=files.join(download_dir, 'skytfds'),
                                    release=self.builder_config.release)

  def _start(self, ctx: context_lib.BuildContext) -> build_lib.Build:
    config = self.builder_config
    self.report.provenance.update(self.source_identity(ctx))
    started = build_lib.Build.start(self.PRODUCT, ctx, config.per_class,
                                    config.selection, self.report)
    self.report.provenance['skytfds_version'] = version.version()
    self.report.provenance['simulated'] = _simulated(self.report, ctx)
    if self.report.emulators():
      self.report.provenance['emulator'] = self.report.emulators()
    self.info.metadata['provenance'] = dict(self.report.provenance)
    return started

  def source_identity(self, ctx: context_lib.BuildContext) -> dict[str, Any]:
    """What this build reads, as known before any request: compared on reuse."""
    catalogue = settings.catalog_source()
    used = {'skyserver': ctx.skyserver_url} if not catalogue else {}
    if isinstance(self.PRODUCT, products.FrameProduct):
      used['sas'] = ctx.sas_url
    elif self.PRODUCT is products.PS1:
      used['ps1'] = ctx.ps1_url
    else:
      used['skyserver'] = ctx.skyserver_url
    identity = {
        'services': {k: http.redact_url(v) for k, v in sorted(used.items())},
        'release': ctx.release,
        'selection': self.builder_config.selection,
    }
    if catalogue:
      identity['catalogue_file'] = http.redact_url(catalogue)
      if os.path.isfile(catalogue):
        with open(catalogue, 'rb') as f:
          identity['catalogue_sha256'] = hashlib.sha256(f.read()).hexdigest()
    return identity

  def _check_config(self) -> None:
    """A user catalogue is built as `custom`, and `custom` needs one."""
    catalogue = settings.catalog_source()
    name = self.builder_config.name
    if catalogue and name != configs.CUSTOM:
      raise settings.SettingsError(
          f'{settings.CATALOG_ENV} is set ({http.redact_url(catalogue)}): a '
          f'user catalogue is built as config {configs.CUSTOM!r}, never as '
          f'{name!r} (which means SkyServer\'s own selection). Build '
          f'{self.name}/{configs.CUSTOM}, or unset {settings.CATALOG_ENV} to '
          f'build {self.name}/{name}.')
    if not catalogue and name == configs.CUSTOM:
      raise settings.SettingsError(
          f'config {configs.CUSTOM!r} builds the catalogue named by '
          f'{settings.CATALOG_ENV}, which is not set: set it to your CSV or '
          f'JSON (path or URL), or build a standard config (e.g. '
          f'{self.name}/tiny).')

  def _check_same_source(self, ctx: context_lib.BuildContext) -> None:
    """Refuses to reuse data built from another source than the one named now."""
    recorded = dict(self.info.metadata.get('provenance') or {})
    if not recorded:
      return  # Built before provenance was recorded: TFDS reuses it.
    now = self.source_identity(ctx)
    differs = sorted(k for k in now if recorded.get(k) != now[k])
    if differs:
      was = {k: recorded.get(k) for k in differs}
      raise settings.SettingsError(
          f'{self.name}/{self.builder_config.name} in {self.data_dir} was built '
          f'from another source ({was}; now {({k: now[k] for k in differs})}). '
          'Rebuild it with --overwrite (tfds build ... --overwrite), or build '
          'into another --data_dir.')

  def download_and_prepare(self, *, download_dir=None, download_config=None,
                           **kwargs) -> None:
    """Checks, selects and stages, then TFDS writes; see the module doc."""
    download_config = download_config or tfds.download.DownloadConfig()
    self.report = report_lib.BuildReport(
        dataset=self.name, config=self.builder_config.name,
        beam=bool(download_config.beam_runner or download_config.beam_options))
    self.build = None
    prepare = lambda: super(SkyDatasetBuilder, self).download_and_prepare(
        download_dir=_tfds_download_dir(download_dir),
        download_config=download_config, **kwargs)
    try:
      self._check_config()
      ctx = self._context(download_dir)
      if (self.data_path.exists()
          and not download_config.download_mode.overwrite_dataset):
        self._check_same_source(ctx)
        prepare()  # TFDS reuses the data on disk.
        return
      # Everything that may fail for want of a service happens here, before
      # TFDS deletes an old version (--overwrite) or writes anything.
      self.build = self._start(ctx)
      prepare()
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


def _tfds_download_dir(download_dir):
  """What TFDS' own download manager is given for `download_dir`.

  TFDS opens it with etils.epath, which knows local paths and gs://, s3://,
  az://, hf:// but refuses file:// and memory://. Its download manager only
  makes empty `downloads/` folders for these builders (skytfds fetches
  through its own client into `<download_dir>/skytfds`), so a URL epath
  refuses becomes the same folder as a local path (file://) or TFDS' default
  (`<data_dir>/downloads`).
  """
  if not download_dir or not files.is_url(download_dir):
    return download_dir
  where = files.location(download_dir)
  if where.protocol in _EPATH_PROTOCOLS:
    return download_dir
  return where.path if where.protocol == 'file' else None


# URL protocols etils.epath (and so TFDS) opens itself.
_EPATH_PROTOCOLS = frozenset({'gs', 's3', 'az', 'hf'})


def _simulated(report: report_lib.BuildReport,
               ctx: context_lib.BuildContext) -> bool | None:
  """`provenance['simulated']`, from the cache's record when nothing was fetched.

  A build that made requests writes what its source said of itself next to
  the source's cache (`ctx.source_record`); a build served wholly from that
  cache reads it back (and the emulator origins it names), so its data is
  not `null` (unknown) merely for having been cached.
  """
  record = ctx.source_record
  simulated = report.simulated()
  if simulated is not None:
    try:
      files.write_text(record, json.dumps(
          {'simulated': simulated, 'emulator': report.emulators()},
          sort_keys=True))
    except OSError as e:  # Provenance of later cached builds only: go on.
      logging.warning('cannot write %s: %s', record, e)
    return simulated
  try:
    said = json.loads(record.read_bytes())
  except (OSError, ValueError):  # Cached before records were kept.
    return None
  if not isinstance(said, dict) or not isinstance(said.get('simulated'), bool):
    return None
  if isinstance(said.get('emulator'), dict):
    report.emulated.update(said['emulator'])
  return said['simulated']


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
