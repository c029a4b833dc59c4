"""What SkyServer does to a query before the database runs it.

Two steps, as on the real server:
- `display_text`: the SqlSearch controller strips comments and runs of
  blanks from `cmd` (the text that the refusals quote).
- `Guard`: the `spExecuteSQL` procedure that wraps every query refuses some
  queries itself, answering a one-row table whose one column is
  `error_message` (HTTP 200): more than 60 queries a minute from one client
  address; a TOP above the row limit; a statement that is not a SELECT.

A query that passes both goes to the database (`sql.Database`); an error
there is not a refusal but an exception (HTTP 500, `routes.sqlsearch`).
"""

# Follows sciserver/SkyServerWS ToolsSearch/SqlSearch.cs and
# Common/ProcessRequest.cs (the same regular expressions: comments removed,
# [ \t\f\v]+ made one blank, empty lines dropped; the query wrapped in
# `EXEC spExecuteSQL '<cmd>', <MaxRows>, ..., <clientIP>, ...`), and the
# procedure itself, sciserver/sqlloader schema/sql/spSQLSupport.sql
# (spExecuteSQL: the throttle block, the filter loop, the SELECT and TOP
# checks, and `SELECT @errorMsg + @cmd as error_message`).

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable

MAX_ROWS = 500_000          # KeyWords.MaxRows (SkyServer's documented limit).
QUERIES_PER_MINUTE = 60     # spExecuteSQL's @maxQueries.
WINDOW_S = 60.0             # ... counted over the last 60 seconds.

# SqlSearch.cs, in its order.
_MULTILINE_COMMENT = re.compile(r'/\*(.*\n)*\*/')
_ISOLATED_COMMENT = re.compile(r'^[ \t\f\v]*--.*\r\n', re.MULTILINE)
_EMBEDDED_COMMENT = re.compile(r'--[^\r^\n]*')
_BLANKS = re.compile(r'[ \t\f\v]+')
_EMPTY_LINE = re.compile(r'^[ \t\f\v]*\r\n', re.MULTILINE)
# spExecuteSQL's filter: each replaced by '#', repeated until nothing changes.
_FORBIDDEN = ('.xp_', '.sp_', '.fn_', '.ms_', '.dt_', ' xp_', ' sp_', ' fn_',
              ' ms_', ' dt_')


def display_text(cmd: str) -> str:
  """`cmd` as SqlSearch.cs passes it on: comments and runs of blanks gone."""
  text = _MULTILINE_COMMENT.sub('', cmd)
  text = _ISOLATED_COMMENT.sub('', text)
  text = _EMBEDDED_COMMENT.sub('', text)
  text = _BLANKS.sub(' ', text)
  return _EMPTY_LINE.sub('', text)


def filtered(cmd: str) -> str:
  """spExecuteSQL's `@filter = 1` loop over `@cmd + ' '`.

  fReplaceMax is case-insensitive (SQL Server's default collation), REPLACE
  as well; the loop runs until the text stops changing.
  """
  text = cmd + ' '
  while True:
    before = text
    for word in _FORBIDDEN:
      text = re.sub(re.escape(word), '#', text, flags=re.IGNORECASE)
    text = text.replace('  ', ' ').replace('  ', ' ')
    text = text.replace('\r', ' ').replace('\n', ' ')
    text = text.replace('\t', ' ')
    text = text.replace(' ; ', '#').replace(';', '#')
    if text == before:
      return text


class Throttle:
  """spExecuteSQL's throttle: at most `per_minute` queries a minute per client.

  As the procedure counts: a query is refused when the client already has
  MORE than `per_minute` queries in the last 60 s (so per_minute + 1 pass),
  and a refused query is not counted.
  """

  def __init__(self, per_minute: int | None = QUERIES_PER_MINUTE,
               clock: Callable[[], float] = time.monotonic):
    if per_minute is not None and per_minute < 0:
      raise ValueError(f'per_minute={per_minute}: give 0 or more, or None '
                       'for no limit.')
    self.per_minute = per_minute
    self._clock = clock
    self._recent: dict[str, collections.deque[float]] = {}
    self._lock = threading.Lock()

  def admit(self, client: str) -> bool:
    """Counts one query of `client` (an address); False when refused."""
    if self.per_minute is None:
      return True
    now = self._clock()
    with self._lock:
      recent = self._recent.setdefault(client, collections.deque())
      while recent and recent[0] < now - WINDOW_S:
        recent.popleft()
      if len(recent) > self.per_minute:
        return False
      recent.append(now)
      return True


class Guard:
  """The refusals spExecuteSQL makes itself, in its words.

  Args:
    max_rows: the @limit parameter (KeyWords.MaxRows).
    throttle: the per-client query counter.
  """

  def __init__(self, max_rows: int = MAX_ROWS,
               throttle: Throttle | None = None):
    self.max_rows = int(max_rows)
    self.throttle = throttle if throttle is not None else Throttle()

  def refusal(self, cmd: str, client: str) -> str | None:
    """The `error_message` for `cmd` from `client`, or None to run it.

    Args:
      cmd: the query as the client sent it.
      client: the client's address (what the throttle counts by).
    """
    text = display_text(cmd)
    if not self.throttle.admit(client):
      # GOTO bottom before the filter: the query as it arrived, plus ' '.
      return (f'ERROR: Maximum {self.throttle.per_minute} queries allowed '
              f'per minute. Rejected query: {text} ')
    text = filtered(text)
    if not text.lstrip().lower().startswith('select '):
      return f'error: must be a select statement: {text}'
    top = f' top {self.max_rows} '
    after = _after_select(text)
    if after.lstrip().lower().startswith('top '):
      count = after.lstrip()[4:].lstrip().split(' ', 1)[0]
      if not count.isdigit() or not 1 <= int(count) <= self.max_rows:
        return f'error: limit is {top}{text}'
    return None


def _after_select(text: str) -> str:
  """The text after `select ` and an `all ` or `distinct ` that follows it."""
  lower = text.lower()
  i = lower.find('select ') + len('select ')
  for word in ('all ', 'distinct '):
    if lower[i:].lstrip().startswith(word):
      i = lower.find(word, i) + len(word)
  return text[i:]
