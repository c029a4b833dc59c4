"""Catalogue readers: bytes -> UTF-8 text -> a table (header, rows of fields).

SkyServer SqlSearch CSV (`#Table1`, then the header) and JSON, a plain JSON
list of row objects, or a user CSV. A server's error page handed over instead
of a catalogue is refused here, quoting the server's message.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from typing import Any, Iterable, Iterator, NamedTuple

from skytfds import survey
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import FRAME_COLUMNS

PMF_COLUMNS = ('plate', 'mjd', 'fiberid')
KNOWN_COLUMNS = (('objid', 'ra', 'dec') + survey.BANDS + FRAME_COLUMNS +
                 ('specobjid', 'class', 'redshift') + PMF_COLUMNS)
REQUIRED_TEXT = ('ra, dec, class, and either objid or all of run, rerun, '
                 'camcol, field')
# Objects to classify (no class): a name, and the frame from objid or from
# run, camcol, field (rerun defaults to survey.RERUN).
UNLABELLED_COLUMNS = tuple(c for c in KNOWN_COLUMNS if c != 'class') + (
    'name',)
UNLABELLED_FRAME_COLUMNS = ('run', 'camcol', 'field')
UNLABELLED_TEXT = (f'ra, dec (degrees); optional: name, objid, or run, camcol, '
                   f'field together (rerun defaults to {survey.RERUN})')
_FOUND_SHOWN = 30  # Header names quoted in a missing-column message.
_TAG_RE = re.compile(r'<[^>]*>')
_HIDDEN_RE = re.compile(r'<(script|style|head)\b.*?</\1\s*>', re.I | re.S)
# spExecuteSQL's refusals (its `error_message` column), with what to do.
_REFUSAL_ADVICE = (
    (re.compile(r'queries allowed per minute', re.I),
     'SkyServer allows 60 queries a minute from one address: wait a minute '
     'and run again.'),
    (re.compile(r'error: limit is', re.I),
     'Ask for at most 500,000 rows per query (TOP n), or split the query.'),
    (re.compile(r'must be a select statement', re.I),
     'Send a single SELECT statement.'),
)
_SQL_ADVICE = ('Fix the SQL (columns, quotes, TOP n) or the release, or retry '
               'later if the service is down.')


def quote(value: str, limit: int = 40) -> str:
  """repr() of a value, shortened for messages."""
  if len(value) > limit:
    value = value[:limit] + '...'
  return repr(value)



def decode(data: bytes | str, source: str) -> str:
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



def refuse_error_page(text: str, source: str) -> None:
  """Raises a CatalogError quoting an HTML or error_message body.

  The advice depends on the message: spExecuteSQL's refusals (too many
  queries a minute, TOP above the row limit, not a SELECT) each say what to
  do; any other error is taken for a fault of the SQL.
  """
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
    advice = next((text for pattern, text in _REFUSAL_ADVICE
                   if pattern.search(message)), _SQL_ADVICE)
    raise CatalogError(
        f'{source}: the server answered with an error instead of a catalogue: '
        f'"{message}". {advice}')
  raise CatalogError(
      f'{source}: got an HTML page instead of a CSV or JSON catalogue: '
      f'"{message or "(no text)"}". Check the URL and the service, or save '
      'the query result as CSV.')


class Table(NamedTuple):
  header: list[str]
  rows: Iterable[tuple[int, list[str]]]  # (line or row number, fields)
  where: str  # 'line' (CSV) or 'row' (JSON)


def _csv_table(text: str, source: str) -> Table:
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
        f'header with {REQUIRED_TEXT} and at least one object.')

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

  return Table(header, rows(), 'line')


class NotAValue(str):
  """A JSON list or object where one value belongs ('[...]' or '{...}').

  Its text stands in for the field; the validator reports it as a problem of
  its row and column (never recursing into it, however deep it is).
  """


class _Object(dict):
  """A JSON object; `duplicate` is a key it had twice (JSON keeps the last)."""
  duplicate: str | None = None


def _json_object(pairs: list[tuple[str, Any]]) -> _Object:
  obj = _Object(pairs)
  if len(obj) != len(pairs):
    seen: set[str] = set()
    obj.duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
  return obj


# At most this many distinct keys over a JSON file's row objects (SkyServer's
# widest table, PhotoObjAll, has about 500 columns): the fields of every row
# are made for every key, so more would cost rows x keys.
MAX_JSON_COLUMNS = 1000
_JSON_EXPECTED = ('expected SkyServer JSON [{"TableName": "Table1", "Rows": '
                  '[{...}]}] or a list of row objects.')


def _kind(value: Any) -> str:
  """'a JSON list', 'the JSON value true', ... for messages."""
  if isinstance(value, list):
    return 'a JSON list'
  if isinstance(value, dict):
    return 'a JSON object'
  if value is None:
    return 'JSON null'
  if isinstance(value, bool):
    return f'the JSON value {"true" if value else "false"}'
  return f'the JSON value {quote(str(value))}'


def _json_text(value: Any) -> str:
  """A JSON scalar as text (numbers were kept as their exact text)."""
  if value is None:
    return ''
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, str):
    return value
  if isinstance(value, list):
    return NotAValue('[...]')
  if isinstance(value, dict):
    return NotAValue('{...}')
  return str(value)


def _load_json(text: str, source: str) -> Any:
  try:
    # Numbers stay text, so ids are exact and float-looking ids are visible.
    return json.loads(text, parse_int=str, parse_float=str,
                      parse_constant=str, object_pairs_hook=_json_object)
  except json.JSONDecodeError as e:
    raise CatalogError(
        f'{source}: not valid JSON at line {e.lineno} column {e.colno} '
        f'({e.msg}); send SkyServer JSON (format=json) or CSV.') from None
  except RecursionError:
    raise CatalogError(
        f'{source}: JSON nested too deeply to read (hundreds of levels of [ '
        'or {); a catalogue is at most 4 levels deep ([{"Rows": [{...}]}]): '
        'send SkyServer JSON (format=json) or CSV.') from None


def _json_header(columns: Any, rows: list[Any], source: str) -> list[str]:
  """Column names: from "Columns", or every key of the row objects in order."""
  if columns is not None:
    if not isinstance(columns, list):
      raise CatalogError(
          f'{source}: JSON "Columns" is {_kind(columns)}, not a list of '
          'column names; give "Columns": ["objid", "ra", ...] or leave it out '
          'and give each row as an object.')
    header = []
    for number, column in enumerate(columns, start=1):
      name = column
      if isinstance(column, dict):
        name = column.get('Name', column.get('name'))
      if not isinstance(name, str):
        raise CatalogError(
            f'{source}: JSON "Columns" entry {number} is {_kind(column)}, not '
            'a column name (a string, or {"Name": "..."}).')
      header.append(name)
    return header
  header: dict[str, None] = {}
  for row in rows:
    if isinstance(row, dict):
      header.update(dict.fromkeys(row))
      if len(header) > MAX_JSON_COLUMNS:
        raise CatalogError(
            f'{source}: the JSON row objects have more than '
            f'{MAX_JSON_COLUMNS} different keys; a catalogue has one key per '
            'column (ra, dec, class, objid, ...) and the same keys in every '
            'row.')
  return list(header)


def _check_json_rows(rows: list[Any], has_columns: bool, source: str) -> None:
  """Every row an object (or, with "Columns", a list), each key once."""
  for number, row in enumerate(rows, start=1):
    if isinstance(row, dict):
      if row.duplicate is not None:
        raise CatalogError(
            f'{source}: row {number} has the key {quote(row.duplicate)} twice '
            '(JSON keeps only the last value); keep one of them.')
    elif not (isinstance(row, list) and has_columns):
      raise CatalogError(
          f'{source}: row {number} is {_kind(row)}, not an object of column '
          'values' + (' or a list in the order of "Columns"' if has_columns
                      else '') + f'; {_JSON_EXPECTED}')


def _json_table(text: str, source: str) -> Table:
  """Header and rows of SkyServer JSON or a plain list of row objects."""
  doc = _load_json(text, source)
  tables = doc if isinstance(doc, list) else [doc]
  if tables and all(isinstance(t, dict) and 'Rows' in t for t in tables):
    table = tables[0]
    if table.duplicate is not None:
      raise CatalogError(
          f'{source}: the JSON table has the key {quote(table.duplicate)} '
          'twice; keep one of them.')
    rows, columns = table['Rows'], table.get('Columns')
  elif isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
    rows, columns = doc, None
  else:
    if isinstance(doc, dict):
      message = doc.get('ErrorMessage')  # SkyServer's error answer.
      if isinstance(message, str) and message.strip():
        raise CatalogError(
            f'{source}: the server answered with an error instead of a '
            f'catalogue: "{" ".join(message.split())[:300]}". {_SQL_ADVICE}')
    keys = ', '.join(map(str, doc)) if isinstance(doc, dict) else ''
    if len(keys) > 200:
      keys = keys[:200] + '...'
    raise CatalogError(
        f'{source}: JSON without catalogue rows'
        + (f' (keys: {keys})' if keys else '') + f'; {_JSON_EXPECTED}')
  if not isinstance(rows, list):
    raise CatalogError(
        f'{source}: JSON "Rows" is {_kind(rows)}, not a list of rows; '
        f'{_JSON_EXPECTED}')
  if not rows:
    raise CatalogError(
        f'{source}: the catalogue is empty (no rows); the query matched no '
        'objects: widen the cuts or the region.')
  _check_json_rows(rows, columns is not None, source)
  header = _json_header(columns, rows, source)

  def fields_of() -> Iterator[tuple[int, list[str]]]:
    for number, row in enumerate(rows, start=1):
      if isinstance(row, dict):
        yield number, [_json_text(row.get(name)) for name in header]
      else:
        yield number, [_json_text(v) for v in row]

  return Table(header, fields_of(), 'row')


def map_header(header: list[str], source: str, *,
               labelled: bool = True) -> dict[str, int]:
  """Canonical column name -> index; unknown columns are ignored.

  Labelled (a catalogue to build from): ra, dec, class, and objid or all of
  run, rerun, camcol, field are required. Unlabelled (objects to classify):
  ra and dec; objid, name and run, camcol, field (rerun optional) may be
  given; a class column is ignored.
  """
  known = KNOWN_COLUMNS if labelled else UNLABELLED_COLUMNS
  columns: dict[str, int] = {}
  for index, raw in enumerate(header):
    name = raw.strip().strip('"\'').strip().lower()
    if name not in known:
      continue
    if name in columns:
      raise CatalogError(
          f'{source}: column {name!r} appears twice in the header (columns '
          f'{columns[name] + 1} and {index + 1}); keep one of them.')
    columns[name] = index
  names = [h.strip() for h in header]
  found = ', '.join(names[:_FOUND_SHOWN]) or '(none)'
  if len(names) > _FOUND_SHOWN:
    found += f', ... ({len(names)} columns)'
  if labelled:
    missing = [c for c in ('ra', 'dec', 'class') if c not in columns]
    if 'objid' not in columns:
      absent = [c for c in FRAME_COLUMNS if c not in columns]
      if absent:
        missing.append('objid (or ' + ', '.join(absent) + ')')
    required = REQUIRED_TEXT
  else:
    missing = [c for c in ('ra', 'dec') if c not in columns]
    given = [c for c in UNLABELLED_FRAME_COLUMNS if c in columns]
    if given and len(given) < len(UNLABELLED_FRAME_COLUMNS):
      absent = [c for c in UNLABELLED_FRAME_COLUMNS if c not in columns]
      missing.append(', '.join(absent) + ' (' + ', '.join(given) +
                     ' given: run, camcol, field go together)')
    required = UNLABELLED_TEXT
  if missing:
    hint = ''
    if len(header) == 1 and (';' in header[0] or '\t' in header[0]):
      sep = 'semicolons' if ';' in header[0] else 'tabs'
      hint = (f' The file seems to be separated by {sep}: save it '
              'comma-separated.')
    raise CatalogError(
        f'{source}: missing required column(s): {", ".join(missing)}. '
        f'Required: {required}. Found: {found}.{hint}')
  return columns


def read_table(data: bytes | str, source: str) -> Table:
  """The header and rows of a catalogue (CSV or JSON, told apart by its text).

  Raises:
    CatalogError: not UTF-8, empty, a server's error page, or malformed.
  """
  text = decode(data, source)
  refuse_error_page(text, source)
  if not text.strip():
    raise CatalogError(
        f'{source}: the catalogue is empty (no header, no rows); it needs a '
        f'header with {REQUIRED_TEXT} and at least one object.')
  if text.lstrip()[:1] in '[{':
    return _json_table(text, source)
  return _csv_table(text, source)
