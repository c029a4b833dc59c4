"""SkyServer's SearchTools/SqlSearch: SQL over the catalogue, CSV or JSON.

  /dr{N}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json  (GET, POST)

Answers, each as the real server gives it:
- rows: CSV (a `#Table1` line, the header, one line per row) or JSON
  (`[{"TableName": "Table1", "Rows": [...]}, {"TableName": "SqlQuery", ...}]`,
  indented), HTTP 200;
- a refusal of spExecuteSQL (`spexecutesql.Guard`: over 60 queries a minute,
  TOP above the row limit, not a SELECT): the same table layout with one
  `error_message` column and one row, HTTP 200;
- a query that fails in the database (`sql.SqlError`: syntax, unknown column
  or table, and what the emulated database does not run), or that runs past
  the server's query time: HTTP 500 with the JSON body
  `{"ErrorCode":500,"ErrorType":"InternalServerError","ErrorMessage":...}`;
- no `cmd` at all: HTTP 400 with the same JSON shape ("BadRequest");
- format=html: errors as an HTML page with status 200.

A configurable delay (`SqlOptions.delay_s`) stands for the database's run
time; a query whose delay reaches the server's limit (`timeout_s`, 600 s)
is answered with SQL Server's timeout error after `timeout_s`.
"""

# Follows sciserver/SkyServerWS:
# - Controllers/SearchTools/SqlSearchController.cs (GET and POST, cmd= and
#   format=) and Common/ProcessRequest.cs (csv/txt -> text/plain CSV; json,
#   an unknown format or none -> JSON; html -> an HTML page);
# - Common/OutputUtils.cs, writeCSV (`#<TableName>` line, header, values by
#   ToString(), a string holding a comma put in double quotes, unescaped) and
#   WriteJson (Formatting.Indented; TableName and Rows; numbers written raw);
#   Common/RunDBquery.cs, SendToUser (for JSON a second table "SqlQuery"
#   holding the query; none for CSV);
# - Common/RunDBquery.cs, ExecuteAsync (a database exception is rethrown as
#   `new Exception(e.Message)`, the inner message dropped) and
#   ExceptionFilter/CustomFilter.cs (for every format but html: the status
#   of the exception's kind, 500 for a plain Exception, 400 for an
#   ArgumentException, and the JSON body written by a JsonTextWriter:
#   ErrorCode, ErrorType (the HttpStatusCode's name), ErrorMessage,
#   LogMessageID, LogTime; Content-Type application/json; charset=utf-8;
#   the reason phrase is the status name);
# - ToolsSearch/SqlSearch.cs (no cmd: ArgumentException "There are not enough
#   parameters to process your request.");
# - Common/KeyWords.cs (DatabaseSearchTimeout "600" s, the CommandTimeout of
#   Common/RunDBquery.cs RunQuery; SqlClient's message on that timeout).
# spExecuteSQL's refusals: see `spexecutesql`.

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import hashlib
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from skytfds.emulator import spexecutesql
from skytfds.emulator import sql
from skytfds.emulator.routes import params

if TYPE_CHECKING:
  from skytfds.emulator.app import Emulator

MAX_QUERY_CHARS = 20_000
SERVER_TIMEOUT_S = 600.0        # KeyWords.DatabaseSearchTimeout.
_HTML = 'text/html; charset=utf-8'
_CSV = 'text/plain; charset=utf-8'
_JSON = 'application/json; charset=utf-8'
# SqlClient's text when CommandTimeout runs out (.NET 4.5 and later).
TIMEOUT_MESSAGE = ('Execution Timeout Expired.  The timeout period elapsed '
                   'prior to completion of the operation or the server is not '
                   'responding.')
NO_CMD_MESSAGE = 'There are not enough parameters to process your request.'
_CSV_FORMATS = ('csv', 'txt', 'text/plain')
_SERVED_FORMATS = _CSV_FORMATS + ('json', 'application/json', 'html')
_OTHER_FORMATS = ('xml', 'application/xml', 'votable',
                  'application/x-votable+xml', 'fits', 'application/fits',
                  'dataset', 'application/x-dataset', 'mydb')


