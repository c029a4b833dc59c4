"""The simulated sky behind the emulator: SDSS frames, cutouts, PS1 answers.

`Sky` renders what the real services would serve, deterministically from a
seed:

* Frames (`frame_bytes`): the SAS file byte for byte when `sas_root` holds
  it; otherwise a simulated `.fits.bz2` in the real format (see
  `encode_frame`). A simulated field's WCS is placed so that every catalogue
  object of that field lies inside it: the rows run along the SDSS scan great
  circle (node 95 deg, inclination of the nearest 2.5-deg stripe), and if the
  objects do not fit that way, nearby rotations are tried. Every catalogue
  object inside the footprint is drawn at its real (ra, dec) with its real
  ugriz magnitudes (missing ones interpolated between neighbouring bands):
  stars and quasars as PSF point sources, galaxies as PSF-convolved Sersic
  profiles whose index follows the u - r colour (Strateva et al. 2001) and
  whose size follows the magnitude. Background stars (stellar-locus colours,
  density rising towards the Galactic plane) and galaxies (red and blue
  populations) come from fixed sky tiles, so frames, cutouts and overlapping
  fields all show the same neighbours. The PSF is a double Gaussian (seeing
  drawn per field, ~1.4" FWHM in r, worse in u). Sky-subtracted Poisson and
  read noise at SDSS levels; floats truncated to 10 mantissa bits as SDSS's
  FLOATCOMPRESS does, so the files are ~3 MB and bz2-decode in ~0.5 s.
* Cutouts (`cutout_jpeg`, SkyServer getjpeg): rendered straight onto the
  asked grid (no whole frames) from the same sources, or resampled from the
  real frames when `sas_root` holds frames covering the position; i, r, g
  through `imaging.color.lupton_rgb`, JPEG quality 75.
* Pan-STARRS (`ps1_filenames`, `ps1_jpeg`): a filename table shaped like
  ps1filenames.py (no coverage below dec -30) and 0.25"/px colour cutouts.

Units: images in nanomaggies per pixel, angles in degrees unless a name says
arcsec, pixels 0-based (x = column, y = row) unless FITS keywords say so.

Bright stars get diffraction spikes along the pixel axes and a faint PSF
aureole, as in SDSS images; cosmic rays, bleed trails and bad columns are
not simulated.

Timing (shared 2-core machine, one band; `benchmark_frame` measures it):
`frame_bytes` of a simulated frame costs ~1-1.4 s (render + noise 0.15-0.35 s,
FITS + bz2 0.7-1.1 s); the file is 2.9-4.2 MB (real: 2.9-3.8 MB) and
bz2-decodes in 0.3-0.5 s (real: 0.3-0.6 s).
"""

from __future__ import annotations

import bz2
import collections
import dataclasses
import functools
import io
import math
import pathlib
import re
import threading
import time
import warnings
import zlib
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from astropy import wcs as astropy_wcs
from astropy.io import fits
import numpy as np
from PIL import Image
from scipy import ndimage

from skytfds.emulator import render
from skytfds.imaging import color
from skytfds.imaging import frames as frames_lib
from skytfds.services import sas

if TYPE_CHECKING:
  from skytfds.catalog import Catalog, CatalogObject, FrameId

BANDS = render.BANDS
FRAME_SHAPE = (1489, 2048)                      # rows, columns
CRPIX = (1025.0, 745.0)                         # FITS 1-based, as real frames
PIXEL_SCALE_DEG = render.PIXEL_SCALE_ARCSEC / 3600.0
# Margin (pixels, r grid) kept between catalogue objects and the frame edge.
FIELD_MARGIN_PX = 40
# Radius (deg) around a frame centre that holds the whole frame.
FRAME_RADIUS_DEG = math.hypot(*FRAME_SHAPE) / 2 * PIXEL_SCALE_DEG + 0.01
SDSS_NODE_DEG = 95.0
STRIPE_WIDTH_DEG = 2.5
# Typical pixel offset (x, y on the r grid) of each band from r at the frame
# centre, as measured on real frames (rows lie along the scan); a per-field
# jitter is added.
BAND_OFFSET_PX = {'u': (1.5, 5.0), 'g': (2.0, 10.0), 'r': (0.0, 0.0),
                  'i': (0.5, 3.0), 'z': (1.5, 7.0)}
JPEG_QUALITY = 75
CUTOUT_SIZE_RANGE = (64, 2048)                  # SkyServer getjpeg limits, px
PS1_PIXEL_ARCSEC = 0.25
PS1_MIN_DEC = -30.0
PS1_BANDS = 'grizy'
# PS1 band -> index of the SDSS band whose magnitude stands in for it.
PS1_AS_SDSS = {'g': 1, 'r': 2, 'i': 3, 'z': 4, 'y': 4}
# PS1 3pi stack 5-sigma point-source depths (Chambers et al. 2016) and seeing.
PS1_DEPTH = {'g': 23.3, 'r': 23.2, 'i': 23.1, 'z': 22.3, 'y': 21.4}
PS1_FWHM_ARCSEC = {'g': 1.31, 'r': 1.19, 'i': 1.11, 'z': 1.07, 'y': 1.02}
# Background sky tiles: declination bands this tall (deg), cut in RA into
# tiles of about the same width.
TILE_DEG = 0.1
# Regions wider than this (radius, deg) get no background sources.
MAX_BACKGROUND_RADIUS_DEG = 0.5
DECODED_CACHE_SIZE = 6          # decoded real frames kept (12 MB each)
RENDERED_CACHE_SIZE = 5         # simulated band images kept (12 MB each)

# Equatorial (J2000) -> Galactic rotation matrix.
_GALACTIC = np.array([[-0.0548755604, -0.8734370902, -0.4838350155],
                      [0.4941094279, -0.4448296300, 0.7469822445],
                      [-0.8676661490, -0.1980763734, 0.4559837762]])
