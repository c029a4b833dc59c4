"""What the simulated sky holds: catalogue objects and background sources.

Every catalogue object is drawn at its real (ra, dec) with its real ugriz
magnitudes (missing ones interpolated between neighbouring bands): stars and
quasars as point sources, galaxies as Sersic profiles whose index follows the
u - r colour (Strateva et al. 2001) and whose size follows the magnitude.
Background stars (stellar-locus colours, density rising towards the Galactic
plane) and galaxies (red and blue populations) come from fixed sky tiles, so
frames, cutouts and overlapping fields all show the same neighbours.
"""

# Follows the SDSS stellar locus and galaxy colour distributions as SkyServer
# serves them (skyserver.sdss.org/dr17 PhotoObj u, g, r, i, z of stars and
# galaxies; Strateva et al. 2001, AJ 122, 1861 for the u - r separator).

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Sequence

from astropy import coordinates
from astropy import units
import numpy as np

from skytfds.emulator import fields
from skytfds.emulator import render

if TYPE_CHECKING:
  from skytfds.catalog import CatalogObject

# Background sky tiles: declination bands this tall (deg), cut in RA into
# tiles of about the same width.
TILE_DEG = 0.1
# Regions wider than this (radius, deg) get no background sources.
MAX_BACKGROUND_RADIUS_DEG = 0.5


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



def _tile_bounds(j: int, i: int) -> tuple[float, float, float, float]:
  """(ra_lo, ra_hi, dec_lo, dec_hi) of sky tile (j, i), degrees."""
  dec_lo = -90.0 + j * TILE_DEG
  dec_hi = min(dec_lo + TILE_DEG, 90.0)
  n = _tiles_in_band(j)
  return i * 360.0 / n, (i + 1) * 360.0 / n, dec_lo, dec_hi


def _tiles_in_band(j: int) -> int:
  dec_mid = -90.0 + (j + 0.5) * TILE_DEG
  return max(1, int(360.0 * math.cos(math.radians(dec_mid)) / TILE_DEG))


def tiles_near(ra: float, dec: float, radius: float) -> list[tuple[int, int]]:
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
  position = coordinates.SkyCoord(ra * units.deg, dec * units.deg,
                                  frame='icrs')
  return float(position.galactic.b.deg)

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
  rng = fields.seeded_rng(seed, 'tile', j, i)
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
  rng = fields.seeded_rng(seed, 'object', obj.key)
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
