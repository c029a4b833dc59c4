"""The SDSS object catalogue: SkyServer query text, parsing and validation.

This is the one catalogue parser of skytfds. It is pure (no I/O): callers fetch
or read the bytes and hand them to `parse_catalog`, which accepts

* SkyServer SqlSearch CSV (`format=csv`: a `#Table1` line, then the header),
* SkyServer SqlSearch JSON (`format=json`: `[{"TableName": "Table1",
  "Rows": [{...}, ...]}]`), or a plain JSON list of row objects,
* a user CSV with the same columns: at least `ra`, `dec` (degrees), `class`,
  and either `objid` or all of `run`, `rerun`, `camcol`, `field`; the
  magnitudes `u g r i z` (AB), `specobjid`, `redshift`, `plate`, `mjd` and
  `fiberid` are optional; unknown columns are ignored; header names are
  matched case-insensitively (`objID`, `specObjID`, `fiberID`).

Ids (`objid`, `specobjid`) are read as exact integers from their decimal text,
never through a float: a spreadsheet rounds them to 15 significant digits
(`1.23764870457714E+018`), which silently merges different objects, so such
ids are refused as keys (or, when `plate`, `mjd`, `fiberid` identify every row
uniquely, replaced by a `plate-mjd-fiberid` key, with a note saying so).

Every problem is reported as a `CatalogError` that names the source, the line
(1-based line of the file; `row N` for JSON), the column, the value and what
to do; row problems are collected and reported together (the first 10 and the
total count).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import html
import io
import json
import math
import numbers
import re
import types
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

CLASSES = ('GALAXY', 'QSO', 'STAR')  # ClassLabel order everywhere.
BANDS = ('u', 'g', 'r', 'i', 'z')

RELEASES = (12, 13, 14, 15, 16, 17)  # Data releases with the DR12+ schema.
DEFAULT_RELEASE = 17
MAX_TOP = 500_000  # SkyServer SqlSearch returns at most this many rows.
# Default magnitude cut (AB magnitudes): r in [0, 22] keeps objects bright
# enough to be seen in a single SDSS frame (r ~ 22.7 is the 95% completeness
# limit) and drops the -9999 sentinel of failed photometry in r.
DEFAULT_MAG_LIMITS: Mapping[str, tuple[float, float]] = types.MappingProxyType(
    {'r': (0.0, 22.0)})
# Magnitudes outside this range (e.g. -9999) are photometry sentinels.
MAG_RANGE = (0.0, 40.0)
MAX_ERRORS_SHOWN = 10

# Bit layout of a PhotoObj objID (SDSS objID algorithm page; idlutils
# sdss_objid): 63 empty, 59-62 skyVersion, 48-58 rerun, 32-47 run, 29-31
# camcol, 28 firstField, 16-27 field, 0-15 id within the field. (Not camcol in
# bits 28-30: that reads camcol 0 for a third of specobj_35k.csv and never
# matches the camcol column of skyserver_export_dr14_10k.csv.)
_RUN_SHIFT, _RUN_MASK = 32, 0xFFFF
_RERUN_SHIFT, _RERUN_MASK = 48, 0x7FF
_CAMCOL_SHIFT, _CAMCOL_MASK = 29, 0x7
_FIELD_SHIFT, _FIELD_MASK = 16, 0xFFF

# (column, lowest, highest) of the imaging-field coordinates.
_FRAME_LIMITS = (
    ('run', 1, _RUN_MASK),
    ('rerun', 0, _RERUN_MASK),
    ('camcol', 1, 6),
    ('field', 0, _FIELD_MASK),
)
_FRAME_COLUMNS = tuple(name for name, _, _ in _FRAME_LIMITS)
_PMF_COLUMNS = ('plate', 'mjd', 'fiberid')
_PMF_LIMITS = {
    'plate': (0, 2**31 - 1), 'mjd': (0, 99_999), 'fiberid': (0, 1000)}
_KNOWN_COLUMNS = (('objid', 'ra', 'dec') + BANDS + _FRAME_COLUMNS +
                  ('specobjid', 'class', 'redshift') + _PMF_COLUMNS)
_MAX_OBJID = 2**63 - 1  # Stored as tf.int64; every SDSS objID is below 2**63.
_MAX_SPECOBJID = 2**64 - 1  # Unsigned 64-bit: may exceed 2**63.
# Two rows with the same key further apart than this are different objects.
_SAME_POSITION_ARCSEC = 1.0
_REQUIRED_TEXT = ('ra, dec, class, and either objid or all of run, rerun, '
                  'camcol, field')
_TAG_RE = re.compile(r'<[^>]*>')
_HIDDEN_RE = re.compile(r'<(script|style|head)\b.*?</\1\s*>', re.I | re.S)
_NAN_TEXTS = frozenset(('', 'nan', 'null', 'none', 'na', 'n/a'))


class FrameId(NamedTuple):
  """One SDSS imaging field: (run, rerun, camcol, field)."""
  run: int
  rerun: int
  camcol: int
  field: int

  @property
  def name(self) -> str:
    """'003918-3-0213': run (6 digits), camcol, field (4 digits)."""
    return f'{self.run:06d}-{self.camcol}-{self.field:04d}'


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogObject:
  """One validated catalogue object.

  Attributes:
    key: unique stable id: str(objid); 'plate-mjd-fiberid' when the objids
      were unusable (spreadsheet-rounded) or absent and plate/mjd/fiberid
      are given; otherwise '<frame name>_<ra><dec>' (degrees, 7 decimals).
    objid: exact PhotoObj objID (uint64 < 2**63); 0 when unknown.
    ra: right ascension, degrees, in [0, 360).
    dec: declination, degrees, in [-90, 90].
    cls: one of CLASSES.
    frame: the imaging field holding the object.
    mags: u, g, r, i, z AB magnitudes; NaN when missing or a sentinel.
    specobjid: exact SpecObjID (may exceed 2**63); 0 when unknown.
    redshift: spectroscopic redshift; NaN when unknown.
    plate: spectroscopic plate; 0 when unknown.
    mjd: MJD of the spectroscopic observation; 0 when unknown.
    fiberid: spectroscopic fibre; 0 when unknown.
    source: where the row came from, e.g. 'catalog.csv line 17'.
  """
  key: str
  objid: int
  ra: float
  dec: float
  cls: str
  frame: FrameId
  mags: tuple[float, float, float, float, float]
  specobjid: int
  redshift: float
  plate: int
  mjd: int
  fiberid: int
  source: str


class CatalogError(ValueError):
  """A catalogue that cannot be used; the message says where and what to do."""


@dataclasses.dataclass
class Catalog:
  """Validated objects in file order, and notes on what was repaired."""
  objects: list[CatalogObject]
  notes: list[str]
  source: str

  def __len__(self) -> int:
    return len(self.objects)

  def by_frame(self) -> dict[FrameId, list[CatalogObject]]:
    """Objects grouped by imaging field, in order of first appearance."""
    groups: dict[FrameId, list[CatalogObject]] = {}
    for obj in self.objects:
      groups.setdefault(obj.frame, []).append(obj)
    return groups

  def class_counts(self) -> dict[str, int]:
    """Number of objects per class, in CLASSES order (zeros included)."""
    counts = collections.Counter(obj.cls for obj in self.objects)
    return {cls: counts[cls] for cls in CLASSES}


# ---------------------------------------------------------------------------
# objid decoding and query text.


def decode_objid(objid: int) -> FrameId:
  """The imaging field encoded in a PhotoObj objID.

  Bits 32-47 hold the run, 48-58 the rerun, 29-31 the camcol and 16-27 the
  field (bit 28 is the firstField flag, bits 0-15 the object's number in the
  field). The result is not range-checked (see `parse_catalog` for that).

  Args:
    objid: the exact objID, a non-negative integer below 2**64.

  Returns:
    The FrameId, e.g. 1237645879579967591 -> FrameId(94, 301, 6, 535).
  """
  if isinstance(objid, bool) or not isinstance(objid, numbers.Integral):
    raise CatalogError(
        f'objid {objid!r} is not an integer; pass the exact integer objID '
        '(never a float: 64-bit ids do not fit in one).')
  objid = int(objid)  # numpy integers too.
  if not 0 <= objid < 2**64:
    raise CatalogError(
        f'objid {objid} is outside the unsigned 64-bit range; pass a PhotoObj '
        'objID.')
  return FrameId(
      run=(objid >> _RUN_SHIFT) & _RUN_MASK,
      rerun=(objid >> _RERUN_SHIFT) & _RERUN_MASK,
      camcol=(objid >> _CAMCOL_SHIFT) & _CAMCOL_MASK,
      field=(objid >> _FIELD_SHIFT) & _FIELD_MASK,
  )


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
  """The magnitude and region BETWEEN clauses, bands in BANDS order."""
  clauses = []
  mag_limits = {} if mag_limits is None else dict(mag_limits)
  unknown = sorted(set(mag_limits) - set(BANDS))
  if unknown:
    raise CatalogError(
        f'mag_limits: unknown band(s) {", ".join(map(repr, unknown))}; use '
        f'{", ".join(BANDS)}.')
  for band in BANDS:
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
                release: int = DEFAULT_RELEASE,
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
  if name not in CLASSES:
    raise CatalogError(
        f'class {cls!r} is not known; use one of {", ".join(CLASSES)}.')
  if isinstance(top, bool) or not isinstance(top, numbers.Integral) or not (
      1 <= top <= MAX_TOP):
    raise CatalogError(
        f'top={top!r}: give a whole number of objects from 1 to {MAX_TOP:,} '
        '(SkyServer returns at most 500,000 rows per query).')
  if isinstance(release, bool) or release not in RELEASES:
    raise CatalogError(
        f'release={release!r}: use a data release from DR{RELEASES[0]} to '
        f'DR{RELEASES[-1]} (an integer, e.g. 17).')
  where = [f"s.class = '{name}'"] + _where_cuts(mag_limits, region)
  return (f'SELECT TOP {int(top)} p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, '
          'p.z, p.run, p.rerun, p.camcol, p.field, s.specobjid, s.class, '
          's.z AS redshift, s.plate, s.mjd, s.fiberid '
          'FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid '
          f'WHERE {" AND ".join(where)} ORDER BY p.objid')


def balanced_queries(per_class: int, **kw: Any) -> list[str]:
  """One `class_query(cls, per_class, **kw)` per class, in CLASSES order."""
  return [class_query(cls, per_class, **kw) for cls in CLASSES]


# ---------------------------------------------------------------------------
# Parsing: bytes -> text -> table (header + rows) -> validated objects.


def _quote(value: str, limit: int = 40) -> str:
  """repr() of a value, shortened for messages."""
  if len(value) > limit:
    value = value[:limit] + '...'
  return repr(value)


def _decode(data: bytes | str, source: str) -> str:
  """UTF-8 text without BOM; non-UTF-8 bytes are a CatalogError."""
  if isinstance(data, str):
    return data[1:] if data.startswith('\ufeff') else data
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise CatalogError(
        f'{source}: expected the catalogue as bytes or text, got '
        f'{type(data).__name__}.')
  data = bytes(data)
  if data.startswith((b'\xff\xfe', b'\xfe\xff')):
    raise CatalogError(
        f'{source}: the file is UTF-16 text (byte order mark '
        f'{data[:2].hex(" ")}); save it as UTF-8 (in a spreadsheet: '
        '"CSV UTF-8") and try again.')
  if data.startswith(b'\xef\xbb\xbf'):
    data = data[3:]
  try:
    return data.decode('utf-8')
  except UnicodeDecodeError as e:
    line = data.count(b'\n', 0, e.start) + 1
    line_start = data.rfind(b'\n', 0, e.start) + 1
    raise CatalogError(
        f'{source}: line {line} is not UTF-8 text (byte 0x{data[e.start]:02x} '
        f'is byte {e.start - line_start + 1} of the line, byte {e.start + 1} '
        'of the file); save the file as UTF-8 (in a spreadsheet: "CSV UTF-8") '
        'and try again.') from None


def _server_error(text: str, source: str) -> None:
  """Raises a CatalogError quoting an HTML or error_message body."""
  stripped = text.lstrip()
  is_html = stripped[:1] == '<'
  marker = stripped[:4096].lower().find('error_message')
  if not is_html and marker < 0:
    return
  body = stripped
  if is_html:
    body = _HIDDEN_RE.sub(' ', body)
    body = html.unescape(_TAG_RE.sub(' ', body))
  index = body.lower().find('error_message')
  if index >= 0:
    body = body[index + len('error_message'):]
  message = ' '.join(body.split()).strip(' \t:=,;"\'{}[]')
  if not message and is_html:  # An empty body: fall back to the title.
    title = re.search(r'<title[^>]*>(.*?)</title', stripped, re.I | re.S)
    if title:
      title_text = html.unescape(_TAG_RE.sub(' ', title.group(1)))
      message = ' '.join(title_text.split())
  if len(message) > 300:
    message = message[:300] + '...'
  if index >= 0:
    raise CatalogError(
        f'{source}: the server answered with an error instead of a catalogue: '
        f'"{message}". Fix the SQL (columns, quotes, TOP n) or the release, '
        'or retry later if the service is down.')
  raise CatalogError(
      f'{source}: got an HTML page instead of a CSV or JSON catalogue: '
      f'"{message or "(no text)"}". Check the URL and the service, or save '
      'the query result as CSV.')


class _Table(NamedTuple):
  header: list[str]
  rows: Iterable[tuple[int, list[str]]]  # (line or row number, fields)
  where: str  # 'line' (CSV) or 'row' (JSON)


def _csv_table(text: str, source: str) -> _Table:
  """Header and rows of CSV text, skipping '#Table1'-style lines before it."""
  reader = csv.reader(io.StringIO(text, newline=''))
  header = None
  try:
    for fields in reader:
      if not fields or (fields[0].lstrip().startswith('#') and header is None):
        continue
      if not any(f.strip() for f in fields):
        continue
      header = fields
      break
  except csv.Error as e:
    raise CatalogError(
        f'{source}: line {reader.line_num} is not valid CSV ({e}); save the '
        'catalogue as comma-separated UTF-8 text.') from None
  if header is None:
    raise CatalogError(
        f'{source}: the catalogue is empty (no header, no rows); it needs a '
        f'header with {_REQUIRED_TEXT} and at least one object.')

  def rows() -> Iterator[tuple[int, list[str]]]:
    try:
      start = reader.line_num + 1
      for fields in reader:
        if fields:
          yield start, fields  # The line the row starts on.
        start = reader.line_num + 1
    except csv.Error as e:
      raise CatalogError(
          f'{source}: line {reader.line_num} is not valid CSV ({e}); save the '
          'catalogue as comma-separated UTF-8 text.') from None

  return _Table(header, rows(), 'line')


def _json_text(value: Any) -> str:
  """A JSON scalar as text (numbers were kept as their exact text)."""
  if value is None:
    return ''
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, str):
    return value
  return json.dumps(value)


def _json_table(text: str, source: str) -> _Table:
  """Header and rows of SkyServer JSON or a plain list of row objects."""
  try:
    # Numbers stay text, so ids are exact and float-looking ids are visible.
    doc = json.loads(text, parse_int=str, parse_float=str, parse_constant=str)
  except json.JSONDecodeError as e:
    raise CatalogError(
        f'{source}: not valid JSON at line {e.lineno} column {e.colno} '
        f'({e.msg}); send SkyServer JSON (format=json) or CSV.') from None
  tables = doc if isinstance(doc, list) else [doc]
  if tables and all(isinstance(t, dict) and 'Rows' in t for t in tables):
    table = tables[0]
    rows, columns = table['Rows'], table.get('Columns')
  elif isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
    rows, columns = doc, None
  else:
    keys = ', '.join(map(str, doc)) if isinstance(doc, dict) else ''
    raise CatalogError(
        f'{source}: JSON without catalogue rows'
        + (f' (keys: {keys})' if keys else '') +
        '; expected SkyServer JSON [{"TableName": "Table1", "Rows": '
        '[{...}]}] or a list of row objects.')
  if not isinstance(rows, list):
    raise CatalogError(f'{source}: JSON "Rows" is not a list of rows.')
  if not rows:
    raise CatalogError(
        f'{source}: the catalogue is empty (no rows); the query matched no '
        'objects: widen the cuts or the region.')
  if columns is not None:
    names = [c.get('Name', c.get('name', '')) if isinstance(c, dict) else c
             for c in columns]
    header = [str(n) for n in names]
  else:
    header = []
    seen = set()
    for row in rows:
      if isinstance(row, dict):
        for name in row:
          if name not in seen:
            seen.add(name)
            header.append(name)

  def fields_of() -> Iterator[tuple[int, list[str]]]:
    for number, row in enumerate(rows, start=1):
      if isinstance(row, dict):
        yield number, [_json_text(row.get(name)) for name in header]
      elif isinstance(row, list):
        yield number, [_json_text(v) for v in row]
      else:
        yield number, [_json_text(row)]

  return _Table(header, fields_of(), 'row')


class _Rounded(NamedTuple):
  """An id that went through a float (a spreadsheet or JSON float)."""
  text: str


def _parse_int(text: str) -> int | None:
  """An exact integer from ASCII decimal text, or None."""
  digits = text[1:] if text[:1] == '-' else text
  if digits.isascii() and digits.isdigit():
    # Longer than any 64-bit id: out of range without converting it all.
    return int(text) if len(digits) <= 40 else 10**40
  return None


def _looks_float(text: str) -> bool:
  try:
    return math.isfinite(float(text))
  except ValueError:
    return False


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


def _map_header(header: list[str], source: str) -> dict[str, int]:
  """Canonical column name -> index; unknown columns are ignored."""
  columns: dict[str, int] = {}
  for index, raw in enumerate(header):
    name = raw.strip().strip('"\'').strip().lower()
    if name not in _KNOWN_COLUMNS:
      continue
    if name in columns:
      raise CatalogError(
          f'{source}: column {name!r} appears twice in the header (columns '
          f'{columns[name] + 1} and {index + 1}); keep one of them.')
    columns[name] = index
  found = ', '.join(h.strip() for h in header) or '(none)'
  missing = [c for c in ('ra', 'dec', 'class') if c not in columns]
  if 'objid' not in columns:
    absent = [c for c in _FRAME_COLUMNS if c not in columns]
    if absent:
      missing.append('objid (or ' + ', '.join(absent) + ')')
  if missing:
    hint = ''
    if len(header) == 1 and (';' in header[0] or '\t' in header[0]):
      sep = 'semicolons' if ';' in header[0] else 'tabs'
      hint = (f' The file seems to be separated by {sep}: save it '
              'comma-separated.')
    raise CatalogError(
        f'{source}: missing required column(s): {", ".join(missing)}. '
        f'Required: {_REQUIRED_TEXT}. Found: {found}.{hint}')
  return columns


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


def parse_catalog(data: bytes | str, source: str) -> Catalog:
  """Parses and validates a catalogue (SkyServer CSV/JSON or a user CSV).

  Args:
    data: the file or response body, bytes (UTF-8, a BOM is dropped) or text.
    source: a name for messages, e.g. the file name or 'SkyServer DR17'.

  Returns:
    The Catalog: objects in file order (exact duplicates dropped), and notes
    on what was repaired (sentinel magnitudes, duplicates, key fallback).

  Raises:
    CatalogError: naming the source, line, column, value and what to do.
  """
  text = _decode(data, source)
  _server_error(text, source)
  if not text.strip():
    raise CatalogError(
        f'{source}: the catalogue is empty (no header, no rows); it needs a '
        f'header with {_REQUIRED_TEXT} and at least one object.')
  if text.lstrip()[:1] in '[{':
    table = _json_table(text, source)
  else:
    table = _csv_table(text, source)
  columns = _map_header(table.header, source)
  return _validate(table, columns, source)


def _validate(table: _Table, columns: dict[str, int], source: str) -> Catalog:
  """Rows -> CatalogObjects, collecting every problem into one CatalogError."""
  validator = _Validator(table, columns, source)
  rows = validator.read_rows()
  mode = validator.choose_keys(rows)
  objects = validator.build_objects(rows, mode)
  if validator.errors:
    raise CatalogError(_format_errors(source, validator.errors))
  return Catalog(objects=objects, notes=validator.notes, source=source)


class _Validator:
  """The state of one parse: column indices, problems found, notes."""

  def __init__(self, table: _Table, columns: dict[str, int], source: str):
    self.table = table
    self.source = source
    self.where = table.where  # 'line' or 'row'
    self.errors: list[str] = []
    self.notes: list[str] = []
    self.sentinels: collections.Counter[int] = collections.Counter()  # by row
    self.n_rows = 0  # Non-blank rows, good or bad.
    self.i_objid = columns.get('objid')
    self.i_ra, self.i_dec = columns['ra'], columns['dec']
    self.i_cls = columns['class']
    self.mag_cols = [(band, columns.get(band)) for band in BANDS]
    self.frame_cols = [(name, columns[name], lo, hi)
                       for name, lo, hi in _FRAME_LIMITS if name in columns]
    self.i_spec = columns.get('specobjid')
    self.i_z = columns.get('redshift')
    self.pmf_cols = [(name, columns.get(name), *_PMF_LIMITS[name])
                     for name in _PMF_COLUMNS]
    self.has_pmf = all(index is not None for _, index, _, _ in self.pmf_cols)
    self.has_frame_cols = len(self.frame_cols) == len(_FRAME_LIMITS)

  def problem(self, number: int, column: str, value: str, what: str) -> None:
    self.errors.append(
        f'{self.where} {number}, column {column}: {_quote(value)} {what}')

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
    cls = self.cls(number, fields[self.i_cls])
    objid = None
    if self.i_objid is not None:
      objid = self.objid(number, fields[self.i_objid])
    frame_values = {}
    for column, index, lo, hi in self.frame_cols:
      value = self.whole(number, column, fields[index], lo, hi, empty=None)
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
    return _Row(number, objid, ra, dec, cls, frame_values, mags, specobjid,
                redshift, *(v or 0 for v in pmf))

  def position(self, number: int, column: str, text: str) -> float:
    """ra in [0, 360) or dec in [-90, 90], degrees."""
    value = text.strip()
    try:
      degrees = float(value)
    except ValueError:
      self.problem(number, column, value, (
          'is empty; every object needs ra and dec in decimal degrees.'
          if not value else 'is not a number; give decimal degrees (not '
          'sexagesimal h:m:s / d:m:s).'))
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
    """One of CLASSES, any case in the file."""
    raw = text.strip()
    name = raw.upper()
    if name not in CLASSES:
      self.problem(number, 'class', raw, (
          'is empty; give one of ' if not raw else
          'is not a known class; use one of ') +
                   f'{", ".join(CLASSES)} (any case).')
    return name

  def objid(self, number: int, text: str) -> int | _Rounded | None:
    """The exact objID; float-looking text went through a float."""
    value = text.strip()
    objid = _parse_int(value)
    if objid is None:
      if _looks_float(value):
        return _Rounded(value)
      self.problem(number, 'objid', value, (
          'is empty; give the exact objID, or drop the objid column and give '
          'run, rerun, camcol, field.' if not value else
          'is not a whole number; objid must be the exact decimal PhotoObj '
          'objID.'))
    elif not 1 <= objid <= _MAX_OBJID:
      self.problem(number, 'objid', value, 'is out of range; objid must be a '
                   'PhotoObj objID from 1 to 2**63-1.')
      objid = None
    return objid

  def whole(self, number: int, column: str, text: str, lo: int, hi: int, *,
            empty: int | None) -> int | None:
    """An integer in [lo, hi]; `empty` (None: a problem) for an empty field."""
    value = text.strip()
    unknown = ' (empty when unknown)' if empty is not None else ''
    if not value:
      if empty is None:
        self.problem(number, column, value, f'is empty; {column} must be an '
                     f'integer from {lo} to {hi}.')
      return empty
    parsed = _parse_int(value)
    if parsed is None:
      self.problem(number, column, value, f'is not a whole number; {column} '
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
    try:
      mag = float(text)
    except ValueError:
      if text.strip().lower() not in _NAN_TEXTS:
        self.problem(number, band, text, 'is not a number; give the AB '
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
    parsed = _parse_int(value)
    if parsed is not None:
      if parsed <= _MAX_SPECOBJID and parsed >= 0:
        return parsed
      self.problem(number, 'specobjid', value, 'is out of range; specobjid '
                   'must be an unsigned 64-bit integer (0 when unknown).')
    elif _looks_float(value):
      return _Rounded(value)
    elif value:
      self.problem(number, 'specobjid', value, 'is not a whole number; give '
                   'the exact decimal specObjID, or leave it empty.')
    return 0

  def redshift(self, number: int, text: str) -> float:
    """Spectroscopic redshift; NaN when empty."""
    try:
      value = float(text)
    except ValueError:
      if text.strip().lower() not in _NAN_TEXTS:
        self.problem(number, 'redshift', text, 'is not a number; give the '
                     'redshift as a decimal number, or leave it empty.')
      return math.nan
    return value if math.isfinite(value) else math.nan

  # Pass 2: keys, frames, duplicates.

  def choose_keys(self, rows: list[_Row]) -> str:
    """'objid', 'pmf' (plate-mjd-fiberid) or 'position'; notes the choice.

    Marks objids written out in full after rounding as _Rounded (in place).
    """
    where = self.where
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
        f'{_quote(rounded[0].objid.text)} was rounded by a spreadsheet or a '
        f'float ({len(rounded)} of {self.n_rows} objids look like this, '
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
    if mode == 'objid':
      objid = row.objid
      decoded = decode_objid(objid)
      bad = [f'{name} {getattr(decoded, name)}' for name, lo, hi in
             _FRAME_LIMITS if not lo <= getattr(decoded, name) <= hi]
      if bad:
        self.errors.append(
            f'{where} {number}, column objid: {_quote(str(objid))} does not '
            f'encode an SDSS imaging object ({", ".join(bad)} out of range); '
            'give the PhotoObj objID (bestObjID), not another id.')
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
          fiberid=row.fiberid, source=f'{self.source} {where} {row.number}')
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
