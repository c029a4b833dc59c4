"""Every dataset knows where it came from; nothing cached crosses sources.

Two emulators with different seeds stand for two different services (say,
the real SkyServer and a mirror): their cutouts of the same positions differ.
"""

import json
from unittest import mock

import pytest
import tensorflow_datasets as tfds

import skytfds  # pylint: disable=unused-import  (registers the builders)
from skytfds import settings
from skytfds.datasets import builder as builder_lib
from skytfds.emulator import app
from skytfds.emulator import catalogs
from skytfds.emulator import sky as sky_lib

pytestmark = pytest.mark.network
ENV_KEYS = (settings.SKYSERVER_URL_ENV, settings.SAS_URL_ENV,
            settings.PS1_URL_ENV, settings.CATALOG_ENV)
OVERWRITE = tfds.download.DownloadConfig(
    download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)


@pytest.fixture(scope='module')
def services():
  """Two emulators of the same catalogue whose skies differ (seeds 0 and 7)."""
  catalog = catalogs.load_catalog(None, seed=1)
  with app.EmulatorThread(sky_lib.Sky(catalog, seed=0)) as first, \
       app.EmulatorThread(sky_lib.Sky(catalog, seed=7)) as second:
    yield first, second


def _build(monkeypatch, root, env, name='sdss_cutouts/tiny', config=None):
  for key in ENV_KEYS:
    monkeypatch.delenv(key, raising=False)
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  builder = tfds.builder(name, data_dir=root / 'data')
  builder.download_and_prepare(download_dir=root / 'downloads',
                               download_config=config)
  return builder


def _images(builder) -> dict[int, bytes]:
  decoders = {'image': tfds.decode.SkipDecoding()}
  out = {}
  for split in builder.info.splits:
    for ex in tfds.as_numpy(builder.as_dataset(split=split, decoders=decoders)):
      out[int(ex['objid'])] = ex['image']
  return out


def _report(builder) -> dict:
  return json.loads((builder.data_path / 'build_report.json').read_text())


def test_provenance_is_recorded_and_visible_in_info(services, monkeypatch,
                                                    tmp_path):
  first, _ = services
  _build(monkeypatch, tmp_path, first.environ())
  # A fresh builder reads it back from the data directory.
  info = tfds.builder('sdss_cutouts/tiny', data_dir=tmp_path / 'data').info
  provenance = info.metadata['provenance']
  assert provenance['services'] == {'skyserver': first.url}
  assert provenance['selection'] == 'spread'
  assert provenance['release'] == 17
  assert provenance['simulated'] is True
  assert provenance['emulator']  # what the emulator said about itself
  assert provenance['skytfds_version']
  queries = provenance['catalogue']['queries']
  assert queries[0].startswith('SELECT s.class, COUNT(*) AS n ')
  assert all('s.zWarning = 0' in q for q in queries)
  report = tmp_path / 'data' / 'sdss_cutouts' / 'tiny' / '1.0.0' / (
      'build_report.json')
  assert json.loads(report.read_text())['provenance'] == provenance


def test_a_build_served_wholly_from_the_cache_still_knows_it_is_simulated(
    services, monkeypatch, tmp_path):
  """The emulator's header is never seen by a build that fetches nothing (a
  user catalogue, every cutout cached): the record written beside the
  source's cache says what the source said."""
  first, _ = services
  rows = catalogs.generated_catalog_csv(seed=1).splitlines()[:21]
  (tmp_path / 'twenty.csv').write_text('\n'.join(rows) + '\n')
  env = {**first.environ(), settings.CATALOG_ENV: str(tmp_path / 'twenty.csv')}
  name = 'sdss_cutouts/custom'
  built = _build(monkeypatch, tmp_path, env, name=name)
  ctx = built.build.stage.ctx
  record = json.loads(ctx.source_record.read_text())
  assert record == {'simulated': True, 'emulator': {first.url: mock.ANY}}

  def cached_build(data_dir):
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(download_dir=tmp_path / 'downloads')
    assert builder.report.fetch['requests'] == 0  # All 20 from the cache.
    return builder.info.metadata['provenance']

  provenance = cached_build(tmp_path / 'again')
  assert provenance['simulated'] is True
  assert provenance['emulator'] == record['emulator']
  ctx.source_record.unlink()  # A cache kept before records were: unknown.
  assert cached_build(tmp_path / 'third')['simulated'] is None


