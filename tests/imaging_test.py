"""Tests of skytfds.imaging: frame decoding, stamps, colour rendering.

The "must show" tests run on the real SDSS frames in ../shared/data (skipped
when absent); the rest use small synthetic frames built in memory.
"""

import bz2
import csv
import io
import pathlib
import time
import warnings

from astropy import wcs as astropy_wcs
from astropy.io import fits
import numpy as np
from PIL import Image
import pytest

import synthetic_frames as sf

from skytfds import imaging
from skytfds.imaging import frames as frames_lib
from skytfds.imaging import jpeg as jpeg_lib
from skytfds.imaging import stamps as stamps_lib

DATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
FIELD = '003918-3-0213'
FRAMES_DIR = DATA / 'sas/dr17/eboss/photoObj/frames/301/3918/3'
LABELS = DATA / 'labels' / f'photometric_{FIELD}.csv'
JPEG = DATA / 'reference_jpeg' / f'frame-irg-{FIELD}.jpg'
STAMP = 64


def _require_data():
  if not (FRAMES_DIR / f'frame-r-{FIELD}.fits.bz2').exists():
    pytest.skip('../shared/data not found: real SDSS frames are needed')


@pytest.fixture(scope='module')
def real_bytes():
  """band -> compressed bytes of the five frames of 003918-3-0213."""
  _require_data()
  return {band: (FRAMES_DIR / f'frame-{band}-{FIELD}.fits.bz2').read_bytes()
          for band in 'ugriz'}


@pytest.fixture(scope='module')
def real_frames(real_bytes):
  """band -> decoded Frame (each real frame decoded once per module)."""
  frames = {}
  seconds = {}
  for band, data in real_bytes.items():
    start = time.perf_counter()
    frames[band] = imaging.decode_frame(data, band=band, source=band)
    seconds[band] = time.perf_counter() - start
  print('\ndecode_frame seconds per frame:',
        {b: round(s, 3) for b, s in seconds.items()})
  return frames


@pytest.fixture(scope='module')
def labels():
  _require_data()
  with LABELS.open() as f:
    return list(csv.DictReader(f))


def _stars(labels, faint=21.0, bright=15.0):
  rows = [row for row in labels if row['class'] == 'STAR' and
          bright < float(row['r_aper']) < faint]
  return (np.array([float(row['ra']) for row in rows]),
          np.array([float(row['dec']) for row in rows]))


def _peak_offsets(stamps, box=16):
  """Distance (px) of the brightest pixel of each central box from centre."""
  size = stamps.shape[-1]
  lo = (size - box) // 2
  central = stamps[:, lo:lo + box, lo:lo + box]
  flat = central.reshape(len(central), -1).argmax(axis=1)
  rows, cols = np.unravel_index(flat, (box, box))
  centre = (size - 1) / 2.0
  return np.hypot(rows + lo - centre, cols + lo - centre)


# ---------------------------------------------------------------- real frames


def test_real_frame_decodes(real_frames):
  frame = real_frames['r']
  assert frame.band == 'r'
  assert frame.image.shape == (1489, 2048)
  assert frame.image.dtype == np.float32
  assert frame.image.dtype.isnative
  assert frame.image.flags.writeable
  assert np.isfinite(frame.image).all()
  assert frame.wcs.has_celestial and frame.wcs.naxis == 2
  ra, dec = frame.wcs.all_pix2world(1023.5, 744.0, 0)
  assert abs(ra - 229.54) < 0.01 and abs(dec - 42.76) < 0.01


def test_stamps_are_centred_on_stars(real_frames, labels):
  """Must show: r peaks of 15 < r_aper < 21 stars within 1.5 px of centre."""
  ra, dec = _stars(labels)
  assert len(ra) >= 90
  stamps, masks = imaging.cut_stamps(real_frames['r'], ra, dec, STAMP)
  on_frame = ~masks.all(axis=(1, 2))
  offsets = _peak_offsets(stamps[on_frame])
  fraction = float(np.mean(offsets <= 1.5))
  print(f'\ncentred fraction (r, {on_frame.sum()} stars 15<r_aper<21): '
        f'{fraction:.3f}')
  assert fraction >= 0.90
  # cut_stamp (one object) gives the same stamps as cut_stamps.
  one, one_mask = imaging.cut_stamp(real_frames['r'], ra[0], dec[0], STAMP)
  np.testing.assert_array_equal(one, stamps[0])
  np.testing.assert_array_equal(one_mask, masks[0])


