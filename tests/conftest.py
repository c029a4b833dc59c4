"""Shared test fixtures: where the real SDSS data lives."""

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data() -> pathlib.Path:
  """../shared/data (real SDSS frames and catalogues); skips the test when absent."""
  if not (SHARED_DATA / 'sas').is_dir():
    pytest.skip(f'{SHARED_DATA} not found: these tests need the real SDSS data '
                '(see ../shared/data/SOURCES.md)')
  return SHARED_DATA
