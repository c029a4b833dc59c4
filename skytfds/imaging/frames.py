"""Decoding of SDSS calibrated imaging frames (`frame-*.fits.bz2`).

Pure functions: bytes in, `Frame` out. No file or network I/O happens here.

An SDSS frame (photoObj/frames, DR8 onwards) is a bzip2-compressed FITS file of
four HDUs. Only HDU0 is used: a 2048 x 1489 float32 image of sky-subtracted,
calibrated flux in nanomaggies (m = 22.5 - 2.5 log10(flux)), with a TAN WCS
of its own for each band. HDU1-3 (calibration vector, sky model, astrometry)
are never parsed.

NaN policy: real SDSS frames contain no NaN or infinite pixels, so a frame
that does is refused (`FrameError`) rather than silently patched: a non-finite
pixel means damaged or foreign data, and a patched pixel would carry no flag
into the datasets.

Errors say what kind of failure they are, because each calls for something
else: `CorruptStream` (the bz2 stream itself is damaged: a transfer fault,
worth fetching again), `FrameTooLarge` (over a size cap: never fetched again),
`BadFrame` (a whole file with a header value or a WCS that cannot be used)
and plain `FrameError` (a whole file that is not an SDSS frame).

Caps (a real frame file is 2.9-3.8 MB, decompresses to 12,447,360 bytes and
has a header of 85-96 cards): MAX_COMPRESSED_BYTES, MAX_DECOMPRESSED_BYTES,
MAX_HEADER_CARDS.
"""

from __future__ import annotations

import bz2
import dataclasses
import io
import math
import warnings

from astropy import wcs as astropy_wcs
from astropy.io import fits
import numpy as np

from skytfds import survey

# (rows, columns) of HDU0: NAXIS2 = 1489, NAXIS1 = 2048.
FRAME_SHAPE = (1489, 2048)
# A real frame decompresses to about 12.4 MB; anything above this is refused.
MAX_DECOMPRESSED_BYTES = 64 * 2**20
# bz2 cannot make 12.4 MB of pixels much bigger: a larger file is no frame.
MAX_COMPRESSED_BYTES = 24 * 2**20
# HDU0 header cards (80 bytes each) read before the END card; real: 85-96.
MAX_HEADER_CARDS = 1000
_CARD = 80
_BLOCK = 2880
BUNIT = 'nanomaggy'
# Plausible pixel scales (arcsec per pixel) for a frame's WCS; SDSS is 0.396.
_MIN_SCALE_ARCSEC = 0.05
_MAX_SCALE_ARCSEC = 5.0


class FrameError(ValueError):
  """A frame's bytes cannot be used; the message names the source and why."""


class CorruptStream(FrameError):
  """The bz2 stream is damaged (corrupt, cut short, trailing bytes, not bz2)."""


class FrameTooLarge(FrameError):
  """The file is over a size cap (compressed size, header cards)."""


class BadFrame(FrameError):
  """A whole FITS file whose header values or WCS cannot be used."""


@dataclasses.dataclass
class Frame:
  """One band of one SDSS field.

  Attributes:
    image: float32 [1489, 2048] flux in nanomaggies, native byte order,
      indexed [row, column] (FITS y, x; 0-based).
    wcs: the celestial 2-D WCS of this band (pixel x = column, y = row).
    band: 'u', 'g', 'r', 'i' or 'z', from the FILTER keyword.
    source: the name messages give it (e.g. '003918-3-0213 band r').
  """
  image: np.ndarray
  wcs: astropy_wcs.WCS
  band: str
  source: str = ''


def _name(source: str) -> str:
  return source or '<frame bytes>'