def test_cut_bands_aligns_bands(real_frames, labels):
  """Must show: g and i peaks are centred too; a same-pixel cut is not."""
  ra, dec = _stars(labels, faint=19.5)
  assert len(ra) > 20
  cut = [imaging.cut_bands(real_frames, a, d, STAMP) for a, d in zip(ra, dec)]
  stacks = np.stack([c[0] for c in cut])
  masks = np.stack([c[1] for c in cut])
  keep = ~masks.any(axis=(1, 2))
  assert stacks.shape[1:] == (STAMP, STAMP, 5)
  r_stamps, _ = imaging.cut_stamps(real_frames['r'], ra, dec, STAMP)
  # The reference band of cut_bands is exactly cut_stamp's r stamp.
  np.testing.assert_array_equal(stacks[..., 2], r_stamps)
  r_frame = real_frames['r']
  for k, band in ((1, 'g'), (3, 'i')):
    aligned = _peak_offsets(stacks[keep][..., k])
    naive_frame = imaging.Frame(image=real_frames[band].image,
                                wcs=r_frame.wcs, band=band)
    naive, _ = imaging.cut_stamps(naive_frame, ra[keep], dec[keep], STAMP)
    naive_offsets = _peak_offsets(naive, box=32)
    print(f'\n{band}: aligned peaks within 1.5 px: '
          f'{np.mean(aligned <= 1.5):.3f} (median {np.median(aligned):.2f} '
          f'px); same-pixel cut median offset {np.median(naive_offsets):.2f} '
          'px')
    assert np.mean(aligned <= 1.5) >= 0.9
    assert np.median(aligned) <= 1.0
    assert np.median(naive_offsets) >= {'g': 7.0, 'i': 2.5}[band]


def test_affine_band_map_matches_wcs(real_frames):
  r_wcs = real_frames['r'].wcs
  rows, cols = np.mgrid[0:1489:31, 0:2048:29].astype(np.float64)
  for band in 'ugiz':
    exact = stamps_lib._transform(r_wcs, real_frames[band].wcs, cols, rows)
    affine = stamps_lib._map_grid(r_wcs, real_frames[band].wcs, 1023.5,
                                  744.0, 1023.5, 744.0, cols, rows)
    assert np.abs(np.subtract(exact, affine)).max() < 1e-3