def test_nothing_cached_from_one_service_reaches_another(services, monkeypatch,
                                                         tmp_path):
  first, second = services
  from_first = _images(_build(monkeypatch, tmp_path, first.environ()))
  # Same data and download dirs, the other service, --overwrite.
  again = _build(monkeypatch, tmp_path, second.environ(), config=OVERWRITE)
  from_second = _images(again)
  fresh = _images(_build(monkeypatch, tmp_path / 'fresh', second.environ()))
  assert from_second == fresh
  assert set(from_second) == set(from_first)
  assert all(from_second[k] != from_first[k] for k in from_second)
  assert _report(again)['fetch']['cache_hits'] == 0
  assert again.info.metadata['provenance']['services'] == {
      'skyserver': second.url}


def test_reusing_data_of_another_source_is_refused(services, monkeypatch,
                                                   tmp_path):
  first, second = services
  _build(monkeypatch, tmp_path, first.environ())
  _build(monkeypatch, tmp_path, first.environ())  # Same source: reused.
  with pytest.raises(builder_lib.BuildError) as error:
    _build(monkeypatch, tmp_path, second.environ())
  message = str(error.value)
  assert '\n' not in message
  assert 'was built from another source' in message
  assert first.url in message and second.url in message
  assert '--overwrite' in message


def test_overwrite_while_the_service_is_down_keeps_the_old_version(
    services, monkeypatch, tmp_path):
  first, _ = services
  old = _images(_build(monkeypatch, tmp_path, first.environ()))
  down = {**first.environ(), settings.SKYSERVER_URL_ENV: 'http://127.0.0.1:9'}
  with pytest.raises(builder_lib.BuildError):
    _build(monkeypatch, tmp_path, down, config=OVERWRITE)
  kept = tfds.builder('sdss_cutouts/tiny', data_dir=tmp_path / 'data')
  assert kept.is_prepared()
  assert _images(kept) == old


def test_a_user_catalogue_is_built_as_custom_only(services, monkeypatch,
                                                  tmp_path):
  first, _ = services
  path = tmp_path / 'three.csv'
  path.write_text(catalogs.generated_catalog_csv(seed=1).splitlines()[0] + '\n'
                  + '\n'.join(catalogs.generated_catalog_csv(seed=1)
                              .splitlines()[1:4]) + '\n')
  env = {**first.environ(), settings.CATALOG_ENV: str(path)}
  with pytest.raises(builder_lib.BuildError) as error:
    _build(monkeypatch, tmp_path, env)
  assert str(error.value).startswith(
      f'skytfds: SKYTFDS_CATALOG is set ({path}): a user catalogue is built '
      "as config 'custom', never as 'tiny'")
  assert not (tmp_path / 'data' / 'sdss_cutouts' / 'tiny').exists()
  built = _build(monkeypatch, tmp_path, env, name='sdss_cutouts/custom')
  report = _report(built)
  assert report['selection'] == 'catalogue'
  assert report['provenance']['catalogue']['rows'] == 3
  assert len(report['provenance']['catalogue']['sha256']) == 64
  # Three rows cannot fill every split: said at build time, with what to do.
  assert any('empty' in n and 'give at least ~50 objects' in n
             for n in report['notes'])
  monkeypatch.delenv(settings.CATALOG_ENV)
  with pytest.raises(builder_lib.BuildError, match="config 'custom' builds"):
    tfds.builder('sdss_cutouts/custom', data_dir=tmp_path / 'other'
                 ).download_and_prepare(download_dir=tmp_path / 'dl')
