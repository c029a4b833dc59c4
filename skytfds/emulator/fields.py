"""Where a simulated field lies on the sky: its frame's WCS in every band.

A simulated field's WCS is placed so that every catalogue object of that
field lies inside it: the rows run along the SDSS scan great circle (node 95
deg, inclination of the nearest 2.5-deg stripe), and if the objects do not fit
that way, nearby rotations are tried. Bands are offset by a few pixels from r
(as in real frames) and get their own seeing and sky gradient.

The TAN projection and the sky positions' unit vectors are astropy's
(astropy.wcs, astropy.coordinates); only the scan geometry is written here.
"""

# Follows the SDSS data model of the frame file's WCS
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
# (TAN projection, CRPIX 1025/745, 0.396"/px) and of asTrans (node 95 deg,
# stripe inclinations: data.sdss.org/datamodel/files/PHOTO_REDUX/RERUN/RUN/
# astrom/asTrans.html).

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any

from astropy import coordinates
from astropy import units
from astropy import wcs as astropy_wcs
import numpy as np

from skytfds import survey
from skytfds.emulator import render

FRAME_SHAPE = (1489, 2048)                      # rows, columns
CRPIX = (1025.0, 745.0)                         # FITS 1-based, as real frames
PIXEL_SCALE_DEG = survey.SDSS_PIXEL_ARCSEC / 3600.0
# Margin (pixels, r grid) kept between catalogue objects and the frame edge.
FIELD_MARGIN_PX = 40
# Radius (deg) around a frame centre that holds the whole frame.
FRAME_RADIUS_DEG = math.hypot(*FRAME_SHAPE) / 2 * PIXEL_SCALE_DEG + 0.01
SDSS_NODE_DEG = 95.0
# Typical pixel offset (x, y on the r grid) of each band from r at the frame
# centre, as measured on real frames (rows lie along the scan); a per-field
# jitter is added.
BAND_OFFSET_PX = {'u': (1.5, 5.0), 'g': (2.0, 10.0), 'r': (0.0, 0.0),
                  'i': (0.5, 3.0), 'z': (1.5, 7.0)}


def unit(ra_deg, dec_deg) -> np.ndarray:
  """Unit vectors [..., 3] of sky positions (degrees)."""
  position = coordinates.UnitSphericalRepresentation(
      np.asarray(ra_deg, np.float64) * units.deg,
      np.asarray(dec_deg, np.float64) * units.deg)
  return np.moveaxis(position.to_cartesian().xyz.value, 0, -1)


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


def seeded_rng(*parts: Any) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence(_seed_words(*parts)))


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
  x = unit(ra, dec)
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


def _standard(ra0: float, dec0: float) -> astropy_wcs.WCS:
  """A TAN WCS whose 0-based pixel coordinates are the standard coordinates
  (xi east, eta north; degrees) around (ra0, dec0)."""
  return tan_wcs(ra0, dec0, np.eye(2), (1.0, 1.0))


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


def sky_to_pixel(cd: np.ndarray) -> np.ndarray:
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


def fit_field(frame: Any, ra: np.ndarray, dec: np.ndarray, seed: int
              ) -> FieldGeometry:
  """Places a field's WCS so that all of (ra, dec) fit with a margin."""
  rng = seeded_rng(seed, 'field', frame.run, frame.rerun, frame.camcol,
                   frame.field)
  u = unit(ra, dec).sum(axis=0)
  ra0 = math.degrees(math.atan2(u[1], u[0])) % 360.0
  dec0 = math.degrees(math.asin(u[2] / np.linalg.norm(u)))
  scan, incl = _scan_direction(ra0, dec0)
  standard = _standard(ra0, dec0)
  xi, eta = standard.wcs_world2pix(np.stack([ra, dec], axis=1), 0).T
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
  cra, cdec = standard.wcs_pix2world([[float(cxi), float(ceta)]], 0)[0]
  center = (float(cra) % 360.0, float(cdec))
  offsets = {}
  for band, (dx, dy) in BAND_OFFSET_PX.items():
    if band == 'r':
      offsets[band] = (0.0, 0.0)
    else:
      offsets[band] = (float(dx + rng.normal(0, 2.0)),
                       float(dy + rng.normal(0, 0.7)))
  seeing = float(np.clip(1.4 * math.exp(rng.normal(0, 0.12)), 1.0, 2.2))
  fwhm = {b: seeing * render.SEEING_FACTOR[b]
          * float(np.exp(rng.normal(0, 0.03))) for b in survey.BANDS}
  sky_slope = {b: (float(rng.normal(0, 0.003)), float(rng.normal(0, 0.003)))
               for b in survey.BANDS}
  geometry = FieldGeometry(frame, center, cd, offsets, fwhm, sky_slope, incl,
                           0.0)
  r_wcs = geometry.wcs('r')
  x, y = r_wcs.wcs_world2pix(np.stack([ra, dec], axis=1), 0).T
  edge = float(min((x + 0.5).min(), (w - 0.5 - x).min(), (y + 0.5).min(),
                   (h - 0.5 - y).min()))
  return dataclasses.replace(geometry, margin_px=edge)


def north_up_wcs(ra: float, dec: float, scale_arcsec: float, width: int,
                 height: int) -> astropy_wcs.WCS:
  """The TAN WCS of a cutout centred on (ra, dec): north up, east left."""
  cd = np.array([[-scale_arcsec, 0.0], [0.0, scale_arcsec]]) / 3600.0
  return tan_wcs(ra, dec, cd, ((width + 1) / 2, (height + 1) / 2))
