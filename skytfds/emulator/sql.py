"""The SQL the emulated SkyServer answers: T-SQL run on the standard sqlite3.

The query text goes to an in-memory sqlite3 database holding the catalogue's
PhotoObj and SpecObj rows (`tables.build_rows`; PhotoObjAll and PhotoPrimary
are views of PhotoObj, SpecObjAll of SpecObj) after a small translation of
the T-SQL that SkyServer's clients send (see ../shared/DESIGN.md, "The
classic query"):

- `SELECT [DISTINCT] TOP n ...` becomes `SELECT ... LIMIT n`; `TOP n PERCENT`
  is refused. Every answer holds at most 500,000 rows (SkyServer's MaxRows).
- `[name]` and identifiers are quoted for sqlite; `dbo.PhotoObj` loses `dbo.`;
  `"text"` is a string, as the old SkyServer pages send it.
- String comparisons are case-insensitive (SQL Server's default collation):
  text columns are declared `COLLATE NOCASE`.
- A comparison of a number with text that is not a number fails as SQL
  Server's implicit conversion does ("Conversion failed when converting...").
- specobjid, an unsigned 64-bit integer, is held as decimal text compared as
  a number, and comes back as a Python int.
- Output columns are named as written in the query (or by their alias); rows
  come in objid order unless `ORDER BY` says otherwise.

Refused with a message in SQL Server's words (`SqlError`), which the app
returns the way SkyServer does: statements other than one SELECT, `SELECT *`
and function calls (the emulator does not mimic SQL Server's functions),
unknown tables and columns, ambiguous columns, syntax errors. The aggregates
COUNT, SUM, MIN, MAX and AVG (with GROUP BY, HAVING, CASE) mean the same in
both and are answered.
"""

# Follows sciserver/SkyServerWS Common/RunDBquery.cs (the query text runs in
# the database as sent and the database's error text is the answer's error)
# and Common/KeyWords.cs (MaxRows: the row limit of spExecuteSQL).

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from skytfds.emulator import tables

MAX_ROWS = 500_000  # SkyServer SqlSearch returns at most this many rows.
_UINT64 = 'U64TEXT'  # sqlite type (TEXT affinity) of unsigned 64-bit ids.
_VIEWS = {'photoobjall': tables.PHOTO, 'photoprimary': tables.PHOTO,
          'specobjall': tables.SPEC}

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<ident>\[[^\]]+\]|[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op><=|>=|<>|!=|=|<|>|\(|\)|,|\.|\*|;|-|\+|/|%)
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = frozenset({
    'all', 'and', 'as', 'asc', 'between', 'by', 'case', 'cross', 'desc',
    'distinct', 'else', 'end', 'escape', 'except', 'exists', 'from', 'full',
    'group', 'having', 'in', 'inner', 'intersect', 'into', 'is', 'join',
    'left', 'like', 'not', 'null', 'on', 'or', 'order', 'outer', 'percent',
    'right', 'select', 'then', 'top', 'union', 'when', 'where', 'with',
})
_COMPARISONS = frozenset({'=', '<>', '!=', '<', '<=', '>', '>='})
# The aggregates that mean the same in T-SQL and sqlite (GROUP BY queries).
_AGGREGATES = frozenset({'count', 'sum', 'min', 'max', 'avg'})


class SqlError(ValueError):
  """A query the emulator cannot answer; str() is SQL Server-style text."""


@dataclasses.dataclass(frozen=True)
class _Token:
  kind: str    # 'number', 'string', 'ident', 'keyword', 'op'
  text: str    # as written (identifier brackets removed, strings unquoted)

  def is_keyword(self, *words: str) -> bool:
    return self.kind == 'keyword' and self.text.lower() in words

  def is_op(self, *ops: str) -> bool:
    return self.kind == 'op' and self.text in ops

  def sqlite(self) -> str:
    """The token as sqlite text (identifiers and strings quoted)."""
    if self.kind == 'ident':
      # [name], not "name": sqlite takes an unknown "name" for a string, so
      # an unknown column would answer its own name instead of SQL Server's
      # "Invalid column name" (the tokenizer's names hold no ']').
      return '[' + self.text + ']'
    if self.kind == 'string' or (self.kind == 'number' and self.text.isdigit()
                                 and int(self.text) >= 2**63):
      # Integers past sqlite's int64 stay exact as text (unsigned ids).
      return "'" + self.text.replace("'", "''") + "'"
    return self.text


