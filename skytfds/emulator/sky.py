"""The simulated sky behind the emulator: SDSS frames, cutouts, PS1 answers.

`Sky` renders what the real services would serve, deterministically from a
seed, from one module each:

* Frames (`frame_bytes`): the SAS file byte for byte when `sas_root` holds
  it; otherwise a simulated `.fits.bz2` in the real format
  (`frame_files.encode_frame`) of a field placed by `fields` and holding the
  sources of `population`, drawn by `render`. The PSF is a double Gaussian
  (seeing drawn per field, ~1.4" FWHM in r, worse in u). Sky-subtracted
  Poisson and read noise at SDSS levels; floats truncated to 10 mantissa bits
  as SDSS's FLOATCOMPRESS does, so the files are ~3 MB and bz2-decode in
  ~0.5 s. Bright stars get diffraction spikes along the pixel axes and a
  faint PSF aureole, as in SDSS images; cosmic rays, bleed trails and bad
  columns are not simulated.
* Cutouts (`cutout_jpeg`, SkyServer getjpeg): `cutouts`, from the same
  sources or from the real frames of `real_frames`.
* Pan-STARRS fitscut.cgi images (`ps1_jpeg`): `panstarrs`. Its
  ps1filenames.py tables depend on the position only, not on the sky: the
  route takes them from `panstarrs.ps1_filenames_bulk` itself.

Units: images in nanomaggies per pixel, angles in degrees unless a name says
arcsec, pixels 0-based (x = column, y = row) unless FITS keywords say so.

Timing (shared 2-core machine, one band; `benchmark_frame` measures it):
`frame_bytes` of a simulated frame costs ~1-1.4 s (render + noise 0.15-0.35 s,
FITS + bz2 0.7-1.1 s); the file is 2.9-4.2 MB (real: 2.9-3.8 MB) and
bz2-decodes in 0.3-0.5 s (real: 0.3-0.6 s).
"""

# Follows the SDSS data model page of the frame file,
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html
# (what the SAS serves), sciserver/SkyServerWS ImgCutout/ImgCutout.cs (what
# getjpeg serves) and spacetelescope/fitscut fitscut.c (what fitscut.cgi
# serves).

from __future__ import annotations

import collections
import math
import pathlib
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable

from astropy import wcs as astropy_wcs
import numpy as np
from PIL import Image

from skytfds import survey
from skytfds.emulator import colour
from skytfds.emulator import cutouts
from skytfds.emulator import fields
from skytfds.emulator import frame_files
from skytfds.emulator import panstarrs
from skytfds.emulator import payload_cache
from skytfds.emulator import population
from skytfds.emulator import real_frames
from skytfds.emulator import render
from skytfds.emulator import sas_layout

if TYPE_CHECKING:
  from skytfds.catalog import Catalog, FrameId

