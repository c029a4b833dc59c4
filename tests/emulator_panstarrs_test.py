"""emulator.panstarrs: ps1filenames.py tables and fitscut.cgi JPEGs."""

import io

from PIL import Image
import pytest

import emulator_testing as et
from skytfds.emulator import panstarrs


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_ps1_filenames_table_and_no_coverage():
  text = panstarrs.ps1_filenames(229.54, 42.76, 'gy')
  lines = text.strip().splitlines()
  assert lines[0].split() == ['projcell', 'subcell', 'ra', 'dec', 'filter',
                              'mjd', 'type', 'filename', 'shortname', 'badflag']
  assert [line.split()[4] for line in lines[1:]] == ['g', 'y']
  name = lines[1].split()[7]
  assert name.startswith('/rings.v3.skycell/')
  assert name.endswith('.stk.g.unconv.fits')
  south = panstarrs.ps1_filenames(10.0, -45.0)
  assert south.strip().splitlines() == [lines[0]]


def test_ps1_jpeg(sky):
  lines = panstarrs.ps1_filenames(229.54, 42.76,
                                  'yig').strip().splitlines()[1:]
  files = [line.split()[7] for line in lines]
  jpeg = sky.ps1_jpeg(229.54, 42.76, size=120, red=files[0], green=files[1],
                      blue=files[2])
  image = Image.open(io.BytesIO(jpeg))
  assert image.format == 'JPEG' and image.size == (120, 120)
  with pytest.raises(ValueError, match='dec'):
    sky.ps1_jpeg(10.0, -45.0, red=files[0], green=files[1], blue=files[2])
