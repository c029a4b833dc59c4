"""SDSS Science Archive Server (SAS): calibrated imaging frames.

Pure path/URL builders (`frame_path`, `frame_url`) and their fetching twin
(`fetch_frame`). Every value is validated before it reaches a path or URL, so
catalogue text like '../../etc' can never escape a local mirror.

Layout (the same on https://data.sdss.org/sas and in a local mirror):
  dr{N}/{boss|eboss}/photoObj/frames/{rerun}/{run}/{camcol}/
      frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2
DR12 and earlier use 'boss', DR13 and later 'eboss'.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from skytfds import settings
from skytfds import survey
from skytfds.services import http

if TYPE_CHECKING:
  from skytfds.catalog import FrameId  # pylint: disable=g-bad-import-order

BANDS = survey.BANDS
# DR12 (boss) .. DR17 (eboss), the imaging releases supported.
RELEASES = range(survey.RELEASES[0], survey.RELEASES[-1] + 1)
RUN_RANGE = (1, 999_999)  # Padded to 6 digits in file names.
RERUN_RANGE = (0, 2047)   # 11 bits in an objid; 301 for DR8+ frames.
CAMCOL_RANGE = (1, 6)
FIELD_RANGE = (0, 9999)   # Padded to 4 digits in file names.


def check_int(name: str, value: Any, low: int, high: int) -> int:
  """`value` as an int in [low, high]; ValueError naming value and range if not.

  Accepts Python and numpy integers; refuses bools, floats (even 3.0) and
  strings, so that text such as '../x' or a spreadsheet-rounded 1.2e3 never
  becomes part of a path.
  """
  if isinstance(value, bool):
    raise ValueError(f'{name}={value!r}: expected an integer from {low} to {high}')
  try:
    number = operator.index(value)
  except TypeError:
    raise ValueError(
        f'{name}={value!r}: expected an integer from {low} to {high}, '
        f'not {type(value).__name__}') from None
  if not low <= number <= high:
    raise ValueError(f'{name}={number}: out of range, expected {low} to {high}')
  return number


def check_band(band: Any) -> str:
  """`band` if it is one of 'u', 'g', 'r', 'i', 'z'; ValueError otherwise."""
  if not isinstance(band, str) or band not in BANDS:
    raise ValueError(f'band={band!r}: expected one of {", ".join(BANDS)}')
  return band


def check_release(release: Any) -> int:
  """`release` (the N of DR{N}) if SAS frames of it are supported."""
  return check_int('release', release, RELEASES.start, RELEASES.stop - 1)


def frame_path(frame: 'FrameId', band: str,
               release: int = survey.DEFAULT_RELEASE) -> str:
  """Relative SAS path of one calibrated frame.

  Args:
    frame: a FrameId (run, rerun, camcol, field).
    band: 'u', 'g', 'r', 'i' or 'z'.
    release: data release N of DR{N}, 12..17.

  Returns:
    e.g. 'dr17/eboss/photoObj/frames/301/3918/3/frame-r-003918-3-0213.fits.bz2'.

  Raises:
    ValueError: a value that is not an integer in range, or a bad band.
  """
  band = check_band(band)
  release = check_release(release)
  run = check_int('run', frame.run, *RUN_RANGE)
  rerun = check_int('rerun', frame.rerun, *RERUN_RANGE)
  camcol = check_int('camcol', frame.camcol, *CAMCOL_RANGE)
  field = check_int('field', frame.field, *FIELD_RANGE)
  layout = 'eboss' if release >= 13 else 'boss'
  return (f'dr{release}/{layout}/photoObj/frames/{rerun}/{run}/{camcol}/'
          f'frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2')


def frame_url(frame: 'FrameId', band: str,
              release: int = survey.DEFAULT_RELEASE, base: str | None = None) -> str:
  """URL (or path / fsspec URL) of one frame under a SAS base.

  Args:
    frame, band, release: as for `frame_path`.
    base: SAS root; default `settings.sas_url()` (SKYTFDS_SAS_URL, else
      https://data.sdss.org/sas). May be a local path or any fsspec URL.
  """
  if base is None:
    base = settings.sas_url()
  return f'{base.rstrip("/")}/{frame_path(frame, band, release)}'


def cache_name(frame: 'FrameId', band: str,
               release: int = survey.DEFAULT_RELEASE) -> str:
  """Cache name of a frame: 'sas/' + its SAS path."""
  return 'sas/' + frame_path(frame, band, release)


async def fetch_frame(fetcher: http.Fetcher, frame: 'FrameId', band: str,
                      release: int = survey.DEFAULT_RELEASE,
                      base: str | None = None) -> bytes:
  """The .fits.bz2 bytes of one frame, validated (bzip2, complete).

  Fetched once and cached under 'sas/<path>' for http(s) and remote fsspec
  bases; a local mirror (plain path, file://, memory://) is read directly,
  without copying it into the cache.
  """
  url = frame_url(frame, band, release, base)
  name = None if http.is_local_base(url) else cache_name(frame, band, release)
  return await fetcher.fetch(url, kind='bz2', cache_name=name)


def check_mirror_root(base: str, release: int = survey.DEFAULT_RELEASE) -> None:
  """Refuses a local mirror (path, file://, memory://) that lacks the SAS layout.

  Checked before any frame is fetched, so a SKYTFDS_SAS_URL that misses a
  folder is one line at once, not every object skipped as frame_missing.
  Remote bases (https, s3://, gs://) are not listed; their 404s say it.

  Raises:
    settings.SettingsError: naming the folder looked for and what to set.
  """
  if not http.is_local_base(base):
    return
  import fsspec  # pylint: disable=g-import-not-at-top  (only for local mirrors)
  release = check_release(release)
  layout = 'eboss' if release >= 13 else 'boss'
  wanted = f'dr{release}/{layout}/photoObj/frames'
  fs, root = fsspec.core.url_to_fs(base)
  root = root.rstrip('/')
  if fs.isdir(f'{root}/{wanted}'):
    return
  hint = ''
  for depth in range(1, 4):  # Pointed inside the layout (e.g. at dr17/eboss)?
    inner = wanted.split('/', depth)[-1]
    if fs.isdir(f'{root}/{inner}'):
      above = '/'.join(wanted.split('/')[:depth])
      hint = (f' It holds {inner}/: set it {depth} folder(s) higher, to the '
              f'folder holding {above}/.')
      break
  raise settings.SettingsError(
      f'{settings.SAS_URL_ENV}={http.redact_url(base)}: no {wanted}/ folder '
      f'under it, so no DR{release} frame can be read; point it at the SAS '
      f'root (the folder that holds dr{release}/).{hint}')