def _tokenize(sql: str) -> list[_Token]:
  tokens = []
  pos = 0
  while pos < len(sql):
    m = _TOKEN_RE.match(sql, pos)
    if not m:
      raise SqlError(f"Incorrect syntax near '{sql[pos:pos + 20]}'.")
    kind, text = m.lastgroup, m.group()
    if kind == 'string':
      text = text[1:-1].replace(text[0] * 2, text[0])
    elif kind == 'ident':
      if text.startswith('['):
        text = text[1:-1]
      elif text.lower() in _KEYWORDS:
        kind = 'keyword'
    if kind != 'space':
      tokens.append(_Token(kind, text))
    pos = m.end()
  return tokens


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


class _Translation:
  """One T-SQL SELECT as sqlite text, with the names it binds."""

  def __init__(self, sql: str):
    tokens = _tokenize(sql)
    if tokens and tokens[-1].is_op(';'):
      tokens.pop()
    if not tokens:
      raise SqlError('The query is empty: send a SELECT statement in cmd=.')
    if not tokens[0].is_keyword('select'):
      raise SqlError(f"Incorrect syntax near '{tokens[0].text}': the emulated "
                     'SkyServer answers SELECT statements only.')
    for token in tokens:
      if token.is_op(';'):
        raise SqlError("Incorrect syntax near ';': send one SELECT statement.")
    self.limit = self._take_top(tokens)
    self.tables = self._bind_tables(tokens)
    self._check_selections(tokens)
    self.tokens = self._name_outputs(self._drop_schema(tokens))

  @property
  def text(self) -> str:
    return ' '.join(t.sqlite() for t in self.tokens) + f' LIMIT {self.limit}'

  @staticmethod
  def _take_top(tokens: list[_Token]) -> int:
    """Removes `TOP n` after SELECT [DISTINCT]; returns the row limit."""
    i = 2 if tokens[1:2] and tokens[1].is_keyword('distinct', 'all') else 1
    if not (tokens[i:i + 1] and tokens[i].is_keyword('top')):
      return MAX_ROWS
    count = tokens[i + 1] if len(tokens) > i + 1 else _Token('op', '')
    if count.kind != 'number' or not count.text.isdigit():
      raise SqlError(f"Incorrect syntax near '{count.text}': TOP needs a "
                     'whole number.')
    if tokens[i + 2:i + 3] and tokens[i + 2].is_keyword('percent'):
      raise SqlError('TOP ... PERCENT is not supported by the emulated '
                     'SkyServer.')
    del tokens[i:i + 2]
    return min(int(count.text), MAX_ROWS)

  @staticmethod
  def _bind_tables(tokens: list[_Token]) -> dict[str, str]:
    """Lower-case table name or alias -> PHOTO | SPEC (known tables only)."""
    bound = {}
    for k, token in enumerate(tokens[:-1]):
      if not token.is_keyword('from', 'join'):
        continue
      j = k + 1
      if tokens[j].text.lower() == 'dbo' and tokens[j + 1:j + 2] and tokens[
          j + 1].is_op('.'):
        j += 2
      if j >= len(tokens) or tokens[j].kind != 'ident':
        continue
      name = tokens[j].text.lower()
      table = _VIEWS.get(name) or next(
          (t for t in tables.COLUMNS if t.lower() == name), None)
      if table is None:
        continue
      bound[name] = table
      j += 1
      if j < len(tokens) and tokens[j].is_keyword('as'):
        j += 1
      if j < len(tokens) and tokens[j].kind == 'ident':
        bound[tokens[j].text.lower()] = table
    return bound

  @staticmethod
  def _check_selections(tokens: list[_Token]) -> None:
    """Refuses `SELECT *`, `alias.*` and function calls other than aggregates."""
    for k, token in enumerate(tokens):
      before = tokens[k - 1] if k else None
      if token.is_op('*') and before is not None and (
          before.is_op(',', '.') or before.is_keyword('select', 'distinct',
                                                      'all')):
        raise SqlError('SELECT * is not supported by the emulated SkyServer: '
                       'name the columns.')
      if token.kind == 'ident' and tokens[k + 1:k + 2] and tokens[
          k + 1].is_op('(') and token.text.lower() not in _AGGREGATES:
        raise SqlError(f"'{token.text}' is not a recognized built-in function "
                       'name (functions are not supported by the emulated '
                       'SkyServer).')

  @staticmethod
  def _operand(part: Sequence[_Token]) -> tuple[str, str] | None:
    """(kind, text) of tokens that are one value (kind 'number' or 'text').

    A value is a number (with its sign), a string or a column (`name`,
    `qualifier.name`); None for anything else (an expression).
    """
    if len(part) == 2 and part[0].is_op('-', '+'):
      part = part[1:]
    if len(part) == 3 and part[1].is_op('.') and part[0].kind == 'ident':
      part = part[2:]
    if len(part) != 1:
      return None
    token = part[0]
    if token.kind in ('number', 'string'):
      numeric = token.kind == 'number' or _is_number(token.text)
      return ('number' if numeric else 'text'), f"'{token.text}'"
    name = token.text.lower()
    if token.kind == 'ident' and any(
        name in cols for cols in tables.COLUMNS.values()):
      kind = 'text' if name in tables.TEXT_COLUMNS else 'number'
      return kind, f'of the column {token.text}'
    return None

  @staticmethod
  def _span_after(tokens: Sequence[_Token], k: int) -> Sequence[_Token]:
    """The one value that may start at tokens[k]."""
    if tokens[k:k + 1] and tokens[k].is_op('-', '+'):
      return tokens[k:k + 2]
    if tokens[k + 1:k + 2] and tokens[k + 1].is_op('.'):
      return tokens[k:k + 3]
    return tokens[k:k + 1]

  @staticmethod
  def _span_before(tokens: Sequence[_Token], k: int) -> Sequence[_Token]:
    """The one value that may end just before tokens[k]."""
    if k >= 3 and tokens[k - 2].is_op('.'):
      return tokens[k - 3:k]
    return tokens[max(k - 1, 0):k]

  def check_conversions(self) -> None:
    """Comparing text with a number fails, as SQL Server's conversion does.

    Checked for `a <op> b`, `a [NOT] BETWEEN b AND c`, `a [NOT] IN (b, ...)`
    once the names are bound (a conversion fails when the query runs).
    """
    tokens = self.tokens
    for k, token in enumerate(tokens):
      others = []
      if token.kind == 'op' and token.text in _COMPARISONS:
        others = [self._span_after(tokens, k + 1)]
      elif token.is_keyword('between'):
        low = self._span_after(tokens, k + 1)
        others = [low, self._span_after(tokens, k + 2 + len(low))]
      elif token.is_keyword('in') and tokens[k + 1:k + 2] and tokens[
          k + 1].is_op('('):
        j = k + 2
        while j < len(tokens) and not tokens[j].is_op(')'):
          others.append(self._span_after(tokens, j))
          j += len(others[-1]) + 1
      if not others:
        continue
      start = k - 1 if k and tokens[k - 1].is_keyword('not') else k
      left = self._operand(self._span_before(tokens, start))
      for other in others:
        self._compare(left, self._operand(other))

  @staticmethod
  def _compare(left: tuple[str, str] | None,
               right: tuple[str, str] | None) -> None:
    if left is None or right is None or left[0] == right[0]:
      return
    text = left[1] if left[0] == 'text' else right[1]
    raise SqlError(f'Conversion failed when converting the varchar value '
                   f'{text} to a number.')

  @staticmethod
  def _drop_schema(tokens: list[_Token]) -> list[_Token]:
    """Drops the `dbo.` of `dbo.PhotoObj`."""
    out = []
    for k, token in enumerate(tokens):
      if (token.kind == 'ident' and token.text.lower() == 'dbo'
          and tokens[k + 1:k + 2] and tokens[k + 1].is_op('.')):
        continue
      if token.is_op('.') and out and k and tokens[k - 1].text.lower() == 'dbo':
        continue
      out.append(token)
    return out

  @staticmethod
  def _name_outputs(tokens: list[_Token]) -> list[_Token]:
    """Adds `AS <name as written>` to bare select-list columns."""
    out, item, depth = [tokens[0]], [], 0
    k = 1
    while k < len(tokens):
      token = tokens[k]
      depth += token.is_op('(') - token.is_op(')')
      if depth == 0 and (token.is_op(',') or token.is_keyword('from')):
        out.extend(_named(item))
        item = []
        if token.is_keyword('from'):
          return out + tokens[k:]
        out.append(token)
      else:
        item.append(token)
      k += 1
    return out + _named(item)


