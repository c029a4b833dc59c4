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