@dataclasses.dataclass(frozen=True)
class SqlOptions:
  """How the emulated SqlSearch behaves beyond the catalogue.

  Attributes:
    delay_s: seconds each query takes in the database (0: none).
    timeout_s: the server's query time limit; a query whose delay reaches it
      fails with SQL Server's timeout error after timeout_s.
    queries_per_minute: spExecuteSQL's per-client limit; None for none.
    max_rows: spExecuteSQL's row limit (the largest TOP n allowed).
  """
  delay_s: float = 0.0
  timeout_s: float = SERVER_TIMEOUT_S
  queries_per_minute: int | None = spexecutesql.QUERIES_PER_MINUTE
  max_rows: int = spexecutesql.MAX_ROWS

  def __post_init__(self):
    if not (math.isfinite(self.delay_s) and self.delay_s >= 0):
      raise ValueError(f'sql delay_s={self.delay_s!r}: give seconds >= 0.')
    if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
      raise ValueError(f'sql timeout_s={self.timeout_s!r}: give seconds > 0.')
    if self.max_rows < 1:
      raise ValueError(f'sql max_rows={self.max_rows!r}: give 1 or more.')


# ---------------------------------------------------------------------------
# The bodies, as OutputUtils.cs and CustomFilter.cs write them.


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


def to_json(columns: Sequence[str], rows: Iterable[Sequence[Any]],
            query: str = '') -> str:
  """SkyServer JSON: Table1 with the rows, then SqlQuery with the query.

  Integers (objid, specobjid) are written as exact JSON integers.
  """
  records = [dict(zip(columns, row)) for row in rows]
  return json.dumps([{'TableName': 'Table1', 'Rows': records},
                     {'TableName': 'SqlQuery', 'Rows': [{'query': query}]}],
                    indent=2, ensure_ascii=False)


def refusal_csv(message: str) -> str:
  """spExecuteSQL's `error_message` table as writeCSV writes it.

  A string holding a comma is put in double quotes as it is (writeCSV does
  not double the quotes inside it), so a query with commas gives a cell
  that runs to the end of the body.
  """
  cell = f'"{message}"' if ',' in message and message[:1] != '"' else message
  return f'#Table1\nerror_message\n{cell}\n'


def refusal_json(message: str, query: str = '') -> str:
  """spExecuteSQL's `error_message` table as WriteJson writes it."""
  return json.dumps([{'TableName': 'Table1',
                      'Rows': [{'error_message': message}]},
                     {'TableName': 'SqlQuery', 'Rows': [{'query': query}]}],
                    indent=2, ensure_ascii=False)


def error_json(status: int, message: str, *, log_id: str = '',
               log_time: str = '') -> str:
  """CustomFilter.cs's error body: the exception's message and a log entry."""
  name = 'InternalServerError' if status == 500 else 'BadRequest'
  return json.dumps({'ErrorCode': status, 'ErrorType': name,
                     'ErrorMessage': message, 'LogMessageID': log_id,
                     'LogTime': log_time}, separators=(',', ':'),
                    ensure_ascii=False)


def sql_error_page(message: str, query: str = '') -> str:
  """The page of a failed query asked for with format=html (status 200)."""
  return (
      '<html><head><title>Skyserver Error</title></head><body bgcolor=white>\n'
      '<h2>An error occured</h2>\n'
      f'<H3 BGCOLOR=pink><font color=red>error_message: '
      f'{html.escape(message, quote=False)}<br><br></font></H3>\n'
      f'<p>Query: <code>{html.escape(query[:2000], quote=False)}</code></p>\n'
      '</body></html>\n')


def database_error(message: str, query: str = '', status: int = 500
                   ) -> params.HttpError:
  """The HttpError carrying CustomFilter.cs's JSON answer to an exception."""
  # A log entry's id and time, as SciServer's logger writes them (a GUID-like
  # id; the time in ISO form), deterministic per message and query.
  digest = hashlib.sha256(f'{message}\x00{query}'.encode()).hexdigest()
  log_id = f'{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}'
  now = datetime.datetime.now(datetime.timezone.utc)
  body = error_json(status, message, log_id=log_id,
                    log_time=now.strftime('%Y-%m-%dT%H:%M:%S.%f0Z'))
  reason = 'InternalServerError' if status == 500 else 'BadRequest'
  return params.HttpError(status, message, body=body, content_type=_JSON,
                          reason=reason)


