"""datasets.features: the catalogue features, exact positions, and a quiet load."""

import logging

import numpy as np
import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds.datasets import features


class _Exact(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    common = features.common_features()
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {'ra': common['ra'], 'dec': common['dec'], 'label': common['label']}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples()}

  def _generate_examples(self):
    for i, ra in enumerate((229.5400000001, 0.1234567890123)):
      yield i, {'ra': np.float64(ra), 'dec': np.float64(-ra / 10), 'label': 'QSO'}


def test_positions_are_exact_and_the_load_logs_no_dtype_notice(tmp_path, caplog):
  builder = _Exact(data_dir=tmp_path)
  builder.download_and_prepare()
  with caplog.at_level(logging.WARNING):
    ras = sorted(float(x['ra']) for x in tfds.as_numpy(builder.as_dataset(split='train')))
  assert ras == [0.1234567890123, 229.5400000001]
  assert not [r for r in caplog.records if 'dtype' in r.getMessage()]


def test_only_the_tfds_dtype_notice_is_dropped():
  notice = features._TfdsDtypeNotice()  # pylint: disable=protected-access

  def record(message):
    return logging.LogRecord('absl', logging.WARNING, __file__, 1, message, (), None)

  assert not notice.filter(record('`FeatureConnector.dtype` is deprecated. Please'))
  assert notice.filter(record('Some other TFDS warning'))


def test_common_values_match_the_common_features():
  obj = catalog.CatalogObject(
      key='1237648720693755918', objid=1237648720693755918, ra=1.5, dec=-2.5,
      cls='STAR', frame=catalog.FrameId(3918, 301, 3, 213),
      mags=(20.0, 19.0, 18.5, 18.2, 18.0), specobjid=2**64 - 5, redshift=0.0,
      plate=0, mjd=0, fiberid=0, source='test line 2')
  values = features.common_values(obj)
  assert set(values) == set(features.common_features())
  assert values['specobjid'] == str(2**64 - 5)  # Exact, above int64.
