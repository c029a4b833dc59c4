"""Features every skytfds dataset carries, and their values for one object."""

import logging

from absl import logging as absl_logging
import numpy as np
import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import survey

HOMEPAGE = 'https://www.sdss.org/dr17/'
LICENSE = (
    'SDSS data are public (https://www.sdss.org/collaboration/citing-sdss/); '
    'cite SDSS and follow its acknowledgement. skytfds code: Apache-2.0.')


class _TfdsDtypeNotice(logging.Filter):
  """Drops TFDS's own `FeatureConnector.dtype is deprecated` notice.

  The cause is in TFDS, not in any caller: `Tensor.decode_example` for
  `encoding='bytes'` reads the deprecated `self.dtype` itself
  (tensorflow_datasets/core/features/tensor_feature.py, `if self.dtype ==
  tf.uint64`, TFDS 4.9), and ra/dec are bytes-encoded float64 so that
  positions stay exact. So every load logged two warnings no user could act
  on. Only that one message is dropped; every other TFDS warning passes.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith('`FeatureConnector.dtype` is deprecated')


absl_logging.get_absl_logger().addFilter(_TfdsDtypeNotice())


def common_features() -> dict[str, tfds.features.FeatureConnector]:
  """Catalogue features shared by all four datasets (images are added per dataset)."""
  return {
      'objid': tfds.features.Scalar(
          np.int64, doc='SDSS photometric objid (exact; 0 when the catalogue had none).'),
      'specobjid': tfds.features.Text(
          doc='SDSS specobjid as exact decimal text (may exceed 2**63); empty if unknown.'),
      # Stored as raw float64 bytes: tf.train.Example floats are float32,
      # which would move positions by up to ~0.02 arcsec.
      'ra': tfds.features.Tensor(
          shape=(), dtype=np.float64, encoding='bytes',
          doc='Right ascension, degrees (J2000), exact float64.'),
      'dec': tfds.features.Tensor(
          shape=(), dtype=np.float64, encoding='bytes',
          doc='Declination, degrees (J2000), exact float64.'),
      'label': tfds.features.ClassLabel(names=list(survey.CLASSES)),
      'mags': tfds.features.Tensor(
          shape=(5,), dtype=np.float32,
          doc='ugriz model magnitudes (AB-ish); NaN where missing or a sentinel.'),
      'redshift': tfds.features.Scalar(
          np.float32,
          doc='Spectroscopic redshift. Metadata only: it gives the class away, '
              'so never feed it to a model.'),
      'run': tfds.features.Scalar(np.int32, doc='Imaging run.'),
      'rerun': tfds.features.Scalar(np.int32, doc=f'Processing rerun ({survey.RERUN} for DR8+).'),
      'camcol': tfds.features.Scalar(np.int32, doc='Camera column, 1..6.'),
      'field': tfds.features.Scalar(np.int32, doc='Field number within the run.'),
  }


def common_values(obj: catalog.CatalogObject) -> dict:
  """The common feature values of one catalogue object."""
  return {
      'objid': obj.objid,
      'specobjid': str(obj.specobjid) if obj.specobjid else '',
      'ra': np.float64(obj.ra),
      'dec': np.float64(obj.dec),
      'label': obj.cls,
      'mags': np.asarray(obj.mags, dtype=np.float32),
      'redshift': np.float32(obj.redshift),
      'run': obj.frame.run,
      'rerun': obj.frame.rerun,
      'camcol': obj.frame.camcol,
      'field': obj.frame.field,
  }
