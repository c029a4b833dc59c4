"""Synthetic SDSS frame files and JPEG cutouts for tests (no real data needed).

A frame here is what the SAS serves: bz2 of a FITS file whose HDU0 is a
float32 1489 x 2048 image in nanomaggies with an SDSS-like TAN WCS, BUNIT and
FILTER. Every band shares the WCS (the bands are aligned), which is all the
stage tests need. JPEG helpers make whole cutouts and the damaged ones that
libjpeg decodes without an error.
"""

import bz2
import io
import pathlib
import warnings

from astropy import wcs as astropy_wcs
from astropy.io import fits
import numpy as np
from PIL import Image

from skytfds import catalog
from skytfds.services import sas

SHAPE = (1489, 2048)
FRAME = catalog.FrameId(3918, 301, 3, 213)


def header(band: str = 'r', **edits) -> fits.Header:
  """An SDSS-like HDU0 header (TAN WCS, nanomaggy, FILTER); None deletes a key."""
  h = fits.Header()
  h['BUNIT'] = 'nanomaggy'
  h['FILTER'] = band
  h['RADECSYS'] = 'ICRS'
  h['CTYPE1'] = 'RA---TAN'
  h['CTYPE2'] = 'DEC--TAN'
  h['CUNIT1'] = 'deg'
  h['CUNIT2'] = 'deg'
  h['CRPIX1'] = 1025.0
  h['CRPIX2'] = 745.0
  h['CRVAL1'] = 229.537988811
  h['CRVAL2'] = 42.7632764344
  h['CD1_1'] = 6.12244995309E-05
  h['CD1_2'] = 9.14089391883E-05
  h['CD2_1'] = 9.13919502146E-05
  h['CD2_2'] = -6.12100865715E-05
  for key, value in edits.items():
    if value is None:
      del h[key]
    else:
      h[key] = value
  return h


def wcs_of(h: fits.Header | None = None) -> astropy_wcs.WCS:
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # RADECSYS, as in real SDSS headers.
    return astropy_wcs.WCS(h if h is not None else header())


def sky(x: float, y: float) -> tuple[float, float]:
  """(ra, dec) of 0-based pixel (x = column, y = row) of the synthetic WCS."""
  ra, dec = wcs_of().all_pix2world(x, y, 0)
  return float(ra), float(dec)


def image(stars=(), sigma: float = 1.4) -> np.ndarray:
  """float32 frame pixels: Gaussian stars at (x, y, flux) on a zero sky."""
  out = np.zeros(SHAPE, np.float32)
  for x, y, flux in stars:
    r0, c0 = int(round(y)), int(round(x))
    rows, cols = np.mgrid[max(r0 - 15, 0):r0 + 16, max(c0 - 15, 0):c0 + 16]
    out[rows, cols] += (flux / (2 * np.pi * sigma**2) * np.exp(
        -((cols - x)**2 + (rows - y)**2) / (2 * sigma**2)))
  return out


def fits_bytes(pixels: np.ndarray | None = None,
               h: fits.Header | None = None) -> bytes:
  pixels = np.zeros(SHAPE, np.float32) if pixels is None else pixels
  hdu = fits.PrimaryHDU(data=pixels.astype('>f4'),
                        header=h if h is not None else header())
  out = io.BytesIO()
  fits.HDUList([hdu, fits.ImageHDU(np.zeros(2048, '>f4'))]).writeto(out)
  return out.getvalue()


def frame_bytes(band: str = 'r', pixels: np.ndarray | None = None,
                h: fits.Header | None = None) -> bytes:
  """A frame-<band>-*.fits.bz2 file's bytes."""
  return bz2.compress(fits_bytes(pixels, h if h is not None else header(band)), 1)


def frame_bytes_as_given(h: fits.Header, pixels: np.ndarray | None = None) -> bytes:
  """A frame file whose HDU0 header holds `h`'s cards exactly as given
  (astropy's writer would replace an odd BSCALE or BZERO by its own)."""
  full = fits.Header([('SIMPLE', True), ('BITPIX', -32), ('NAXIS', 2),
                      ('NAXIS1', SHAPE[1]), ('NAXIS2', SHAPE[0])])
  full.extend(h, strip=False)
  pixels = np.zeros(SHAPE, np.float32) if pixels is None else pixels
  raw = full.tostring(endcard=True, padding=True).encode()
  return bz2.compress(raw + pixels.astype('>f4').tobytes(), 1)


