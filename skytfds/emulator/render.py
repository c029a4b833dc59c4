"""Image-formation maths for the simulated sky: PSF, Sersic profiles, noise.

Pure numpy. Every source is drawn as a sum of elliptical Gaussians: a Sersic
profile is approximated by a mixture of concentric Gaussians (fitted once per
Sersic index), and the SDSS point-spread function is a double Gaussian, so the
PSF convolution is exact (covariances add) and a source is painted onto a small
postage stamp around its sub-pixel position in a few vectorised operations.
The pixel response (a 1x1 pixel box) is folded in as an extra 1/12 px^2 of
variance.

Units: fluxes in nanomaggies (nmgy; m = 22.5 - 2.5 log10(flux)), sizes in
arcseconds on the sky and pixels on an image, angles in degrees east of north.
"""

# Follows the SDSS photometric pipeline's image model as its data model pages
# describe it (data.sdss.org/datamodel/files/PHOTO_REDUX/RERUN/RUN/objcs/
# CAMCOL/psField.html: the double-Gaussian PSF; .../BOSS_PHOTOOBJ/frames/
# RERUN/RUN/CAMCOL/frame.html: nanomaggies, calibration vector, sky, gain and
# dark variance, FLOATCOMPRESS).

import dataclasses
import functools
import math
from typing import Sequence

import numpy as np
from scipy import optimize

from skytfds import survey

PIXEL_SCALE_ARCSEC = survey.SDSS_PIXEL_ARCSEC   # SDSS frame pixel, arcsec
PIXEL_VARIANCE = 1.0 / 12.0         # px^2: variance of a 1-pixel box response
SATURATION_COUNTS = 55000.0         # DN above which an SDSS pixel saturates
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclasses.dataclass(frozen=True)
class BandNoise:
  """Per-band detector and sky levels of a typical SDSS frame.

  Attributes:
    nmgy_per_count: calibration, nanomaggies per DN (header NMGY).
    sky_counts: sky level, DN per pixel (sky-subtracted from the image).
    gain: electrons per DN.
    dark_variance: read noise plus dark current, DN^2 per pixel.
  """
  nmgy_per_count: float
  sky_counts: float
  gain: float
  dark_variance: float

  def sky_sigma_nmgy(self) -> float:
    """Per-pixel noise of blank sky, nanomaggies."""
    var = self.sky_counts / self.gain + self.dark_variance
    return math.sqrt(var) * self.nmgy_per_count


# Measured on real DR17 frames (003918-3-0213, 002583-2-0136): NMGY, the
# ALLSKY level, and the blank-sky scatter (u 0.043, g 0.016, r 0.023,
# i 0.039, z 0.16 nmgy per pixel), with the camera's gains.
NOISE = {
    'u': BandNoise(0.0097, 16.03, 1.6, 9.0),
    'g': BandNoise(0.0038, 54.22, 3.5, 3.2),
    'r': BandNoise(0.0051, 96.97, 4.7, 0.4),
    'i': BandNoise(0.0068, 130.13, 5.0, 6.4),
    'z': BandNoise(0.0362, 70.29, 4.7, 5.3),
}

# Seeing relative to r (it improves slowly with wavelength).
SEEING_FACTOR = {'u': 1.12, 'g': 1.06, 'r': 1.0, 'i': 0.96, 'z': 0.95}

# Double-Gaussian PSF: the wing is twice as wide as the core and holds 10% of
# the light, as in SDSS's psField double-Gaussian fits; plus a faint wide
# aureole (2% of the light at 5x the core width) standing in for the
# power-law wings that make bright stars look large.
PSF_WING_RATIO = 2.0
PSF_WING_FRACTION = 0.1
PSF_AUREOLE_RATIO = 5.0
PSF_AUREOLE_FRACTION = 0.02


def flux_nmgy(mag: np.ndarray | float) -> np.ndarray:
  """AB magnitude -> flux in nanomaggies."""
  return np.power(10.0, (22.5 - np.asarray(mag, dtype=np.float64)) / 2.5)