def _named(item: list[_Token]) -> list[_Token]:
  """A select item, aliased by its column name when it is a bare column."""
  if len(item) == 1 and item[0].kind == 'ident':
    return item + [_Token('keyword', 'AS'), item[0]]
  if (len(item) == 3 and item[0].kind == 'ident' and item[1].is_op('.')
      and item[2].kind == 'ident'):
    return item + [_Token('keyword', 'AS'), item[2]]
  return item


def _sql_server_error(error: sqlite3.Error, bound: dict[str, str]) -> SqlError:
  """sqlite's error as SQL Server words it."""
  message = str(error)
  m = re.fullmatch(r'no such table: (?:main\.)?(.+)', message)
  if m:
    return SqlError(f"Invalid object name '{m[1]}': the emulated SkyServer "
                    'holds PhotoObj and SpecObj only.')
  m = re.fullmatch(r'no such column: (?:(.+)\.)?(.+)', message)
  if m and m[1] and m[1].lower() not in bound:
    return SqlError(f"The multi-part identifier '{m[1]}.{m[2]}' could not be "
                    'bound.')
  if m and m[1]:
    table = bound[m[1].lower()]
    return SqlError(f"Invalid column name '{m[2]}' (the emulated {table} has: "
                    f'{", ".join(tables.COLUMNS[table])}).')
  if m:
    return SqlError(f"Invalid column name '{m[2]}'.")
  m = re.fullmatch(r'ambiguous column name: (?:.+\.)?(.+)', message)
  if m:
    return SqlError(f"Ambiguous column name '{m[1]}'.")
  if message in ('incomplete input', 'near "LIMIT": syntax error'):
    return SqlError('Incorrect syntax near the end of the query.')
  m = re.fullmatch(r'near "(.+)": syntax error', message)
  if m:
    return SqlError(f"Incorrect syntax near '{m[1]}'.")
  return SqlError(f'The emulated SkyServer cannot answer this query: '
                  f'{message}.')


