"""SkyServer SQL for the catalogue: the classic PhotoObj x SpecObj query."""

from __future__ import annotations

import math
import numbers
import types
from typing import Any, Mapping, Sequence

from skytfds import survey
from skytfds.catalog.objects import CatalogError

MAX_TOP = 500_000  # SkyServer SqlSearch returns at most this many rows.
# Default magnitude cut (AB magnitudes): r in [0, 22] keeps objects bright
# enough to be seen in a single SDSS frame (r ~ 22.7 is the 95% completeness
# limit) and drops the -9999 sentinel of failed photometry in r.
DEFAULT_MAG_LIMITS: Mapping[str, tuple[float, float]] = types.MappingProxyType(
    {'r': (0.0, 22.0)})


def _sql_number(value: Any, what: str) -> str:
  """A finite number as short SQL text: 22.0 -> '22', 19.6 -> '19.6'."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise CatalogError(f'{what}: {value!r} is not a number.')
  number = float(value)
  if not math.isfinite(number):
    raise CatalogError(f'{what}: {value!r} is not a finite number.')
  if number.is_integer():
    return str(int(number))
  return repr(number)


def _where_cuts(mag_limits: Mapping[str, tuple[float, float]] | None,
                region: Sequence[float] | None) -> list[str]:
  """The magnitude and region BETWEEN clauses, bands in survey.BANDS order."""
  clauses = []
  mag_limits = {} if mag_limits is None else dict(mag_limits)
  unknown = sorted(set(mag_limits) - set(survey.BANDS))
  if unknown:
    raise CatalogError(
        f'mag_limits: unknown band(s) {", ".join(map(repr, unknown))}; use '
        f'{", ".join(survey.BANDS)}.')
  for band in survey.BANDS:
    if band not in mag_limits:
      continue
    limits = mag_limits[band]
    if len(limits) != 2:
      raise CatalogError(
          f'mag_limits[{band!r}] = {limits!r}: give (brightest, faintest) '
          'magnitudes.')
    lo = _sql_number(limits[0], f'mag_limits[{band!r}]')
    hi = _sql_number(limits[1], f'mag_limits[{band!r}]')
    if float(lo) > float(hi):
      raise CatalogError(
          f'mag_limits[{band!r}] = {tuple(limits)!r}: the first (brightest) '
          'magnitude must not exceed the second (faintest).')
    clauses.append(f'p.{band} BETWEEN {lo} AND {hi}')
  if region is not None:
    if len(region) != 4:
      raise CatalogError(
          f'region {tuple(region)!r}: give (ra_min, ra_max, dec_min, dec_max) '
          'in degrees.')
    ra_min, ra_max, dec_min, dec_max = (
        float(_sql_number(v, 'region')) for v in region)
    if not 0 <= ra_min < ra_max <= 360:
      raise CatalogError(
          f'region ra {ra_min}..{ra_max}: need 0 <= ra_min < ra_max <= 360 '
          'degrees (for a region across ra = 0, run two queries: ra_min..360 '
          'and 0..ra_max).')
    if not -90 <= dec_min < dec_max <= 90:
      raise CatalogError(
          f'region dec {dec_min}..{dec_max}: need -90 <= dec_min < dec_max '
          '<= 90 degrees.')
    clauses.append(f'p.ra BETWEEN {_sql_number(ra_min, "region")} AND '
                   f'{_sql_number(ra_max, "region")}')
    clauses.append(f'p.dec BETWEEN {_sql_number(dec_min, "region")} AND '
                   f'{_sql_number(dec_max, "region")}')
  return clauses


def class_query(cls: str,
                top: int,
                *,
                release: int = survey.DEFAULT_RELEASE,
                mag_limits: Mapping[str, tuple[float, float]] | None = (
                    DEFAULT_MAG_LIMITS),
                region: Sequence[float] | None = None) -> str:
  """The classic SkyServer SQL for the first `top` objects of one class.

  One line, e.g. (defaults, cls='STAR', top=100):

    SELECT TOP 100 p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.run,
    p.rerun, p.camcol, p.field, s.specobjid, s.class, s.z AS redshift,
    s.plate, s.mjd, s.fiberid FROM PhotoObj AS p JOIN SpecObj AS s ON
    s.bestobjid = p.objid WHERE s.class = 'STAR' AND p.r BETWEEN 0 AND 22
    ORDER BY p.objid

  `ORDER BY p.objid` makes the selection reproducible (TOP n alone is free to
  return any n rows). The text is the same for every release DR12..DR17 (the
  release selects the server URL); it is validated here so that a bad
  release fails before any request.

  Args:
    cls: 'GALAXY', 'QSO' or 'STAR' (any case).
    top: number of objects, 1..500,000 (SkyServer's row limit).
    release: SDSS data release, 12..17.
    mag_limits: band -> (brightest, faintest) AB magnitudes, as
      `p.<band> BETWEEN lo AND hi`; None or {} for no cut. Default r in
      [0, 22].
    region: optional (ra_min, ra_max, dec_min, dec_max) in degrees, as
      `p.ra BETWEEN .. AND p.dec BETWEEN ..`.

  Returns:
    The SQL text.
  """
  name = cls.strip().upper() if isinstance(cls, str) else cls
  if name not in survey.CLASSES:
    raise CatalogError(
        f'class {cls!r} is not known; use one of {", ".join(survey.CLASSES)}.')
  if isinstance(top, bool) or not isinstance(top, numbers.Integral) or not (
      1 <= top <= MAX_TOP):
    raise CatalogError(
        f'top={top!r}: give a whole number of objects from 1 to {MAX_TOP:,} '
        '(SkyServer returns at most 500,000 rows per query).')
  if isinstance(release, bool) or release not in survey.RELEASES:
    raise CatalogError(
        f'release={release!r}: use a data release from '
        f'DR{survey.RELEASES[0]} to DR{survey.RELEASES[-1]} (an integer, '
        'e.g. 17).')
  where = [f"s.class = '{name}'"] + _where_cuts(mag_limits, region)
  return (f'SELECT TOP {int(top)} p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, '
          'p.z, p.run, p.rerun, p.camcol, p.field, s.specobjid, s.class, '
          's.z AS redshift, s.plate, s.mjd, s.fiberid '
          'FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid '
          f'WHERE {" AND ".join(where)} ORDER BY p.objid')


def balanced_queries(per_class: int, **kw: Any) -> list[str]:
  """One `class_query(cls, per_class, **kw)` per class, in CLASSES order."""
  return [class_query(cls, per_class, **kw) for cls in survey.CLASSES]