RENDERED_CACHE_SIZE = 5         # simulated band images kept (12 MB each)


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
      self._xyz = fields.unit(np.array([o.ra for o in self._objects]),
                        np.array([o.dec for o in self._objects]))
    else:
      self._xyz = np.zeros((0, 3))
    self._lock = threading.Lock()
    self._geometry: dict[Any, fields.FieldGeometry] = {}
    self._sources: dict[int, render.Source | None] = {}
    self._rendered = payload_cache.Lru(RENDERED_CACHE_SIZE)
    self.real_frames = real_frames.RealFrames(self.sas_root)

  # -- catalogue and geometry ------------------------------------------------

  def frame_ids(self) -> set:
    """The fields (FrameId) holding at least one catalogue object."""
    return set(self._by_frame)

  def geometry(self, frame: 'FrameId') -> fields.FieldGeometry:
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
    geometry = fields.fit_field(
        frame, np.array([self._objects[k].ra for k in idx]),
        np.array([self._objects[k].dec for k in idx]), self.seed)
    with self._lock:
      self._geometry[frame] = geometry
    return geometry

  def _objects_near(self, ra: float, dec: float, radius: float) -> list[int]:
    if not len(self._xyz):
      return []
    dots = self._xyz @ fields.unit(ra, dec)
    return np.nonzero(dots >= math.cos(math.radians(radius)))[0].tolist()

  def _source(self, k: int) -> render.Source | None:
    with self._lock:
      if k in self._sources:
        return self._sources[k]
    source = population.catalog_source(self._objects[k], self.seed)
    with self._lock:
      self._sources[k] = source
    return source

  def _tile_sources_near(self, ra: float, dec: float, radius: float
                         ) -> list[render.Source]:
    """Background sources of the sky tiles that may reach within radius."""
    background = []
    for j, i in population.tiles_near(ra, dec, radius):
      background.extend(population.tile_sources(self.seed, j, i))
    return background

  def sources_near(self, ra: float, dec: float, radius: float
                   ) -> list[render.Source]:
    """Catalogue and background sources within `radius` deg of (ra, dec)."""
    sources = [s for s in map(self._source, self._objects_near(ra, dec, radius))
               if s is not None]
    if radius <= population.MAX_BACKGROUND_RADIUS_DEG:
      background = self._tile_sources_near(ra, dec, radius)
      if background:
        xyz = fields.unit(np.array([s.ra for s in background]),
                    np.array([s.dec for s in background]))
        near = xyz @ fields.unit(ra, dec) >= math.cos(math.radians(radius))
        sources.extend(s for s, keep in zip(background, near) if keep)
    return sources

  def background_in(self, frame: 'FrameId', margin_px: float = 0.0
                    ) -> list[render.Source]:
    """The background sources inside a simulated field's r frame.

    Args:
      frame: a field holding catalogue objects (KeyError otherwise).
      margin_px: keep sources at least this far (pixels) inside the edge.

    Returns:
      Its background stars and galaxies (not the catalogue's objects), as
      painted on its frames.
    """
    geometry = self.geometry(frame)
    background = self._tile_sources_near(*geometry.center,
                                         fields.FRAME_RADIUS_DEG)
    if not background:
      return []
    xy = geometry.wcs('r').wcs_world2pix(
        np.array([[s.ra, s.dec] for s in background]), 0)
    h, w = fields.FRAME_SHAPE
    depth = np.minimum.reduce([xy[:, 0] + 0.5, w - 0.5 - xy[:, 0],
                               xy[:, 1] + 0.5, h - 0.5 - xy[:, 1]])
    return [s for s, d in zip(background, depth) if d >= margin_px]

  def covering_field(self, ra: float, dec: float
                     ) -> fields.FieldGeometry | None:
    """The catalogue field whose simulated frame holds (ra, dec) deepest."""
    best, best_depth = None, 0.0
    frames = {self._objects[k].frame
              for k in self._objects_near(ra, dec, 2 * fields.FRAME_RADIUS_DEG)}
    for frame in sorted(frames):
      geometry = self.geometry(frame)
      depth = geometry.contains(ra, dec)
      if depth > best_depth:
        best, best_depth = geometry, depth
    return best

  def in_footprint(self, ra: float, dec: float) -> bool:
    """Whether this sky was imaged at (ra, dec), as SkyServer's getjpeg asks.

    True where a real frame of the local mirror covers the position, where
    a catalogue field's simulated frame does, or within 3 arcsec of a
    catalogue object (its field holds it); elsewhere getjpeg answers 404
    with its "outside the SDSS footprint" image.
    """
    ra, dec = float(ra) % 360.0, float(dec)
    if self.real_frames.cover(ra, dec):
      return True
    if self._objects_near(ra, dec, 3.0 / 3600.0):
      return True
    return self.covering_field(ra, dec) is not None

  # -- frames ----------------------------------------------------------------

  def render_band(self, frame: 'FrameId', band: str
                  ) -> tuple[np.ndarray, astropy_wcs.WCS]:
    """A simulated band image: (float32 [1489, 2048] nanomaggies, its WCS)."""
    band = _check_band(band)
    geometry = self.geometry(frame)
    return self._rendered.get((frame, band),
                              lambda: self._render_band(geometry, band))

  def _render_band(self, geometry: fields.FieldGeometry, band: str
                   ) -> tuple[np.ndarray, astropy_wcs.WCS]:
    frame = geometry.frame
    wcs = geometry.wcs(band)
    sources = self.sources_near(*geometry.center, fields.FRAME_RADIUS_DEG)
    image = np.zeros(fields.FRAME_SHAPE, np.float32)
    noise = render.NOISE[band]
    if sources:
      xy = wcs.wcs_world2pix(np.array([[s.ra, s.dec] for s in sources]), 0)
      render.paint_sources(image, xy[:, 0], xy[:, 1], sources, band,
                           render.Psf.double_gaussian(geometry.fwhm[band]),
                           fields.sky_to_pixel(geometry.cd),
                           threshold=0.05 * noise.sky_sigma_nmgy())
    rng = fields.seeded_rng(self.seed, 'noise', frame.run, frame.rerun,
                            frame.camcol,
               frame.field, band)
    calib = render.calibration_vector(band, fields.FRAME_SHAPE[1])
    return render.add_noise(image, noise, rng, calib=calib,
                            integer_counts=True,
                            sky_slope=geometry.sky_slope[band]), wcs

  def frame_bytes(self, frame: 'FrameId', band: str,
                  release: int = survey.DEFAULT_RELEASE) -> bytes:
    """One band of one field as `.fits.bz2` bytes.

    The real file byte for byte when sas_root holds it, else a simulated frame
    (deterministic from seed, frame and band).

    Raises:
      KeyError: no real file and no catalogue object in the field.
      ValueError: a band other than u, g, r, i, z.
    """
    band = _check_band(band)
    if self.sas_root is not None:
      path = self.sas_root / sas_layout.frame_path(
          release, frame.run, frame.camcol, frame.field, band)
      if path.is_file():
        return path.read_bytes()
    geometry = self.geometry(frame)
    image, wcs = self.render_band(frame, band)
    return frame_files.encode_frame(image, wcs, band, geometry,
                                    seed=self.seed)

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
    bands = {}
    for band in 'irg':
      if simulated:
        bands[band] = self.render_band(frame, band)
      else:
        decoded = frame_files.decode_frame(self.frame_bytes(frame, band))
        bands[band] = decoded.image, decoded.wcs
    return colour.field_rgb(bands)

  def preview_png(self, frame: 'FrameId', path: str | pathlib.Path, *,
                  simulated: bool = True) -> None:
    """Saves `preview_rgb(frame)` as a PNG file."""
    Image.fromarray(self.preview_rgb(frame, simulated=simulated)).save(path)

  # -- SkyServer cutouts and Pan-STARRS ---------------------------------------

  def cutout_jpeg(self, ra: float, dec: float, *, scale: float = 0.4,
                  width: int = 240, height: int = 240) -> bytes:
    """A SkyServer getjpeg-style colour cutout (north up, east left).

    Args:
      ra, dec: centre, degrees.
      scale: arcsec per pixel, 0.015..60.
      width, height: pixels, 64..2048.

    Returns:
      JPEG bytes (i, r, g as R, G, B through SDSS's asinh stretch).
    """
    return cutouts.cutout_jpeg(self, ra, dec, scale=scale, width=width,
                               height=height)

  def ps1_jpeg(self, ra: float, dec: float, *, size: int = 240, red: str,
               green: str, blue: str) -> bytes:
    """A fitscut.cgi colour JPEG (see `panstarrs.ps1_jpeg`)."""
    return panstarrs.ps1_jpeg(self, ra, dec, size=size, red=red, green=green,
                              blue=blue)


def _frame_name(frame: Any) -> str:
  name = getattr(frame, 'name', None)
  return name if isinstance(name, str) else str(frame)


def _check_band(band: str) -> str:
  if band not in survey.BANDS:
    raise ValueError(f'band={band!r}: expected one of '
                     f'{", ".join(survey.BANDS)}.')
  return band


def benchmark_frame(sky: Sky, frame: 'FrameId',
                    bands: Iterable[str] = survey.BANDS
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
    data = frame_files.encode_frame(image, wcs, band, geometry, seed=sky.seed)
    t2 = time.perf_counter()
    frame_files.decode_frame(data)
    t3 = time.perf_counter()
    results[band] = {'render_s': t1 - t0, 'encode_s': t2 - t1,
                     'decode_s': t3 - t2, 'bytes': float(len(data))}
  return results