_PS1_FILE = re.compile(r'\.stk\.([grizy])\.unconv\.fits$')


def _unit(ra_deg, dec_deg) -> np.ndarray:
  """Unit vectors [..., 3] of sky positions (degrees)."""
  ra = np.radians(ra_deg)
  dec = np.radians(dec_deg)
  return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra),
                   np.sin(dec)], axis=-1)


def _seed_words(*parts: Any) -> list[int]:
  """Seed words for numpy's SeedSequence from ints, floats and strings."""
  words = []
  for part in parts:
    if isinstance(part, str):
      words.append(zlib.crc32(part.encode()))
    elif isinstance(part, float):
      words.append(int(round(part * 1e6)) & 0xFFFFFFFFFFFF)
    else:
      words.append(int(part) & 0xFFFFFFFFFFFFFFFF)
  return words


def _rng(*parts: Any) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence(_seed_words(*parts)))


def complete_mags(mags: Sequence[float]) -> tuple[float, ...] | None:
  """Fill NaN magnitudes by interpolating between neighbouring bands.

  A missing u or z copies the nearest known band (a flat AB spectrum).

  Returns:
    ugriz magnitudes without NaN, or None when none is known.
  """
  m = np.asarray(mags, dtype=np.float64)
  ok = np.isfinite(m)
  if not ok.any():
    return None
  if not ok.all():
    idx = np.arange(len(m))
    m[~ok] = np.interp(idx[~ok], idx[ok], m[ok])
  return tuple(float(v) for v in m)


def galaxy_size_arcsec(r_mag: float) -> float:
  """Median half-light radius (arcsec) of galaxies of a given r magnitude."""
  return 2.5 * 10.0**(-0.13 * (r_mag - 17.0))


def _stripe_pole(incl_deg: float) -> np.ndarray:
  """Pole of the scan great circle with node 95 deg and inclination incl."""
  node, i = math.radians(SDSS_NODE_DEG), math.radians(incl_deg)
  return np.array([math.sin(i) * math.sin(node), -math.sin(i) * math.cos(node),
                   math.cos(i)])


def _scan_direction(ra: float, dec: float) -> tuple[np.ndarray, float]:
  """Unit (east, north) vector of the SDSS scan direction at (ra, dec).

  The scan follows the great circle (ascending node 95 deg) of the stripe
  nearest to the position: northern stripes every 2.5 deg of inclination
  (-2.5 to 72.5), southern ones (ra < 90 or > 270) stripes 72, 76, 79, 82 and
  86 (inclination 2.5 (stripe - 82) deg). This reproduces the orientation of
  real frames (e.g. 003918-3-0213: stripe 31, inclination 52.5).

  Returns:
    (direction, inclination in degrees).
  """
  x = _unit(ra, dec)
  if ra < 90.0 or ra > 270.0:
    candidates = [2.5 * (s - 82) for s in (72, 76, 79, 82, 86)]
  else:
    candidates = [2.5 * k for k in range(-1, 30)]
  incl = min(candidates, key=lambda i: abs(float(x @ _stripe_pole(i))))
  d = np.cross(_stripe_pole(incl), x)
  ra_r, dec_r = math.radians(ra), math.radians(dec)
  east = np.array([-math.sin(ra_r), math.cos(ra_r), 0.0])
  north = np.array([-math.sin(dec_r) * math.cos(ra_r),
                    -math.sin(dec_r) * math.sin(ra_r), math.cos(dec_r)])
  v = np.array([d @ east, d @ north])
  n = np.linalg.norm(v)
  return (v / n if n > 1e-9 else np.array([1.0, 0.0])), incl


