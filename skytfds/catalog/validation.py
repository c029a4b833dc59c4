"""Catalogue validation: a table of text fields -> checked CatalogObjects.

Two passes: every field of every row on its own (numbers, ranges, classes,
exact ids; `fields`), then across rows here (which key identifies objects,
the imaging field each objid encodes, duplicates). Every problem is
collected, then reported in one CatalogError.
"""

from __future__ import annotations

import math

from skytfds import survey
from skytfds.catalog import fields
from skytfds.catalog import tables
from skytfds.catalog.objects import Catalog
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import CatalogObject
from skytfds.catalog.objects import decode_objid
from skytfds.catalog.objects import FRAME_LIMITS
from skytfds.catalog.objects import FrameId
from skytfds.catalog.objects import UNKNOWN_FRAME

MAX_ERRORS_SHOWN = 10
# Two rows with the same key further apart than this are different objects.
_SAME_POSITION_ARCSEC = 1.0


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
  reader = fields.RowReader(table, columns, source, labelled)
  rows = reader.read_rows()
  validator = _Validator(reader)
  mode = validator.choose_keys(rows)
  objects = validator.build_objects(rows, mode)
  if validator.errors:
    raise CatalogError(_format_errors(source, validator.errors))
  return Catalog(objects=objects, notes=validator.notes, source=source)


class _Validator:
  """Pass 2 of one parse, on pass 1's rows: keys, frames, duplicates, notes."""

  def __init__(self, reader: fields.RowReader):
    self.reader = reader  # Pass 1: the columns found, problems, sentinels.
    self.source, self.labelled, self.where = (
        reader.source, reader.labelled, reader.where)
    self.errors = reader.errors  # Pass 2's problems follow pass 1's.
    self.notes: list[str] = []

  def choose_keys(self, rows: list[fields.Row]) -> str:
    """'objid', 'pmf' (plate-mjd-fiberid) or 'position'; notes the choice.

    Marks objids written out in full after rounding as fields.Rounded (in place).
    """
    where = self.where
    if self.reader.i_objid is None and not self.labelled:
      return 'position'
    if self.reader.i_objid is None:
      self.notes.append(
          'no objid column: keys are ' +
          ("'plate-mjd-fiberid'" if self.reader.has_pmf else
           "'<run6>-<camcol>-<field4>_<ra><dec>' (degrees, 7 decimals)") +
          ' and objid is 0 (unknown).')
      return 'pmf' if self.reader.has_pmf else 'position'
    zeros = _rounded_by_zeros(
        [r.objid for r in rows if isinstance(r.objid, int)])
    if zeros:
      rows[:] = [r._replace(objid=fields.Rounded(str(r.objid)))
                 if r.objid in zeros else r for r in rows]
    rounded = [r for r in rows if isinstance(r.objid, fields.Rounded)]
    if not rounded:
      return 'objid'
    distinct = len({r.objid.text for r in rounded})
    triples = {(r.plate, r.mjd, r.fiberid) for r in rows}
    if not self.reader.has_pmf:
      reason = 'this file has no plate, mjd, fiberid columns'
    elif not self.reader.has_frame_cols:
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
        f'or a float ({len(rounded)} of {self.reader.n_rows} objids look like this, '
        f'{distinct} distinct): such ids merge different objects and cannot '
        'be keys. Export the objid and specobjid columns as text (or download '
        'the CSV from SkyServer directly and do not open and re-save it in a '
        'spreadsheet), or include unique plate, mjd, fiberid columns to use '
        f"'plate-mjd-fiberid' keys ({reason})."))
    return 'objid'

  def frame_and_key(self, row: fields.Row, mode: str
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

  def given_frame(self, row: fields.Row, mode: str
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

  def build_objects(self, rows: list[fields.Row], mode: str) -> list[CatalogObject]:
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
      if mode == 'objid' and isinstance(row.objid, fields.Rounded):
        continue  # Reported once by choose_keys.
      resolved = self.frame_and_key(row, mode)
      if resolved is None:
        continue
      frame, key, objid = resolved
      specobjid = row.specobjid
      if isinstance(specobjid, fields.Rounded) or specobjid in spec_zeros:
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
        kept_sentinels += self.reader.sentinels[row.number]
        continue
      if key not in first:
        first[key] = (row.number, obj)
        objects.append(obj)
        kept_sentinels += self.reader.sentinels[row.number]
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
          f'{kept_sentinels} sentinel magnitudes (<{fields.MAG_RANGE[0]:g} or '
          f'>{fields.MAG_RANGE[1]:g}, e.g. -9999) read as missing (NaN).')
    if spec_rounded and not (mode == 'pmf' and self.reader.i_objid is not None):
      self.notes.append(
          f'{spec_rounded} specobjid values were rounded by a spreadsheet or a '
          'float and are set to 0 (unknown); export them as text to keep '
          'them.')
    return objects
