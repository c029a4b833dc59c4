"""The emulator's aiohttp.web application: the state behind every route.

Routes (the real services' paths; N is a data release, 12..17), one module
each under `routes/`:
  /dr{N}/SkyServerWS/SearchTools/SqlSearch   `routes.sqlsearch`
  /sas/dr{N}/{boss|eboss}/photoObj/frames/... `routes.sas`
  /dr{N}/SkyServerWS/ImgCutout/getjpeg       `routes.imgcutout`
  /cgi-bin/ps1filenames.py, /cgi-bin/fitscut.cgi   `routes.ps1`
  /_stats   JSON: requests (total payload requests), hits {path?query: n},
            served {path?query: n fully served}, faults {kind: n} (an
            outage's failures as outage_<kind>), renders (payloads produced
            by the Sky, i.e. cache misses), cache_hits.
  /_health  'ok'.

Rendered payloads (frames, cutouts) are cached by `payload_cache`. Rendering
runs in a thread pool (numpy and bz2 release the GIL), so the event loop stays
responsive and both cores are used; concurrent requests for the same payload
render it once. Faults are injected by `faults`.

`EmulatorThread` / `serve_in_background` run the app on 127.0.0.1 in a
background thread (for tests and the demo).
"""

# Follows sciserver/SkyServerWS App_Start/RouteConfig.cs and
# App_Start/WebApiConfig.cs (the /dr{N}/SkyServerWS/... routes of one
# application) and ExceptionFilter/CustomFilter.cs (errors as a status and a
# message body).

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import os
import pathlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiohttp import web

from skytfds import settings
from skytfds.emulator import faults as faults_lib
from skytfds.emulator import payload_cache
from skytfds.emulator import sql
from skytfds.emulator import tables
from skytfds.emulator.routes import imgcutout
from skytfds.emulator.routes import params
from skytfds.emulator.routes import ps1
from skytfds.emulator.routes import sas
from skytfds.emulator.routes import sqlsearch

_HIT = web.RequestKey('hit', int)  # 1-based count of this path+query so far.


class Stats:
  """Counters, touched from the event loop only."""

  def __init__(self):
    self.requests = 0
    self.hits: collections.Counter[str] = collections.Counter()
    self.served: collections.Counter[str] = collections.Counter()
    self.faults: collections.Counter[str] = collections.Counter()
    self.renders = 0
    self.cache_hits = 0

  def snapshot(self) -> dict[str, Any]:
    return {
        'requests': self.requests,
        'hits': dict(self.hits),
        'served': dict(self.served),
        'faults': dict(self.faults),
        'renders': self.renders,
        'cache_hits': self.cache_hits,
    }


