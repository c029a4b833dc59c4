"""Tests of the emulator's simulated sky (skytfds.emulator.sky and the modules
it draws with: fields, population, render, frame_files, cutouts, panstarrs)."""

import bz2
import io
import math
import pathlib
import warnings

from astropy.io import fits
from astropy.wcs import utils as wcs_utils
import numpy as np
from PIL import Image
import pytest

from skytfds import catalog as catalog_lib
from skytfds.emulator import fields
from skytfds.emulator import panstarrs
from skytfds.emulator import population
from skytfds.emulator import render
from skytfds.emulator import sky as sky_lib
from skytfds.imaging import frames as frames_lib

DATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
CATALOG = DATA / 'catalogs' / 'specobj_35k.csv'
SAS = DATA / 'sas'
FrameId = catalog_lib.FrameId
# Fields of specobj_35k.csv rich in stars and quasars.
STARS_AND_QSOS = (FrameId(752, 301, 6, 282), FrameId(109, 301, 6, 141))
# A field whose real frames ../shared/data/sas holds (one STAR, one GALAXY).
REAL_FIELD = FrameId(1035, 301, 6, 17)


@pytest.fixture(scope='module')
def catalog():
  if not CATALOG.is_file():
    pytest.skip('../shared/data not found: real SDSS frames are needed')
  return catalog_lib.parse_catalog(CATALOG.read_bytes(), CATALOG.name)


@pytest.fixture(scope='module')
def sky(catalog):
  return sky_lib.Sky(catalog, seed=0, sas_root=SAS)


@pytest.fixture(scope='module')
def r_frame_bytes(sky):
  return sky.frame_bytes(STARS_AND_QSOS[0], 'r')


def _open(data: bytes) -> fits.HDUList:
  return fits.open(io.BytesIO(bz2.decompress(data)))


# -- render maths -------------------------------------------------------------


@pytest.mark.parametrize('n', [0.5, 1.0, 2.5, 4.0])
def test_sersic_mixture_holds_half_the_light_within_re(n):
  weights, variances = render.sersic_mixture(n)
  assert weights.sum() == pytest.approx(1.0)
  inside = np.sum(weights * (1 - np.exp(-0.5 / variances)))
  assert inside == pytest.approx(0.5, abs=0.03)


def test_paint_conserves_flux_and_centres_the_peak():
  image = np.zeros((61, 61), np.float32)
  psf = render.Psf.double_gaussian(1.4)
  weights, covs = render.convolve_psf(*render.point_covariances(), psf,
                                      np.eye(2) / render.PIXEL_SCALE_ARCSEC)
  render.paint(image, 30.3, 29.8, 100.0, weights, covs, threshold=1e-6)
  assert image.sum() == pytest.approx(100.0, rel=1e-3)
  rows, cols = np.mgrid[0:61, 0:61]
  assert (image * cols).sum() / image.sum() == pytest.approx(30.3, abs=1e-3)
  assert (image * rows).sum() / image.sum() == pytest.approx(29.8, abs=1e-3)


def test_complete_mags_interpolates_missing_bands():
  nan = float('nan')
  assert population.complete_mags((nan, 20.0, nan, 18.0, nan)) == (
      20.0, 20.0, 19.0, 18.0, 18.0)
  assert population.complete_mags((nan,) * 5) is None


# -- simulated frames ----------------------------------------------------------


def test_simulated_frame_has_the_sdss_format(r_frame_bytes):
  assert r_frame_bytes[:3] == b'BZh'
  hdus = _open(r_frame_bytes)
  assert len(hdus) == 4
  header = hdus[0].header
  assert hdus[0].data.shape == (1489, 2048)
  assert hdus[0].data.dtype == np.dtype('>f4')
  assert header['BUNIT'] == 'nanomaggy'
  assert header['FILTER'].strip() == 'r'
  frame = STARS_AND_QSOS[0]
  assert (header['RUN'], header['CAMCOL'], header['FIELD']) == (
      frame.run, frame.camcol, frame.field)
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    decoded = frames_lib.decode_frame(r_frame_bytes, band='r')
  assert decoded.wcs.has_celestial
  scales = wcs_utils.proj_plane_pixel_scales(decoded.wcs) * 3600
  np.testing.assert_allclose(scales, [0.396, 0.396], rtol=1e-6)
  # Sky-subtracted, SDSS-like noise; floats truncated to 10 mantissa bits.
  image = hdus[0].data.astype(np.float32)
  assert abs(np.median(image)) < 0.01
  mad = 1.4826 * np.median(np.abs(image - np.median(image)))
  assert 0.015 < mad < 0.035
  assert not np.any(hdus[0].data.view('>u4') & 0x1FFF)
  assert hdus[1].data.shape == (2048,)
  assert hdus[2].data['ALLSKY'].shape == (1, 192, 256)


