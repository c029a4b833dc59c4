"""Pan-STARRS answers: ps1filenames.py tables and fitscut.cgi colour JPEGs.

A filename table shaped like ps1filenames.py (no coverage below dec -30) and
0.25"/px colour cutouts: each channel drawn from the sky's sources in the
PS1 band named by its file (g, r, i, z from the SDSS magnitudes of the same
name, y from z) with PS1's seeing and 3pi stack depth, then an autoscaled
asinh stretch as fitscut does.
"""

# Follows spacetelescope/fitscut image_scale.c (autoscale: the channel's
# median as black; asinh stretch) and fitscut.c (the size and red/green/blue
# options), and the ps1filenames.py answers shown in STScI's notebook
# spacetelescope/mast_notebooks notebooks/PanSTARRS/PS1_image (the table
# projcell subcell ra dec filter mjd type filename shortname badflag; for the
# Crab, rows g, i, r, y, z of projcell 1784 subcell 59, mjd 0.0, type stack,
# filename /rings.v3.skycell/1784/059/rings.v3.skycell.1784.059.stk.g.unconv
# .fits, shortname without the folders, badflag 0; ra and dec as asked).

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from skytfds import survey
from skytfds.emulator import colour
from skytfds.emulator import cutouts
from skytfds.emulator import fields
from skytfds.emulator import render

if TYPE_CHECKING:
  from skytfds.emulator.sky import Sky

PS1_MIN_DEC = -30.0
SIZE_RANGE = (8, 6000)                 # pixels per side
# PS1 band -> the SDSS band whose magnitude stands in for it.
PS1_AS_SDSS = {'g': 'g', 'r': 'r', 'i': 'i', 'z': 'z', 'y': 'z'}
# PS1 3pi stack 5-sigma point-source depths (Chambers et al. 2016) and seeing.
PS1_DEPTH = {'g': 23.3, 'r': 23.2, 'i': 23.1, 'z': 22.3, 'y': 21.4}
PS1_FWHM_ARCSEC = {'g': 1.31, 'r': 1.19, 'i': 1.11, 'z': 1.07, 'y': 1.02}
_PS1_FILE = re.compile(r'\.stk\.([grizy])\.unconv\.fits$')


TABLE_HEADER = ('projcell subcell ra dec filter mjd type filename shortname '
                'badflag')


def ps1_filenames(ra: float, dec: float, filters: str = 'grizy') -> str:
  """A ps1filenames.py answer for one position: a whitespace table.

  Below dec -30 (outside PS1's 3pi survey) only the header line.
  """
  return ps1_filenames_bulk([(ra, dec)], filters)


def ps1_filenames_bulk(positions, filters: str = 'grizy') -> str:
  """A ps1filenames.py answer for many positions (its POSTed file).

  The header, then for each position in turn one stack row per filter, in
  filter order (g, i, r, y, z), its ra and dec those asked; none for a
  position south of dec -30.

  Args:
    positions: (ra, dec) pairs, degrees.
    filters: the PS1 bands asked.
  """
  bad = sorted(set(filters) - set(survey.PS1_BANDS))
  if bad:
    raise ValueError(f'filters={filters!r}: unknown PS1 band(s) {bad}; use '
                     f'letters of {"".join(survey.PS1_BANDS)!r}.')
  lines = [TABLE_HEADER]
  for ra, dec in positions:
    ra, dec = cutouts.check_position(ra, dec)
    if dec < PS1_MIN_DEC:
      continue
    projcell, subcell = ps1_skycell(ra, dec)
    for band in sorted(set(filters)):
      short = (f'rings.v3.skycell.{projcell:04d}.{subcell:03d}.stk.{band}'
               '.unconv.fits')
      name = f'/rings.v3.skycell/{projcell:04d}/{subcell:03d}/{short}'
      lines.append(f'{projcell} {subcell} {ra!r} {dec!r} {band} 0.0 stack '
                   f'{name} {short} 0')
  return '\n'.join(lines) + '\n'