@dataclasses.dataclass(frozen=True)
class Psf:
  """A circular double-Gaussian PSF on the sky.

  Attributes:
    sigmas_arcsec: Gaussian sigmas, arcsec.
    weights: fraction of the light in each Gaussian (sum 1).
  """
  sigmas_arcsec: tuple[float, ...]
  weights: tuple[float, ...]

  @classmethod
  def double_gaussian(cls, fwhm_arcsec: float) -> 'Psf':
    """SDSS's double Gaussian (plus aureole); the core has this FWHM."""
    core = fwhm_arcsec / _FWHM_PER_SIGMA
    return cls((core, PSF_WING_RATIO * core, PSF_AUREOLE_RATIO * core),
               (1.0 - PSF_WING_FRACTION - PSF_AUREOLE_FRACTION,
                PSF_WING_FRACTION, PSF_AUREOLE_FRACTION))


def sersic_b(n: float) -> float:
  """b_n: the effective radius holds half the light (Ciotti & Bertin 1999)."""
  return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


@functools.lru_cache(maxsize=64)
def sersic_mixture(n: float) -> tuple[np.ndarray, np.ndarray]:
  """Mixture-of-Gaussians approximation of a circular Sersic profile.

  The profile is truncated at 8 effective radii (as SDSS truncates its de
  Vaucouleurs model). Fitted by non-negative least squares on the
  area-weighted profile, with fixed log-spaced widths.

  Args:
    n: Sersic index (0.5 = Gaussian, 1 = exponential, 4 = de Vaucouleurs).

  Returns:
    (weights, variances): flux fraction of each component (sum 1) and its
    variance in units of the effective radius squared.
  """
  r = np.concatenate([np.geomspace(1e-3, 0.5, 150), np.linspace(0.5, 8.0, 300)])
  dr = np.gradient(r)
  profile = np.exp(-sersic_b(n) * (np.power(r, 1.0 / n) - 1.0))
  sigmas = np.geomspace(0.004, 4.0, 18)
  variances = sigmas**2
  # Each column: a unit-flux 2-D Gaussian evaluated on the radial grid.
  basis = np.exp(-0.5 * r[:, None]**2 / variances[None, :]) / (
      2.0 * np.pi * variances[None, :])
  row_weight = np.sqrt(r * dr)
  profile_norm = profile / np.sum(2.0 * np.pi * r * dr * profile)
  fluxes, _ = optimize.nnls(basis * row_weight[:, None],
                            profile_norm * row_weight, maxiter=5000)
  keep = fluxes > 1e-4 * fluxes.sum()
  weights = fluxes[keep] / fluxes[keep].sum()
  return weights, variances[keep]


def galaxy_covariances(re_arcsec: float, n: float, axis_ratio: float,
                       pa_deg: float) -> tuple[np.ndarray, np.ndarray]:
  """Sky covariances of a Sersic galaxy's Gaussian components.

  Args:
    re_arcsec: effective (half-light) radius along the major axis, arcsec.
    n: Sersic index.
    axis_ratio: b/a in (0, 1].
    pa_deg: position angle of the major axis, degrees east of north.

  Returns:
    (weights [K], covariances [K, 2, 2]) in arcsec^2 on (east, north) axes.
  """
  weights, variances = sersic_mixture(round(float(n) * 4.0) / 4.0)
  theta = math.radians(pa_deg)
  major = np.array([math.sin(theta), math.cos(theta)])
  minor = np.array([math.cos(theta), -math.sin(theta)])
  shape = (np.outer(major, major) + axis_ratio**2 * np.outer(minor, minor))
  covs = variances[:, None, None] * re_arcsec**2 * shape[None]
  return weights, covs


def point_covariances() -> tuple[np.ndarray, np.ndarray]:
  """A point source: one zero-size component (the PSF is added later)."""
  return np.ones(1), np.zeros((1, 2, 2))


