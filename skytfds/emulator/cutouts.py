"""SkyServer getjpeg images: a north-up colour cutout around (ra, dec).

Rendered straight onto the asked grid (no whole frames) from the sky's
sources, with the PSF of the covering simulated field and noise averaged down
to the asked scale, or resampled from real frames when the local SAS mirror
holds frames covering the position; i, r, g through `colour.irg_rgb`, JPEG
quality 75, north up and east left.
"""

# Follows sciserver/SkyServerWS ImgCutout/ImgCutout.cs (the cutout: centre,
# scale in arcsec/pixel, width and height; north up, east left; outside the
# footprint, getFrames draws "Requested (ra, dec) is outside the SDSS
# footprint." on the empty canvas, drawDebugMessage, and that image is the
# answer's body) and its documented ranges (scale 0.015..60 arcsec/pixel,
# 64..2048 pixels; the route clips to them).

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from skytfds import survey
from skytfds.emulator import colour
from skytfds.emulator import fields
from skytfds.emulator import render

if TYPE_CHECKING:
  from skytfds.emulator.sky import Sky

SIZE_RANGE = (64, 2048)               # pixels, width and height
SCALE_RANGE = (0.015, 60.0)           # arcsec per pixel


def check_position(ra, dec) -> tuple[float, float]:
  """(ra in [0, 360), dec) as floats; ValueError for a bad position."""
  ra, dec = float(ra), float(dec)
  if not (math.isfinite(ra) and math.isfinite(dec)) or not -90 <= dec <= 90:
    raise ValueError(f'ra={ra}, dec={dec}: expected finite degrees with '
                     f'-90 <= dec <= 90.')
  return ra % 360.0, dec


def check_pixels(name: str, value, low: int, high: int) -> int:
  """A whole number of pixels in [low, high]; ValueError otherwise."""
  if isinstance(value, bool) or int(value) != value or not low <= value <= high:
    raise ValueError(f'{name}={value!r}: expected a whole number of pixels '
                     f'from {low} to {high}.')
  return int(value)


def _simulate(sky: 'Sky', ra: float, dec: float, scale: float, width: int,
              height: int) -> dict[str, np.ndarray]:
  """i, r, g nanomaggies (per 0.396" frame pixel) on the cutout grid."""
  wcs = fields.north_up_wcs(ra, dec, scale, width, height)
  radius = math.hypot(width, height) / 2 * scale / 3600.0 + 0.01
  sources = sky.sources_near(ra, dec, radius)
  field = sky.covering_field(ra, dec)
  area_ratio = (scale / survey.SDSS_PIXEL_ARCSEC)**2
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
                         render.Psf.double_gaussian(fwhm),
                         fields.sky_to_pixel(wcs.wcs.cd),
                         flux_scale=flux_scale, threshold=0.05 * sigma)
    rng = fields.seeded_rng(sky.seed, 'cutout', float(ra), float(dec),
                            float(scale), width, height, band)
    out[band] = render.add_noise(image, noise, rng, area_ratio=area_ratio)
  return out


OUTSIDE_FOOTPRINT = 'Requested (ra, dec) is outside the SDSS footprint.'


def outside_footprint_jpeg(width: int, height: int) -> bytes:
  """The image getjpeg sends with its 404: the message on a black canvas."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  width = check_pixels('width', width, *SIZE_RANGE)
  height = check_pixels('height', height, *SIZE_RANGE)
  canvas = Image.new('RGB', (width, height), (0, 0, 0))
  ImageDraw.Draw(canvas).multiline_text(
      (4, 4), OUTSIDE_FOOTPRINT.replace(' is ', '\nis '), fill=(255, 255, 0))
  return colour.jpeg(np.asarray(canvas))


def cutout_jpeg(sky: 'Sky', ra: float, dec: float, *, scale: float,
                width: int, height: int) -> bytes:
  """JPEG bytes of the cutout (see the module doc); ValueError if bad."""
  ra, dec = check_position(ra, dec)
  scale = float(scale)
  if not math.isfinite(scale) or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
    raise ValueError(f'scale={scale}: expected arcsec per pixel from '
                     f'{SCALE_RANGE[0]} to {SCALE_RANGE[1]:g}.')
  width = check_pixels('width', width, *SIZE_RANGE)
  height = check_pixels('height', height, *SIZE_RANGE)
  cover = sky.real_frames.cover(ra, dec)
  if cover:
    wcs = fields.north_up_wcs(ra, dec, scale, width, height)
    bands = sky.real_frames.resample(cover, wcs, scale, width, height)
  else:
    bands = _simulate(sky, ra, dec, scale, width, height)
  return colour.jpeg(colour.irg_rgb(bands['i'], bands['r'], bands['g'])[::-1])