def _block_mean(image, n=2):
  h, w = image.shape[0] // n * n, image.shape[1] // n * n
  return image[:h, :w].reshape(h // n, n, w // n, n, -1).mean(axis=(1, 3))


def _as_sdss_jpeg(rgb):
  """Stores rgb as SDSS's JPEGs are stored (4:2:0 chroma), losslessly else."""
  buffer = io.BytesIO()
  Image.fromarray(rgb).save(buffer, 'JPEG', quality=100, subsampling=2)
  return np.asarray(Image.open(buffer).convert('RGB'))


def _channel_correlations(mine, sdss):
  a = _block_mean(_as_sdss_jpeg(mine).astype(np.float64))
  b = _block_mean(sdss.astype(np.float64))
  return [float(np.corrcoef(a[..., k].ravel(), b[..., k].ravel())[0, 1])
          for k in range(3)]


def test_frame_rgb_matches_sdss_jpeg(real_frames):
  """Must show: our aligned i,r,g rendering correlates with SDSS's JPEG.

  SDSS's frame-irg JPEG stores colour at 2x2-pixel resolution (4:2:0 chroma
  subsampling), so at single pixels its R and B channels carry the r band's
  (luma) noise. The comparison therefore stores our rendering the same way
  and correlates each channel at the JPEG's colour resolution (2x2 means).
  Full-resolution numbers are printed too.
  """
  if not JPEG.exists():
    pytest.skip(f'{JPEG} not found: SDSS reference JPEG needed')
  sdss = np.asarray(Image.open(JPEG).convert('RGB'))
  ours = imaging.frame_rgb(real_frames)  # flipped: row 0 = FITS row 1488
  assert ours.shape == sdss.shape == (1489, 2048, 3)
  assert ours.dtype == np.uint8
  correlations = _channel_correlations(ours, sdss)
  full = [float(np.corrcoef(ours[..., k].ravel().astype(np.float64),
                            sdss[..., k].ravel())[0, 1]) for k in range(3)]
  naive = imaging.lupton_rgb(real_frames['i'].image, real_frames['r'].image,
                             real_frames['g'].image)[::-1]
  naive_correlations = _channel_correlations(naive, sdss)
  print('\nRGB vs SDSS JPEG, per channel (R=i, G=r, B=g): aligned',
        np.round(correlations, 3).tolist(), '| full-resolution raw',
        np.round(full, 3).tolist(), '| unaligned',
        np.round(naive_correlations, 3).tolist())
  assert min(correlations) >= 0.9
  # Alignment is what makes i and g match.
  assert naive_correlations[0] < 0.8 and naive_correlations[2] < 0.8


# ------------------------------------------------------------ decode refusals


_header = sf.header  # An SDSS-like HDU0 header; None deletes a key.


def _fits_bytes(image=None, header=None):
  if image is None:
    image = np.zeros((1489, 2048), '>f4')
  hdu = fits.PrimaryHDU(data=image, header=header or _header())
  buffer = io.BytesIO()
  fits.HDUList([hdu, fits.ImageHDU(np.zeros(2048, '>f4'))]).writeto(buffer)
  return buffer.getvalue()


def _frame_bytes(image=None, header=None):
  return bz2.compress(_fits_bytes(image, header), 1)


@pytest.fixture(scope='module')
def good_bytes():
  image = np.zeros((1489, 2048), '>f4')
  image[700, 1000] = 5.0
  return _frame_bytes(image)


def test_decode_synthetic_frame(good_bytes):
  frame = imaging.decode_frame(good_bytes, band='r', source='ok')
  assert frame.band == 'r'
  assert frame.image.dtype == np.float32 and frame.image.dtype.isnative
  assert frame.image[700, 1000] == 5.0 and frame.image.sum() == 5.0
  assert isinstance(frame.wcs, astropy_wcs.WCS) and frame.wcs.has_celestial


def test_decode_accepts_bytes_like(good_bytes):
  for data in (bytearray(good_bytes), memoryview(good_bytes)):
    assert imaging.decode_frame(data).image[700, 1000] == 5.0


def test_decode_multistream_bz2():
  raw = _fits_bytes()
  data = bz2.compress(raw[:5000], 1) + bz2.compress(raw[5000:], 1)
  frame = imaging.decode_frame(data, band='r')
  assert frame.image.shape == (1489, 2048)


def _refused(data, *fragments, **kwargs):
  with pytest.raises(imaging.FrameError) as info:
    imaging.decode_frame(data, source='frame-r-x.fits.bz2', **kwargs)
  message = str(info.value)
  assert message.startswith('frame-r-x.fits.bz2: '), message
  assert '\n' not in message
  for fragment in fragments:
    assert fragment in message, message
  return message


def test_refuses_truncated_bz2(good_bytes):
  _refused(good_bytes[:len(good_bytes) // 2], 'truncated bz2 stream',
           'fetch it again')


def test_refuses_truncated_real_frame(real_bytes):
  data = real_bytes['r']
  _refused(data[:len(data) - 1000], 'truncated bz2 stream',
           f'{len(data) - 1000} compressed bytes')


def test_refuses_corrupt_bz2(good_bytes):
  data = bytearray(good_bytes)
  data[20:40] = b'\x55' * 20
  _refused(bytes(data), 'corrupt bz2 data')


def test_refuses_trailing_garbage(good_bytes):
  _refused(good_bytes + b'<html>', 'trailing bytes after the bz2 stream')


def test_refuses_not_bz2():
  _refused(b'<html><body>502 Bad Gateway</body></html>',
           'not a bz2 stream', "b'<html><b'")
  _refused(b'', 'not a bz2 stream')


def test_refuses_bz2_bomb():
  _refused(bz2.compress(b'\0' * 1001), 'decompresses to more than 1000 bytes',
           'bz2 bomb', max_bytes=1000)
  bomb = bz2.compress(b'\0' * (imaging.MAX_DECOMPRESSED_BYTES + 1))
  _refused(bomb, f'more than {imaging.MAX_DECOMPRESSED_BYTES} bytes')


def test_accepts_exactly_the_cap():
  raw = _fits_bytes()
  imaging.decode_frame(bz2.compress(raw, 1), max_bytes=len(raw))
  _refused(bz2.compress(raw, 1), f'more than {len(raw) - 1} bytes',
           max_bytes=len(raw) - 1)


def test_refuses_not_fits():
  _refused(bz2.compress(b'hello, not a FITS file' * 200), 'not a FITS file',
           'SIMPLE')


def test_refuses_wrong_shape():
  _refused(_frame_bytes(np.zeros((100, 200), '>f4')),
           'BITPIX=-32 with shape (100, 200)', 'expected float32',
           'shape (1489, 2048)')


def test_refuses_wrong_dtype():
  _refused(_frame_bytes(np.zeros((1489, 2048), '>i2')), 'BITPIX=16',
           'expected float32')


def test_refuses_missing_wcs():
  header = _header(CTYPE1=None, CTYPE2=None, CRVAL1=None, CRVAL2=None,
                   CD1_1=None, CD1_2=None, CD2_1=None, CD2_2=None,
                   CUNIT1=None, CUNIT2=None, CRPIX1=None, CRPIX2=None)
  _refused(_frame_bytes(header=header), 'no celestial WCS',
           "'(missing)'")


def test_refuses_non_celestial_wcs():
  header = _header(CTYPE1='LINEAR', CTYPE2='LINEAR', CUNIT1='m', CUNIT2='m')
  _refused(_frame_bytes(header=header), 'no celestial WCS', 'LINEAR')


def test_refuses_singular_wcs():
  header = _header(CD1_1=0.0, CD1_2=0.0, CD2_1=0.0, CD2_2=0.0)
  _refused(_frame_bytes(header=header), 'invalid WCS', 'pixel scale 3600')
  header = _header(CD1_1=1e-4, CD1_2=1e-4, CD2_1=1e-4, CD2_2=1e-4)
  _refused(_frame_bytes(header=header), 'invalid WCS', 'pixel scale 0 arcsec')


def test_refuses_wrong_bunit():
  _refused(_frame_bytes(header=_header(BUNIT='counts')),
           "BUNIT is 'counts', expected 'nanomaggy'")
  _refused(_frame_bytes(header=_header(BUNIT=None)),
           "BUNIT is '(missing)'")


def test_refuses_wrong_band(good_bytes):
  _refused(good_bytes, "FILTER is 'r' but band 'g' was asked", band='g')
  _refused(good_bytes, "band 'x' asked is not one of ugriz", band='x')
  _refused(_frame_bytes(header=_header(FILTER=None)), "FILTER is '(missing)'")


def test_refuses_nan_pixels():
  image = np.zeros((1489, 2048), '>f4')
  image[3, 4] = np.nan
  image[5, 6] = np.inf
  _refused(_frame_bytes(image), '2 NaN or infinite pixels')


def test_refuses_truncated_fits_data():
  raw = _fits_bytes()
  _refused(bz2.compress(raw[:100 * 2880], 1), 'FITS data truncated')


# ------------------------------------------------------- synthetic stamps


def _synthetic_frame(band='r', shift=(0.0, 0.0), stars=(), sigma=1.4):
  """A TAN frame with Gaussian stars at (ra, dec, flux nanomaggies).

  `shift` (dx, dy) moves this band's CRPIX, so it is offset from r.
  """
  header = _header(band, CRPIX1=1025.0 + shift[0], CRPIX2=745.0 + shift[1])
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # RADECSYS, as in real SDSS headers
    wcs = astropy_wcs.WCS(header)
  rows, cols = np.mgrid[0:1489, 0:2048]
  image = np.zeros((1489, 2048), np.float32)
  for ra, dec, flux in stars:
    x, y = wcs.all_world2pix(ra, dec, 0)
    r0, c0 = int(round(float(y))), int(round(float(x)))
    sl = (slice(max(r0 - 15, 0), r0 + 16), slice(max(c0 - 15, 0), c0 + 16))
    image[sl] += (flux / (2 * np.pi * sigma**2) * np.exp(
        -((cols[sl] - x)**2 + (rows[sl] - y)**2) / (2 * sigma**2)))
  return imaging.Frame(image=image, wcs=wcs, band=band)


def _sky(frame, x, y):
  ra, dec = frame.wcs.all_pix2world(x, y, 0)
  return float(ra), float(dec)


def _centroid(stamp):
  rows, cols = np.indices(stamp.shape)
  total = stamp.sum()
  return (rows * stamp).sum() / total, (cols * stamp).sum() / total, total


@pytest.mark.parametrize('size', [31, 32, 64])
def test_stamp_subpixel_centred_and_flux_conserved(size):
  probe = _synthetic_frame()
  ra, dec = _sky(probe, 812.37, 530.81)
  frame = _synthetic_frame(stars=[(ra, dec, 100.0)])
  stamp, mask = imaging.cut_stamp(frame, ra, dec, size)
  assert stamp.shape == mask.shape == (size, size)
  assert stamp.dtype == np.float32 and not mask.any()
  row, col, flux = _centroid(stamp)
  centre = (size - 1) / 2.0
  assert abs(row - centre) < 0.01 and abs(col - centre) < 0.01
  assert flux == pytest.approx(100.0, rel=2e-3)


def test_stamp_off_frame_is_masked_not_crashing():
  frame = _synthetic_frame()
  ra, dec = _sky(frame, -200.0, 700.0)
  stamp, mask = imaging.cut_stamp(frame, ra, dec, 64)
  assert mask.all() and not stamp.any()
  # Other side of the sky: NaN pixel positions, all masked.
  stamp, mask = imaging.cut_stamp(frame, 49.5, -42.7, 16)
  assert mask.all() and not stamp.any()
  stacks, masks = imaging.cut_bands({'r': frame}, ra, dec, 8, bands='r')
  assert masks.all() and not stacks.any()


def test_stamp_at_edge_pads_and_masks():
  frame = _synthetic_frame()
  frame.image[:] = 1.0
  ra, dec = _sky(frame, 2.0, 1486.0)  # near column 0 and the last row
  stamp, mask = imaging.cut_stamp(frame, ra, dec, 16)
  centre = 7.5
  cols = 2.0 + np.arange(16) - centre
  rows = 1486.0 + np.arange(16) - centre
  expected = (rows[:, None] > 1488.5) | (cols[None, :] < -0.5)
  np.testing.assert_array_equal(mask, expected)
  assert (stamp[mask] == 0).all()
  np.testing.assert_allclose(stamp[~mask], 1.0, atol=1e-5)


def test_cut_bands_follows_each_band_wcs():
  probe = _synthetic_frame()
  ra, dec = _sky(probe, 1500.3, 300.6)
  stars = [(ra, dec, 50.0)]
  frames = {'r': _synthetic_frame('r', stars=stars),
            'g': _synthetic_frame('g', shift=(2.2, -9.4), stars=stars),
            'i': _synthetic_frame('i', shift=(1.3, -3.1), stars=stars)}
  stack, mask = imaging.cut_bands(frames, ra, dec, 33, bands='gri')
  assert stack.shape == (33, 33, 3) and not mask.any()
  for k in range(3):
    row, col, flux = _centroid(stack[..., k])
    assert abs(row - 16) < 0.01 and abs(col - 16) < 0.01
    assert flux == pytest.approx(50.0, rel=2e-3)
  with pytest.raises(ValueError, match="no frame for band 'u'"):
    imaging.cut_bands(frames, ra, dec, 33)


def test_stamp_size_validated():
  frame = _synthetic_frame()
  for size in (0, -3, 2.5):
    with pytest.raises(ValueError, match='stamp size'):
      imaging.cut_stamp(frame, 229.5, 42.7, size)


def test_align_to_shifts_bands_onto_reference():
  probe = _synthetic_frame()
  ra, dec = _sky(probe, 1000.0, 600.0)
  stars = [(ra, dec, 80.0)]
  frames = {'r': _synthetic_frame('r', stars=stars),
            'g': _synthetic_frame('g', shift=(2.2, -9.4), stars=stars)}
  aligned, mask = imaging.align_to(frames)
  assert aligned['r'] is frames['r'].image
  window = (slice(580, 621), slice(980, 1021))
  row, col, _ = _centroid(aligned['g'][window])
  assert abs(row + 580 - 600.0) < 0.01 and abs(col + 980 - 1000.0) < 0.01
  # g pixel = r pixel + (2.2, -9.4): r rows < 8.9 and r columns > 2045.3
  # fall off g's frame and are masked.
  assert mask[:8].all() and mask[:, 2046:].all()
  assert not mask[9:, :2045].any()


# ------------------------------------------------------------------- colour


def test_lupton_rgb_basic_properties():
  shape = (4, 5)
  zero = np.zeros(shape, np.float32)
  assert not imaging.lupton_rgb(zero, zero, zero).any()
  assert not imaging.lupton_rgb(zero - 1, zero - 1, zero - 1).any()
  grey = np.full(shape, 0.05, np.float32)
  rgb = imaging.lupton_rgb(grey, grey, grey, scales=(1, 1, 1))
  assert rgb.dtype == np.uint8 and rgb.shape == shape + (3,)
  assert (rgb[..., 0] == rgb[..., 1]).all()
  assert (rgb[..., 1] == rgb[..., 2]).all()
  # Saturation keeps the colour: a bright red (i-only) source stays pure red.
  bright = np.full(shape, 1e4, np.float32)
  rgb = imaging.lupton_rgb(bright, zero, zero)
  assert (rgb[..., 0] == 255).all() and not rgb[..., 1:].any()
  # Monotonic in flux.
  levels = np.linspace(0, 5, 50, dtype=np.float32)[None, :]
  rgb = imaging.lupton_rgb(levels, levels, levels)
  assert (np.diff(rgb[0, :, 1].astype(int)) >= 0).all()
  with pytest.raises(ValueError, match='shapes differ'):
    imaging.lupton_rgb(zero, zero, np.zeros((2, 2)))
  with pytest.raises(ValueError, match='must be > 0'):
    imaging.lupton_rgb(zero, zero, zero, q=0)


# ------------------------------------------- odd frames, caps, error kinds


def _sip_header(strength=5e-4):
  """A TAN-SIP header whose distortion sky -> pixel cannot invert off-centre."""
  return _header(CTYPE1='RA---TAN-SIP', CTYPE2='DEC--TAN-SIP', A_ORDER=2,
                 B_ORDER=2, A_2_0=strength, B_0_2=strength)


@pytest.mark.parametrize('edits, fragment', [
    ({'BSCALE': 'abc'}, "BSCALE = 'abc' in HDU0 header: expected a finite number"),
    ({'BSCALE': 0.0}, 'BSCALE = 0.0 in HDU0 header: expected a finite number '
     'other than 0'),
    ({'BZERO': 'x'}, "BZERO = 'x'"),
    ({'BSCALE': True}, 'BSCALE = True'),
])
def test_unusable_scaling_is_a_bad_frame(edits, fragment):
  with pytest.raises(frames_lib.BadFrame) as info:
    imaging.decode_frame(bz2.compress(_raw_fits(_header(**edits)), 1),
                         source='f band r')
  assert fragment in str(info.value)
  assert str(info.value).startswith('f band r: ')


def _raw_fits(header, pixels=None):
  """HDU0 written card by card (astropy would rewrite BSCALE/BZERO itself)."""
  full = fits.Header([('SIMPLE', True), ('BITPIX', -32), ('NAXIS', 2),
                      ('NAXIS1', 2048), ('NAXIS2', 1489)])
  full.extend(header, strip=False)
  if pixels is None:
    pixels = np.zeros((1489, 2048), '>f4')
  return full.tostring(endcard=True, padding=True).encode() + pixels.astype(
      '>f4').tobytes()


def test_wcs_that_cannot_be_inverted_is_a_bad_frame():
  message = _refused(_frame_bytes(header=_sip_header()),
                     'the WCS of HDU0 cannot be inverted on the frame',
                     'NoConvergence')
  assert '\n' not in message
  # Mild distortion inverts: decoded.
  imaging.decode_frame(_frame_bytes(header=_sip_header(1e-6)))


def test_a_wcs_failing_at_the_object_is_a_stamp_error():
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # RADECSYS
    wcs = astropy_wcs.WCS(_sip_header())
  frame = imaging.Frame(image=np.zeros((1489, 2048), np.float32), wcs=wcs,
                        band='r', source='003918-3-0213 band r')
  ra, dec = frame.wcs.all_pix2world(2000.0, 1400.0, 0)
  with pytest.raises(stamps_lib.StampError) as info:
    imaging.cut_bands({'r': frame}, float(ra), float(dec), 16, bands='r')
  message = str(info.value)
  assert message.startswith('003918-3-0213 band r: the WCS cannot map the stamp '
                            '(NoConvergence: '), message
  assert '\n' not in message
  centre = frame.wcs.all_pix2world(1024.0, 744.0, 0)
  imaging.cut_bands({'r': frame}, *map(float, centre), 16, bands='r')  # Fine.


def test_header_over_the_card_cap_is_too_large():
  header = _header()
  for n in range(frames_lib.MAX_HEADER_CARDS):
    header.add_comment(f'padding {n}')
  with pytest.raises(frames_lib.FrameTooLarge,
                     match='HDU0 header has more than 1000 cards'):
    imaging.decode_frame(_frame_bytes(header=header), source='x')
  small = _header()
  for n in range(frames_lib.MAX_HEADER_CARDS - 40):
    small.add_comment(f'padding {n}')
  imaging.decode_frame(_frame_bytes(header=small))


def test_compressed_file_over_the_cap_is_too_large(good_bytes):
  assert frames_lib.MAX_COMPRESSED_BYTES > 2 * 3_801_535  # Largest real file.
  cap = len(good_bytes) - 1
  with pytest.raises(frames_lib.FrameTooLarge, match=(
      f'{len(good_bytes)} compressed bytes, more than the {cap}-byte cap')):
    imaging.decode_frame(good_bytes, max_compressed_bytes=cap)
  imaging.decode_frame(good_bytes, max_compressed_bytes=cap + 1)


def test_errors_say_what_kind_of_failure_they_are(good_bytes):
  corrupt = bytearray(good_bytes)
  corrupt[20:40] = b'\x55' * 20
  for data in (bytes(corrupt), good_bytes[:len(good_bytes) // 2],
               good_bytes + b'junk', b'<html>'):
    with pytest.raises(frames_lib.CorruptStream):
      imaging.decode_frame(data)
  for data in (_frame_bytes(np.zeros((100, 200), '>f4')),
               _frame_bytes(header=_header(BUNIT='counts'))):
    with pytest.raises(frames_lib.FrameError) as info:
      imaging.decode_frame(data)
    assert type(info.value) is frames_lib.FrameError
  assert imaging.decode_frame(good_bytes, source='s').source == 's'


def test_lupton_rgb_saturates_float32_extremes_without_nan():
  big = np.full((2, 2), 3.4e38, np.float32)
  zero = np.zeros((2, 2), np.float32)
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    rgb = imaging.lupton_rgb(big, zero, zero)
    assert (rgb[..., 0] == 255).all() and not rgb[..., 1:].any()
    assert (imaging.lupton_rgb(big, big, big) == 255).all()
    assert not imaging.lupton_rgb(-big, zero, np.full((2, 2), np.nan)).any()


# --------------------------------------------------- strict JPEG structure


def _pil_jpeg(size=48, mode='RGB', **options):
  rng = np.random.default_rng(size)
  pixels = rng.integers(0, 256, (size, size, 3), np.uint8)
  out = io.BytesIO()
  Image.fromarray(pixels).convert(mode).save(out, 'JPEG', **options)
  return out.getvalue()


@pytest.mark.parametrize('size', [1, 8, 17, 240])
@pytest.mark.parametrize('options', [
    {}, {'progressive': True}, {'subsampling': 0}, {'subsampling': 1},
    {'subsampling': 2, 'progressive': True}, {'restart_marker_blocks': 3},
    {'restart_marker_blocks': 2, 'progressive': True}, {'quality': 100},
    {'mode': 'L'}, {'mode': 'L', 'progressive': True},
], ids=lambda o: '-'.join(f'{k}={v}' for k, v in o.items()) or 'default')
def test_jpeg_verify_accepts_whole_jpegs(size, options):
  options = dict(options)
  data = _pil_jpeg(size, options.pop('mode', 'RGB'), **options)
  info = jpeg_lib.verify(data)
  assert (info.width, info.height) == (size, size)
  assert info.coding == ('progressive' if options.get('progressive')
                         else 'baseline')


def test_jpeg_verify_accepts_sdss_own_jpeg():
  _require_data()
  info = jpeg_lib.verify(JPEG.read_bytes())
  assert (info.width, info.height, info.components) == (2048, 1489, 3)


def _refused_jpeg(data, fragment):
  with pytest.raises(jpeg_lib.JpegError) as info:
    jpeg_lib.verify(data)
  assert fragment in str(info.value), info.value
  assert '\n' not in str(info.value)


def test_jpeg_verify_refuses_what_libjpeg_only_warns_about():
  data = _pil_jpeg(240)
  half = data[:len(data) // 2] + b'\xff\xd9'
  _refused_jpeg(half, 'the data ends before the last of its 225 MCUs')
  middle = len(data) // 2
  zeroed = data[:middle] + bytes(2000) + data[middle + 2000:]
  with pytest.raises(jpeg_lib.JpegError, match='corrupt data'):
    jpeg_lib.verify(zeroed)
  progressive = _pil_jpeg(240, progressive=True)
  first = progressive.index(b'\xff\xda')
  second = progressive.index(b'\xff\xda', first + 2)
  _refused_jpeg(progressive[:second] + b'\xff\xd9',
                'never fully coded after 1 scan(s): the progressive JPEG was '
                'cut short')
  # PIL decodes all three without a word.
  for damaged in (half, zeroed, progressive[:second] + b'\xff\xd9'):
    Image.open(io.BytesIO(damaged)).load()


def test_jpeg_verify_refuses_broken_structure():
  data = _pil_jpeg(48, restart_marker_blocks=2)
  rst = data.index(b'\xff\xd1')
  _refused_jpeg(data[:rst + 1] + b'\xd3' + data[rst + 2:],
                'restart marker RST3 where RST1 belongs')
  _refused_jpeg(data + b'trailing junk', '13 bytes after the end marker')
  jpeg_lib.verify(data + b'\r\n\x00')  # Padding some servers add.
  _refused_jpeg(data[:-2], 'without an end marker')
  _refused_jpeg(b'\x89PNG\r\n', 'not a JPEG')
  dht = data.index(b'\xff\xc4')
  length = int.from_bytes(data[dht + 2:dht + 4], 'big')
  _refused_jpeg(data[:dht] + data[dht + 2 + length:],
                'uses an undefined Huffman table')
  sof = data.index(b'\xff\xc0')
  _refused_jpeg(data[:sof + 1] + b'\xc3' + data[sof + 2:], 'not supported')
  _refused_jpeg(data[:sof + 5] + b'\x00\x00' + data[sof + 7:],
                'frame of 48x0 px')