def _decompress(data: bytes, source: str, max_bytes: int) -> bytes:
  """bunzip2 `data` (one or more concatenated streams), at most `max_bytes`."""
  if not data.startswith(b'BZh'):
    raise CorruptStream(
        f'{_name(source)}: not a bz2 stream (starts with {bytes(data[:8])!r}); '
        'expected the bytes of a frame-*.fits.bz2 file: delete the cached copy '
        'and fetch it again')
  chunks = []
  total = 0
  remaining = data
  while True:
    decompressor = bz2.BZ2Decompressor()
    try:
      out = decompressor.decompress(remaining, max_length=max_bytes - total + 1)
    except (OSError, EOFError) as e:
      raise CorruptStream(
          f'{_name(source)}: corrupt bz2 data ({e}) after {total} decompressed '
          'bytes: delete the cached copy and fetch it again') from None
    total += len(out)
    if total > max_bytes:
      raise FrameError(
          f'{_name(source)}: decompresses to more than {max_bytes} bytes (a '
          'real frame is about 12.4 MB): refusing it as a bz2 bomb or not an '
          'SDSS frame')
    chunks.append(out)
    if not decompressor.eof:
      raise CorruptStream(
          f'{_name(source)}: truncated bz2 stream: {len(data)} compressed '
          'bytes end before the end-of-stream marker ('
          f'{total} bytes decompressed): the download was cut short; delete '
          'the cached copy and fetch it again')
    remaining = decompressor.unused_data
    if not remaining:
      break
    if not remaining.startswith(b'BZh'):
      raise CorruptStream(
          f'{_name(source)}: {len(remaining)} trailing bytes after the bz2 '
          f'stream (starting {bytes(remaining[:8])!r}): delete the cached copy '
          'and fetch it again')
  return chunks[0] if len(chunks) == 1 else b''.join(chunks)


def _header_end(raw: bytes, source: str, max_cards: int) -> int:
  """The offset of HDU0's data: past its END card, padded to 2880 bytes."""
  limit = min(len(raw), max_cards * _CARD)
  for pos in range(0, limit, _CARD):
    if raw[pos:pos + 8] == b'END     ':
      return -(-(pos + _CARD) // _BLOCK) * _BLOCK
  if limit < max_cards * _CARD:
    raise FrameError(f'{_name(source)}: FITS header of HDU0 has no END card '
                     f'in its {len(raw)} bytes')
  raise FrameTooLarge(
      f'{_name(source)}: HDU0 header has more than {max_cards} cards (a real '
      'frame has about 90): refusing it as too large')


def _parse_header(raw: bytes, source: str,
                  max_cards: int) -> tuple[fits.Header, int]:
  """Parses the HDU0 header; returns it and the byte offset of its data."""
  if not raw.startswith(b'SIMPLE  ='):
    raise FrameError(
        f'{_name(source)}: not a FITS file (decompressed data starts with '
        f'{bytes(raw[:16])!r}, expected "SIMPLE  =")')
  stream = io.BytesIO(raw[:_header_end(raw, source, max_cards)])
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      header = fits.Header.fromfile(stream, endcard=True, padding=True)
  except (OSError, ValueError, EOFError) as e:
    raise FrameError(
        f'{_name(source)}: unreadable FITS header in HDU0 ({e})') from None
  return header, stream.tell()


def _check_image_header(header: fits.Header, source: str) -> None:
  shape = tuple(header.get(f'NAXIS{k}', 0)
                for k in range(header.get('NAXIS', 0), 0, -1))
  bitpix = header.get('BITPIX')
  if bitpix != -32 or shape != FRAME_SHAPE:
    raise FrameError(
        f'{_name(source)}: HDU0 is BITPIX={bitpix} with shape {shape} '
        f'(rows, columns), expected float32 (BITPIX=-32) of shape '
        f'{FRAME_SHAPE}: not an SDSS photoObj/frames frame')
  bunit = str(header.get('BUNIT', '')).strip()
  if bunit.lower() != BUNIT:
    raise FrameError(
        f"{_name(source)}: BUNIT is {bunit or '(missing)'!r}, expected "
        f"'{BUNIT}': only calibrated frame-*.fits files (nanomaggies) are "
        'supported, not raw fpC/idR images')


def _scaling(header: fits.Header, source: str) -> tuple[float, float]:
  """(BSCALE, BZERO): finite numbers, BSCALE nonzero; BadFrame otherwise."""
  values = []
  for key, default in (('BSCALE', 1.0), ('BZERO', 0.0)):
    value = header.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or
        not math.isfinite(value) or (key == 'BSCALE' and value == 0)):
      raise BadFrame(
          f'{_name(source)}: {key} = {value!r} in HDU0 header: expected a '
          f'finite number{" other than 0" if key == "BSCALE" else ""} '
          '(the pixels cannot be scaled)')
    values.append(float(value))
  return values[0], values[1]


