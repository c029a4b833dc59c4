"""SkyServer's answers to a query, as its source says it sends them
(sciserver/SkyServerWS: ExceptionFilter/CustomFilter.cs, Common/KeyWords.cs;
the spExecuteSQL procedure, sciserver/sqlloader schema/sql/spSQLSupport.sql).

Two servers: a small aiohttp app on 127.0.0.1 answering each form by hand,
and the emulator (skytfds.emulator), whose SqlSearch answers as the real
server does: HTTP 500 with a JSON ErrorMessage for a query that fails in the
database, spExecuteSQL's `error_message` table with status 200 for its
refusals. Where a real answer was recorded (astroquery's test data,
simonsobs/nemo's check of the rate-limit refusal) the client reads those
bytes too.
"""

import asyncio
import json
import logging

import pytest
from aiohttp import test_utils
from aiohttp import web

from skytfds import catalog
from skytfds.emulator import app as emulator_app
from skytfds.emulator import catalogs
from skytfds.emulator import sky as sky_lib
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


# ---------------------------------------------------------------------------
# Recorded real answers.

# astroquery's recorded SqlSearch answer (astropy/astroquery
# astroquery/sdss/tests/data/xid_sp.txt, its first lines): `#Table1`, the
# header, LF line ends.
RECORDED_CSV = (
    '#Table1\n'
    'ra,dec,objid,run,rerun,camcol,field,z,plate,mjd,fiberID,specobjid,run2d,'
    'instrument\n'
    '2.02344596303,14.8398237521,1237652943176138868,1739,301,3,315,'
    '0.04559058,751,52251,160,845594848269461504,26,SDSS\n')
# The rate-limit refusal as simonsobs/nemo recorded and matched it (its SDSS
# redshift fetcher compares the line '"ERROR: Maximum 60 queries allowed per
# minute. Rejected query: SELECT \n'): the cell in double quotes, the query
# with its own line breaks.
RECORDED_RATE_LIMIT = (
    '#Table1\nerror_message\n"ERROR: Maximum 60 queries allowed per minute. '
    'Rejected query: SELECT \n p.objid,p.ra,p.dec,p.r,\n s.specobjid,s.z, \n'
    ' FROM PhotoObj AS p\n JOIN SpecObj AS s ON s.bestobjid = p.objid \n"\n')


def test_recorded_answer_is_returned_as_sent():
  body, seen, _ = _query([lambda: web.Response(text=RECORDED_CSV,
                                               content_type='text/plain')])
  assert body == RECORDED_CSV.encode() and len(seen) == 1


def test_recorded_rate_limit_refusal_is_waited_out():
  refusal = lambda: web.Response(text=RECORDED_RATE_LIMIT,
                                 content_type='text/plain')
  body, seen, stats = _query([refusal, good_csv])
  assert body == GOOD_CSV.encode() and len(seen) == 2
  assert stats.by_reason == {'rate_limited': 1}
  assert 'Maximum 60 queries allowed per minute' in skyserver.refusal_message(
      RECORDED_RATE_LIMIT.encode())


# ---------------------------------------------------------------------------
# The emulator's real-server answers.


@pytest.fixture(scope='module')
def sky():
  return sky_lib.Sky(catalogs.load_catalog(None, seed=1), seed=0)


def _against_emulator(sky, sqls, fmt='csv', setup=None, **app_options):
  """Runs each SQL in turn through run_query against the emulator;
  ([body or FetchError], Fetcher stats, emulator stats)."""
  with emulator_app.serve_in_background(sky, **app_options) as emu:
    if setup is not None:
      setup(emu.emulator)

    async def go():
      async with http.Fetcher(None, max_concurrency=2, max_attempts=4,
                              backoff_s=0.01, backoff_max_s=0.02,
                              retry_after_max_s=0.05, seed=0) as fetcher:
        out = []
        for sql in sqls:
          try:
            out.append(await skyserver.run_query(fetcher, sql, fmt=fmt,
                                                 base=emu.url))
          except http.FetchError as e:
            out.append(e)
        return out, fetcher.stats

    results, stats = asyncio.run(go())
    return results, stats, emu.stats()