class Emulator:
  """The state behind the routes; `make_app` wires it into an Application."""

  def __init__(self, sky: Any, *, cache_dir: str | os.PathLike | None,
               plan: faults_lib.FaultPlan, latency_ms: float,
               catalog: Any | None, workers: int | None,
               sql_options: sqlsearch.SqlOptions | None = None,
               outage: faults_lib.Outage | None = None):
    self.sky = sky
    self.outage = faults_lib.OutageClock(outage) if outage else None
    self.sql_options = sql_options or sqlsearch.SqlOptions()
    self.sql_service: sqlsearch.SqlService | None = None  # Set by its routes.
    if catalog is None:
      catalog = getattr(sky, 'catalog', None)
    objects = list(getattr(catalog, 'objects', None) or [])
    self.rows = tables.build_rows(objects)
    self.database = sql.Database(self.rows)
    self.has_catalog = catalog is not None
    self.frame_ids = {(f.run, f.camcol, f.field): f for f in sky.frame_ids()}
    self.plan = plan
    self.injector = faults_lib.FaultInjector(plan)
    self.latency_s = max(0.0, latency_ms) / 1000.0
    self.stats = Stats()
    self.workers = workers or min(4, max(2, os.cpu_count() or 2))
    self.executor: concurrent.futures.ThreadPoolExecutor | None = None
    self._inflight: dict[str, asyncio.Future[bytes]] = {}
    root = None
    if cache_dir is not None:
      name = payload_cache.fingerprint(getattr(sky, 'seed', ''),
                                       getattr(sky, 'sas_root', ''), self.rows)
      root = pathlib.Path(cache_dir) / f'sky-{name}'
    self.cache = payload_cache.PayloadCache(root)

  # -- lifecycle
  async def start(self, app: web.Application) -> None:
    del app
    self.executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=self.workers, thread_name_prefix='sky-render')

  async def stop(self, app: web.Application) -> None:
    del app
    if self.executor is not None:
      self.executor.shutdown(wait=True, cancel_futures=True)
      self.executor = None

  async def run_in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in the render thread pool (the event loop stays free)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(self.executor, fn, *args)

  _in_thread = run_in_thread

  # -- middleware: counting and latency
  @web.middleware
  async def middleware(self, request: web.Request,
                       handler: Callable[..., Any]) -> web.StreamResponse:
    if request.path in ('/_stats', '/_health'):
      return await handler(request)
    key = request.path_qs
    self.stats.requests += 1
    self.stats.hits[key] += 1
    request[_HIT] = self.stats.hits[key]
    if self.latency_s:
      await asyncio.sleep(self.latency_s)
    if self.outage is not None:
      kind = self.outage.kind_now(request.path)
      if kind is not None:
        self.stats.faults[f'outage_{kind}'] += 1
        return await faults_lib.outage_response(request, self.outage.outage)
    try:
      return await handler(request)
    except params.HttpError as e:
      return e.response()

  # -- payloads
  async def _render(self, name: str, render: Callable[[], bytes]) -> bytes:
    """The payload `name` from the cache, or rendered once in a thread."""
    pending = self._inflight.get(name)
    if pending is not None:
      return await asyncio.shield(pending)
    future = asyncio.get_running_loop().create_future()
    future.add_done_callback(
        lambda f: f.cancelled() or f.exception())  # Mark as retrieved.
    self._inflight[name] = future
    try:
      body, rendered = await self._in_thread(self.cache.load_or_render, name,
                                             render)
    except BaseException as e:
      future.set_exception(e)
      raise
    finally:
      del self._inflight[name]
    if rendered:
      self.stats.renders += 1
    else:
      self.stats.cache_hits += 1
    future.set_result(body)
    return body

  async def serve(self, request: web.Request, *, payload: str,
                   content_type: str | None, produce: Callable[[], Any],
                   cache_name: str | None = None) -> web.StreamResponse:
    """Injects a fault or serves the payload from `produce`.

    Args:
      request: the request.
      payload: 'bz2', 'jpeg' or 'text' (which fault kinds apply).
      content_type: the MIME type; None when `produce` returns
        (body, content_type).
      produce: returns the body (bytes or str); runs in a worker thread.
        KeyError -> 404, ValueError -> 400, with the error's text.
      cache_name: cache the body under this name (rendered payloads).
    """
    key = request.path_qs
    kind = self.injector.decide(key, request.get(_HIT, 1), payload)
    if kind is not None:
      self.stats.faults[kind] += 1
      if kind in faults_lib.EARLY_KINDS:
        return await faults_lib.early_response(request, kind, self.plan)
    try:
      if cache_name is None:
        body = await self._in_thread(produce)
      else:
        body = await self._render(cache_name, produce)
    except KeyError as e:
      raise params.HttpError(404, f'Not Found: {_reason(e)}') from None
    except ValueError as e:
      raise params.HttpError(400, f'Bad Request: {_reason(e)}') from None
    if content_type is None:
      body, content_type = body
    if isinstance(body, str):
      body = body.encode('utf-8')
    response = await faults_lib.payload_response(request, kind, body,
                                                 content_type, self.plan)
    if kind in (None, 'slow'):
      self.stats.served[key] += 1
    return response

  # -- handlers of the service-independent routes
  async def stats_handler(self, request: web.Request) -> web.Response:
    del request
    return web.json_response(self.stats.snapshot())

  async def health(self, request: web.Request) -> web.Response:
    del request
    return web.Response(text='ok\n')


def _reason(error: Exception) -> str:
  if isinstance(error, KeyError) and error.args:
    return str(error.args[0])
  return str(error)