def _check_inverse(wcs: astropy_wcs.WCS, source: str) -> None:
  """BadFrame unless sky -> pixel inverts the WCS at the frame's edges and centre."""
  rows, cols = FRAME_SHAPE
  x = np.array([0, cols - 1, 0, cols - 1, (cols - 1) / 2, 0, cols - 1,
                (cols - 1) / 2, (cols - 1) / 2], np.float64)
  y = np.array([0, 0, rows - 1, rows - 1, (rows - 1) / 2, (rows - 1) / 2,
                (rows - 1) / 2, 0, rows - 1], np.float64)
  try:
    with warnings.catch_warnings(), np.errstate(all='ignore'):
      warnings.simplefilter('ignore')
      ra, dec = wcs.all_pix2world(x, y, 0)
      back_x, back_y = wcs.all_world2pix(ra, dec, 0)
  except Exception as e:  # pylint: disable=broad-except
    # NoConvergence, wcslib's own errors, ValueError...: one line, one reason.
    raise BadFrame(
        f'{_name(source)}: the WCS of HDU0 cannot be inverted on the frame '
        f'({type(e).__name__}: {" ".join(str(e).split())[:200]})') from None
  error = np.hypot(back_x - x, back_y - y)
  if not np.all(error < 0.01):  # NaN (no solution) fails too.
    worst = float(np.max(np.where(np.isfinite(error), error, np.inf)))
    raise BadFrame(
        f'{_name(source)}: the WCS of HDU0 does not invert on the frame (sky '
        f'to pixel misses the pixel by up to {worst:.3g} px)')


def _band_of(header: fits.Header, band: str | None, source: str) -> str:
  if band is not None and band not in survey.BANDS:
    raise FrameError(
        f'{_name(source)}: band {band!r} asked is not one of {"".join(survey.BANDS)}')
  found = str(header.get('FILTER', '')).strip()
  if found not in survey.BANDS:
    raise FrameError(
        f"{_name(source)}: FILTER is {found or '(missing)'!r}, expected one "
        f'of {"".join(survey.BANDS)}')
  if band is not None and found != band:
    raise FrameError(
        f'{_name(source)}: FILTER is {found!r} but band {band!r} was asked: '
        'the file is for another band (check the URL / cache path)')
  return found


def _celestial_wcs(header: fits.Header, source: str) -> astropy_wcs.WCS:
  try:
    with warnings.catch_warnings():
      # SDSS headers use RADECSYS and a DATE-OBS astropy "fixes"; harmless.
      warnings.simplefilter('ignore')
      wcs = astropy_wcs.WCS(header)
      if wcs.naxis != 2:
        wcs = wcs.celestial
      wcs.wcs.set()
  except Exception as e:  # pylint: disable=broad-except
    # wcslib raises many types (SingularMatrixError, InvalidTransformError...).
    raise FrameError(
        f'{_name(source)}: invalid WCS in HDU0 header '
        f'({type(e).__name__}: {e})') from None
  if not wcs.has_celestial or wcs.naxis != 2:
    ctypes = (header.get('CTYPE1', '(missing)'), header.get('CTYPE2',
                                                            '(missing)'))
    raise FrameError(
        f'{_name(source)}: no celestial WCS in HDU0 header (CTYPE1, CTYPE2 = '
        f'{ctypes}), expected RA---TAN / DEC--TAN: stamps cannot be placed')
  # wcslib silently replaces an all-zero CD matrix by the unit matrix and
  # accepts a singular one: check the pixel scale (SDSS: 0.396 arcsec).
  scale = np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600
  if not _MIN_SCALE_ARCSEC <= scale <= _MAX_SCALE_ARCSEC:
    raise FrameError(
        f'{_name(source)}: invalid WCS in HDU0 header: pixel scale {scale:.4g} '
        f'arcsec (CD1_1={header.get("CD1_1")}, CD2_2={header.get("CD2_2")}), '
        'expected about 0.396 arcsec (singular or missing CD matrix)')
  return wcs


