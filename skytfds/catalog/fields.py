"""Pass 1 of catalogue validation: every field of every row, on its own.

`RowReader` turns a table's rows into `Row`s of checked values: ra and dec in
range, a known class, whole numbers in range, magnitudes (sentinels such as
-9999 counted per row and read as NaN), and ids read exactly from their
decimal text (an id that went through a float is kept as `Rounded`, for
`validation` to decide about). Problems are collected in `RowReader.errors`,
naming the line, column, value and what to do; only a table without rows is
refused at once.
"""

from __future__ import annotations

import collections
import math
from typing import NamedTuple

from skytfds import survey
from skytfds.catalog import numbers
from skytfds.catalog import tables
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import FRAME_LIMITS

# Magnitudes outside this range (e.g. -9999) are photometry sentinels.
MAG_RANGE = (0.0, 40.0)
_PMF_LIMITS = {
    'plate': (0, 2**31 - 1), 'mjd': (0, 99_999), 'fiberid': (0, 1000)}
_MAX_OBJID = 2**63 - 1  # Stored as tf.int64; every SDSS objID is below 2**63.
_MAX_SPECOBJID = 2**64 - 1  # Unsigned 64-bit: may exceed 2**63.
_NAN_TEXTS = frozenset(('', 'nan', 'null', 'none', 'na', 'n/a'))


class Rounded(NamedTuple):
  """An id that went through a float (a spreadsheet or JSON float)."""
  text: str


class Row(NamedTuple):
  """One row's values, checked on their own (`number`: its line or row)."""
  number: int
  objid: int | Rounded | None
  ra: float
  dec: float
  cls: str
  frame_cols: dict[str, int]
  mags: tuple[float, float, float, float, float]
  specobjid: int | Rounded
  redshift: float
  plate: int
  mjd: int
  fiberid: int
  name: str


class RowReader:
  """Pass 1 of one parse: column indices, problems found, sentinels."""

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

  def read_rows(self) -> list[Row]:
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

  def read_row(self, number: int, fields: list[str]) -> Row:
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
    specobjid: int | Rounded = 0
    if self.i_spec is not None:
      specobjid = self.specobjid(number, fields[self.i_spec])
    redshift = math.nan
    if self.i_z is not None:
      redshift = self.redshift(number, fields[self.i_z])
    pmf = [0 if index is None else
           self.whole(number, column, fields[index], lo, hi, empty=0)
           for column, index, lo, hi in self.pmf_cols]
    name = '' if self.i_name is None else fields[self.i_name].strip()
    return Row(number, objid, ra, dec, cls, frame_values, mags, specobjid,
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

  def objid(self, number: int, text: str) -> int | Rounded | None:
    """The exact objID; float-looking text went through a float."""
    value = text.strip()
    objid = numbers.parse_int(value)
    if objid is None:
      if numbers.looks_float(value):
        return Rounded(value)
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

  def specobjid(self, number: int, text: str) -> int | Rounded:
    """Exact SpecObjID (may exceed 2**63); 0 when empty."""
    value = text.strip()
    parsed = numbers.parse_int(value)
    if parsed is not None:
      if parsed <= _MAX_SPECOBJID and parsed >= 0:
        return parsed
      self.problem(number, 'specobjid', value, 'is out of range; specobjid '
                   'must be an unsigned 64-bit integer (0 when unknown).')
    elif numbers.looks_float(value):
      return Rounded(value)
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