def frame_bytes_with_comments(count: int, band: str = 'r') -> bytes:
  """A frame whose HDU0 header carries `count` COMMENT cards (made as bytes:
  astropy would take minutes to add 400,000 cards)."""
  full = fits.Header([('SIMPLE', True), ('BITPIX', -32), ('NAXIS', 2),
                      ('NAXIS1', SHAPE[1]), ('NAXIS2', SHAPE[0])])
  full.extend(header(band), strip=False)
  cards = full.tostring(endcard=False, padding=False).encode()
  cards += b'COMMENT padding'.ljust(80) * count + b'END'.ljust(80)
  cards += b' ' * (-len(cards) % 2880)
  return bz2.compress(cards + np.zeros(SHAPE, '>f4').tobytes(), 1)


def sip_header(band: str = 'r', strength: float = 5e-4) -> fits.Header:
  """A TAN-SIP header whose distortion sky -> pixel cannot invert off-centre."""
  return header(band, CTYPE1='RA---TAN-SIP', CTYPE2='DEC--TAN-SIP', A_ORDER=2,
                B_ORDER=2, A_2_0=strength, B_0_2=strength)


def corrupt_bz2(data: bytes) -> bytes:
  """Stream header and end-of-stream marker kept, garbage between (as the
  emulator's corrupt_bz2 fault): passes the download checks, fails to decode."""
  middle = np.random.default_rng(0).integers(0, 256, len(data) - 21, np.uint8)
  return data[:10] + middle.tobytes() + data[-11:]


def write_mirror(root: pathlib.Path, frame: catalog.FrameId,
                 files: dict[str, bytes], release: int = 17) -> None:
  """Writes band files under `root` laid out as the SAS (a local mirror)."""
  for band, data in files.items():
    path = root / sas.frame_path(frame, band, release)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def objects(rows) -> list[catalog.CatalogObject]:
  """Catalogue objects from (frame, ra, dec, class) rows."""
  lines = ['ra,dec,class,run,rerun,camcol,field']
  for frame, ra, dec, cls in rows:
    lines.append(f'{ra:.7f},{dec:.7f},{cls},{frame.run},{frame.rerun},'
                 f'{frame.camcol},{frame.field}')
  return list(catalog.parse_catalog('\n'.join(lines) + '\n', 'test.csv').objects)


# -- JPEG cutouts -------------------------------------------------------------


def jpeg(size: int = 240, *, progressive: bool = False, quality: int = 75,
         seed: int = 0, **options) -> bytes:
  """A textured colour JPEG (gradients and noise, so every block is coded)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size]
  pixels = np.stack([(xx + yy) % 256, (2 * xx) % 256, (3 * yy) % 256], -1) // 2
  pixels = (pixels + rng.integers(0, 60, pixels.shape)).astype(np.uint8)
  out = io.BytesIO()
  Image.fromarray(pixels).save(out, 'JPEG', quality=quality,
                               progressive=progressive, **options)
  return out.getvalue()


def cut_in_half(data: bytes) -> bytes:
  """The first half, with the end marker FFD9 put back."""
  return data[:len(data) // 2] + b'\xff\xd9'


def zero_middle(data: bytes, count: int = 2000) -> bytes:
  middle = len(data) // 2
  return data[:middle] + bytes(count) + data[middle + count:]


def cut_after_first_scan(data: bytes) -> bytes:
  """A progressive JPEG ending (FFD9) where its second scan would start."""
  first = data.index(b'\xff\xda')
  second = data.index(b'\xff\xda', first + 2)
  return data[:second] + b'\xff\xd9'


def com_padded(data: bytes, total: int) -> bytes:
  """`data` with COM segments after SOI until it is `total` bytes long."""
  segments = []
  need = total - len(data)
  while need > 4:
    n = min(need - 4, 65533)
    segments.append(b'\xff\xfe' + (n + 2).to_bytes(2, 'big') + b'x' * n)
    need -= n + 4
  return data[:2] + b''.join(segments) + data[2:]