def decode_frame(data: bytes | bytearray | memoryview, *,
                 band: str | None = None, source: str = '',
                 max_bytes: int = MAX_DECOMPRESSED_BYTES,
                 max_compressed_bytes: int = MAX_COMPRESSED_BYTES,
                 max_header_cards: int = MAX_HEADER_CARDS) -> Frame:
  """Decodes the bytes of an SDSS `frame-<band>-*.fits.bz2` file.

  Args:
    data: the compressed file, as served by the SAS.
    band: the band expected ('u'..'z'); refused if FILTER differs. None: any.
    source: a name for messages (URL or path).
    max_bytes: refuse data that decompresses to more than this (bz2 bombs).
    max_compressed_bytes: refuse compressed data larger than this.
    max_header_cards: refuse an HDU0 header of more cards than this.

  Returns:
    The frame: float32 [1489, 2048] image in nanomaggies, its celestial WCS
    and its band.

  Raises:
    FrameError: with a one-line message naming `source`, for non-FITS data,
      a wrong shape or type, a missing or non-celestial WCS, BUNIT other than
      nanomaggy, a FILTER other than `band`, data over the decompressed cap
      or non-finite pixels; as its subclass CorruptStream for truncated,
      corrupt or non-bz2 data, FrameTooLarge for a file or header over its
      cap, BadFrame for BSCALE/BZERO that are not finite numbers or a WCS
      that cannot be inverted on the frame.
  """
  if isinstance(data, memoryview):
    data = data.tobytes()
  if len(data) > max_compressed_bytes:
    raise FrameTooLarge(
        f'{_name(source)}: {len(data)} compressed bytes, more than the '
        f'{max_compressed_bytes}-byte cap (a real frame file is about 3 MB): '
        'refusing it as too large')
  raw = _decompress(data, source, max_bytes)
  header, offset = _parse_header(raw, source, max_header_cards)
  _check_image_header(header, source)
  found_band = _band_of(header, band, source)
  wcs = _celestial_wcs(header, source)
  _check_inverse(wcs, source)
  bscale, bzero = _scaling(header, source)
  count = FRAME_SHAPE[0] * FRAME_SHAPE[1]
  if len(raw) < offset + 4 * count:
    raise FrameError(
        f'{_name(source)}: FITS data truncated: HDU0 needs {4 * count} bytes '
        f'after its {offset}-byte header, {len(raw) - offset} present')
  # One copy: big-endian FITS -> native float32 (writable, owns its memory).
  image = np.frombuffer(raw, dtype='>f4', count=count, offset=offset).astype(
      np.float32).reshape(FRAME_SHAPE)
  if bscale != 1.0:
    image *= np.float32(bscale)
  if bzero != 0.0:
    image += np.float32(bzero)
  # A float64 sum is non-finite iff some pixel is (values are << 1e300).
  if not np.isfinite(image.sum(dtype=np.float64)):
    bad = int(np.count_nonzero(~np.isfinite(image)))
    raise FrameError(
        f'{_name(source)}: {bad} NaN or infinite pixels in HDU0; real SDSS '
        'frames have none: the file is damaged or not an SDSS frame')
  return Frame(image=image, wcs=wcs, band=found_band, source=source)