def _compare_uint64(a: str, b: str) -> int:
  """Collation of specobjid text: as numbers (exact for integers)."""
  x, y = (int(v) if v.isdigit() else float(v) for v in (a, b))
  return (x > y) - (x < y)


def _authorize(action: int, *args: Any) -> int:
  """Lets a query read, nothing else (sqlite3's authorizer callback)."""
  del args
  allowed = (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ,
             sqlite3.SQLITE_FUNCTION)
  return sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY


def _column_type(name: str) -> str:
  if name == 'specobjid':
    return f'{_UINT64} COLLATE U64'
  if name in tables.TEXT_COLUMNS:
    return 'TEXT COLLATE NOCASE'
  return 'INTEGER' if name in tables.INTEGER_COLUMNS else 'REAL'


class Database:
  """The catalogue's rows in sqlite3; `execute` answers one T-SQL SELECT.

  Thread-safe: the app calls it from its worker threads.
  """

  def __init__(self, rows: Sequence[tables.Row]):
    sqlite3.register_converter(_UINT64, int)
    self._db = sqlite3.connect(':memory:', check_same_thread=False,
                               detect_types=sqlite3.PARSE_DECLTYPES)
    self._db.create_collation('U64', _compare_uint64)
    self._lock = threading.Lock()
    for table, columns in tables.COLUMNS.items():
      declared = ', '.join(f'"{c}" {_column_type(c)}' for c in columns)
      self._db.execute(f'CREATE TABLE {table} ({declared})')
      marks = ', '.join('?' * len(columns))
      self._db.executemany(
          f'INSERT INTO {table} VALUES ({marks})',
          ([str(row[(table, c)]) if c == 'specobjid' else row[(table, c)]
            for c in columns] for row in rows))
    self._db.execute(f'CREATE INDEX spec_best ON {tables.SPEC} (bestobjid)')
    # An index, not a primary key: a user catalogue without objids serves
    # every row with objid 0 (the real PhotoObj's objID is unique, but the
    # emulator must still answer for such a catalogue).
    self._db.execute(f'CREATE INDEX photo_objid ON {tables.PHOTO} (objid)')
    for view, table in _VIEWS.items():
      self._db.execute(f'CREATE VIEW {view} AS SELECT * FROM {table}')
    self._db.commit()
    self._db.set_authorizer(_authorize)

  def execute(self, sql: str) -> tuple[list[str], list[list[Any]]]:
    """(output column names, rows) of a query; raises SqlError."""
    query = _Translation(sql)
    with self._lock:
      try:
        cursor = self._db.execute(query.text)
        rows = [list(row) for row in cursor.fetchall()]
      except sqlite3.Error as e:
        raise _sql_server_error(e, query.tables) from None
    query.check_conversions()
    return [d[0] for d in cursor.description], rows
