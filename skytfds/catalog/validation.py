"""Catalogue validation: a table of text fields -> checked CatalogObjects.

Two passes: every field of every row on its own (numbers, ranges, classes,
exact ids), then across rows (which key identifies objects, the imaging field
each objid encodes, duplicates). Every problem is collected, then reported in
one CatalogError.
"""

from __future__ import annotations

import collections
import math
from typing import NamedTuple

from skytfds import survey
from skytfds.catalog import numbers
from skytfds.catalog import tables
from skytfds.catalog.objects import Catalog
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import CatalogObject
from skytfds.catalog.objects import decode_objid
from skytfds.catalog.objects import FRAME_LIMITS
from skytfds.catalog.objects import FrameId
from skytfds.catalog.objects import UNKNOWN_FRAME

# Magnitudes outside this range (e.g. -9999) are photometry sentinels.
MAG_RANGE = (0.0, 40.0)
MAX_ERRORS_SHOWN = 10
_PMF_LIMITS = {
    'plate': (0, 2**31 - 1), 'mjd': (0, 99_999), 'fiberid': (0, 1000)}
_MAX_OBJID = 2**63 - 1  # Stored as tf.int64; every SDSS objID is below 2**63.
_MAX_SPECOBJID = 2**64 - 1  # Unsigned 64-bit: may exceed 2**63.
# Two rows with the same key further apart than this are different objects.
_SAME_POSITION_ARCSEC = 1.0
_NAN_TEXTS = frozenset(('', 'nan', 'null', 'none', 'na', 'n/a'))


class _Rounded(NamedTuple):
  """An id that went through a float (a spreadsheet or JSON float)."""
  text: str


class _Row(NamedTuple):
  number: int
  objid: int | _Rounded | None
  ra: float
  dec: float
  cls: str
  frame_cols: dict[str, int]
  mags: tuple[float, float, float, float, float]
  specobjid: int | _Rounded
  redshift: float
  plate: int
  mjd: int
  fiberid: int
  name: str


def _rounded_by_zeros(values: list[int]) -> set[int]:
  """Ids written out in full after rounding to 15 significant digits.

  A spreadsheet may print 1237648704577140000 for 1237648704577142145. One
  such id is possible by chance (1 in 10^4), so ids count as rounded only
  when at least two, and at least half of the long ids, end that way.
  """
  long_ids = [v for v in values if v >= 10**16]
  zeros = {v for v in long_ids if v % 10**(len(str(v)) - 15) == 0}
  if len(zeros) >= 2 and 2 * len(zeros) >= len(long_ids):
    return zeros
  return set()



def _format_errors(source: str, errors: list[str]) -> str:
  shown = errors[:MAX_ERRORS_SHOWN]
  lines = [f'{source}: {len(errors)} problem(s) in the catalogue; fix them and '
           'load it again' + (f' (the first {MAX_ERRORS_SHOWN} shown):'
                              if len(errors) > MAX_ERRORS_SHOWN else ':')]
  lines += [f'  {e}' for e in shown]
  if len(errors) > MAX_ERRORS_SHOWN:
    lines.append(f'  ... and {len(errors) - MAX_ERRORS_SHOWN} more '
                 f'({len(errors)} problems in total).')
  return '\n'.join(lines)


def parse_catalog(data: bytes | str, source: str, *,
                  labelled: bool = True) -> Catalog:
  """Parses and validates a catalogue (SkyServer CSV/JSON or a user CSV).

  Args:
    data: the file or response body, bytes (UTF-8, a BOM is dropped) or text.
    source: a name for messages, e.g. the file name or 'SkyServer DR17'.
    labelled: True for a catalogue to build a dataset from (every row needs a
      class, and objid or run, rerun, camcol, field). False for objects to
      classify: only ra and dec are needed, a class column is ignored (cls is
      ''), a `name` column is read into `name`, run, camcol, field may be
      given without rerun (it defaults to survey.RERUN), empty ids and frame
      fields mean unknown (frame UNKNOWN_FRAME when nothing gives it), and
      every row is kept in order, duplicates too.

  Returns:
    The Catalog: objects in file order (exact duplicates dropped when
    labelled), and notes on what was repaired (sentinel magnitudes,
    duplicates, key fallback).

  Raises:
    CatalogError: naming the source, line, column, value and what to do.
  """
  table = tables.read_table(data, source)
  columns = tables.map_header(table.header, source, labelled=labelled)
  return _validate(table, columns, source, labelled)


