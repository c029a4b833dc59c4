"""SkyServer's answers to a query, as its source says it sends them
(sciserver/SkyServerWS: ExceptionFilter/CustomFilter.cs, Common/KeyWords.cs,
the spExecuteSQL procedure), served by a small aiohttp app on 127.0.0.1.

The emulator still answers a failing query with an HTML `error_message` page
and status 200; these tests pin the real forms: HTTP 500 with a JSON
ErrorMessage, and spExecuteSQL's `error_message` table with status 200.
"""

import asyncio
import json
import logging

import pytest
from aiohttp import test_utils
from aiohttp import web

from skytfds import catalog
from skytfds.services import http
from skytfds.services import skyserver

SQL = 'SELECT TOP 2 p.objid FROM PhotoObj AS p'
GOOD_CSV = '#Table1\nobjid,ra,dec,class,run,rerun,camcol,field\n'
# A message longer than any excerpt: it must come back whole.
LONG_MESSAGE = ("Invalid column name 'bogus'. " * 12).strip()
RATE_LIMIT = f'ERROR: Maximum 60 queries allowed per minute. Rejected query: {SQL}'


def database_error(message):
  """CustomFilter.cs's answer to a query that fails in the database."""
  return web.Response(status=500, content_type='application/json', text=json.dumps({
      'ErrorCode': 500, 'ErrorType': 'InternalServerError', 'ErrorMessage': message,
      'LogMessageID': 'a1b2', 'LogTime': '2026-01-01T00:00:00'}))


def refusal_csv(message):
  """spExecuteSQL's refusal: one row, one `error_message` column, HTTP 200."""
  return web.Response(text=f'#Table1\nerror_message\n{message}\n',
                      content_type='text/plain')


def refusal_json(message):
  return web.json_response([{'TableName': 'Table1',
                             'Rows': [{'error_message': message}]}])


def good_csv():
  return web.Response(text=GOOD_CSV, content_type='text/plain')


async def slow(seconds):
  await asyncio.sleep(seconds)
  return good_csv()


def _query(answers, fmt='csv', **fetcher_options):
  """Runs SQL against a server answering the i-th request with answers[i]
  (the last one repeated); (body or FetchError, requests seen)."""
  seen = []

  async def handler(request):
    seen.append(request)
    answer = answers[min(len(seen), len(answers)) - 1]()
    return await answer if asyncio.iscoroutine(answer) else answer

  async def go():
    app = web.Application()
    app.router.add_get('/dr17/SkyServerWS/SearchTools/SqlSearch', handler)
    options = dict(max_concurrency=2, max_attempts=4, backoff_s=0.01,
                   backoff_max_s=0.02, retry_after_max_s=0.05, seed=0)
    options.update(fetcher_options)
    async with test_utils.TestServer(app, host='127.0.0.1') as server:
      async with http.Fetcher(None, **options) as fetcher:
        try:
          result = await skyserver.run_query(
              fetcher, SQL, fmt=fmt, base=str(server.make_url('')))
        except http.FetchError as e:
          result = e
        return result, fetcher.stats

  result, stats = asyncio.run(go())
  return result, seen, stats


def test_query_carries_task_name_and_user_agent():
  body, seen, _ = _query([good_csv])
  assert body == GOOD_CSV.encode()
  assert seen[0].query['TaskName'] == 'skytfds.SkyServer.SqlSearch'
  assert seen[0].query['cmd'] == SQL
  assert seen[0].headers['User-Agent'].startswith('skytfds/')


def test_database_error_is_final_and_quoted_whole():
  error, seen, stats = _query([lambda: database_error(LONG_MESSAGE)])
  assert isinstance(error, http.FetchError) and error.reason == 'sql_error'
  assert len(seen) == 1 and stats.retries == 0  # Sent once.
  assert f'"{LONG_MESSAGE}"' in str(error)
  assert 'fix the SQL' in str(error) and 'the same answer' in str(error)
  assert '\n' not in str(error)


def test_server_timeout_says_what_to_do():
  error, seen, _ = _query([lambda: database_error(
      'Execution Timeout Expired. The timeout period elapsed prior to '
      'completion of the operation or the server is not responding.')])
  assert error.reason == 'sql_error' and len(seen) == 1
  assert "SkyServer's 600 s limit" in str(error) and 'fewer rows' in str(error)


def test_plain_server_error_is_still_transient():
  body, seen, stats = _query([lambda: web.Response(status=500, text='oops'), good_csv])
  assert body == GOOD_CSV.encode() and len(seen) == 2
  assert stats.by_reason == {'http_500': 1}


@pytest.mark.parametrize('refusal', [refusal_csv, refusal_json])
def test_rate_limit_refusal_is_waited_out_and_sent_again(refusal):
  body, seen, stats = _query([lambda: refusal(RATE_LIMIT), good_csv])
  assert body == GOOD_CSV.encode() and len(seen) == 2
  assert stats.by_reason == {'rate_limited': 1}
  assert stats.waited_s >= 0.05  # The wait asked for (capped here for the test).


def test_rate_limit_that_persists_says_what_to_do():
  error, seen, _ = _query([lambda: refusal_csv(RATE_LIMIT)])
  assert error.reason == 'rate_limited' and len(seen) == 4
  assert RATE_LIMIT in str(error)
  assert 'wait a minute and run again' in str(error)
  assert 'Fix the SQL' not in str(error)


@pytest.mark.parametrize('message, advice', [
    (f'error: limit is  top 500000 {SQL}', 'at most 500,000 rows'),
    (f'error: must be a select statement: {SQL}', 'a single SELECT'),
    (RATE_LIMIT, 'wait a minute and run again'),
])
def test_other_refusals_reach_the_parser_with_what_to_do(message, advice):
  body = refusal_csv(message).text.encode()
  if 'queries allowed' not in message:  # The rate limit never gets this far.
    answered, seen, _ = _query([lambda: refusal_csv(message)])
    assert answered == body and len(seen) == 1
  with pytest.raises(catalog.CatalogError) as error:
    catalog.parse_catalog(body, 'SkyServer DR17 SqlSearch')
  said = ' '.join(message.split())  # The parser quotes it on one line.
  assert said in str(error.value) and advice in str(error.value)


def test_query_timeout_resent_once_with_progress(monkeypatch, caplog):
  monkeypatch.setattr(skyserver, 'QUERY_TIMEOUT_S', 0.3)
  monkeypatch.setattr(skyserver, 'QUERY_PROGRESS_S', 0.1)
  caplog.set_level(logging.INFO)
  error, seen, stats = _query([lambda: slow(2.0)])
  assert error.reason == 'timeout' and len(seen) == 2  # Sent once more, not 4 times.
  assert stats.by_reason == {'timeout': 2}
  assert 'no complete answer within 0.3 s' in str(error)
  assert "SkyServer's 600 s limit" in str(error)
  assert 'still waiting for the query' in caplog.text


def test_query_waits_as_long_as_the_server():
  assert skyserver.QUERY_TIMEOUT_S > skyserver.SERVER_QUERY_LIMIT_S == 600
  assert skyserver.QUERY_MAX_TIMEOUTS == 2
