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


def _json_text(value: Any) -> str:
  """A JSON scalar as text (numbers were kept as their exact text)."""
  if value is None:
    return ''
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, str):
    return value
  return json.dumps(value)


def _json_table(text: str, source: str) -> Table:
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

  return Table(header, fields_of(), 'row')


def map_header(header: list[str], source: str) -> dict[str, int]:
  """Canonical column name -> index; unknown columns are ignored."""
  columns: dict[str, int] = {}
  for index, raw in enumerate(header):
    name = raw.strip().strip('"\'').strip().lower()
    if name not in KNOWN_COLUMNS:
      continue
    if name in columns:
      raise CatalogError(
          f'{source}: column {name!r} appears twice in the header (columns '
          f'{columns[name] + 1} and {index + 1}); keep one of them.')
    columns[name] = index
  found = ', '.join(h.strip() for h in header) or '(none)'
  missing = [c for c in ('ra', 'dec', 'class') if c not in columns]
  if 'objid' not in columns:
    absent = [c for c in FRAME_COLUMNS if c not in columns]
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
        f'Required: {REQUIRED_TEXT}. Found: {found}.{hint}')
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
