"""The Beam path (DirectRunner, 2 worker processes) writes the same examples as the default path."""

import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import skytfds  # pylint: disable=unused-import  (registers the builders)
from skytfds import catalog
from skytfds.emulator import app
from skytfds.emulator import sky as sky_lib

beam = pytest.importorskip('apache_beam', reason='apache-beam (the [beam] extra) is not installed')

DUMMY = (pathlib.Path(skytfds.__file__).parent / 'datasets' / 'sdss_filters' / 'dummy_data'
         / 'catalog.csv')


def _examples(builder):
  image = 'stamp' if 'stamp' in builder.info.features else 'image'
  decoders = None if image == 'stamp' else {'image': tfds.decode.SkipDecoding()}
  out = {}
  for split in builder.info.splits:
    for ex in tfds.as_numpy(builder.as_dataset(split=split, decoders=decoders)):
      out[int(ex['objid'])] = (split, int(ex['label']), ex[image])
  return out


@pytest.mark.parametrize(
    'name', ['sdss_filters', pytest.param('sdss_cutouts', marks=pytest.mark.slow)])
def test_beam_and_default_paths_write_the_same_examples(name, tmp_path, monkeypatch):
  objects = catalog.parse_catalog(DUMMY.read_bytes(), str(DUMMY))
  with app.EmulatorThread(sky_lib.Sky(objects, seed=0),
                          cache_dir=str(tmp_path / 'emulator')) as emulator:
    for key, value in {**emulator.environ(), 'SKYTFDS_CATALOG': str(DUMMY)}.items():
      monkeypatch.setenv(key, value)
    default = tfds.builder(f'{name}/custom', data_dir=tmp_path / 'default')
    default.download_and_prepare(download_dir=tmp_path / 'dl-default')
    options = beam.options.pipeline_options.PipelineOptions([
        '--runner=DirectRunner', '--direct_num_workers=2',
        '--direct_running_mode=multi_processing'])
    on_beam = tfds.builder(f'{name}/custom', data_dir=tmp_path / 'beam')
    on_beam.download_and_prepare(
        download_dir=tmp_path / 'dl-beam',
        download_config=tfds.download.DownloadConfig(beam_options=options))
  want, got = _examples(default), _examples(on_beam)
  assert len(want) == len(objects.objects) and set(got) == set(want)
  for objid, (split, label, image) in want.items():
    assert got[objid][:2] == (split, label)
    np.testing.assert_array_equal(got[objid][2], image)
  report = (on_beam.data_path / 'build_report.json').read_text()
  assert '"objects_written": 12' in report


def test_beam_workers_share_caches_through_a_url(tmp_path, monkeypatch):
  """--download_dir=file:///...: 2 worker processes fetch and stage through
  fsspec (not pathlib: no shared POSIX path is assumed), and a default build
  afterwards finds every frame staged there."""
  objects = catalog.parse_catalog(DUMMY.read_bytes(), str(DUMMY))
  monkeypatch.chdir(tmp_path)  # A squeezed 'file:/...' would land here.
  download_dir = f'file://{tmp_path}/dl'
  with app.EmulatorThread(sky_lib.Sky(objects, seed=0),
                          cache_dir=str(tmp_path / 'emulator')) as emulator:
    for key, value in {**emulator.environ(), 'SKYTFDS_CATALOG': str(DUMMY)}.items():
      monkeypatch.setenv(key, value)
    options = beam.options.pipeline_options.PipelineOptions([
        '--runner=DirectRunner', '--direct_num_workers=2',
        '--direct_running_mode=multi_processing'])
    on_beam = tfds.builder('sdss_filters/custom', data_dir=tmp_path / 'beam')
    on_beam.download_and_prepare(
        download_dir=download_dir,
        download_config=tfds.download.DownloadConfig(beam_options=options))
    ctx = on_beam.build.stage.ctx
    assert ctx.workdir == f'{download_dir}/skytfds'
    assert ctx.storage == 'fsspec:file'
    after = tfds.builder('sdss_filters/custom', data_dir=tmp_path / 'default')
    after.download_and_prepare(download_dir=download_dir)
  assert not (tmp_path / 'file:').exists()
  work = tmp_path / 'dl' / 'skytfds'
  staged = sorted((work / 'staged' / ctx.source_key).rglob('*'))
  assert not [p for p in (work).rglob('*') if p.name.startswith('.tmp-')]
  frames = {o.frame for o in objects.objects}
  assert len([p for p in staged if p.suffix == '.npz']) == len(frames)
  assert list((work / 'cache' / ctx.source_key / 'sas').rglob('*.fits.bz2'))
  # The workers' staged stamps, read back by a process that decoded nothing.
  assert after.report.frames_decoded == 0
  assert f'{len(frames)} frames needed, {len(frames)} already staged' in (
      after.report.notes)
  want, got = _examples(on_beam), _examples(after)
  assert len(want) == len(objects.objects) and set(got) == set(want)
  for objid, (split, label, image) in want.items():
    assert got[objid][:2] == (split, label)
    np.testing.assert_array_equal(got[objid][2], image)