EMULATOR_KEY = web.AppKey('emulator', Emulator)


def make_app(sky: Any, *, cache_dir: str | os.PathLike | None = None,
             fault_rate: float = 0.0, seed: int = 0, latency_ms: float = 0,
             catalog: Any | None = None,
             fault_kinds: Sequence[str] | str | None = None,
             max_faults_per_url: int | None = 3, slow_ms: float = 2000,
             retry_after_s: int = 1,
             workers: int | None = None, sql_delay_s: float = 0.0,
             sql_timeout_s: float = sqlsearch.SERVER_TIMEOUT_S,
             sql_queries_per_minute: int | None = 60,
             sql_max_rows: int = 500_000,
             outage: faults_lib.Outage | None = None) -> web.Application:
  """The emulator as an aiohttp.web Application.

  Args:
    sky: a `skytfds.emulator.sky.Sky` (frame_ids, frame_bytes, cutout_jpeg,
      ps1_jpeg); ps1filenames.py answers from `panstarrs`, whatever the sky.
    cache_dir: folder for rendered payloads (kept across runs); None keeps
      them in memory.
    fault_rate: fraction of payload responses that fail, 0..1.
    seed: fault seed (the same seed injects the same faults).
    latency_ms: milliseconds added before every response (not /_stats).
    catalog: the `skytfds.catalog.Catalog` SqlSearch answers from; default
      `sky.catalog`.
    fault_kinds: kinds to inject (see `faults.FAULT_KINDS`); default all of
      FAULT_KINDS; a comma-separated string is accepted.
    max_faults_per_url: after this many faults on one URL, it is always served
      (bounds the retries a client needs); None for no cap.
    slow_ms: the delay of a 'slow' fault, milliseconds.
    retry_after_s: the Retry-After of a 429 fault, seconds.
    workers: render threads (default: CPU count, 2..4).
    sql_delay_s: seconds each SqlSearch query takes in the database.
    sql_timeout_s: SkyServer's query time limit (600 s): a query whose
      delay reaches it is answered with SQL Server's timeout error (HTTP 500)
      after this long.
    sql_queries_per_minute: spExecuteSQL's per-client limit (60); the query
      after the limit gets the in-band refusal. None for no limit.
    sql_max_rows: spExecuteSQL's row limit (a larger TOP n is refused).
    outage: a service outage (see `faults.Outage`): the matching requests
      fail for its duration, beyond any client's retry budget.

  Returns:
    The Application; `app[EMULATOR_KEY]` is the Emulator (stats, cache).
  """
  plan = faults_lib.FaultPlan(
      rate=float(fault_rate), seed=int(seed),
      kinds=faults_lib.parse_kinds(fault_kinds),
      max_per_url=max_faults_per_url, retry_after_s=int(retry_after_s),
      slow_s=max(0.0, slow_ms) / 1000.0)
  sql_options = sqlsearch.SqlOptions(
      delay_s=float(sql_delay_s), timeout_s=float(sql_timeout_s),
      queries_per_minute=sql_queries_per_minute, max_rows=int(sql_max_rows))
  emulator = Emulator(sky, cache_dir=cache_dir, plan=plan,
                      latency_ms=latency_ms, catalog=catalog, workers=workers,
                      sql_options=sql_options, outage=outage)
  app = web.Application(middlewares=[emulator.middleware],
                        client_max_size=2 * 2**20)
  app[EMULATOR_KEY] = emulator
  app.on_response_prepare.append(_say_who_answers(sky))
  app.on_startup.append(emulator.start)
  app.on_cleanup.append(emulator.stop)
  for service in (sqlsearch, imgcutout, sas, ps1):
    service.add_routes(app, emulator)
  app.router.add_get('/_stats', emulator.stats_handler)
  app.router.add_get('/_health', emulator.health)
  return app


# ----------------------------------------------------------------------------
# Running in a background thread (tests, demo).


# Every answer says it comes from this emulator, not from SDSS or STScI, so a
# dataset built from it records that its data is simulated (the client notes
# the header in its fetch statistics). The real services send no such header.
EMULATOR_HEADER = 'X-Skytfds-Emulator'