def _validate(table: tables.Table, columns: dict[str, int], source: str,
              labelled: bool) -> Catalog:
  """Rows -> CatalogObjects, collecting every problem into one CatalogError."""
  validator = _Validator(table, columns, source, labelled)
  rows = validator.read_rows()
  mode = validator.choose_keys(rows)
  objects = validator.build_objects(rows, mode)
  if validator.errors:
    raise CatalogError(_format_errors(source, validator.errors))
  return Catalog(objects=objects, notes=validator.notes, source=source)


class _Validator:
  """The state of one parse: column indices, problems found, notes."""

  def __init__(self, table: tables.Table, columns: dict[str, int], source: str,
               labelled: bool):
    self.table = table
    self.source = source
    self.labelled = labelled
    self.where = table.where  # 'line' or 'row'
    # The columns read, checked for JSON lists and objects (CSV has none).
    self.json_columns = [(index, name) for name, index in columns.items()
                         if table.where == 'row']
    self.errors: list[str] = []
    self.notes: list[str] = []
    self.sentinels: collections.Counter[int] = collections.Counter()  # by row
    self.n_rows = 0  # Non-blank rows, good or bad.
    self.i_objid = columns.get('objid')
    self.i_ra, self.i_dec = columns['ra'], columns['dec']
    self.i_cls = columns.get('class') if labelled else None
    self.i_name = columns.get('name')
    self.mag_cols = [(band, columns.get(band)) for band in survey.BANDS]
    self.frame_cols = [(name, columns[name], lo, hi)
                       for name, lo, hi in FRAME_LIMITS if name in columns]
    self.i_spec = columns.get('specobjid')
    self.i_z = columns.get('redshift')
    self.pmf_cols = [(name, columns.get(name), *_PMF_LIMITS[name])
                     for name in tables.PMF_COLUMNS]
    self.has_pmf = all(index is not None for _, index, _, _ in self.pmf_cols)
    self.has_frame_cols = len(self.frame_cols) == len(FRAME_LIMITS) or (
        not labelled and 'run' in columns)  # rerun then defaults.

  def problem(self, number: int, column: str, value: str, what: str) -> None:
    self.errors.append(
        f'{self.where} {number}, column {column}: {tables.quote(value)} {what}')

  # Pass 1: every field of every row, independently.

  def read_rows(self) -> list[_Row]:
    """The rows without problems; problems go to self.errors."""
    width = len(self.table.header)
    rows = []
    for number, fields in self.table.rows:
      if ((len(fields) != width or not fields[0].strip()) and
          not any(f.strip() for f in fields)):
        continue  # A blank spreadsheet row (',,,,').
      self.n_rows += 1
      if len(fields) != width:
        if any('\n' in f or '\r' in f for f in fields):
          hint = 'a quote (") opened on this line is never closed'
        else:
          hint = 'check for unquoted commas or a missing value'
        self.errors.append(
            f'{self.where} {number}: {len(fields)} fields, but the header has '
            f'{width}; {hint}.')
        continue
      n_errors = len(self.errors)
      for index, name in self.json_columns:
        if isinstance(fields[index], tables.NotAValue):
          self.problem(number, name, fields[index], 'is a JSON list or object '
                       'where one value belongs; give a single number or '
                       'string (null when unknown).')
      if len(self.errors) > n_errors:
        continue
      row = self.read_row(number, fields)
      if len(self.errors) == n_errors:
        rows.append(row)
    if self.n_rows == 0:
      raise CatalogError(
          f'{self.source}: the catalogue has a header but no rows; it needs at '
          'least one object.')
    return rows

  def read_row(self, number: int, fields: list[str]) -> _Row:
    """One row's values (problems are recorded, placeholders returned)."""
    ra = self.position(number, 'ra', fields[self.i_ra])
    dec = self.position(number, 'dec', fields[self.i_dec])
    cls = '' if self.i_cls is None else self.cls(number, fields[self.i_cls])
    objid = None
    if self.i_objid is not None:
      objid = self.objid(number, fields[self.i_objid])
    frame_values = {}
    for column, index, lo, hi in self.frame_cols:
      value = self.whole(number, column, fields[index], lo, hi, empty=None,
                         required=self.labelled)
      if value is not None:
        frame_values[column] = value
    mags = tuple(
        self.magnitude(number, band, None if index is None else fields[index])
        for band, index in self.mag_cols)
    specobjid: int | _Rounded = 0
    if self.i_spec is not None:
      specobjid = self.specobjid(number, fields[self.i_spec])
    redshift = math.nan
    if self.i_z is not None:
      redshift = self.redshift(number, fields[self.i_z])
    pmf = [0 if index is None else
           self.whole(number, column, fields[index], lo, hi, empty=0)
           for column, index, lo, hi in self.pmf_cols]
    name = '' if self.i_name is None else fields[self.i_name].strip()
    return _Row(number, objid, ra, dec, cls, frame_values, mags, specobjid,
                redshift, *(v or 0 for v in pmf), name)

  def position(self, number: int, column: str, text: str) -> float:
    """ra in [0, 360) or dec in [-90, 90], degrees."""
    value = text.strip()
    degrees = numbers.parse_float(value)
    if degrees is None:
      self.problem(number, column, value, (
          'is empty; every object needs ra and dec in decimal degrees.'
          if not value else f'is not a number{numbers.syntax_hint(value)}; give '
          'decimal degrees (not sexagesimal h:m:s / d:m:s).'))
      return math.nan
    if not math.isfinite(degrees):
      self.problem(number, column, value, 'is not a finite number; every '
                   'object needs ra and dec in decimal degrees.')
    elif column == 'ra' and not 0.0 <= degrees < 360.0:
      self.problem(number, column, value, 'is outside [0, 360) degrees; give '
                   'ra in decimal degrees within [0, 360) degrees.')
    elif column == 'dec' and not -90.0 <= degrees <= 90.0:
      self.problem(number, column, value, 'is outside [-90, 90] degrees; give '
                   'dec in decimal degrees within [-90, 90] degrees.')
    return degrees

  def cls(self, number: int, text: str) -> str:
    """One of survey.CLASSES, any case in the file."""
    raw = text.strip()
    name = raw.upper()
    if name not in survey.CLASSES:
      self.problem(number, 'class', raw, (
          'is empty; give one of ' if not raw else
          'is not a known class; use one of ') +
                   f'{", ".join(survey.CLASSES)} (any case).')
    return name

  def objid(self, number: int, text: str) -> int | _Rounded | None:
    """The exact objID; float-looking text went through a float."""
    value = text.strip()
    objid = numbers.parse_int(value)
    if objid is None:
      if numbers.looks_float(value):
        return _Rounded(value)
      if not value and not self.labelled:
        return None  # Unknown: the frame comes from run, camcol, field.
      self.problem(number, 'objid', value, (
          'is empty; give the exact objID, or drop the objid column and give '
          'run, rerun, camcol, field.' if not value else
          f'is not a whole number{numbers.syntax_hint(value)}; objid must be the '
          'exact decimal PhotoObj objID.'))
    elif not 1 <= objid <= _MAX_OBJID:
      self.problem(number, 'objid', value, 'is out of range; objid must be a '
                   'PhotoObj objID from 1 to 2**63-1.')
      objid = None
    return objid

  def whole(self, number: int, column: str, text: str, lo: int, hi: int, *,
            empty: int | None, required: bool = False) -> int | None:
    """An integer in [lo, hi]; `empty` if the field is empty (or a problem)."""
    value = text.strip()
    unknown = '' if required else ' (empty when unknown)'
    if not value:
      if required:
        self.problem(number, column, value, f'is empty; {column} must be an '
                     f'integer from {lo} to {hi}.')
      return empty
    parsed = numbers.parse_int(value)
    if parsed is None:
      self.problem(number, column, value,
                   f'is not a whole number{numbers.syntax_hint(value)}; {column} '
                   f'must be an integer from {lo} to {hi}{unknown}.')
    elif not lo <= parsed <= hi:
      self.problem(number, column, value, f'is out of range; {column} must be '
                   f'an integer from {lo} to {hi}{unknown}.')
      parsed = None
    return parsed

  def magnitude(self, number: int, band: str, text: str | None) -> float:
    """AB magnitude; NaN when empty or a sentinel (counted)."""
    if text is None:
      return math.nan
    value = text.strip()
    mag = numbers.parse_float(value)
    if mag is None:
      if value.lower() not in _NAN_TEXTS:
        self.problem(number, band, value,
                     f'is not a number{numbers.syntax_hint(value)}; give the AB '
                     'magnitude as a decimal number, or leave it empty when '
                     'unknown.')
      return math.nan
    if MAG_RANGE[0] <= mag <= MAG_RANGE[1]:
      return mag
    if not math.isnan(mag):
      self.sentinels[number] += 1
    return math.nan

  def specobjid(self, number: int, text: str) -> int | _Rounded:
    """Exact SpecObjID (may exceed 2**63); 0 when empty."""
    value = text.strip()
    parsed = numbers.parse_int(value)
    if parsed is not None:
      if parsed <= _MAX_SPECOBJID and parsed >= 0:
        return parsed
      self.problem(number, 'specobjid', value, 'is out of range; specobjid '
                   'must be an unsigned 64-bit integer (0 when unknown).')
    elif numbers.looks_float(value):
      return _Rounded(value)
    elif value:
      self.problem(number, 'specobjid', value,
                   f'is not a whole number{numbers.syntax_hint(value)}; give the '
                   'exact decimal specObjID, or leave it empty.')
    return 0

  def redshift(self, number: int, text: str) -> float:
    """Spectroscopic redshift; NaN when empty."""
    text = text.strip()
    value = numbers.parse_float(text)
    if value is None:
      if text.lower() not in _NAN_TEXTS:
        self.problem(number, 'redshift', text,
                     f'is not a number{numbers.syntax_hint(text)}; give the redshift '
                     'as a decimal number, or leave it empty.')
      return math.nan
    if math.isinf(value):
      self.problem(number, 'redshift', text, 'is not a finite number; give the '
                   'redshift as a decimal number, or leave it empty.')
    return value if math.isfinite(value) else math.nan

  # Pass 2: keys, frames, duplicates.

  def choose_keys(self, rows: list[_Row]) -> str:
    """'objid', 'pmf' (plate-mjd-fiberid) or 'position'; notes the choice.

    Marks objids written out in full after rounding as _Rounded (in place).
    """
    where = self.where
    if self.i_objid is None and not self.labelled:
      return 'position'
    if self.i_objid is None:
      self.notes.append(
          'no objid column: keys are ' +
          ("'plate-mjd-fiberid'" if self.has_pmf else
           "'<run6>-<camcol>-<field4>_<ra><dec>' (degrees, 7 decimals)") +
          ' and objid is 0 (unknown).')
      return 'pmf' if self.has_pmf else 'position'
    zeros = _rounded_by_zeros(
        [r.objid for r in rows if isinstance(r.objid, int)])
    if zeros:
      rows[:] = [r._replace(objid=_Rounded(str(r.objid)))
                 if r.objid in zeros else r for r in rows]
    rounded = [r for r in rows if isinstance(r.objid, _Rounded)]
    if not rounded:
      return 'objid'
    distinct = len({r.objid.text for r in rounded})
    triples = {(r.plate, r.mjd, r.fiberid) for r in rows}
    if not self.has_pmf:
      reason = 'this file has no plate, mjd, fiberid columns'
    elif not self.has_frame_cols:
      reason = 'that also needs run, rerun, camcol, field columns'
    elif len(triples) != len(rows):
      reason = 'here (plate, mjd, fiberid) is not unique either'
    elif not all(r.plate and r.mjd and r.fiberid for r in rows):
      reason = 'some rows here lack plate, mjd or fiberid'
    else:
      self.notes.append(
          f'{len(rounded)} objid values were rounded by a spreadsheet (e.g. '
          f'{rounded[0].objid.text} on {where} {rounded[0].number}; '
          f'{distinct} distinct among {len(rounded)}): keys are '
          "'plate-mjd-fiberid' instead, run/rerun/camcol/field come from "
          'their columns, and objid (and any rounded specobjid) is 0 '
          '(unknown). Export the id columns as text to keep the exact ids.')
      return 'pmf'
    self.errors.insert(0, (
        f'{where} {rounded[0].number}, column objid: '
        f'{tables.quote(rounded[0].objid.text)} was rounded by a spreadsheet '
        f'or a float ({len(rounded)} of {self.n_rows} objids look like this, '
        f'{distinct} distinct): such ids merge different objects and cannot '
        'be keys. Export the objid and specobjid columns as text (or download '
        'the CSV from SkyServer directly and do not open and re-save it in a '
        'spreadsheet), or include unique plate, mjd, fiberid columns to use '
        f"'plate-mjd-fiberid' keys ({reason})."))
    return 'objid'

  def frame_and_key(self, row: _Row, mode: str
                    ) -> tuple[FrameId, str, int] | None:
    """(frame, key, objid) of a row, or None after recording a problem."""
    where, number = self.where, row.number
    if mode == 'objid' and row.objid is not None:
      objid = row.objid
      decoded = decode_objid(objid)
      bad = [f'{name} {getattr(decoded, name)}' for name, lo, hi in
             FRAME_LIMITS if not lo <= getattr(decoded, name) <= hi]
      if bad:
        self.errors.append(
            f'{where} {number}, column objid: {tables.quote(str(objid))} '
            f'does not encode an SDSS imaging object ({", ".join(bad)} out of '
            'range); give the PhotoObj objID (bestObjID), not another id.')
        return None
      differ = [name for name, value in row.frame_cols.items()
                if getattr(decoded, name) != value]
      if differ:
        self.errors.append(
            f'{where} {number}: objid {objid} encodes ' +
            ', '.join(f'{n} {getattr(decoded, n)}' for n in differ) +
            ' but the row says ' +
            ', '.join(f'{n} {row.frame_cols[n]}' for n in differ) +
            '; fix the row or drop the run/rerun/camcol/field columns.')
        return None
      return decoded, str(objid), objid
    if not self.labelled:
      return self.given_frame(row, mode)
    frame = FrameId(**row.frame_cols)
    if mode == 'position':
      return frame, f'{frame.name}_{row.ra:.7f}{row.dec:+.7f}', 0
    if not (row.plate and row.mjd and row.fiberid):
      self.errors.append(
          f'{where} {number}: plate, mjd and fiberid are needed to identify '
          'the object (no objid column); fill them in, or add the objid '
          'column.')
      return None
    return frame, f'{row.plate}-{row.mjd}-{row.fiberid}', 0

  def given_frame(self, row: _Row, mode: str
                  ) -> tuple[FrameId, str, int] | None:
    """An unlabelled row's (frame, key, 0): from its columns, or unknown."""
    given = [n for n in tables.UNLABELLED_FRAME_COLUMNS if n in row.frame_cols]
    if len(given) == len(tables.UNLABELLED_FRAME_COLUMNS):
      frame = FrameId(**{'rerun': survey.RERUN, **row.frame_cols})
      key = f'{frame.name}_{row.ra:.7f}{row.dec:+.7f}'
    elif given:
      absent = [n for n in tables.UNLABELLED_FRAME_COLUMNS if n not in given]
      self.errors.append(
          f'{self.where} {row.number}: {", ".join(given)} given but '
          f'{", ".join(absent)} empty; give run, camcol and field together '
          f'(rerun defaults to {survey.RERUN}), or leave them all empty.')
      return None
    else:
      frame, key = UNKNOWN_FRAME, f'{row.ra:.7f}{row.dec:+.7f}'
    if mode == 'pmf' and row.plate and row.mjd and row.fiberid:
      key = f'{row.plate}-{row.mjd}-{row.fiberid}'
    return frame, key, 0

  def build_objects(self, rows: list[_Row], mode: str) -> list[CatalogObject]:
    """CatalogObjects in file order; exact duplicates dropped (noted)."""
    where = self.where
    spec_zeros = _rounded_by_zeros(
        [r.specobjid for r in rows if isinstance(r.specobjid, int)])
    spec_rounded = 0
    objects: list[CatalogObject] = []
    first: dict[str, tuple[int, CatalogObject]] = {}
    duplicates: list[tuple[int, int]] = []
    kept_sentinels = 0
    for row in rows:
      if mode == 'objid' and isinstance(row.objid, _Rounded):
        continue  # Reported once by choose_keys.
      resolved = self.frame_and_key(row, mode)
      if resolved is None:
        continue
      frame, key, objid = resolved
      specobjid = row.specobjid
      if isinstance(specobjid, _Rounded) or specobjid in spec_zeros:
        spec_rounded += 1
        specobjid = 0
      obj = CatalogObject(
          key=key, objid=objid, ra=row.ra, dec=row.dec, cls=row.cls,
          frame=frame, mags=row.mags, specobjid=specobjid,
          redshift=row.redshift, plate=row.plate, mjd=row.mjd,
          fiberid=row.fiberid, source=f'{self.source} {where} {row.number}',
          name=row.name)
      if not self.labelled:
        objects.append(obj)  # Every row: results line up with the input.
        kept_sentinels += self.sentinels[row.number]
        continue
      if key not in first:
        first[key] = (row.number, obj)
        objects.append(obj)
        kept_sentinels += self.sentinels[row.number]
        continue
      number, previous = first[key]
      cos_dec = math.cos(math.radians(obj.dec))
      d_ra = (obj.ra - previous.ra + 180.0) % 360.0 - 180.0
      separation = 3600.0 * math.hypot(d_ra * cos_dec, obj.dec - previous.dec)
      if previous.cls != obj.cls or separation > _SAME_POSITION_ARCSEC:
        self.errors.append(
            f'{where} {row.number}: key {key} already appears on {where} '
            f'{number} ({previous.cls} at ra {previous.ra}, dec '
            f'{previous.dec}); here {obj.cls} at ra {obj.ra}, dec {obj.dec} '
            f'({separation:.1f} arcsec apart): two different objects share '
            'one id; remove the wrong row.')
      else:
        duplicates.append((row.number, number))
    if duplicates:
      number, original = duplicates[0]
      self.notes.append(
          f'{len(duplicates)} duplicate row(s) (same key, class and position) '
          f'skipped, e.g. {where} {number} repeats {where} {original}.')
    if kept_sentinels:  # Of the objects kept, not of dropped rows.
      self.notes.append(
          f'{kept_sentinels} sentinel magnitudes (<{MAG_RANGE[0]:g} or '
          f'>{MAG_RANGE[1]:g}, e.g. -9999) read as missing (NaN).')
    if spec_rounded and not (mode == 'pmf' and self.i_objid is not None):
      self.notes.append(
          f'{spec_rounded} specobjid values were rounded by a spreadsheet or a '
          'float and are set to 0 (unknown); export them as text to keep '
          'them.')
    return objects