def test_compressed_size_is_like_a_real_frame(r_frame_bytes):
  assert 2e6 < len(r_frame_bytes) < 6e6


def test_every_catalogue_object_lies_inside_its_field(sky):
  for frame in sorted(sky.frame_ids())[:300]:
    assert sky.geometry(frame).margin_px >= fields.FIELD_MARGIN_PX - 1, frame


def test_field_rows_follow_the_scan_like_real_frames(sky):
  # Stripe 82 (inclination 0): rows run along RA, columns along dec.
  geometry = sky.geometry(STARS_AND_QSOS[1])
  assert geometry.incl == 0.0
  assert abs(geometry.cd[0, 1]) == pytest.approx(fields.PIXEL_SCALE_DEG,
                                                 rel=0.01)


def test_bands_are_offset_by_several_pixels(sky):
  geometry = sky.geometry(STARS_AND_QSOS[0])
  r_wcs = geometry.wcs('r')
  centre = r_wcs.wcs_pix2world([[1024.0, 744.0]], 0)
  shifts = {}
  for band in 'ugiz':
    x, y = geometry.wcs(band).wcs_world2pix(centre, 0)[0]
    shifts[band] = math.hypot(x - 1024.0, y - 744.0)
  assert 5 < shifts['g'] < 16
  assert 1 < shifts['i'] < 8
  assert all(s > 1 for s in shifts.values())


def test_star_peaks_lie_at_their_wcs_positions(sky):
  checked = 0
  for frame in STARS_AND_QSOS:
    image, wcs = sky.render_band(frame, 'r')
    geometry = sky.geometry(frame)
    for obj in sky.catalog.by_frame()[frame]:
      if obj.cls != 'STAR' or not obj.mags[2] < 21:
        continue
      neighbours = [s for s in sky.sources_near(obj.ra, obj.dec, 8 / 3600)
                    if s.mags[2] < 22.5 and (s.ra, s.dec) != (obj.ra, obj.dec)]
      if neighbours:
        continue                      # not isolated
      x, y = wcs.wcs_world2pix([[obj.ra, obj.dec]], 0)[0]
      col, row = int(round(x)), int(round(y))
      window = image[row - 4:row + 5, col - 4:col + 5]
      saturated = ((render.SATURATION_COUNTS - 200)
                   * render.NOISE['r'].nmgy_per_count)
      if window.max() >= saturated:
        continue
      dy, dx = np.unravel_index(np.argmax(window), window.shape)
      assert math.hypot(col - 4 + dx - x, row - 4 + dy - y) <= 1.0, (
          frame, obj.key, geometry.fwhm['r'])
      checked += 1
  assert checked >= 5


def _aperture_flux(image, wcs, ra, dec, radius=7.0):
  x, y = wcs.wcs_world2pix([[ra, dec]], 0)[0]
  rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  r0, c0 = int(round(y)), int(round(x))
  window = (slice(r0 - 12, r0 + 13), slice(c0 - 12, c0 + 13))
  inside = np.hypot(cols[window] - x, rows[window] - y) <= radius
  return float(image[window][inside].sum())


def test_quasars_are_bluer_in_u_minus_g_than_stars(sky):
  colours = {'QSO': [], 'STAR': []}
  for frame in STARS_AND_QSOS:
    u_image, u_wcs = sky.render_band(frame, 'u')
    g_image, g_wcs = sky.render_band(frame, 'g')
    for obj in sky.catalog.by_frame()[frame]:
      if obj.cls not in colours or not obj.mags[1] < 21:
        continue
      fu = _aperture_flux(u_image, u_wcs, obj.ra, obj.dec)
      fg = _aperture_flux(g_image, g_wcs, obj.ra, obj.dec)
      if fu > 0 and fg > 0:
        colours[obj.cls].append(-2.5 * math.log10(fu / fg))
  assert len(colours['QSO']) >= 5 and len(colours['STAR']) >= 5
  assert np.median(colours['QSO']) < np.median(colours['STAR']) - 0.3


