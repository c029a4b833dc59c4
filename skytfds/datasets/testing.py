"""`SkyBuilderTestCase`: TFDS' DatasetBuilderTestCase for skytfds builders.

The real builder code runs end to end over its `dummy_data/catalog.csv`
(12 objects in one field), through the real service clients, against the
emulator on 127.0.0.1: only the inputs are small.
"""

import os
import pathlib
import shutil
import tempfile
from unittest import mock

import tensorflow_datasets as tfds

from skytfds import catalog
from skytfds import settings
from skytfds.emulator import app
from skytfds.emulator import sky


class SkyBuilderTestCase(tfds.testing.DatasetBuilderTestCase):
  """Subclasses set DATASET_CLASS; splits follow the dummy catalogue's hashes."""

  SKIP_CHECKSUMS = True  # Services are queried, not files with fixed checksums.
  BUILDER_CONFIG_NAMES_TO_TEST = ['custom']  # the dummy catalogue
  SPLITS = {'train': 6, 'validation': 3, 'test': 3}

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    # TFDS uses dummy_data as the download directory: work on a copy so that
    # the fetch cache and staged stamps never land in the source tree. Set at
    # class creation: TFDS memoizes `dummy_data` the first time it is read.
    source = cls.DATASET_CLASS.code_path.parent / 'dummy_data'
    cls._tmp = pathlib.Path(tempfile.mkdtemp(prefix='skytfds-dummy-'))
    cls.EXAMPLE_DIR = str(shutil.copytree(source, cls._tmp / 'dummy_data'))

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    assert pathlib.Path(cls.dummy_data) == pathlib.Path(cls.EXAMPLE_DIR), (
        'dummy_data must be the temporary copy, not the source tree')
    catalog_path = pathlib.Path(cls.EXAMPLE_DIR) / 'catalog.csv'
    objects = catalog.parse_catalog(catalog_path.read_bytes(), str(catalog_path))
    cls._emulator = app.EmulatorThread(
        sky.Sky(objects, seed=0), cache_dir=str(cls._tmp / 'emulator')).start()
    cls._env = mock.patch.dict(os.environ, {
        **cls._emulator.environ(),
        settings.CATALOG_ENV: str(catalog_path),
    })
    cls._env.start()

  @classmethod
  def tearDownClass(cls):
    cls._env.stop()
    cls._emulator.stop()
    shutil.rmtree(cls._tmp, ignore_errors=True)
    super().tearDownClass()