def _gnomonic(ra, dec, ra0: float, dec0: float
              ) -> tuple[np.ndarray, np.ndarray]:
  """Standard coordinates (xi east, eta north; degrees) around (ra0, dec0)."""
  ra, dec = np.radians(ra), np.radians(dec)
  a0, d0 = math.radians(ra0), math.radians(dec0)
  cosc = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
  xi = np.cos(dec) * np.sin(ra - a0) / cosc
  eta = (np.cos(d0) * np.sin(dec)
         - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cosc
  return np.degrees(xi), np.degrees(eta)


def _inverse_gnomonic(xi, eta, ra0: float, dec0: float) -> tuple[float, float]:
  """(ra, dec) degrees of standard coordinates (degrees) around (ra0, dec0)."""
  x, y = math.radians(xi), math.radians(eta)
  a0, d0 = math.radians(ra0), math.radians(dec0)
  rho = math.hypot(x, y)
  c = math.atan(rho)
  if rho == 0:
    return ra0 % 360.0, dec0
  dec = math.asin(math.cos(c) * math.sin(d0)
                  + y * math.sin(c) * math.cos(d0) / rho)
  ra = a0 + math.atan2(x * math.sin(c),
                       rho * math.cos(d0) * math.cos(c)
                       - y * math.sin(d0) * math.sin(c))
  return math.degrees(ra) % 360.0, math.degrees(dec)


def tan_wcs(ra0: float, dec0: float, cd: np.ndarray,
            crpix: tuple[float, float]) -> astropy_wcs.WCS:
  """A TAN WCS; cd [2, 2] in degrees per pixel, crpix FITS 1-based."""
  w = astropy_wcs.WCS(naxis=2)
  w.wcs.ctype = ['RA---TAN', 'DEC--TAN']
  w.wcs.cunit = ['deg', 'deg']
  w.wcs.crval = [ra0, dec0]
  w.wcs.crpix = list(crpix)
  w.wcs.cd = np.asarray(cd, dtype=np.float64)
  w.wcs.radesys = 'ICRS'
  w.wcs.equinox = 2000.0
  w.wcs.set()
  return w


def _sky_to_pixel(cd: np.ndarray) -> np.ndarray:
  """Jacobian d(x, y px) / d(east, north arcsec) of a TAN WCS at its centre."""
  return np.linalg.inv(np.asarray(cd) * 3600.0)


@dataclasses.dataclass(frozen=True)
class FieldGeometry:
  """Where a simulated field lies and how it was observed.

  Attributes:
    frame: the field.
    center: (ra, dec) of the r-band reference pixel CRPIX, degrees.
    cd: [2, 2] CD matrix shared by all bands, degrees per pixel (columns x
      across the scan, rows y along it, as in real frames).
    offsets: band -> (dx, dy) pixels: where an r-grid pixel lands in that
      band's grid (bands are not pixel-aligned, as in real frames).
    fwhm: band -> seeing FWHM, arcsec.
    sky_slope: band -> fractional sky change across the frame in x and y.
    incl: inclination of the scan great circle (SDSS stripe), degrees.
    margin_px: smallest distance of a catalogue object from the frame edge.
  """
  frame: Any
  center: tuple[float, float]
  cd: np.ndarray
  offsets: dict[str, tuple[float, float]]
  fwhm: dict[str, float]
  sky_slope: dict[str, tuple[float, float]]
  incl: float
  margin_px: float

  def wcs(self, band: str) -> astropy_wcs.WCS:
    """The TAN WCS of one band (0.396"/px)."""
    r_wcs = tan_wcs(*self.center, self.cd, CRPIX)
    dx, dy = self.offsets[band]
    if dx == 0 and dy == 0:
      return r_wcs
    ra, dec = r_wcs.wcs_pix2world([[CRPIX[0] - dx, CRPIX[1] - dy]], 1)[0]
    return tan_wcs(float(ra), float(dec), self.cd, CRPIX)

  def contains(self, ra: float, dec: float, margin_px: float = 0.0) -> float:
    """Distance (px) of (ra, dec) inside the r frame's edge (< 0: outside)."""
    x, y = self.wcs('r').wcs_world2pix([[ra, dec]], 0)[0]
    h, w = FRAME_SHAPE
    return min(x + 0.5, w - 0.5 - x, y + 0.5, h - 0.5 - y) - margin_px


def _fit_field(frame: Any, ra: np.ndarray, dec: np.ndarray, seed: int
               ) -> FieldGeometry:
  """Places a field's WCS so that all of (ra, dec) fit with a margin."""
  rng = _rng(seed, 'field', frame.run, frame.rerun, frame.camcol, frame.field)
  u = _unit(ra, dec).sum(axis=0)
  ra0 = math.degrees(math.atan2(u[1], u[0])) % 360.0
  dec0 = math.degrees(math.asin(u[2] / np.linalg.norm(u)))
  scan, incl = _scan_direction(ra0, dec0)
  xi, eta = _gnomonic(ra, dec, ra0, dec0)
  h, w = FRAME_SHAPE
  best = None
  angles = [0.0] + [s * a for a in list(range(1, 11)) + list(range(15, 181, 5))
                    for s in (1, -1)]
  for angle in angles:
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    along = rot @ scan
    across = np.array([-along[1], along[0]])
    cd = PIXEL_SCALE_DEG * np.array([[across[0], along[0]],
                                     [across[1], along[1]]])
    px = np.linalg.solve(cd, np.stack([xi, eta]))
    lo, hi = px.min(axis=1), px.max(axis=1)
    slack = np.array([w - 1, h - 1]) - (hi - lo)
    margin = float(min(slack) / 2)
    if best is None or margin > best[0]:
      best = (margin, cd, (lo + hi) / 2, slack)
    if margin >= FIELD_MARGIN_PX:
      break
  margin, cd, mid, slack = best
  # Move the objects off-centre by a random part of the free room.
  room = np.maximum(slack / 2 - FIELD_MARGIN_PX, 0.0)
  mid = mid + rng.uniform(-0.8, 0.8, size=2) * room
  # The frame's centre pixel is CRPIX; put it at `mid` in standard coordinates.
  cxi, ceta = cd @ mid
  center = _inverse_gnomonic(float(cxi), float(ceta), ra0, dec0)
  offsets = {}
  for band, (dx, dy) in BAND_OFFSET_PX.items():
    if band == 'r':
      offsets[band] = (0.0, 0.0)
    else:
      offsets[band] = (float(dx + rng.normal(0, 2.0)),
                       float(dy + rng.normal(0, 0.7)))
  seeing = float(np.clip(1.4 * math.exp(rng.normal(0, 0.12)), 1.0, 2.2))
  fwhm = {b: seeing * render.SEEING_FACTOR[b]
          * float(np.exp(rng.normal(0, 0.03))) for b in BANDS}
  sky_slope = {b: (float(rng.normal(0, 0.003)), float(rng.normal(0, 0.003)))
               for b in BANDS}
  geometry = FieldGeometry(frame, center, cd, offsets, fwhm, sky_slope, incl,
                           0.0)
  r_wcs = geometry.wcs('r')
  x, y = r_wcs.wcs_world2pix(np.stack([ra, dec], axis=1), 0).T
  edge = float(min((x + 0.5).min(), (w - 0.5 - x).min(), (y + 0.5).min(),
                   (h - 0.5 - y).min()))
  return dataclasses.replace(geometry, margin_px=edge)


def _tile_bounds(j: int, i: int) -> tuple[float, float, float, float]:
  """(ra_lo, ra_hi, dec_lo, dec_hi) of sky tile (j, i), degrees."""
  dec_lo = -90.0 + j * TILE_DEG
  dec_hi = min(dec_lo + TILE_DEG, 90.0)
  n = _tiles_in_band(j)
  return i * 360.0 / n, (i + 1) * 360.0 / n, dec_lo, dec_hi


def _tiles_in_band(j: int) -> int:
  dec_mid = -90.0 + (j + 0.5) * TILE_DEG
  return max(1, int(360.0 * math.cos(math.radians(dec_mid)) / TILE_DEG))


def _tiles_near(ra: float, dec: float, radius: float) -> list[tuple[int, int]]:
  """Sky tiles that may hold sources within `radius` deg of (ra, dec)."""
  n_bands = int(round(180.0 / TILE_DEG))
  j_lo = max(0, int((dec - radius + 90.0) // TILE_DEG))
  j_hi = min(n_bands - 1, int((dec + radius + 90.0) // TILE_DEG))
  tiles = []
  for j in range(j_lo, j_hi + 1):
    n = _tiles_in_band(j)
    dec_edge = max(abs(-90.0 + j * TILE_DEG), abs(-90.0 + (j + 1) * TILE_DEG))
    cos_edge = math.cos(math.radians(min(dec_edge, 90.0)))
    if cos_edge < 1e-3 or radius / cos_edge >= 180.0:
      tiles.extend((j, i) for i in range(n))
      continue
    half = radius / cos_edge
    width = 360.0 / n
    i_lo = int(math.floor((ra - half) / width))
    i_hi = int(math.floor((ra + half) / width))
    seen = set()
    for i in range(i_lo, i_hi + 1):
      k = i % n
      if k not in seen:
        seen.add(k)
        tiles.append((j, k))
  return tiles


def _galactic_latitude(ra: float, dec: float) -> float:
  sin_b = float(np.clip(_GALACTIC[2] @ _unit(ra, dec), -1, 1))
  return math.degrees(math.asin(sin_b))


def _sample_mags(rng: np.random.Generator, n: int, lo: float, hi: float,
                 slope: float) -> np.ndarray:
  """Magnitudes with cumulative counts N(<m) proportional to 10**(slope m)."""
  a, b = 10.0**(slope * lo), 10.0**(slope * hi)
  return np.log10(a + rng.uniform(size=n) * (b - a)) / slope


def star_colors(rng: np.random.Generator, n: int) -> np.ndarray:
  """[n, 4] colours u-g, g-r, r-i, i-z along the SDSS stellar locus."""
  blue = rng.uniform(size=n) < 0.55
  gr = np.where(blue, np.clip(rng.normal(0.40, 0.12, n), 0.15, 0.9),
                rng.uniform(0.9, 1.55, n))
  ug = np.where(gr < 0.9, 0.75 + 1.3 * (gr - 0.2), 2.45) + rng.normal(0, 0.1, n)
  ri = np.where(gr < 1.2, 0.38 * gr - 0.02, 0.44 + 3.0 * (gr - 1.2))
  ri = ri + rng.normal(0, 0.05, n)
  iz = 0.5 * ri + rng.normal(0, 0.04, n)
  return np.stack([np.clip(ug, 0.5, 3.2), gr, ri, iz], axis=1)


def galaxy_colors(rng: np.random.Generator, n: int,
                  red: np.ndarray) -> np.ndarray:
  """[n, 4] colours u-g, g-r, r-i, i-z of red-sequence / blue-cloud galaxies."""
  mean = np.where(red[:, None], [1.75, 0.75, 0.42, 0.35],
                  [1.2, 0.45, 0.30, 0.20])
  sigma = np.where(red[:, None], [0.15, 0.08, 0.05, 0.05],
                   [0.2, 0.12, 0.08, 0.08])
  return mean + sigma * rng.standard_normal((n, 4))


def _mags_from_colors(r: np.ndarray, colors: np.ndarray) -> np.ndarray:
  ug, gr, ri, iz = colors.T
  g = r + gr
  i = r - ri
  return np.stack([g + ug, g, r, i, i - iz], axis=1)


@functools.lru_cache(maxsize=4096)
def tile_sources(seed: int, j: int, i: int) -> tuple[render.Source, ...]:
  """Background stars and galaxies of one sky tile (deterministic)."""
  rng = _rng(seed, 'tile', j, i)
  ra_lo, ra_hi, dec_lo, dec_hi = _tile_bounds(j, i)
  s_lo, s_hi = math.sin(math.radians(dec_lo)), math.sin(math.radians(dec_hi))
  area = math.radians(ra_hi - ra_lo) * (s_hi - s_lo) * (180.0 / math.pi)**2
  b = _galactic_latitude((ra_lo + ra_hi) / 2, (dec_lo + dec_hi) / 2)
  star_density = 4000.0 + 40000.0 * math.exp(-abs(b) / 10.0)   # r < 23, deg^-2
  galaxy_density = 15000.0                                         # r < 22.5
  n_star = rng.poisson(area * star_density)
  n_gal = rng.poisson(area * galaxy_density)
  n = n_star + n_gal
  ra = rng.uniform(ra_lo, ra_hi, n)
  dec = np.degrees(np.arcsin(rng.uniform(s_lo, s_hi, n)))
  r = np.concatenate([_sample_mags(rng, n_star, 13.0, 23.0, 0.15),
                      _sample_mags(rng, n_gal, 14.0, 22.5, 0.38)])
  red = rng.uniform(size=n_gal) < 0.35
  colors = np.concatenate([star_colors(rng, n_star),
                           galaxy_colors(rng, n_gal, red)])
  mags = _mags_from_colors(r, colors)
  re_med = galaxy_size_arcsec(r[n_star:]) * np.where(red, 0.75, 1.0)
  re = np.clip(re_med * 10.0**rng.normal(0, 0.2, n_gal), 0.2, 30.0)
  sersic = np.where(red, np.clip(rng.normal(4.0, 0.6, n_gal), 2.5, 6.0),
                    np.clip(rng.normal(1.0, 0.25, n_gal), 0.5, 2.0))
  q = np.where(red, rng.uniform(0.55, 1.0, n_gal), rng.uniform(0.2, 1.0, n_gal))
  pa = rng.uniform(0, 180, n_gal)
  sources = [render.Source(float(ra[k]), float(dec[k]), tuple(mags[k]))
             for k in range(n_star)]
  for k in range(n_gal):
    s = n_star + k
    sources.append(render.Source(float(ra[s]), float(dec[s]), tuple(mags[s]),
                                 True, float(re[k]), float(sersic[k]),
                                 float(q[k]), float(pa[k])))
  return tuple(sources)


def catalog_source(obj: 'CatalogObject', seed: int) -> render.Source | None:
  """The Source drawn for a catalogue object (None when it has no magnitude)."""
  mags = complete_mags(obj.mags)
  if mags is None:
    return None
  if obj.cls != 'GALAXY':
    return render.Source(obj.ra, obj.dec, mags)
  rng = _rng(seed, 'object', obj.key)
  early = mags[0] - mags[2] >= 2.22          # u - r separator
  if early:
    n = float(np.clip(rng.normal(4.0, 0.5), 2.5, 6.0))
    q = float(rng.uniform(0.55, 1.0))
  else:
    n = float(np.clip(rng.normal(1.0, 0.25), 0.5, 2.0))
    q = float(rng.uniform(0.25, 1.0))
  re = galaxy_size_arcsec(mags[2]) * (0.75 if early else 1.0)
  re = float(np.clip(re * 10.0**rng.normal(0, 0.15), 0.3, 30.0))
  return render.Source(obj.ra, obj.dec, mags, True, re, n, q,
                       float(rng.uniform(0, 180)))


def encode_frame(image: np.ndarray, wcs: astropy_wcs.WCS, band: str,
                 geometry: FieldGeometry, *, seed: int) -> bytes:
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
  columns = np.arange(FRAME_SHAPE[1])
  calib_hdu = fits.ImageHDU(render.calibration_vector(band, FRAME_SHAPE[1]))
  h, w = FRAME_SHAPE
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
                  array=((np.arange(FRAME_SHAPE[0]) + 4.5) / 8.0)[None]
                  .astype(np.float32)),
  ])
  astrom = fits.BinTableHDU.from_columns([
      fits.Column('RUN', format='J', array=[frame.run]),
      fits.Column('RERUN', format='3A', array=[str(frame.rerun)]),
      fits.Column('CAMCOL', format='J', array=[frame.camcol]),
      fits.Column('FILTER', format='A', array=[band]),
      fits.Column('NODE', format='D', array=[SDSS_NODE_DEG]),
      fits.Column('INCL', format='D', array=[geometry.incl]),
      fits.Column('FIELD', format='J', array=[frame.field]),
  ])
  buf = io.BytesIO()
  fits.HDUList([primary, calib_hdu, sky_hdu, astrom]).writeto(buf)
  return bz2.compress(buf.getvalue(), 9)


class _Lru:
  """A small thread-safe least-recently-used cache."""

  def __init__(self, size: int):
    self._size = size
    self._items: collections.OrderedDict = collections.OrderedDict()
    self._lock = threading.Lock()

  def get(self, key, make):
    with self._lock:
      if key in self._items:
        self._items.move_to_end(key)
        return self._items[key]
    value = make()
    with self._lock:
      self._items[key] = value
      while len(self._items) > self._size:
        self._items.popitem(last=False)
    return value


@dataclasses.dataclass(frozen=True)
class _RealField:
  """A field whose i, r and g frames are held under sas_root."""
  paths: dict[str, pathlib.Path]   # band -> file
  wcs_r: astropy_wcs.WCS


class Sky:
  """The emulator's sky: real frames where held, simulated everywhere else.

  Thread-safe: the web application calls it from worker threads.
  """

  def __init__(self, catalog: 'Catalog', *, seed: int = 0,
               sas_root: str | pathlib.Path | None = None):
    """Creates the sky.

    Args:
      catalog: the objects to draw (real positions and magnitudes).
      seed: everything simulated is a deterministic function of it.
      sas_root: a local SAS mirror (the folder holding dr17/...); frames held
        there are served byte for byte and used for cutouts.
    """
    self.catalog = catalog
    self.seed = int(seed)
    self.sas_root = pathlib.Path(sas_root) if sas_root else None
    self._objects = list(catalog.objects)
    self._by_frame: dict[Any, list[int]] = collections.defaultdict(list)
    for k, obj in enumerate(self._objects):
      self._by_frame[obj.frame].append(k)
    self._by_frame = dict(self._by_frame)
    if self._objects:
      self._xyz = _unit(np.array([o.ra for o in self._objects]),
                        np.array([o.dec for o in self._objects]))
    else:
      self._xyz = np.zeros((0, 3))
    self._lock = threading.Lock()
    self._geometry: dict[Any, FieldGeometry] = {}
    self._sources: dict[int, render.Source | None] = {}
    self._rendered = _Lru(RENDERED_CACHE_SIZE)
    self._decoded = _Lru(DECODED_CACHE_SIZE)
    self._real_fields: list[_RealField] | None = None

  # -- catalogue and geometry ------------------------------------------------

  def frame_ids(self) -> set:
    """The fields (FrameId) holding at least one catalogue object."""
    return set(self._by_frame)

  def geometry(self, frame: 'FrameId') -> FieldGeometry:
    """The simulated placement of a catalogue field (KeyError if none)."""
    with self._lock:
      cached = self._geometry.get(frame)
    if cached is not None:
      return cached
    if frame not in self._by_frame:
      raise KeyError(
          f'field {_frame_name(frame)} holds no object of the catalogue '
          f'{getattr(self.catalog, "source", "")!r}; the emulator simulates '
          f'only fields with catalogue objects (or serves real frames under '
          f'sas_root).')
    idx = self._by_frame[frame]
    geometry = _fit_field(frame, np.array([self._objects[k].ra for k in idx]),
                          np.array([self._objects[k].dec for k in idx]),
                          self.seed)
    with self._lock:
      self._geometry[frame] = geometry
    return geometry

  def _objects_near(self, ra: float, dec: float, radius: float) -> list[int]:
    if not len(self._xyz):
      return []
    dots = self._xyz @ _unit(ra, dec)
    return np.nonzero(dots >= math.cos(math.radians(radius)))[0].tolist()

  def _source(self, k: int) -> render.Source | None:
    with self._lock:
      if k in self._sources:
        return self._sources[k]
    source = catalog_source(self._objects[k], self.seed)
    with self._lock:
      self._sources[k] = source
    return source

  def sources_near(self, ra: float, dec: float, radius: float
                   ) -> list[render.Source]:
    """Catalogue and background sources within `radius` deg of (ra, dec)."""
    sources = [s for s in map(self._source, self._objects_near(ra, dec, radius))
               if s is not None]
    if radius <= MAX_BACKGROUND_RADIUS_DEG:
      background = []
      for j, i in _tiles_near(ra, dec, radius):
        background.extend(tile_sources(self.seed, j, i))
      if background:
        xyz = _unit(np.array([s.ra for s in background]),
                    np.array([s.dec for s in background]))
        near = xyz @ _unit(ra, dec) >= math.cos(math.radians(radius))
        sources.extend(s for s, keep in zip(background, near) if keep)
    return sources

  def _covering_field(self, ra: float, dec: float) -> FieldGeometry | None:
    """The catalogue field whose simulated frame holds (ra, dec) deepest."""
    best, best_depth = None, 0.0
    frames = {self._objects[k].frame
              for k in self._objects_near(ra, dec, 2 * FRAME_RADIUS_DEG)}
    for frame in sorted(frames):
      geometry = self.geometry(frame)
      depth = geometry.contains(ra, dec)
      if depth > best_depth:
        best, best_depth = geometry, depth
    return best

  # -- frames ----------------------------------------------------------------

  def render_band(self, frame: 'FrameId', band: str
                  ) -> tuple[np.ndarray, astropy_wcs.WCS]:
    """A simulated band image: (float32 [1489, 2048] nanomaggies, its WCS)."""
    band = _check_band(band)
    geometry = self.geometry(frame)
    return self._rendered.get((frame, band),
                              lambda: self._render_band(geometry, band))

  def _render_band(self, geometry: FieldGeometry, band: str
                   ) -> tuple[np.ndarray, astropy_wcs.WCS]:
    frame = geometry.frame
    wcs = geometry.wcs(band)
    sources = self.sources_near(*geometry.center, FRAME_RADIUS_DEG)
    image = np.zeros(FRAME_SHAPE, np.float32)
    noise = render.NOISE[band]
    if sources:
      xy = wcs.wcs_world2pix(np.array([[s.ra, s.dec] for s in sources]), 0)
      render.paint_sources(image, xy[:, 0], xy[:, 1], sources, band,
                           render.Psf.double_gaussian(geometry.fwhm[band]),
                           _sky_to_pixel(geometry.cd),
                           threshold=0.05 * noise.sky_sigma_nmgy())
    rng = _rng(self.seed, 'noise', frame.run, frame.rerun, frame.camcol,
               frame.field, band)
    calib = render.calibration_vector(band, FRAME_SHAPE[1])
    return render.add_noise(image, noise, rng, calib=calib,
                            integer_counts=True,
                            sky_slope=geometry.sky_slope[band]), wcs

  def frame_bytes(self, frame: 'FrameId', band: str,
                  release: int = 17) -> bytes:
    """One band of one field as `.fits.bz2` bytes.

    The real file byte for byte when sas_root holds it, else a simulated frame
    (deterministic from seed, frame and band).

    Raises:
      KeyError: no real file and no catalogue object in the field.
      ValueError: a band other than u, g, r, i, z.
    """
    band = _check_band(band)
    if self.sas_root is not None:
      path = self.sas_root / sas.frame_path(frame, band, release)
      if path.is_file():
        return path.read_bytes()
    geometry = self.geometry(frame)
    image, wcs = self.render_band(frame, band)
    return encode_frame(image, wcs, band, geometry, seed=self.seed)

  def preview_rgb(self, frame: 'FrameId', *, simulated: bool = True
                  ) -> np.ndarray:
    """An SDSS-style i, r, g rendering of a whole field.

    Args:
      frame: the field.
      simulated: draw the simulated field even when sas_root holds the real
        one (False: use the real frames when held).

    Returns:
      uint8 [1489, 2048, 3], rows flipped like SDSS's frame-irg JPEGs.
    """
    frames = {}
    for band in 'irg':
      if simulated:
        image, wcs = self.render_band(frame, band)
        frames[band] = frames_lib.Frame(image, wcs, band)
      else:
        data = self.frame_bytes(frame, band)
        frames[band] = frames_lib.decode_frame(
            data, band=band, source=f'{_frame_name(frame)} {band}')
    return color.frame_rgb(frames, reference='r', flip=True)

  def preview_png(self, frame: 'FrameId', path: str | pathlib.Path, *,
                  simulated: bool = True) -> None:
    """Saves `preview_rgb(frame)` as a PNG file."""
    Image.fromarray(self.preview_rgb(frame, simulated=simulated)).save(path)

  # -- SkyServer cutouts ------------------------------------------------------

  def cutout_jpeg(self, ra: float, dec: float, *, scale: float = 0.4,
                  width: int = 240, height: int = 240) -> bytes:
    """A SkyServer getjpeg-style colour cutout (north up, east left).

    Args:
      ra, dec: centre, degrees.
      scale: arcsec per pixel (> 0).
      width, height: pixels, 64..2048.

    Returns:
      JPEG bytes (i, r, g as R, G, B through the Lupton asinh stretch).
    """
    ra, dec, scale, width, height = _check_cutout(ra, dec, scale, width, height)
    real = self._real_cover(ra, dec)
    if real:
      bands = self._resample_real(real, ra, dec, scale, width, height)
    else:
      bands = self._simulate_cutout(ra, dec, scale, width, height)
    rgb = color.lupton_rgb(bands['i'], bands['r'], bands['g'])
    return _jpeg(rgb[::-1])

  def _simulate_cutout(self, ra, dec, scale, width, height
                       ) -> dict[str, np.ndarray]:
    cd = np.array([[-scale, 0.0], [0.0, scale]]) / 3600.0
    wcs = tan_wcs(ra, dec, cd, ((width + 1) / 2, (height + 1) / 2))
    radius = math.hypot(width, height) / 2 * scale / 3600.0 + 0.01
    sources = self.sources_near(ra, dec, radius)
    field = self._covering_field(ra, dec)
    area_ratio = (scale / render.PIXEL_SCALE_ARCSEC)**2
    flux_scale = 1.0 / area_ratio        # nanomaggies per 0.396" frame pixel
    xy = (wcs.wcs_world2pix(np.array([[s.ra, s.dec] for s in sources]), 0)
          if sources else np.zeros((0, 2)))
    out = {}
    for band in 'irg':
      noise = render.NOISE[band]
      fwhm = (field.fwhm[band] if field is not None
              else 1.4 * render.SEEING_FACTOR[band])
      image = np.zeros((height, width), np.float32)
      sigma = noise.sky_sigma_nmgy() / math.sqrt(max(area_ratio, 1.0))
      render.paint_sources(image, xy[:, 0], xy[:, 1], sources, band,
                           render.Psf.double_gaussian(fwhm), _sky_to_pixel(cd),
                           flux_scale=flux_scale, threshold=0.05 * sigma)
      rng = _rng(self.seed, 'cutout', float(ra), float(dec), float(scale),
                 width, height, band)
      out[band] = render.add_noise(image, noise, rng, area_ratio=area_ratio)
    return out

  def _real_index(self) -> list[_RealField]:
    """Fields whose i, r, g frames sas_root holds (headers read once)."""
    with self._lock:
      if self._real_fields is not None:
        return self._real_fields
    fields = []
    if self.sas_root is not None and self.sas_root.is_dir():
      for r_path in sorted(self.sas_root.glob('dr*/*/photoObj/frames/*/*/*/'
                                              'frame-r-*.fits.bz2')):
        paths = {b: r_path.with_name(r_path.name.replace('frame-r-',
                                                         f'frame-{b}-'))
                 for b in 'irg'}
        if all(p.is_file() for p in paths.values()):
          fields.append(_RealField(paths, _read_wcs(r_path)))
    with self._lock:
      self._real_fields = fields
    return fields

  def _real_cover(self, ra: float, dec: float) -> list[_RealField]:
    """Real fields holding (ra, dec), the deepest inside first."""
    found = []
    h, w = FRAME_SHAPE
    for field in self._real_index():
      x, y = field.wcs_r.wcs_world2pix([[ra, dec]], 0)[0]
      depth = min(x + 0.5, w - 0.5 - x, y + 0.5, h - 0.5 - y)
      if depth > 0:
        found.append((-depth, str(field.paths['r']), field))
    return [f for _, _, f in sorted(found)]

  def _decode_real(self, path: pathlib.Path) -> frames_lib.Frame:
    return self._decoded.get(
        str(path), lambda: frames_lib.decode_frame(path.read_bytes(),
                                                   source=str(path)))

  def _resample_real(self, fields: list[_RealField], ra, dec, scale, width,
                     height) -> dict[str, np.ndarray]:
    """i, r, g of the real frames resampled onto the cutout grid."""
    cd = np.array([[-scale, 0.0], [0.0, scale]]) / 3600.0
    wcs = tan_wcs(ra, dec, cd, ((width + 1) / 2, (height + 1) / 2))
    rows, cols = np.mgrid[0:height, 0:width]
    world = wcs.wcs_pix2world(np.stack([cols.ravel(), rows.ravel()], axis=1), 0)
    ratio = scale / render.PIXEL_SCALE_ARCSEC
    out = {}
    for band in 'irg':
      image = np.zeros(height * width, np.float32)
      filled = np.zeros(height * width, bool)
      for field in fields:
        frame = self._decode_real(field.paths[band])
        xy = frame.wcs.wcs_world2pix(world, 0)
        fh, fw = frame.image.shape
        inside = (~filled & (xy[:, 0] > -0.5) & (xy[:, 0] < fw - 0.5)
                  & (xy[:, 1] > -0.5) & (xy[:, 1] < fh - 0.5))
        if not inside.any():
          continue
        x, y = xy[inside, 0], xy[inside, 1]
        pad = int(3 * ratio) + 3
        x0, x1 = max(int(x.min()) - pad, 0), min(int(x.max()) + pad + 2, fw)
        y0, y1 = max(int(y.min()) - pad, 0), min(int(y.max()) + pad + 2, fh)
        window = frame.image[y0:y1, x0:x1]
        if ratio > 1.5:       # average over the coarser output pixel
          window = ndimage.gaussian_filter(window, 0.42 * ratio)
        image[inside] = ndimage.map_coordinates(
            window, [y - y0, x - x0], order=1, mode='nearest')
        filled |= inside
        if filled.all():
          break
      out[band] = image.reshape(height, width)
    return out

  # -- Pan-STARRS -------------------------------------------------------------

  def ps1_filenames(self, ra: float, dec: float, filters: str = 'grizy') -> str:
    """A ps1filenames.py answer: a whitespace table, header line first.

    Below dec -30 (outside PS1's 3pi survey) only the header line.
    """
    ra, dec = _check_position(ra, dec)
    bad = sorted(set(filters) - set(PS1_BANDS))
    if bad:
      raise ValueError(f'filters={filters!r}: unknown PS1 band(s) {bad}; use '
                       f'letters of {PS1_BANDS!r}.')
    lines = ['projcell subcell ra dec filter mjd type filename shortname '
             'badflag']
    if dec >= PS1_MIN_DEC:
      projcell, subcell = ps1_skycell(ra, dec)
      for band in dict.fromkeys(filters):
        short = (f'rings.v3.skycell.{projcell:04d}.{subcell:03d}.stk.{band}'
                 '.unconv.fits')
        name = f'/rings.v3.skycell/{projcell:04d}/{subcell:03d}/{short}'
        lines.append(f'{projcell} {subcell:03d} {ra:.6f} {dec:.6f} {band} 0 '
                     f'stack {name} {short} 0')
    return '\n'.join(lines) + '\n'

  def ps1_jpeg(self, ra: float, dec: float, *, size: int = 240, red: str,
               green: str, blue: str) -> bytes:
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
    ra, dec = _check_position(ra, dec)
    if dec < PS1_MIN_DEC:
      raise ValueError(f'dec={dec}: Pan-STARRS covers dec >= {PS1_MIN_DEC} '
                       'only.')
    if isinstance(size, bool) or int(size) != size or not 8 <= size <= 6000:
      raise ValueError(f'size={size!r}: expected a whole number of pixels '
                       f'from 8 to 6000.')
    size = int(size)
    bands = []
    for name in (red, green, blue):
      match = _PS1_FILE.search(str(name))
      if not match:
        raise ValueError(f'{name!r} is not a PS1 stack filename '
                         f'(...stk.<band>.unconv.fits from ps1filenames.py).')
      bands.append(match.group(1))
    scale = PS1_PIXEL_ARCSEC
    cd = np.array([[-scale, 0.0], [0.0, scale]]) / 3600.0
    wcs = tan_wcs(ra, dec, cd, ((size + 1) / 2, (size + 1) / 2))
    radius = math.sqrt(2) * size / 2 * scale / 3600 + 0.01
    sources = self.sources_near(ra, dec, radius)
    xy = (wcs.wcs_world2pix(np.array([[s.ra, s.dec] for s in sources]), 0)
          if sources else np.zeros((0, 2)))
    seeing = float(np.exp(_rng(self.seed, 'ps1 seeing', float(ra), float(dec))
                          .normal(0, 0.08)))
    channels = []
    for band in bands:
      fwhm = PS1_FWHM_ARCSEC[band] * seeing
      psf_sigma_px = fwhm / 2.3548 / scale
      # Per-pixel sky noise giving the survey's 5-sigma point-source depth.
      sigma = render.flux_nmgy(PS1_DEPTH[band]) / 5.0 / (
          math.sqrt(4 * math.pi) * psf_sigma_px)
      proxy = render.BANDS[PS1_AS_SDSS[band]]
      image = np.zeros((size, size), np.float32)
      render.paint_sources(image, xy[:, 0], xy[:, 1], sources, proxy,
                           render.Psf.double_gaussian(fwhm), _sky_to_pixel(cd),
                           threshold=0.05 * sigma, spikes=False)
      rng = _rng(self.seed, 'ps1', float(ra), float(dec), size, band)
      image += (rng.standard_normal(image.shape, dtype=np.float32)
                * np.float32(sigma))
      channels.append(_ps1_stretch(image / np.float32(sigma)))
    return _jpeg(np.stack(channels, axis=-1)[::-1])


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


def _jpeg(rgb: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format='JPEG',
                                                   quality=JPEG_QUALITY)
  return buf.getvalue()


def _read_wcs(path: pathlib.Path) -> astropy_wcs.WCS:
  """The WCS of a .fits.bz2 frame, from its header only (first bz2 block)."""
  decompressor = bz2.BZ2Decompressor()
  head = decompressor.decompress(path.read_bytes(), max_length=2880 * 20)
  end = re.search(rb'END {77}', head)
  if end is None:
    raise ValueError(f'{path}: no FITS header END card in the first '
                     f'{len(head)} bytes; is it a frame .fits.bz2 file?')
  header = fits.Header.fromstring(head[:end.end()].decode('ascii'))
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', astropy_wcs.FITSFixedWarning)
    return astropy_wcs.WCS(header, naxis=2)


def _frame_name(frame: Any) -> str:
  name = getattr(frame, 'name', None)
  return name if isinstance(name, str) else str(frame)


def _check_band(band: str) -> str:
  if band not in BANDS:
    raise ValueError(f'band={band!r}: expected one of u, g, r, i, z.')
  return band


def _check_position(ra, dec) -> tuple[float, float]:
  ra, dec = float(ra), float(dec)
  if not (math.isfinite(ra) and math.isfinite(dec)) or not -90 <= dec <= 90:
    raise ValueError(f'ra={ra}, dec={dec}: expected finite degrees with '
                     f'-90 <= dec <= 90.')
  return ra % 360.0, dec


def _check_cutout(ra, dec, scale, width, height):
  ra, dec = _check_position(ra, dec)
  scale = float(scale)
  if not math.isfinite(scale) or not 0.015 <= scale <= 60.0:
    raise ValueError(f'scale={scale}: expected arcsec per pixel from 0.015 '
                     f'to 60.')
  lo, hi = CUTOUT_SIZE_RANGE
  for name, value in (('width', width), ('height', height)):
    if isinstance(value, bool) or int(value) != value or not lo <= value <= hi:
      raise ValueError(f'{name}={value!r}: expected a whole number of pixels '
                       f'from {lo} to {hi}.')
  return ra, dec, scale, int(width), int(height)


def benchmark_frame(sky: Sky, frame: 'FrameId', bands: Iterable[str] = BANDS
                    ) -> dict[str, dict[str, float]]:
  """Times render, encode (FITS + bz2) and decode of simulated frames.

  Returns:
    band -> {'render_s', 'encode_s', 'decode_s', 'bytes'}.
  """
  results = {}
  for band in bands:
    geometry = sky.geometry(frame)
    t0 = time.perf_counter()
    # pylint: disable-next=protected-access
    image, wcs = sky._render_band(geometry, band)
    t1 = time.perf_counter()
    data = encode_frame(image, wcs, band, geometry, seed=sky.seed)
    t2 = time.perf_counter()
    frames_lib.decode_frame(data, band=band)
    t3 = time.perf_counter()
    results[band] = {'render_s': t1 - t0, 'encode_s': t2 - t1,
                     'decode_s': t3 - t2, 'bytes': float(len(data))}
  return results