# ---------------------------------------------------------------------------
# The service.


class SqlService:
  """SqlSearch's state: the spExecuteSQL guard (its throttle) and options."""

  def __init__(self, emulator: 'Emulator', options: SqlOptions):
    self.emulator = emulator
    self.options = options
    self.guard = spexecutesql.Guard(
        options.max_rows, spexecutesql.Throttle(options.queries_per_minute))

  def run(self, cmd: str, fmt: str) -> tuple[str, str]:
    """(body, content type) of a query that passed spExecuteSQL.

    Raises:
      params.HttpError: the database's error (500, JSON body) or, for
        format=html, no error: the page comes back as the body.
    """
    if len(cmd) > MAX_QUERY_CHARS:
      return self._failed(f'The query is {len(cmd)} characters long: the '
                          f'emulated SkyServer takes at most {MAX_QUERY_CHARS}.',
                          cmd, fmt)
    if not self.emulator.has_catalog:
      return self._failed('The emulated SkyServer was started without a '
                          'catalogue.', cmd, fmt)
    try:
      columns, rows = self.emulator.database.execute(cmd)
    except sql.SqlError as e:
      return self._failed(str(e), cmd, fmt)
    rows = rows[:self.options.max_rows]
    if fmt in _CSV_FORMATS:
      return to_csv(columns, rows), _CSV
    return to_json(columns, rows, spexecutesql.display_text(cmd)), _JSON

  @staticmethod
  def _failed(message: str, cmd: str, fmt: str) -> tuple[str, str]:
    if fmt == 'html':  # CustomFilter.cs: a page with status 200 for html.
      return sql_error_page(message, cmd), _HTML
    raise database_error(message, cmd)

  def refused(self, message: str, cmd: str, fmt: str) -> tuple[str, str]:
    """spExecuteSQL's one-row `error_message` table (status 200)."""
    if fmt in _CSV_FORMATS:
      return refusal_csv(message), _CSV
    if fmt == 'html':
      return sql_error_page(message, cmd), _HTML
    return refusal_json(message, spexecutesql.display_text(cmd)), _JSON


def _format(values: dict[str, Any]) -> str:
  fmt = str(values.get('format', '')).strip().lower()
  if fmt in _SERVED_FORMATS:
    return fmt
  if fmt in _OTHER_FORMATS:
    raise database_error(f"format '{fmt}' is not served by the emulated "
                         'SkyServer: use csv or json.')
  return 'json'  # ProcessRequest.cs: an unknown format, or none, is JSON.


async def sql_search(service: SqlService,
                     request: web.Request) -> web.StreamResponse:
  emulator = service.emulator
  params.release(request)
  values = dict(request.query)
  if request.method == 'POST':
    values.update(await request.post())
  if 'cmd' not in values:
    raise database_error(NO_CMD_MESSAGE, status=400)
  cmd = str(values['cmd'])
  fmt = _format(values)
  refusal = service.guard.refusal(cmd, request.remote or '')
  if refusal is not None:
    return await emulator.serve(
        request, payload='text', content_type=None,
        produce=lambda: service.refused(refusal, cmd, fmt))
  delay = service.options.delay_s
  if delay >= service.options.timeout_s:
    await asyncio.sleep(service.options.timeout_s)
    raise database_error(TIMEOUT_MESSAGE, cmd)
  if delay:
    await asyncio.sleep(delay)
  return await emulator.serve(request, payload='text', content_type=None,
                              produce=lambda: service.run(cmd, fmt))


def add_routes(app: web.Application, emulator: 'Emulator') -> None:
  path = r'/dr{release:\d{1,3}}/SkyServerWS/SearchTools/SqlSearch'
  service = SqlService(emulator, getattr(emulator, 'sql_options', SqlOptions()))
  emulator.sql_service = service

  async def handler(request: web.Request) -> web.StreamResponse:
    return await sql_search(service, request)

  app.router.add_get(path, handler)
  app.router.add_post(path, handler)