def _say_who_answers(sky: Any) -> Callable[..., Any]:
  said = (f'skytfds emulator; simulated sky, seed '
          f'{getattr(sky, "seed", "?")}')

  async def on_response_prepare(request: web.Request,
                                response: web.StreamResponse) -> None:
    del request
    response.headers[EMULATOR_HEADER] = said

  return on_response_prepare


class EmulatorThread:
  """The emulator on 127.0.0.1 in a background thread with its own loop.

  with EmulatorThread(sky, fault_rate=0.2) as emu:
    os.environ.update(emu.environ())
    ... emu.url, emu.stats() ...
  """

  def __init__(self, sky: Any, *, host: str = '127.0.0.1', port: int = 0,
               **app_options: Any):
    self._app = make_app(sky, **app_options)
    self._host = host
    self._port = port
    self._thread: threading.Thread | None = None
    self._loop: asyncio.AbstractEventLoop | None = None
    self._stop: asyncio.Event | None = None
    self._ready = threading.Event()
    self._error: BaseException | None = None
    self.port: int | None = None

  @property
  def emulator(self) -> Emulator:
    return self._app[EMULATOR_KEY]

  @property
  def url(self) -> str:
    """SkyServer base URL (also the PS1 base)."""
    return f'http://{self._host}:{self.port}'

  @property
  def sas_url(self) -> str:
    return self.url + '/sas'

  @property
  def ps1_url(self) -> str:
    return self.url

  def environ(self) -> dict[str, str]:
    """Environment variables pointing skytfds.settings at this emulator."""
    return {
        settings.SKYSERVER_URL_ENV: self.url,
        settings.SAS_URL_ENV: self.sas_url,
        settings.PS1_URL_ENV: self.ps1_url,
    }

  def start(self, timeout_s: float = 30.0) -> EmulatorThread:
    self._thread = threading.Thread(target=self._run, name='sky-emulator',
                                    daemon=True)
    self._thread.start()
    if not self._ready.wait(timeout_s):
      raise RuntimeError(f'the emulator did not start within {timeout_s} s')
    if self._error is not None:
      raise RuntimeError(f'the emulator failed to start on {self._host}:'
                         f'{self._port}: {self._error}') from self._error
    return self

  def _run(self) -> None:
    loop = asyncio.new_event_loop()
    self._loop = loop
    try:
      loop.run_until_complete(self._serve())
    finally:
      loop.close()

  async def _serve(self) -> None:
    self._stop = asyncio.Event()
    runner = web.AppRunner(self._app, handle_signals=False, access_log=None)
    try:
      await runner.setup()
      site = web.TCPSite(runner, self._host, self._port)
      await site.start()
      self.port = runner.addresses[0][1]
    except BaseException as e:  # pylint: disable=broad-except
      self._error = e
      self._ready.set()
      await runner.cleanup()
      return
    self._ready.set()
    try:
      await self._stop.wait()
    finally:
      await runner.cleanup()

  def stats(self) -> dict[str, Any]:
    """A snapshot of /_stats, taken on the server's loop."""
    async def snapshot() -> dict[str, Any]:
      return self.emulator.stats.snapshot()
    return asyncio.run_coroutine_threadsafe(snapshot(), self._loop).result(10)

  def stop(self, timeout_s: float = 30.0) -> None:
    if self._thread is None:
      return
    if self._loop is not None and self._stop is not None:
      with contextlib.suppress(RuntimeError):  # Loop already closed.
        self._loop.call_soon_threadsafe(self._stop.set)
    self._thread.join(timeout_s)
    self._thread = None

  def __enter__(self) -> EmulatorThread:
    return self.start()

  def __exit__(self, *exc: Any) -> None:
    self.stop()


@contextlib.contextmanager
def serve_in_background(sky: Any, **options: Any) -> Iterator[EmulatorThread]:
  """Runs the emulator on 127.0.0.1:0 for the block; yields the EmulatorThread
  (`.url`, `.sas_url`, `.ps1_url`, `.environ()`, `.stats()`)."""
  emulator = EmulatorThread(sky, **options)
  emulator.start()
  try:
    yield emulator
  finally:
    emulator.stop()
