"""Features every skytfds dataset carries, and their values for one object."""

import numpy as np
import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import survey

HOMEPAGE = 'https://www.sdss.org/dr17/'


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