@pytest.mark.parametrize('fmt', ['csv', 'json'])
def test_emulator_database_error_is_final_and_quoted_whole(sky, fmt):
  sql = 'SELECT TOP 5 p.objid, p.bogus FROM PhotoObj AS p'
  (error,), stats, served = _against_emulator(sky, [sql], fmt=fmt)
  assert isinstance(error, http.FetchError) and error.reason == 'sql_error'
  assert served['requests'] == 1 and stats.retries == 0  # Sent once.
  message = str(error)
  assert ("SkyServer could not run the query (HTTP 500): \"Invalid column name "
          "'bogus' (the emulated PhotoObj has: ") in message
  assert message.endswith('sending it again gives the same answer [sql_error]')
  assert '...' not in message  # Whole, not an excerpt.


def test_emulator_rate_limit_refusal_is_waited_out(sky):
  # A clock that moves 40 s a query: the second query finds the first one
  # in its minute and is refused; when sent again the minute has passed.
  def setup(emulator):
    moments = iter(range(0, 4000, 40))
    emulator.sql_service.guard.throttle._clock = lambda: next(moments)

  sql = catalog.class_query('QSO', 2)
  results, stats, served = _against_emulator(
      sky, [sql, sql], setup=setup, sql_queries_per_minute=0)
  assert all(isinstance(r, bytes) and r.startswith(b'#Table1\nobjid,')
             for r in results)
  assert results[0] == results[1]
  assert stats.by_reason == {'rate_limited': 1} and served['requests'] == 3
  assert stats.waited_s >= 0.05


def test_emulator_rate_limit_that_persists_says_what_to_do(sky):
  sql = catalog.class_query('STAR', 2)
  results, stats, served = _against_emulator(
      sky, [sql, sql], sql_queries_per_minute=0)
  assert isinstance(results[0], bytes)
  error = results[1]
  assert error.reason == 'rate_limited' and served['requests'] == 1 + 4
  assert ('SkyServer refused the query: "ERROR: Maximum 0 queries allowed per '
          'minute. Rejected query: SELECT TOP 2 ') in str(error)
  assert 'wait a minute and run again' in str(error)


def test_emulator_server_timeout_is_final_with_what_to_do(sky):
  (error,), _, served = _against_emulator(
      sky, [catalog.class_query('GALAXY', 2)], sql_delay_s=60,
      sql_timeout_s=0.2)
  assert error.reason == 'sql_error' and served['requests'] == 1
  # Quoted whole, on one line (runs of blanks made one).
  assert ('"Execution Timeout Expired. The timeout period elapsed prior to '
          'completion of the operation or the server is not responding."'
          ) in str(error)
  assert "SkyServer's 600 s limit" in str(error) and 'fewer rows' in str(error)


def test_emulator_slow_query_waited_for(sky, monkeypatch, caplog):
  monkeypatch.setattr(skyserver, 'QUERY_PROGRESS_S', 0.1)
  caplog.set_level(logging.INFO)
  (body,), stats, served = _against_emulator(
      sky, [catalog.class_query('GALAXY', 2)], sql_delay_s=0.5)
  assert body.startswith(b'#Table1\n') and served['requests'] == 1
  assert stats.retries == 0
  assert 'still waiting for the query' in caplog.text


def test_emulator_query_longer_than_the_client_waits_is_sent_once_more(
    sky, monkeypatch):
  monkeypatch.setattr(skyserver, 'QUERY_TIMEOUT_S', 0.3)
  (error,), stats, served = _against_emulator(
      sky, [catalog.class_query('GALAXY', 2)], sql_delay_s=3)
  assert error.reason == 'timeout' and served['requests'] == 2
  assert stats.by_reason == {'timeout': 2}
  assert "SkyServer's 600 s limit" in str(error)


