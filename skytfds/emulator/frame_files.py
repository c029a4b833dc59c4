"""SDSS frame files (frame-{band}-{run6}-{camcol}-{field4}.fits.bz2).

`encode_frame` writes a simulated band image in the real format; `read_wcs`
reads a real file's WCS from its header only; `decode_frame` reads a real
file's image and WCS. Written for the emulator with astropy.io.fits (the
clients' own reader lives in skytfds.imaging.frames): an oracle must not share
the code it checks.
"""

# Follows the SDSS data model page of the frame file,
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
# (HDU0 image in nanomaggies with its TAN WCS, HDU1 calibration vector, HDU2
# sky ALLSKY/XINTERP/YINTERP table, HDU3 asTrans astrometry row).

from __future__ import annotations

import bz2
import dataclasses
import io
import pathlib
import re
import warnings

from astropy import wcs as astropy_wcs
from astropy.io import fits
import numpy as np

from skytfds.emulator import fields
from skytfds.emulator import render


@dataclasses.dataclass(frozen=True)
class Frame:
  """One band of a frame: float32 [rows, columns] nanomaggies and its WCS."""
  image: np.ndarray
  wcs: astropy_wcs.WCS


def encode_frame(image: np.ndarray, wcs: astropy_wcs.WCS, band: str,
                 geometry: fields.FieldGeometry, *, seed: int) -> bytes:
  """A simulated frame as `.fits.bz2` bytes in the SDSS frame format.

  HDU0: float32 [1489, 2048] nanomaggies (big-endian), TAN WCS, BUNIT,
  FILTER, RUN, RERUN, CAMCOL, FIELD (and FRAME as SDSS writes it), NMGY,
  EXPTIME; mantissas truncated to 10 bits as SDSS's FLOATCOMPRESS.
  HDU1: the calibration vector, nanomaggies per DN for each column [2048].
  HDU2: the sky model as a one-row table like SDSS's: ALLSKY [192, 256] sky
  in DN on an 8x8-binned grid (the simulated sky plane), XINTERP [2048] and
  YINTERP [1489] (each pixel's position on that grid).
  HDU3: a one-row astrometry table with the identifying columns of SDSS's
  asTrans (RUN, RERUN, CAMCOL, FILTER, NODE, INCL, FIELD); the HDU0 WCS is
  the astrometry to use.
  """
  noise = render.NOISE[band]
  frame = geometry.frame
  header = fits.Header()
  header['ORIGIN'] = ('SDSS', 'simulated by skytfds.emulator')
  header['TELESCOP'] = '2.5m'
  header['RUN'] = (frame.run, 'Run number')
  header['FRAME'] = (frame.field, 'Frame sequence number within the run')
  header['EXPTIME'] = ('53.907456', 'Exposure time (seconds)')
  header['SOFTBIAS'] = (1000, 'software "bias" added to all DN')
  header['BUNIT'] = ('nanomaggy', '1 nanomaggy = 3.631e-6 Jy')
  header['FILTER'] = (band, 'filter used')
  header['CAMCOL'] = (frame.camcol, 'column in the imaging camera')
  header['FIELD'] = (frame.field, 'field number')
  header['RERUN'] = (str(frame.rerun), 'rerun')
  header['RADESYS'] = ('ICRS', 'International Celestial Ref. System')
  header['EQUINOX'] = 2000.0
  header['CTYPE1'] = ('RA---TAN', 'Coordinate type')
  header['CTYPE2'] = ('DEC--TAN', 'Coordinate type')
  header['CUNIT1'] = ('deg', 'Units')
  header['CUNIT2'] = ('deg', 'Units')
  header['CRPIX1'] = (float(wcs.wcs.crpix[0]), 'X of reference pixel')
  header['CRPIX2'] = (float(wcs.wcs.crpix[1]), 'Y of reference pixel')
  header['CRVAL1'] = (float(wcs.wcs.crval[0]), 'RA of reference pixel (deg)')
  header['CRVAL2'] = (float(wcs.wcs.crval[1]), 'Dec of reference pixel (deg)')
  cd = wcs.wcs.cd
  header['CD1_1'] = (float(cd[0, 0]), 'RA deg per column pixel')
  header['CD1_2'] = (float(cd[0, 1]), 'RA deg per row pixel')
  header['CD2_1'] = (float(cd[1, 0]), 'Dec deg per column pixel')
  header['CD2_2'] = (float(cd[1, 1]), 'Dec deg per row pixel')
  header['NMGY'] = (noise.nmgy_per_count, 'Calibration factor [nMgy per count]')
  header['SKYSEED'] = (seed, 'skytfds.emulator seed')
  header['PSF_FWHM'] = (round(geometry.fwhm[band], 3),
                        'simulated seeing, arcsec')
  header['COMMENT'] = 'Floats truncated at 10 binary digits with FLOATCOMPRESS'
  header['COMMENT'] = 'Simulated frame: not real SDSS data.'
  primary = fits.PrimaryHDU(render.truncate_mantissa(image).astype('>f4'),
                            header=header)
  columns = np.arange(fields.FRAME_SHAPE[1])
  calib_hdu = fits.ImageHDU(
      render.calibration_vector(band, fields.FRAME_SHAPE[1]))
  h, w = fields.FRAME_SHAPE
  sx, sy = geometry.sky_slope[band]
  grid_x = 8.0 * np.arange(256) + 3.5
  grid_y = 8.0 * np.arange(192) - 4.5
  allsky = noise.sky_counts * (1 + sx * (grid_x[None, :] / w - 0.5)
                               + sy * (grid_y[:, None] / h - 0.5))
  allsky = render.truncate_mantissa(allsky.astype(np.float32))[None]
  sky_hdu = fits.BinTableHDU.from_columns([
      fits.Column('ALLSKY', format='49152E', dim='(256, 192)', array=allsky),
      fits.Column('XINTERP', format='2048E',
                  array=((columns - 3.5) / 8.0)[None].astype(np.float32)),
      fits.Column('YINTERP', format='1489E',
                  array=((np.arange(fields.FRAME_SHAPE[0]) + 4.5) / 8.0)[None]
                  .astype(np.float32)),
  ])
  astrom = fits.BinTableHDU.from_columns([
      fits.Column('RUN', format='J', array=[frame.run]),
      fits.Column('RERUN', format='3A', array=[str(frame.rerun)]),
      fits.Column('CAMCOL', format='J', array=[frame.camcol]),
      fits.Column('FILTER', format='A', array=[band]),
      fits.Column('NODE', format='D', array=[fields.SDSS_NODE_DEG]),
      fits.Column('INCL', format='D', array=[geometry.incl]),
      fits.Column('FIELD', format='J', array=[frame.field]),
  ])
  buf = io.BytesIO()
  fits.HDUList([primary, calib_hdu, sky_hdu, astrom]).writeto(buf)
  return bz2.compress(buf.getvalue(), 9)



def read_wcs(path: pathlib.Path) -> astropy_wcs.WCS:
  """The WCS of a .fits.bz2 frame, from its header only (first bz2 block)."""
  decompressor = bz2.BZ2Decompressor()
  head = decompressor.decompress(path.read_bytes(), max_length=2880 * 20)
  end = re.search(rb'END {77}', head)
  if end is None:
    raise ValueError(f'{path}: no FITS header END card in the first '
                     f'{len(head)} bytes; is it a frame .fits.bz2 file?')
  header = fits.Header.fromstring(head[:end.end()].decode('ascii'))
  return _celestial_wcs(header)



def _celestial_wcs(header: fits.Header) -> astropy_wcs.WCS:
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', astropy_wcs.FITSFixedWarning)
    return astropy_wcs.WCS(header, naxis=2)


def decode_frame(data: bytes) -> Frame:
  """The HDU0 image (float32, nanomaggies) and WCS of a .fits.bz2 frame."""
  with fits.open(io.BytesIO(bz2.decompress(data))) as hdus:
    header = hdus[0].header
    return Frame(np.asarray(hdus[0].data, np.float32), _celestial_wcs(header))
