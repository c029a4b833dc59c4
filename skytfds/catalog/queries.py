"""SkyServer SQL for the catalogue: the PhotoObj x SpecObj queries of a build.

Two ways to pick objects, both with reliable spectra only (`s.zWarning = 0`)
and the magnitude cut:

* spread (the default): `class_count_query` counts each class once, then
  `class_query(..., hash_range=(lo, hi))` keeps the objects whose objid
  hash (`OBJID_HASH`) falls in [lo, hi), a deterministic hash that spreads over
  every run and field of the survey. Neither query sorts: `TOP n` stops the server's scan after n
  rows (see BUILD.md, "Which objects").
* dense (frame-economical): `field_count_query` counts each class per imaging
  field; the fields holding most objects are chosen (`catalog.sampling`) and
  `field_objects_query` fetches their objects.
"""

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



# `SELECT ... FROM` of every object query (the classic query's columns).
OBJECT_COLUMNS = (
    'p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.run, p.rerun, p.camcol, '
    'p.field, s.specobjid, s.class, s.z AS redshift, s.plate, s.mjd, s.fiberid')
JOIN = 'FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid'
# Only spectra whose redshift fit has no warning flag (SpecObj.zWarning = 0):
# with a flag set, the class itself may be wrong.
RELIABLE = 's.zWarning = 0'
# The spread selection's hash of the objid, in 0..HASH_MODULUS-1: the residue
# modulo a prime, times a multiplier near HASH_MODULUS / golden ratio
# (Fibonacci hashing). The residue alone would put the objects of one field
# (consecutive objids) side by side, so that a window would take whole fields;
# the multiplication scatters them. Reduced first, so nothing overflows a
# 64-bit integer on the server.
HASH_MODULUS = 1_000_003
HASH_MULTIPLIER = 618_034
OBJID_HASH = (f'((p.objid % {HASH_MODULUS}) * {HASH_MULTIPLIER}) '
              f'% {HASH_MODULUS}')
# Most fields one `field_count_query` answers (densest first).
MAX_FIELDS = 100_000
# Most fields named in one `field_objects_query` (keeps the URL short).
FIELDS_PER_QUERY = 40


def _class_name(cls: Any) -> str:
  name = cls.strip().upper() if isinstance(cls, str) else cls
  if name not in survey.CLASSES:
    raise CatalogError(
        f'class {cls!r} is not known; use one of {", ".join(survey.CLASSES)}.')
  return name


def _whole(value: Any, what: str, lo: int, hi: int, advice: str) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
      lo <= value <= hi):
    raise CatalogError(f'{what}={value!r}: {advice}')
  return int(value)


def check_release(release: Any) -> int:
  """The release as an int, or a CatalogError (DR12..DR17)."""
  if isinstance(release, bool) or release not in survey.RELEASES:
    raise CatalogError(
        f'release={release!r}: use a data release from '
        f'DR{survey.RELEASES[0]} to DR{survey.RELEASES[-1]} (an integer, '
        'e.g. 17).')
  return int(release)


def _where(mag_limits, region) -> list[str]:
  return [RELIABLE] + _where_cuts(mag_limits, region)


def class_query(cls: str,
                top: int,
                *,
                release: int = survey.DEFAULT_RELEASE,
                mag_limits: Mapping[str, tuple[float, float]] | None = (
                    DEFAULT_MAG_LIMITS),
                region: Sequence[float] | None = None,
                hash_range: tuple[int, int] | None = None) -> str:
  """SkyServer SQL for `top` objects of one class, reliable spectra only.

  One line, e.g. (defaults, cls='STAR', top=100, hash_range=(0, 4200)):

    SELECT TOP 100 p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.run,
    p.rerun, p.camcol, p.field, s.specobjid, s.class, s.z AS redshift,
    s.plate, s.mjd, s.fiberid FROM PhotoObj AS p JOIN SpecObj AS s ON
    s.bestobjid = p.objid WHERE s.class = 'STAR' AND s.zWarning = 0 AND
    p.r BETWEEN 0 AND 22 AND ((p.objid % 1000003) * 618034) % 1000003
    BETWEEN 0 AND 4199

  No ORDER BY: sorting a whole class is what makes a query slow on the
  server, and `TOP n` in objid order would take the lowest-numbered runs
  only. `OBJID_HASH BETWEEN lo AND hi - 1` keeps a fixed pseudo-random
  fraction (hi - lo) / 1000003 of the class, spread over the footprint and
  over the objects of each field; `sampling.hash_range` sizes it from the class's count so that a
  little more than `top` objects pass, and `TOP` then stops the scan. The
  text is the same for every release DR12..DR17 (the release selects the
  server URL); it is validated here so that a bad release fails before any
  request.

  Args:
    cls: 'GALAXY', 'QSO' or 'STAR' (any case).
    top: number of objects, 1..500,000 (SkyServer's row limit).
    release: SDSS data release, 12..17.
    mag_limits: band -> (brightest, faintest) AB magnitudes, as
      `p.<band> BETWEEN lo AND hi`; None or {} for no cut. Default r in
      [0, 22].
    region: optional (ra_min, ra_max, dec_min, dec_max) in degrees, as
      `p.ra BETWEEN .. AND p.dec BETWEEN ..`.
    hash_range: (lo, hi): keep objects with lo <= OBJID_HASH < hi;
      None keeps every object.

  Returns:
    The SQL text.
  """
  name = _class_name(cls)
  top = _whole(top, 'top', 1, MAX_TOP,
               f'give a whole number of objects from 1 to {MAX_TOP:,} '
               '(SkyServer returns at most 500,000 rows per query).')
  check_release(release)
  where = [f"s.class = '{name}'"] + _where(mag_limits, region)
  if hash_range is not None:
    lo = _whole(hash_range[0], 'hash_range[0]', 0, HASH_MODULUS - 1,
                f'give 0 to {HASH_MODULUS - 1}.')
    hi = _whole(hash_range[1], 'hash_range[1]', lo + 1, HASH_MODULUS,
                f'give {lo + 1} to {HASH_MODULUS}.')
    where.append(f'{OBJID_HASH} BETWEEN {lo} AND {hi - 1}')
  return (f'SELECT TOP {top} {OBJECT_COLUMNS} {JOIN} '
          f'WHERE {" AND ".join(where)}')