@pytest.mark.parametrize('sql, advice', [
    ('SELECT TOP 600000 p.objid FROM PhotoObj AS p', 'at most 500,000 rows'),
    ('DELETE FROM PhotoObj', 'a single SELECT'),
])
def test_emulator_refusals_reach_the_parser_with_what_to_do(sky, sql, advice):
  (body,), _, served = _against_emulator(sky, [sql])
  assert served['requests'] == 1
  with pytest.raises(catalog.CatalogError) as error:
    catalog.parse_catalog(body, 'SkyServer DR17 SqlSearch')
  assert advice in str(error.value)


# ---------------------------------------------------------------------------
# getjpeg (Controllers/ImgCutout/getJpegController.cs, ImgCutout/ImgCutout.cs).


def _cutouts(base, positions, **options):
  """fetch_cutout at each (ra, dec); [bytes or FetchError], Fetcher stats."""
  async def go():
    async with http.Fetcher(None, max_attempts=4, backoff_s=0.01,
                            backoff_max_s=0.02, seed=0) as fetcher:
      out = []
      for ra, dec in positions:
        try:
          out.append(await skyserver.fetch_cutout(fetcher, ra, dec, base=base,
                                                  **options))
        except http.FetchError as e:
          out.append(e)
      return out, fetcher.stats
  return asyncio.run(go())


def test_lower_case_opt_is_sent_as_the_server_reads_it():
  assert 'opt=GL&' in skyserver.cutout_url(10.0, 0.0, opt='gl', base='http://h')
  assert (skyserver.cutout_cache_name(10.0, 0.0, opt='gl') ==
          skyserver.cutout_cache_name(10.0, 0.0, opt='GL'))
  with pytest.raises(ValueError, match='letters A-Z, any case'):
    skyserver.cutout_url(10.0, 0.0, opt='G;L')


def test_emulator_cutout_inside_and_outside_the_footprint(sky):
  obj = sky.catalog.objects[0]
  with emulator_app.serve_in_background(sky) as emu:
    (image, outside), stats = _cutouts(emu.url, [(obj.ra, obj.dec),
                                                 (180.0, -60.0)], opt='gl')
    served = emu.stats()
  assert image[:2] == b'\xff\xd8'
  assert isinstance(outside, skyserver.OutsideFootprint)
  assert outside.reason == 'outside_footprint' and outside.attempts == 1
  assert served['requests'] == 2 and stats.retries == 0  # Asked once.
  assert 'outside the SDSS imaging footprint' in str(outside)
  assert 'opt=GL' in str(outside)


def test_plain_404_stays_not_found():
  """A 404 without getjpeg's image is the generic 'not found'."""
  async def gone(request):
    del request
    return web.Response(status=404, text='gone')

  async def go():
    app = web.Application()
    app.router.add_get('/dr17/SkyServerWS/ImgCutout/getjpeg', gone)
    async with test_utils.TestServer(app, host='127.0.0.1') as server:
      async with http.Fetcher(None, max_attempts=4, seed=0) as fetcher:
        with pytest.raises(http.FetchError) as error:
          await skyserver.fetch_cutout(fetcher, 10.0, 0.0,
                                       base=str(server.make_url('')))
        return error.value

  error = asyncio.run(go())
  assert type(error) is http.FetchError and error.reason == 'not_found'


def test_an_answer_nested_too_deeply_is_no_traceback():
  """Issue 20.5: 200,000 nested brackets; json.loads raised RecursionError."""
  deep = b'[' * 200_000
  assert skyserver.refusal_message(deep) is None
  assert skyserver.database_error(deep) is None
  # The catalogue parser then refuses it in one line.
  with pytest.raises(catalog.CatalogError, match='nested too deeply'):
    catalog.parse_catalog(deep, 'SkyServer DR17 SqlSearch')
