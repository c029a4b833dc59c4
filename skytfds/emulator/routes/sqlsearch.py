"""SkyServer's SearchTools/SqlSearch: SQL over the catalogue, CSV or JSON.

  /dr{N}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json

CSV: a `#Table1` line, the header, one line per row (exact decimal integers,
shortest round-trip floats). JSON: `[{"TableName": "Table1", "Rows":
[{col: value}]}]` with exact integers. SQL it cannot answer (`sql.SqlError`):
an HTML page containing `error_message` and the reason, status 200, as
SkyServer's DoReturnHtml pages do.
"""

# Follows sciserver/SkyServerWS Controllers/SearchTools/SqlSearchController.cs
# (cmd= and format= of GET and POST), Common/ProcessDataSet.cs (the CSV
# `#Table1` layout and the JSON TableName/Rows layout) and
# Common/RunDBquery.cs (an error becomes a page holding its message).

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from skytfds.emulator import sql
from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

MAX_QUERY_CHARS = 20_000
_HTML = 'text/html; charset=utf-8'


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


def sql_error_page(message: str, query: str = '') -> str:
  """SkyServer's error style: an HTML page with `error_message` and reason."""
  return (
      '<html><head><title>SkyServer SQL error</title></head><body>\n'
      '<h3>SQL returned the following error:</h3>\n'
      f'<pre>error_message: {html.escape(message, quote=False)}</pre>\n'
      f'<p>Query: <code>{html.escape(query[:2000], quote=False)}</code></p>\n'
      '</body></html>\n')


def answer(emulator: 'Emulator', cmd: str, fmt: str) -> tuple[str, str]:
  """(body, content type) of one SqlSearch request."""
  if fmt not in ('csv', 'json'):
    return sql_error_page(f"format '{fmt}' is not supported by the emulated "
                          'SkyServer: use csv or json.', cmd), _HTML
  if len(cmd) > MAX_QUERY_CHARS:
    return sql_error_page(f'The query is {len(cmd)} characters long: the '
                          f'limit is {MAX_QUERY_CHARS}.', ''), _HTML
  if not emulator.has_catalog:
    return sql_error_page('The emulated SkyServer was started without a '
                          'catalogue.', cmd), _HTML
  try:
    columns, rows = emulator.database.execute(cmd)
  except sql.SqlError as e:
    return sql_error_page(str(e), cmd), _HTML
  if fmt == 'json':
    return to_json(columns, rows), 'application/json'
  return to_csv(columns, rows), 'text/plain; charset=utf-8'


async def sql_search(emulator: 'Emulator',
                     request: web.Request) -> web.StreamResponse:
  params.release(request)
  values = dict(request.query)
  if request.method == 'POST':
    values.update(await request.post())
  cmd = str(values.get('cmd', ''))
  fmt = str(values.get('format', 'csv')).strip().lower() or 'csv'
  return await emulator.serve(request, payload='text', content_type=None,
                              produce=lambda: answer(emulator, cmd, fmt))


def add_routes(app: web.Application, emulator: 'Emulator') -> None:
  path = r'/dr{release:\d{1,3}}/SkyServerWS/SearchTools/SqlSearch'

  async def handler(request: web.Request) -> web.StreamResponse:
    return await sql_search(emulator, request)

  app.router.add_get(path, handler)
  app.router.add_post(path, handler)