def class_count_query(*,
                      release: int = survey.DEFAULT_RELEASE,
                      mag_limits: Mapping[str, tuple[float, float]] | None = (
                          DEFAULT_MAG_LIMITS),
                      region: Sequence[float] | None = None) -> str:
  """SQL counting each class's objects under the same cuts: columns class, n.

  One scan and a three-row aggregate (no sort of rows), e.g.:

    SELECT s.class, COUNT(*) AS n FROM PhotoObj AS p JOIN SpecObj AS s ON
    s.bestobjid = p.objid WHERE s.zWarning = 0 AND p.r BETWEEN 0 AND 22
    GROUP BY s.class
  """
  check_release(release)
  return (f'SELECT s.class, COUNT(*) AS n {JOIN} '
          f'WHERE {" AND ".join(_where(mag_limits, region))} GROUP BY s.class')


def field_count_query(*,
                      release: int = survey.DEFAULT_RELEASE,
                      mag_limits: Mapping[str, tuple[float, float]] | None = (
                          DEFAULT_MAG_LIMITS),
                      region: Sequence[float] | None = None,
                      min_objects: int = 2,
                      top: int = MAX_FIELDS) -> str:
  """SQL counting each class per imaging field, densest fields first.

  Columns run, rerun, camcol, field, galaxy, qso, star, n; fields holding
  fewer than `min_objects` objects are left out (HAVING), so only the dense
  end of the field list is sorted.
  """
  check_release(release)
  min_objects = _whole(min_objects, 'min_objects', 1, 10**6,
                       'give a whole number >= 1.')
  top = _whole(top, 'top', 1, MAX_TOP, f'give 1 to {MAX_TOP:,} fields.')
  per_class = ', '.join(
      f"SUM(CASE WHEN s.class = '{cls}' THEN 1 ELSE 0 END) AS {cls.lower()}"
      for cls in survey.CLASSES)
  return (f'SELECT TOP {top} p.run, p.rerun, p.camcol, p.field, {per_class}, '
          f'COUNT(*) AS n {JOIN} '
          f'WHERE {" AND ".join(_where(mag_limits, region))} '
          'GROUP BY p.run, p.rerun, p.camcol, p.field '
          f'HAVING COUNT(*) >= {min_objects} ORDER BY n DESC')


def field_objects_query(fields: Sequence[Any],
                        *,
                        release: int = survey.DEFAULT_RELEASE,
                        mag_limits: Mapping[str, tuple[float, float]] | None = (
                            DEFAULT_MAG_LIMITS)) -> str:
  """SQL for every object (all classes, same cuts) of the given fields.

  Args:
    fields: FrameIds (run, rerun, camcol, field), at most FIELDS_PER_QUERY.
  """
  check_release(release)
  if not 1 <= len(fields) <= FIELDS_PER_QUERY:
    raise CatalogError(
        f'field_objects_query: give 1 to {FIELDS_PER_QUERY} fields, got '
        f'{len(fields)}.')
  named = []
  for frame in fields:
    run, rerun, camcol, field = (
        _whole(v, name, 0, 2**16, 'not an imaging-field number.')
        for v, name in zip(frame, ('run', 'rerun', 'camcol', 'field')))
    named.append(f'(p.run = {run} AND p.rerun = {rerun} AND '
                 f'p.camcol = {camcol} AND p.field = {field})')
  return (f'SELECT {OBJECT_COLUMNS} {JOIN} '
          f'WHERE {" AND ".join(_where(mag_limits, None))} '
          f'AND ({" OR ".join(named)})')
