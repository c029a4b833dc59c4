"""The SQL subset the emulated SkyServer answers, over a catalogue.

The emulator answers the queries skytfds and the reference workflow send
(see ../shared/DESIGN.md, "The classic query"):

  SELECT TOP n p.objid, p.ra, ..., s.z AS redshift, ...
  FROM PhotoObj AS p JOIN SpecObj AS s ON s.bestobjid = p.objid
  WHERE s.class = 'STAR' AND p.r BETWEEN 0 AND 22 [AND ...] [ORDER BY ...]

Supported: `SELECT [TOP n] col [[AS] alias], ...`; `FROM` one of PhotoObj /
PhotoObjAll / PhotoPrimary / SpecObj / SpecObjAll, optionally `[INNER] JOIN`
the other on `bestobjid = objid`; `WHERE` with `AND`, `OR`, `NOT`,
parentheses, comparisons (`= <> != < <= > >=`), `[NOT] BETWEEN a AND b` and
`[NOT] IN (...)`; `ORDER BY col [ASC|DESC], ...`; `--` and `/* */` comments,
a trailing `;`. Identifiers are case-insensitive and string comparisons too
(SQL Server's default collation); output columns are named as written in the
query (or by their alias). Rows come in objid order, as SkyServer returns
`TOP n` from PhotoObj, unless `ORDER BY` says otherwise.

Anything else (functions, `SELECT *`, `GROUP BY`, other tables) raises
`SqlError` with a message in SQL Server's style, which the app returns the way
SkyServer does (a page containing `error_message`).

Values that a catalogue may lack are derived deterministically:
- run, rerun, camcol, field: from the objid (`CatalogObject.frame`).
- plate, mjd, fiberid: when missing, objects without them are given, in objid
  order, fibers 1..640 of plates numbered from 266 upwards that the catalogue
  does not use, with one MJD per plate (51578 + (53 * (plate - 266)) % 3100);
  so (plate, mjd, fiberid) is unique.
- specobjid: when missing, encoded from plate, fiberid, mjd as SDSS does
  (plate << 50 | fiberid << 38 | (mjd - 50000) << 24 | run2d << 10, run2d 26);
  when present but plate is missing, plate/mjd/fiberid are decoded from it.
- Missing magnitudes and redshifts (NaN) come back as -9999, SDSS's sentinel.
- PhotoObj `type` is 3 (galaxy) for GALAXY objects and 6 (star) otherwise;
  `mode` and `clean` are 1; SpecObj `zwarning` is 0.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

MISSING = -9999.0  # SDSS sentinel for a missing value.
FIBERS_PER_PLATE = 640
FIRST_PLATE = 266
RUN2D_CODE = 26  # specobjid bits 10-23 for run2d '26' (SDSS-I/II spectra).

PHOTO = 'PhotoObj'
SPEC = 'SpecObj'
_TABLES = {
    'photoobj': PHOTO,
    'photoobjall': PHOTO,
    'photoprimary': PHOTO,
    'specobj': SPEC,
    'specobjall': SPEC,
}
_PHOTO_COLUMNS = (
    'objid', 'ra', 'dec', 'u', 'g', 'r', 'i', 'z', 'run', 'rerun', 'camcol',
    'field', 'type', 'mode', 'clean', 'specobjid',
)
_SPEC_COLUMNS = (
    'specobjid', 'bestobjid', 'class', 'z', 'plate', 'mjd', 'fiberid', 'ra',
    'dec', 'zwarning',
)
_COLUMNS = {PHOTO: _PHOTO_COLUMNS, SPEC: _SPEC_COLUMNS}

Row = dict[tuple[str, str], Any]  # (table, lower-case column) -> value


class SqlError(ValueError):
  """A query the emulator cannot answer; str() is SQL Server-style text."""


# ----------------------------------------------------------------------------
# The table: one row per catalogue object, values derived where missing.


def encode_specobjid(plate: int, fiberid: int, mjd: int,
                     run2d_code: int = RUN2D_CODE) -> int:
  """SDSS DR8+ specobjid from plate, fiber, MJD and run2d code (exact int)."""
  return ((plate << 50) | (fiberid << 38) | ((mjd - 50000) << 24)
          | (run2d_code << 10))


def decode_specobjid(specobjid: int) -> tuple[int, int, int]:
  """(plate, mjd, fiberid) from an SDSS DR8+ specobjid."""
  plate = specobjid >> 50
  fiberid = (specobjid >> 38) & 0xFFF
  mjd = ((specobjid >> 24) & 0x3FFF) + 50000
  return plate, mjd, fiberid


def plate_mjd(plate: int) -> int:
  """The deterministic MJD given to a derived plate."""
  return 51578 + (53 * (plate - FIRST_PLATE)) % 3100


def _number(value: float) -> float:
  return MISSING if value is None or math.isnan(value) else float(value)


def build_rows(objects: Iterable[Any]) -> list[Row]:
  """Rows (objid order) for catalogue objects (`skytfds.catalog.CatalogObject`).

  Args:
    objects: objects with key, objid, ra, dec, cls, frame, mags, specobjid,
      redshift, plate, mjd, fiberid (as in `skytfds.catalog.CatalogObject`).

  Returns:
    One dict per object, keyed by (table, column), spectroscopic ids derived
    as the module docstring describes.
  """
  objects = sorted(objects, key=lambda o: (o.objid, o.key))
  used_plates = set()
  for o in objects:
    if o.plate:
      used_plates.add(o.plate)
    elif o.specobjid:
      used_plates.add(decode_specobjid(o.specobjid)[0])
  next_plate, next_fiber = FIRST_PLATE, FIBERS_PER_PLATE + 1
  plate_now = FIRST_PLATE
  rows = []
  for o in objects:
    plate, mjd, fiberid, specobjid = o.plate, o.mjd, o.fiberid, o.specobjid
    if not (plate and mjd and fiberid):
      if specobjid:
        plate, mjd, fiberid = decode_specobjid(specobjid)
      else:
        if next_fiber > FIBERS_PER_PLATE:
          while next_plate in used_plates:
            next_plate += 1
          plate_now = next_plate
          used_plates.add(plate_now)
          next_fiber = 1
        plate, fiberid = plate_now, next_fiber
        mjd = plate_mjd(plate)
        next_fiber += 1
    if not specobjid:
      specobjid = encode_specobjid(plate, fiberid, mjd)
    u, g, r, i, z = (_number(m) for m in o.mags)
    frame = o.frame
    row = {
        (PHOTO, 'objid'): o.objid,
        (PHOTO, 'ra'): float(o.ra),
        (PHOTO, 'dec'): float(o.dec),
        (PHOTO, 'u'): u,
        (PHOTO, 'g'): g,
        (PHOTO, 'r'): r,
        (PHOTO, 'i'): i,
        (PHOTO, 'z'): z,
        (PHOTO, 'run'): frame.run,
        (PHOTO, 'rerun'): frame.rerun,
        (PHOTO, 'camcol'): frame.camcol,
        (PHOTO, 'field'): frame.field,
        (PHOTO, 'type'): 3 if o.cls == 'GALAXY' else 6,
        (PHOTO, 'mode'): 1,
        (PHOTO, 'clean'): 1,
        (PHOTO, 'specobjid'): specobjid,
        (SPEC, 'specobjid'): specobjid,
        (SPEC, 'bestobjid'): o.objid,
        (SPEC, 'class'): o.cls,
        (SPEC, 'z'): _number(o.redshift),
        (SPEC, 'plate'): plate,
        (SPEC, 'mjd'): mjd,
        (SPEC, 'fiberid'): fiberid,
        (SPEC, 'ra'): float(o.ra),
        (SPEC, 'dec'): float(o.dec),
        (SPEC, 'zwarning'): 0,
    }
    rows.append(row)
  return rows


# ----------------------------------------------------------------------------
# Tokenizer.

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<ident>\[[^\]]+\]|[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op><=|>=|<>|!=|=|<|>|\(|\)|,|\.|\*|;|-|\+)
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = frozenset({
    'select', 'top', 'from', 'join', 'inner', 'left', 'right', 'outer',
    'cross', 'on', 'where', 'and', 'or', 'not', 'between', 'in', 'as',
    'order', 'by', 'asc', 'desc', 'group', 'having', 'union', 'distinct',
    'into', 'is', 'null', 'like', 'percent', 'with',
})


@dataclasses.dataclass(frozen=True)
class _Token:
  kind: str    # 'number', 'string', 'ident', 'keyword', 'op', 'end'
  text: str    # as written (identifier brackets removed, strings unquoted)
  pos: int


def _tokenize(sql: str) -> list[_Token]:
  tokens = []
  pos = 0
  while pos < len(sql):
    m = _TOKEN_RE.match(sql, pos)
    if not m:
      raise SqlError(f"Incorrect syntax near '{sql[pos:pos + 20]}'.")
    kind = m.lastgroup
    text = m.group()
    if kind == 'string':
      quote = text[0]
      text = text[1:-1].replace(quote * 2, quote)
    elif kind == 'ident':
      if text.startswith('['):
        text = text[1:-1]
      elif text.lower() in _KEYWORDS:
        kind = 'keyword'
    if kind != 'space':
      tokens.append(_Token(kind, text, m.start()))
    pos = m.end()
  tokens.append(_Token('end', '', len(sql)))
  return tokens


# ----------------------------------------------------------------------------
# Parser.


@dataclasses.dataclass(frozen=True)
class ColumnRef:
  qualifier: str | None  # table alias or name as written, or None
  name: str              # as written


@dataclasses.dataclass(frozen=True)
class SelectItem:
  column: ColumnRef
  output_name: str


@dataclasses.dataclass(frozen=True)
class Query:
  """A parsed query; `run` answers it over rows from `build_rows`."""
  top: int | None
  items: tuple[SelectItem, ...]
  tables: dict[str, str]          # lower-case alias -> PHOTO | SPEC
  where: Callable[[Row], bool] | None
  order: tuple[tuple[tuple[str, str], bool], ...]   # ((table, col), desc)
  resolved: tuple[tuple[str, str], ...]              # one per item

  @property
  def columns(self) -> list[str]:
    return [item.output_name for item in self.items]

  def run(self, rows: Sequence[Row]) -> list[list[Any]]:
    """Result rows (lists of values, one per selected column)."""
    selected = rows
    if self.where is not None:
      where = self.where
      if self.order or self.top is None:
        selected = [row for row in rows if where(row)]
      else:
        selected = []
        for row in rows:
          if where(row):
            selected.append(row)
            if len(selected) >= self.top:
              break
    if self.order:
      selected = list(selected)
      for key, desc in reversed(self.order):
        selected.sort(key=lambda row, k=key: _sort_key(row[k]), reverse=desc)
    if self.top is not None:
      selected = selected[:self.top]
    return [[row[key] for key in self.resolved] for row in selected]


def _sort_key(value: Any) -> Any:
  return value.lower() if isinstance(value, str) else value


class _Parser:
  """Recursive descent over the token list."""

  def __init__(self, sql: str):
    self.sql = sql
    self.tokens = _tokenize(sql)
    self.i = 0
    self.tables: dict[str, str] = {}
    self.raw_items: list[tuple[ColumnRef, str | None]] = []

  # -- token helpers
  def peek(self, offset: int = 0) -> _Token:
    return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

  def next(self) -> _Token:
    token = self.peek()
    self.i += 1
    return token

  def at_keyword(self, *words: str) -> bool:
    token = self.peek()
    return token.kind == 'keyword' and token.text.lower() in words

  def at_op(self, *ops: str) -> bool:
    token = self.peek()
    return token.kind == 'op' and token.text in ops

  def error(self, token: _Token | None = None) -> SqlError:
    token = token or self.peek()
    if token.kind == 'end':
      return SqlError('Incorrect syntax near the end of the query.')
    return SqlError(f"Incorrect syntax near '{token.text}'.")

  def expect_keyword(self, word: str) -> None:
    if not self.at_keyword(word):
      raise self.error()
    self.i += 1

  def expect_op(self, op: str) -> None:
    if not self.at_op(op):
      raise self.error()
    self.i += 1

  # -- grammar
  def parse(self) -> Query:
    if not self.at_keyword('select'):
      if self.peek().kind == 'end':
        raise SqlError('The query is empty: send a SELECT statement in cmd=.')
      raise SqlError(
          f"Incorrect syntax near '{self.peek().text}': the emulated SkyServer "
          'answers SELECT statements only.')
    self.i += 1
    if self.at_keyword('distinct'):
      raise SqlError('SELECT DISTINCT is not supported by the emulated '
                     'SkyServer.')
    top = None
    if self.at_keyword('top'):
      self.i += 1
      token = self.next()
      if token.kind != 'number' or not token.text.isdigit():
        raise SqlError(f"Incorrect syntax near '{token.text}': TOP needs a "
                       'whole number.')
      top = int(token.text)
      if self.at_keyword('percent'):
        raise SqlError('TOP ... PERCENT is not supported by the emulated '
                       'SkyServer.')
    raw_items = self.raw_items = self.select_list()
    self.expect_keyword('from')
    self.from_clause()
    where = None
    if self.at_keyword('where'):
      self.i += 1
      where = self.expr()
    order = ()
    if self.at_keyword('order'):
      self.i += 1
      self.expect_keyword('by')
      order = self.order_list()
    if self.at_keyword('group', 'having', 'union', 'into'):
      raise SqlError(f'{self.peek().text.upper()} is not supported by the '
                     'emulated SkyServer.')
    if self.at_op(';'):
      self.i += 1
    if self.peek().kind != 'end':
      raise self.error()
    items = []
    resolved = []
    for column, alias in raw_items:
      resolved.append(self.resolve(column))
      items.append(SelectItem(column, alias or column.name))
    return Query(top=top, items=tuple(items), tables=dict(self.tables),
                 where=where, order=tuple(order), resolved=tuple(resolved))

  def select_list(self) -> list[tuple[ColumnRef, str | None]]:
    items = []
    while True:
      if self.at_op('*'):
        raise SqlError('SELECT * is not supported by the emulated SkyServer: '
                       'name the columns.')
      column = self.column_ref()
      if self.at_op('('):
        raise SqlError(f"'{column.name}' is not a recognized built-in function "
                       'name (functions are not supported by the emulated '
                       'SkyServer).')
      alias = None
      if self.at_keyword('as'):
        self.i += 1
        token = self.next()
        if token.kind not in ('ident', 'string', 'keyword'):
          raise self.error(token)
        alias = token.text
      elif self.peek().kind == 'ident':
        alias = self.next().text
      items.append((column, alias))
      if not self.at_op(','):
        return items
      self.i += 1

  def column_ref(self) -> ColumnRef:
    token = self.next()
    if token.kind != 'ident':
      raise self.error(token)
    if self.at_op('.'):
      self.i += 1
      if self.at_op('*'):
        raise SqlError('SELECT alias.* is not supported by the emulated '
                       'SkyServer: name the columns.')
      name = self.next()
      if name.kind != 'ident':
        raise self.error(name)
      if self.at_op('.'):
        raise SqlError(f"Three-part names like '{token.text}.{name.text}...' "
                       'are not supported by the emulated SkyServer.')
      return ColumnRef(token.text, name.text)
    return ColumnRef(None, token.text)

  def table_ref(self) -> None:
    token = self.next()
    if token.kind != 'ident':
      raise self.error(token)
    name = token.text
    if self.at_op('.'):  # dbo.PhotoObj
      self.i += 1
      if name.lower() != 'dbo':
        raise SqlError(f"Invalid object name '{name}'.")
      token = self.next()
      name = token.text
    table = _TABLES.get(name.lower())
    if table is None:
      raise SqlError(f"Invalid object name '{name}': the emulated SkyServer "
                     'holds PhotoObj and SpecObj only.')
    alias = name
    if self.at_keyword('as'):
      self.i += 1
      alias = self.next().text
    elif self.peek().kind == 'ident':
      alias = self.next().text
    if table in self.tables.values():
      raise SqlError(f"The table '{name}' appears twice: self-joins are not "
                     'supported by the emulated SkyServer.')
    if alias.lower() in self.tables:
      raise SqlError(f"The correlation name '{alias}' is specified multiple "
                     'times.')
    self.tables[alias.lower()] = table

  def from_clause(self) -> None:
    self.table_ref()
    if self.at_keyword('inner'):
      self.i += 1
      if not self.at_keyword('join'):
        raise self.error()
    if self.at_keyword('left', 'right', 'outer', 'cross'):
      raise SqlError(f'{self.peek().text.upper()} joins are not supported by '
                     'the emulated SkyServer: use JOIN ... ON s.bestobjid = '
                     'p.objid.')
    if self.at_op(','):
      raise SqlError('Comma joins are not supported by the emulated SkyServer:'
                     ' use JOIN ... ON s.bestobjid = p.objid.')
    if not self.at_keyword('join'):
      return
    self.i += 1
    self.table_ref()
    self.expect_keyword('on')
    left = self.resolve(self.column_ref())
    self.expect_op('=')
    right = self.resolve(self.column_ref())
    if {left, right} != {(PHOTO, 'objid'), (SPEC, 'bestobjid')}:
      raise SqlError('The emulated SkyServer joins PhotoObj and SpecObj on '
                     's.bestobjid = p.objid only.')

  def resolve(self, column: ColumnRef) -> tuple[str, str]:
    name = column.name.lower()
    if column.qualifier is not None:
      table = self.tables.get(column.qualifier.lower())
      if table is None:
        raise SqlError(f"The multi-part identifier '{column.qualifier}."
                       f"{column.name}' could not be bound.")
      if name not in _COLUMNS[table]:
        raise SqlError(f"Invalid column name '{column.name}' (the emulated "
                       f'{table} has: {", ".join(_COLUMNS[table])}).')
      return table, name
    owners = [t for t in self.tables.values() if name in _COLUMNS[t]]
    if not owners:
      raise SqlError(f"Invalid column name '{column.name}'.")
    if len(owners) > 1:
      raise SqlError(f"Ambiguous column name '{column.name}'.")
    return owners[0], name

  def order_list(self) -> list[tuple[tuple[str, str], bool]]:
    order = []
    while True:
      column = self.column_ref()
      key = self.resolve_order(column)
      desc = False
      if self.at_keyword('asc', 'desc'):
        desc = self.next().text.lower() == 'desc'
      order.append((key, desc))
      if not self.at_op(','):
        return order
      self.i += 1

  def resolve_order(self, column: ColumnRef) -> tuple[str, str]:
    """ORDER BY names a column or a select-list alias."""
    if column.qualifier is None:
      for selected, alias in self.raw_items:
        if alias and alias.lower() == column.name.lower():
          return self.resolve(selected)
    return self.resolve(column)

  # -- WHERE expressions: each returns a predicate over a row
  def expr(self) -> Callable[[Row], bool]:
    terms = [self.and_expr()]
    while self.at_keyword('or'):
      self.i += 1
      terms.append(self.and_expr())
    if len(terms) == 1:
      return terms[0]
    return lambda row: any(term(row) for term in terms)

  def and_expr(self) -> Callable[[Row], bool]:
    terms = [self.not_expr()]
    while self.at_keyword('and'):
      self.i += 1
      terms.append(self.not_expr())
    if len(terms) == 1:
      return terms[0]
    return lambda row: all(term(row) for term in terms)

  def not_expr(self) -> Callable[[Row], bool]:
    if self.at_keyword('not'):
      self.i += 1
      inner = self.not_expr()
      return lambda row: not inner(row)
    if self.at_op('('):
      self.i += 1
      inner = self.expr()
      self.expect_op(')')
      return inner
    return self.predicate()

  def operand(self) -> Callable[[Row], Any]:
    token = self.peek()
    if token.kind == 'number' or (token.kind == 'op' and token.text in '-+'
                                  and self.peek(1).kind == 'number'):
      sign = 1
      if token.kind == 'op':
        sign = -1 if token.text == '-' else 1
        self.i += 1
      value = _parse_number(self.next().text) * sign
      return lambda row: value
    if token.kind == 'string':
      self.i += 1
      text = token.text
      return lambda row: text
    if token.kind == 'keyword' and token.text.lower() == 'null':
      raise SqlError('NULL comparisons are not supported by the emulated '
                     'SkyServer (no value is NULL).')
    column = self.column_ref()
    if self.at_op('('):
      raise SqlError(f"'{column.name}' is not a recognized built-in function "
                     'name (functions are not supported by the emulated '
                     'SkyServer).')
    key = self.resolve(column)
    return lambda row: row[key]

  def predicate(self) -> Callable[[Row], bool]:
    left = self.operand()
    negate = False
    if self.at_keyword('not'):
      self.i += 1
      negate = True
      if not self.at_keyword('between', 'in'):
        raise self.error()
    if self.at_keyword('between'):
      self.i += 1
      low = self.operand()
      self.expect_keyword('and')
      high = self.operand()

      def between(row: Row) -> bool:
        value = _cmp_value(left(row))
        return _cmp_value(low(row)) <= value <= _cmp_value(high(row))
      return (lambda row: not between(row)) if negate else between
    if self.at_keyword('in'):
      self.i += 1
      self.expect_op('(')
      options = [self.operand()]
      while self.at_op(','):
        self.i += 1
        options.append(self.operand())
      self.expect_op(')')

      def member(row: Row) -> bool:
        value = _cmp_value(left(row))
        return any(_equal(value, _cmp_value(o(row))) for o in options)
      return (lambda row: not member(row)) if negate else member
    if self.at_keyword('like', 'is'):
      raise SqlError(f'{self.peek().text.upper()} is not supported by the '
                     'emulated SkyServer.')
    token = self.next()
    if token.kind != 'op' or token.text not in _COMPARE:
      raise self.error(token)
    compare = _COMPARE[token.text]
    right = self.operand()
    return lambda row: compare(_cmp_value(left(row)), _cmp_value(right(row)))


def _parse_number(text: str) -> int | float:
  if re.fullmatch(r'\d+', text):
    return int(text)
  return float(text)


def _cmp_value(value: Any) -> Any:
  return value.lower() if isinstance(value, str) else value


def _check_types(a: Any, b: Any) -> None:
  if isinstance(a, str) != isinstance(b, str):
    text = a if isinstance(a, str) else b
    raise SqlError(f"Conversion failed when converting the varchar value "
                   f"'{text}' to a number.")


def _equal(a: Any, b: Any) -> bool:
  _check_types(a, b)
  return a == b


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
  def compare(a: Any, b: Any) -> bool:
    _check_types(a, b)
    return op(a, b)
  return compare


_COMPARE = {
    '=': _equal,
    '<>': lambda a, b: not _equal(a, b),
    '!=': lambda a, b: not _equal(a, b),
    '<': _ordered(lambda a, b: a < b),
    '<=': _ordered(lambda a, b: a <= b),
    '>': _ordered(lambda a, b: a > b),
    '>=': _ordered(lambda a, b: a >= b),
}


def parse(sql: str) -> Query:
  """Parses a query of the supported subset; raises SqlError otherwise."""
  return _Parser(sql).parse()


# ----------------------------------------------------------------------------
# Output in SkyServer's shapes.


def format_value(value: Any) -> str:
  """A CSV cell: exact decimal integers, shortest round-trip floats."""
  if isinstance(value, bool):
    return str(int(value))
  if isinstance(value, int):
    return str(value)
  if isinstance(value, float):
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
      return str(int(value))
    return repr(value)
  return str(value)


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
  """SkyServer CSV: a `#Table1` line, the header, then one line per row."""
  out = io.StringIO()
  out.write('#Table1\n')
  writer = csv.writer(out, lineterminator='\n')
  writer.writerow(columns)
  for row in rows:
    writer.writerow([format_value(v) for v in row])
  return out.getvalue()


def to_json(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
  """SkyServer JSON: `[{"TableName": "Table1", "Rows": [{col: value}]}]`.

  Integers (objid, specobjid) are written as exact JSON integers.
  """
  records = [dict(zip(columns, row)) for row in rows]
  return json.dumps([{'TableName': 'Table1', 'Rows': records}])