def ps1_jpeg(sky: 'Sky', ra: float, dec: float, *, size: int = 240,
             red: str, green: str, blue: str) -> bytes:
  """A fitscut.cgi colour JPEG (0.25"/px, north up, east left).

  Args:
    ra, dec: centre, degrees (dec >= -30).
    size: pixels per side, 8..6000.
    red, green, blue: PS1 stack filenames (from ps1_filenames); the band in
      each name picks the image drawn in that channel (PS1 g, r, i, z from
      the SDSS magnitudes of the same name, y from z).

  Returns:
    JPEG bytes: each channel an autoscaled asinh stretch, as fitscut does.

  Raises:
    ValueError: dec < -30, a bad size or a name that is not a PS1 stack.
  """
  ra, dec = cutouts.check_position(ra, dec)
  if dec < PS1_MIN_DEC:
    raise ValueError(f'dec={dec}: Pan-STARRS covers dec >= {PS1_MIN_DEC} '
                     'only.')
  size = cutouts.check_pixels('size', size, *SIZE_RANGE)
  bands = []
  for name in (red, green, blue):
    match = _PS1_FILE.search(str(name))
    if not match:
      raise ValueError(f'{name!r} is not a PS1 stack filename '
                       f'(...stk.<band>.unconv.fits from ps1filenames.py).')
    bands.append(match.group(1))
  scale = survey.PS1_PIXEL_ARCSEC
  wcs = fields.north_up_wcs(ra, dec, scale, size, size)
  radius = math.sqrt(2) * size / 2 * scale / 3600 + 0.01
  sources = sky.sources_near(ra, dec, radius)
  xy = (wcs.wcs_world2pix(np.array([[s.ra, s.dec] for s in sources]), 0)
        if sources else np.zeros((0, 2)))
  seeing = float(np.exp(fields.seeded_rng(sky.seed, 'ps1 seeing', float(ra),
                                          float(dec)).normal(0, 0.08)))
  channels = []
  for band in bands:
    fwhm = PS1_FWHM_ARCSEC[band] * seeing
    psf_sigma_px = fwhm / 2.3548 / scale
    # Per-pixel sky noise giving the survey's 5-sigma point-source depth.
    sigma = render.flux_nmgy(PS1_DEPTH[band]) / 5.0 / (
        math.sqrt(4 * math.pi) * psf_sigma_px)
    proxy = PS1_AS_SDSS[band]
    image = np.zeros((size, size), np.float32)
    render.paint_sources(image, xy[:, 0], xy[:, 1], sources, proxy,
                         render.Psf.double_gaussian(fwhm),
                         fields.sky_to_pixel(wcs.wcs.cd),
                         threshold=0.05 * sigma, spikes=False)
    rng = fields.seeded_rng(sky.seed, 'ps1', float(ra), float(dec), size,
                            band)
    image += (rng.standard_normal(image.shape, dtype=np.float32)
              * np.float32(sigma))
    channels.append(_ps1_stretch(image / np.float32(sigma)))
  return colour.jpeg(np.stack(channels, axis=-1)[::-1])


def ps1_skycell(ra: float, dec: float) -> tuple[int, int]:
  """(projcell, subcell) of a PS1-like rings.v3 tessellation.

  Rings of projection cells 4 deg tall from dec -30 up, numbered from 635 as
  PS1's; each cell cut into 10 x 10 sky cells.
  """
  ring = int(np.clip(round((dec + 30.0) / 4.0), 0, 30))
  first = 635
  for k in range(ring):
    first += _cells_in_ring(k)
  n = _cells_in_ring(ring)
  width = 360.0 / n
  cell = int(round(ra / width)) % n
  dra = ((ra - cell * width + 180.0) % 360.0) - 180.0
  ddec = dec - (-30.0 + 4.0 * ring)
  ix = int(np.clip(math.floor((0.5 - dra / width) * 10), 0, 9))
  iy = int(np.clip(math.floor((ddec / 4.0 + 0.5) * 10), 0, 9))
  return first + cell, iy * 10 + ix


def _cells_in_ring(k: int) -> int:
  dec = -30.0 + 4.0 * k
  return max(1, int(round(360.0 * math.cos(math.radians(dec)) / 4.0)))


def _ps1_stretch(snr: np.ndarray) -> np.ndarray:
  """fitscut-like autoscaled asinh stretch of an image in sky-sigma units."""
  hi = max(float(np.percentile(snr, 99.5)), 20.0)
  lo = float(np.median(snr))
  out = np.arcsinh((snr - lo) / 3.0) / math.asinh((hi - lo) / 3.0)
  return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