def test_frames_are_deterministic(catalog, sky):
  frame = STARS_AND_QSOS[1]
  again = sky_lib.Sky(catalog, seed=0).frame_bytes(frame, 'u')
  assert again == sky.frame_bytes(frame, 'u')
  other = sky_lib.Sky(catalog, seed=1).render_band(frame, 'u')[0]
  assert not np.array_equal(other, sky.render_band(frame, 'u')[0])


def test_field_without_objects_raises_key_error(sky):
  with pytest.raises(KeyError, match='holds no object'):
    sky.frame_bytes(FrameId(1, 301, 1, 11), 'r')


def test_bad_band_raises_value_error(sky):
  with pytest.raises(ValueError, match='band'):
    sky.frame_bytes(STARS_AND_QSOS[0], 'y')


# -- real frames ---------------------------------------------------------------


def test_real_frame_comes_back_byte_for_byte(sky):
  for band in 'ur':
    path = SAS / 'dr17/eboss/photoObj/frames/301/1035/6' / (
        f'frame-{band}-001035-6-0017.fits.bz2')
    assert sky.frame_bytes(REAL_FIELD, band) == path.read_bytes()
  # A held field that the catalogue does not list is served too.
  path = (SAS / 'dr17/eboss/photoObj/frames/301/3918/3'
          / 'frame-g-003918-3-0213.fits.bz2')
  assert sky.frame_bytes(FrameId(3918, 301, 3, 213), 'g') == path.read_bytes()


# -- cutouts -------------------------------------------------------------------


def _brightest_near_centre(jpeg: bytes, half: int = 20) -> tuple[int, int]:
  rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert('RGB'), np.float32)
  luminance = rgb.sum(axis=-1)
  h, w = luminance.shape
  window = luminance[h // 2 - half:h // 2 + half, w // 2 - half:w // 2 + half]
  dy, dx = np.unravel_index(np.argmax(window), window.shape)
  return dx - half, dy - half


def test_cutout_is_a_jpeg_centred_on_the_object(sky):
  stars = [o for o in sky.catalog.by_frame()[STARS_AND_QSOS[0]]
           if o.cls == 'STAR' and 16 < o.mags[2] < 19]
  star = stars[0]
  jpeg = sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=200, height=160)
  image = Image.open(io.BytesIO(jpeg))
  assert image.format == 'JPEG'
  assert image.size == (200, 160)
  dx, dy = _brightest_near_centre(jpeg)
  assert abs(dx) <= 2 and abs(dy) <= 2
  assert jpeg == sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=200,
                                 height=160)


def test_cutout_from_real_frames(sky):
  star = [o for o in sky.catalog.by_frame()[REAL_FIELD] if o.cls == 'STAR'][0]
  assert sky.real_frames.cover(star.ra, star.dec)
  jpeg = sky.cutout_jpeg(star.ra, star.dec, scale=0.4, width=64, height=96)
  image = Image.open(io.BytesIO(jpeg))
  assert image.size == (64, 96)
  dx, dy = _brightest_near_centre(jpeg, half=10)
  assert abs(dx) <= 2 and abs(dy) <= 2


def test_cutout_rejects_bad_sizes(sky):
  with pytest.raises(ValueError, match='width'):
    sky.cutout_jpeg(10.0, 0.0, width=32)


# -- Pan-STARRS ----------------------------------------------------------------


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


# -- preview -------------------------------------------------------------------


def test_preview_is_an_irg_rendering_of_the_field(sky, tmp_path):
  frame = STARS_AND_QSOS[0]
  path = tmp_path / 'preview.png'
  sky.preview_png(frame, path)
  rgb = np.asarray(Image.open(path))
  assert rgb.shape == (1489, 2048, 3) and rgb.dtype == np.uint8
  assert rgb.max() == 255 and np.median(rgb) < 40