def convolve_psf(weights: np.ndarray, covs_arcsec: np.ndarray, psf: Psf,
                 sky_to_pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Convolve sky components with the PSF and map them to pixel covariances.

  Args:
    weights: [K] flux fractions.
    covs_arcsec: [K, 2, 2] covariances on (east, north) arcsec axes.
    psf: the point-spread function.
    sky_to_pixel: [2, 2] Jacobian d(x, y pixels) / d(east, north arcsec).

  Returns:
    (weights [K*P], covariances [K*P, 2, 2] in px^2, pixel box included).
  """
  psf_w = np.asarray(psf.weights)
  psf_var = np.asarray(psf.sigmas_arcsec)**2
  covs = covs_arcsec[:, None] + psf_var[None, :, None, None] * np.eye(2)
  covs = covs.reshape(-1, 2, 2)
  w = (weights[:, None] * psf_w[None, :]).reshape(-1)
  pix = np.einsum('ij,kjl,ml->kim', sky_to_pixel, covs, sky_to_pixel)
  pix = pix + PIXEL_VARIANCE * np.eye(2)
  return w, pix


def paint(image: np.ndarray, x: float, y: float, flux: float,
          weights: np.ndarray, covs_px: np.ndarray, threshold: float,
          max_half: int = 200) -> None:
  """Add one source to `image` in place, on a stamp around (x, y).

  Args:
    image: [H, W] float32, flux per pixel (nanomaggies).
    x, y: source centre, 0-based pixel coordinates (column, row); a pixel's
      centre has integer coordinates.
    flux: total flux of the source (same units as the image, summed).
    weights: [K] flux fractions of the Gaussian components.
    covs_px: [K, 2, 2] component covariances, px^2.
    threshold: surface brightness (image units) below which the stamp may be
      cut off, typically a small fraction of the noise sigma.
    max_half: largest stamp half-size, pixels.
  """
  det = covs_px[:, 0, 0] * covs_px[:, 1, 1] - covs_px[:, 0, 1]**2
  peaks = flux * weights / (2.0 * np.pi * np.sqrt(det))
  visible = peaks > threshold
  if not np.any(visible):
    return
  # Radius at which each component falls to the threshold (along its major
  # axis), which bounds the stamp.
  trace = covs_px[:, 0, 0] + covs_px[:, 1, 1]
  lam_max = 0.5 * trace + np.sqrt(np.maximum(0.25 * trace**2 - det, 0.0))
  radius = np.sqrt(2.0 * np.log(peaks[visible] / threshold) * lam_max[visible])
  half = int(min(max_half, math.ceil(radius.max()) + 1))
  h, w = image.shape
  col, row = int(math.floor(x)), int(math.floor(y))
  x0, x1 = max(col - half, 0), min(col + half + 2, w)
  y0, y1 = max(row - half, 0), min(row + half + 2, h)
  if x0 >= x1 or y0 >= y1:
    return
  dx = np.arange(x0, x1, dtype=np.float64) - x
  dy = np.arange(y0, y1, dtype=np.float64) - y
  inv_det = 1.0 / det
  a = covs_px[:, 1, 1] * inv_det      # inverse covariance entries
  b = -covs_px[:, 0, 1] * inv_det
  c = covs_px[:, 0, 0] * inv_det
  q = (a[:, None, None] * dx[None, None, :]**2
       + 2.0 * b[:, None, None] * dy[None, :, None] * dx[None, None, :]
       + c[:, None, None] * dy[None, :, None]**2)
  stamp = np.tensordot(peaks, np.exp(-0.5 * q), axes=1)
  image[y0:y1, x0:x1] += stamp.astype(np.float32)


# Diffraction spikes of the secondary's support vanes: a fraction of a bright
# star's flux per pixel at the core, falling off along the frame's rows and
# columns (as in SDSS images).
SPIKE_PEAK_FRACTION = 1e-3
SPIKE_SCALE_PX = 4.0


def paint_spikes(image: np.ndarray, x: float, y: float, flux: float,
                 threshold: float, max_length: int = 400) -> None:
  """Adds four diffraction spikes (along x and y) around a bright star.

  The spike profile is peak / (1 + d / 4 px)^1.5 along the spike, Gaussian
  (sigma 0.7 px) across it, where peak = 1e-3 of the star's flux.

  Args:
    image: [H, W] float32 (in place).
    x, y: star centre, 0-based pixels.
    flux: star flux (image units, summed).
    threshold: surface brightness below which the spikes stop.
    max_length: longest spike, pixels.
  """
  peak = SPIKE_PEAK_FRACTION * flux
  if peak <= threshold:
    return
  length = min(max_length,
               int(SPIKE_SCALE_PX * ((peak / threshold)**(1 / 1.5) - 1)))
  if length < 3:
    return
  h, w = image.shape
  across = np.arange(-2, 3, dtype=np.float64)
  col, row = int(round(x)), int(round(y))
  for horizontal in (True, False):
    centre = x if horizontal else y
    offset = y - row if horizontal else x - col
    along = np.arange(-length, length + 1) + (col if horizontal else row)
    dist = np.abs(along - centre)
    profile = peak / (1.0 + dist / SPIKE_SCALE_PX)**1.5
    profile[dist < 2] = 0.0                      # the core is the PSF's
    weights = np.exp(-0.5 * ((across - offset) / 0.7)**2)
    weights /= weights.sum()
    stamp = weights[:, None] * profile[None, :]  # [across, along]
    lines = (row if horizontal else col) + across.astype(int)
    n_along = w if horizontal else h
    n_across = h if horizontal else w
    keep_a = (along >= 0) & (along < n_along)
    keep_c = (lines >= 0) & (lines < n_across)
    if not keep_a.any() or not keep_c.any():
      continue
    block = stamp[np.ix_(keep_c, keep_a)].astype(np.float32)
    a0, a1 = along[keep_a][0], along[keep_a][-1] + 1
    c0, c1 = lines[keep_c][0], lines[keep_c][-1] + 1
    if horizontal:
      image[c0:c1, a0:a1] += block
    else:
      image[a0:a1, c0:c1] += block.T


@dataclasses.dataclass(frozen=True)
class Source:
  """One source on the sky.

  Attributes:
    ra, dec: degrees.
    mags: ugriz AB magnitudes (no NaN).
    galaxy: True for a Sersic galaxy, False for a point source.
    re_arcsec, sersic_n, axis_ratio, pa_deg: galaxy shape (ignored for
      point sources).
  """
  ra: float
  dec: float
  mags: tuple[float, float, float, float, float]
  galaxy: bool = False
  re_arcsec: float = 0.0
  sersic_n: float = 1.0
  axis_ratio: float = 1.0
  pa_deg: float = 0.0


def paint_sources(image: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                  sources: Sequence[Source], band: str, psf: Psf,
                  sky_to_pixel: np.ndarray, *, flux_scale: float = 1.0,
                  threshold: float, spikes: bool = True) -> None:
  """Paint `sources` at pixel positions (xs, ys) into `image` (in place).

  Args:
    image: [H, W] float32 in nanomaggies per pixel (times flux_scale).
    xs, ys: 0-based pixel positions of the sources on this image.
    sources: the sources; their `band` magnitude sets the flux.
    band: one of 'ugriz'.
    psf: the PSF of this band.
    sky_to_pixel: [2, 2] d(x, y px) / d(east, north arcsec) of this image.
    flux_scale: multiplies every flux (e.g. to express a resampled cutout in
      nanomaggies per 0.396" frame pixel).
    threshold: cut-off surface brightness for stamps (image units).
    spikes: draw diffraction spikes of bright point sources along the image
      axes (SDSS frames and getjpeg cutouts, which are north-up, show them).
  """
  k = survey.BANDS.index(band)
  h, w = image.shape
  point = None
  for source, x, y in zip(sources, xs, ys):
    if not (-60 < x < w + 60 and -60 < y < h + 60):
      continue
    flux = float(flux_nmgy(source.mags[k])) * flux_scale
    if source.galaxy:
      weights, covs = galaxy_covariances(source.re_arcsec, source.sersic_n,
                                         source.axis_ratio, source.pa_deg)
      weights, covs = convolve_psf(weights, covs, psf, sky_to_pixel)
    else:
      if point is None:
        point = convolve_psf(*point_covariances(), psf, sky_to_pixel)
      weights, covs = point
      if spikes:
        paint_spikes(image, float(x), float(y), flux, threshold)
    paint(image, float(x), float(y), flux, weights, covs, threshold)


def sky_model(level: float, shape: tuple[int, int],
              slope: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
  """float32 [H, W] (or a scalar when flat): sky in DN, a gentle plane.

  sky(y, x) = level * (1 + slope_x (x / W - 1/2) + slope_y (y / H - 1/2)).
  """
  if slope == (0.0, 0.0):
    return np.float32(level)
  h, w = shape
  cols = (np.arange(w, dtype=np.float32) / np.float32(w) - 0.5) * slope[0]
  rows = (np.arange(h, dtype=np.float32) / np.float32(h) - 0.5) * slope[1]
  return np.float32(level) * (1 + rows[:, None] + cols[None, :])


def calibration_vector(band: str, width: int = 2048) -> np.ndarray:
  """float32 [width]: nanomaggies per DN of each column (gentle vignetting)."""
  columns = np.arange(width)
  vector = NOISE[band].nmgy_per_count * (
      1.0 + 0.004 * np.cos(columns / width * np.pi))
  return vector.astype(np.float32)


def add_noise(image: np.ndarray, noise: BandNoise, rng: np.random.Generator,
              *, area_ratio: float = 1.0, calib: np.ndarray | None = None,
              integer_counts: bool = False,
              sky_slope: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
  """Sky-subtracted image with Poisson + read noise, saturated like SDSS.

  Args:
    image: [H, W] float32 noiseless signal, nanomaggies per frame pixel.
    noise: the band's detector and sky levels.
    rng: random generator (deterministic per image).
    area_ratio: frame pixels averaged into one image pixel (>= 1 reduces the
      noise as resampling to a coarser scale does).
    calib: [W] nanomaggies per DN of each column (default: the band's NMGY).
    integer_counts: round the raw pixel (signal + sky) to whole DN before
      the sky is subtracted, as the camera digitises: real frames hold
      (DN - sky) * calib, which is why they compress to ~3 MB.
    sky_slope: fractional change of the sky level across the image in x and
      y (see `sky_model`).

  Returns:
    float32 [H, W]: signal + noise, nanomaggies, sky level removed.
  """
  if calib is None:
    cal = np.float32(noise.nmgy_per_count)
  else:
    cal = np.asarray(calib, np.float32)[None, :]
  sky = sky_model(noise.sky_counts, image.shape, sky_slope)
  counts = image / cal                       # signal, DN
  variance = np.maximum(counts, 0.0) + sky
  variance *= np.float32(1.0 / noise.gain)
  variance += np.float32(noise.dark_variance)
  variance *= np.float32(1.0 / max(area_ratio, 1.0))
  noisy = rng.standard_normal(image.shape, dtype=np.float32)
  noisy *= np.sqrt(variance)
  noisy += counts
  if integer_counts:
    noisy += sky
    np.round(noisy, out=noisy)
    noisy -= sky
  np.minimum(noisy, SATURATION_COUNTS - sky, out=noisy)
  noisy *= cal
  return noisy


def truncate_mantissa(image: np.ndarray, bits: int = 10) -> np.ndarray:
  """Keep `bits` binary digits of each float32 mantissa (SDSS FLOATCOMPRESS).

  Real frames carry 'Floats truncated at 10 binary digits with FLOATCOMPRESS':
  the low 13 of 23 mantissa bits are zero, which is why they compress to ~3 MB.
  """
  as_int = np.ascontiguousarray(image, dtype=np.float32).view(np.uint32)
  mask = np.uint32((0xFFFFFFFF << (23 - bits)) & 0xFFFFFFFF)
  return (as_int & mask).view(np.float32)
