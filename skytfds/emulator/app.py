"""The emulator's aiohttp.web application: SkyServer, SAS and Pan-STARRS routes.

Routes (the real services' paths; N is a data release, 12..17):
  /dr{N}/SkyServerWS/SearchTools/SqlSearch?cmd=<sql>&format=csv|json
      The SQL subset of `skytfds.emulator.sql` over the catalogue: CSV with a
      `#Table1` first line, or JSON `[{"TableName": "Table1", "Rows": [...]}]`.
      SQL it cannot answer: an HTML page containing `error_message` and the
      reason, status 200 (as SkyServer does).
  /sas/dr{N}/{boss|eboss}/photoObj/frames/301/{run}/{camcol}/
      frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2
      `Sky.frame_bytes`; boss for N <= 12, eboss for N >= 13; 404 for a
      malformed path or a field without catalogue objects.
  /dr{N}/SkyServerWS/ImgCutout/getjpeg?ra=&dec=&scale=&width=&height=&opt=
      `Sky.cutout_jpeg` (image/jpeg); bad parameters: 400 with a message.
      Defaults: scale 0.4 arcsec/pixel, width = height = 240 pixels.
  /cgi-bin/ps1filenames.py?ra=&dec=&filters=    `Sky.ps1_filenames` (text)
  /cgi-bin/fitscut.cgi?ra=&dec=&size=&format=jpg&red=&green=&blue=
      `Sky.ps1_jpeg` (image/jpeg, 0.25 arcsec/pixel).
  /_stats   JSON: requests (total payload requests), hits {path?query: n},
            served {path?query: n fully served}, faults {kind: n},
            renders (payloads produced by the Sky, i.e. cache misses),
            cache_hits.
  /_health  'ok'.

Rendered payloads (frames, cutouts) are cached on disk under
`cache_dir/<fingerprint>/` (fingerprint: Sky seed, catalogue, sas_root and the
emulator's source code), written atomically, so a second server run renders
nothing; without cache_dir an in-memory LRU (256 MiB) is used. Rendering runs
in a thread pool (numpy and bz2 release the GIL), so the event loop stays
responsive and both cores are used; concurrent requests for the same payload
render it once.

`EmulatorThread` / `serve_in_background` run the app on 127.0.0.1 in a
background thread (for tests and the demo).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import html
import math
import os
import pathlib
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from aiohttp import web
import numpy as np

from skytfds import catalog as catalog_lib
from skytfds import settings
from skytfds.emulator import faults as faults_lib
from skytfds.emulator import sql as sql_lib

RELEASES = range(12, 18)
BANDS = 'ugriz'
RERUN = 301
MAX_QUERY_CHARS = 20_000
MEMORY_CACHE_BYTES = 256 * 2**20
CUTOUT_DEFAULTS = {'scale': 0.4, 'width': 240, 'height': 240}
CUTOUT_SIZE_RANGE = (64, 2048)      # pixels, getjpeg width/height
CUTOUT_SCALE_RANGE = (0.015, 60.0)  # arcsec/pixel
PS1_SIZE_RANGE = (8, 2048)          # pixels

_HIT = web.RequestKey('hit', int)  # 1-based count of this path+query so far.

_FRAME_PATH_RE = re.compile(
    r'dr(?P<release>\d{2})/(?P<flavour>boss|eboss)/photoObj/frames/'
    r'(?P<rerun>\d+)/(?P<run>[1-9]\d{0,5})/(?P<camcol>[1-6])/'
    r'frame-(?P<band>[ugriz])-(?P<run6>\d{6})-(?P<camcol2>[1-6])-'
    r'(?P<field>\d{4})\.fits\.bz2')
_PS1_FILE_RE = re.compile(r'[A-Za-z0-9_./-]{1,300}')
_OPT_RE = re.compile(r'[A-Za-z]{0,16}')


class _Stats:
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


class _PayloadCache:
  """Rendered payloads on disk (atomic writes) or in a bounded memory LRU."""

  def __init__(self, root: pathlib.Path | None):
    self.root = root
    self._memory: collections.OrderedDict[str, bytes] = (
        collections.OrderedDict())
    self._memory_bytes = 0
    self._lock = threading.Lock()

  def _path(self, name: str) -> pathlib.Path:
    parts = pathlib.PurePosixPath(name).parts
    if not parts or any(p in ('..', '.', '') or p.startswith('/')
                        for p in parts):
      raise ValueError(f'cache name {name!r} is not a relative path')
    return self.root.joinpath(*parts)

  def load(self, name: str) -> bytes | None:
    if self.root is None:
      with self._lock:
        body = self._memory.get(name)
        if body is not None:
          self._memory.move_to_end(name)
        return body
    try:
      return self._path(name).read_bytes()
    except FileNotFoundError:
      return None

  def store(self, name: str, body: bytes) -> None:
    if self.root is None:
      with self._lock:
        if name in self._memory:
          return
        self._memory[name] = body
        self._memory_bytes += len(body)
        while self._memory_bytes > MEMORY_CACHE_BYTES and len(self._memory) > 1:
          _, old = self._memory.popitem(last=False)
          self._memory_bytes -= len(old)
      return
    path = self._path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.tmp-' + path.name)
    try:
      with os.fdopen(fd, 'wb') as f:
        f.write(body)
      os.replace(tmp, path)
    except BaseException:
      with contextlib.suppress(OSError):
        os.unlink(tmp)
      raise

  def load_or_render(self, name: str,
                     render: Callable[[], bytes]) -> tuple[bytes, bool]:
    """(payload, whether it was rendered now). Runs in a worker thread."""
    body = self.load(name)
    if body is not None:
      return body, False
    body = render()
    self.store(name, body)
    return body, True


class _HttpError(Exception):
  """A 4xx answer with a message for the user."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


@dataclasses.dataclass
class _Frame:
  release: int
  run: int
  camcol: int
  field: int
  band: str


def parse_frame_path(tail: str) -> _Frame:
  """Validates a SAS frame path below /sas/ strictly; raises _HttpError 404."""
  m = _FRAME_PATH_RE.fullmatch(tail)
  if not m:
    raise _HttpError(404, f'Not Found: /sas/{tail} is not a frame path '
                     '(dr{N}/eboss/photoObj/frames/301/{run}/{camcol}/'
                     'frame-{band}-{run:06d}-{camcol}-{field:04d}.fits.bz2).')
  release = int(m['release'])
  if release not in RELEASES:
    raise _HttpError(404, f'Not Found: release dr{release} is not served '
                     '(dr12..dr17).')
  flavour = 'boss' if release <= 12 else 'eboss'
  if m['flavour'] != flavour:
    raise _HttpError(404, f'Not Found: dr{release} frames live under '
                     f'{flavour}/, not {m["flavour"]}/.')
  if int(m['rerun']) != RERUN:
    raise _HttpError(404, f'Not Found: rerun {m["rerun"]} (frames are '
                     f'rerun {RERUN}).')
  run = int(m['run'])
  if int(m['run6']) != run or m['camcol2'] != m['camcol']:
    raise _HttpError(404, 'Not Found: the file name does not match its '
                     f'run/camcol folders ({tail}).')
  return _Frame(release, run, int(m['camcol']), int(m['field']), m['band'])


def _float_param(query: Any, name: str, default: float | None = None,
                 low: float = -math.inf, high: float = math.inf) -> float:
  raw = query.get(name)
  if raw is None or raw.strip() == '':
    if default is None:
      raise _HttpError(400, f'Missing parameter {name}= (a number).')
    return default
  try:
    value = float(raw)
  except ValueError:
    raise _HttpError(400,
                     f'Parameter {name}={raw!r} is not a number.') from None
  if not math.isfinite(value) or not low <= value <= high:
    raise _HttpError(400, f'Parameter {name}={raw!r} is out of range '
                     f'[{low:g}, {high:g}].')
  return value


def _int_param(query: Any, name: str, default: int, low: int,
               high: int) -> int:
  raw = query.get(name)
  if raw is None or raw.strip() == '':
    return default
  try:
    value = int(raw)
  except ValueError:
    raise _HttpError(400, f'Parameter {name}={raw!r} is not a whole '
                     'number.') from None
  if not low <= value <= high:
    raise _HttpError(400, f'Parameter {name}={raw!r} is out of range '
                     f'[{low}, {high}].')
  return value


def _release(request: web.Request) -> int:
  release = int(request.match_info['release'])
  if release not in RELEASES:
    raise _HttpError(404, f'Not Found: release dr{release} is not served '
                     '(dr12..dr17).')
  return release


def sql_error_page(message: str, sql: str = '') -> str:
  """SkyServer's error style: an HTML page with `error_message` and reason."""
  return (
      '<html><head><title>SkyServer SQL error</title></head><body>\n'
      '<h3>SQL returned the following error:</h3>\n'
      f'<pre>error_message: {html.escape(message, quote=False)}</pre>\n'
      f'<p>Query: <code>{html.escape(sql[:2000], quote=False)}</code></p>\n'
      '</body></html>\n')


def _digest_catalog(rows: Sequence[sql_lib.Row]) -> str:
  h = hashlib.sha256()
  for row in rows:
    h.update(repr(sorted(row.items())).encode())
  return h.hexdigest()


def _digest_sources(sky: Any) -> str:
  """Hash of the Python sources next to the Sky's module (its renderer)."""
  h = hashlib.sha256()
  module = getattr(type(sky), '__module__', '')
  path = getattr(sys.modules.get(module), '__file__', None)
  if path:
    for source in sorted(pathlib.Path(path).parent.glob('*.py')):
      h.update(source.name.encode())
      h.update(source.read_bytes())
  return h.hexdigest()


class Emulator:
  """The state behind the routes; `make_app` wires it into an Application."""

  def __init__(self, sky: Any, *, cache_dir: str | os.PathLike | None,
               plan: faults_lib.FaultPlan, latency_ms: float,
               catalog: Any | None, workers: int | None):
    self.sky = sky
    if catalog is None:
      catalog = getattr(sky, 'catalog', None)
    objects = list(getattr(catalog, 'objects', None) or [])
    self.rows = sql_lib.build_rows(objects)
    self.has_catalog = catalog is not None
    self.frame_ids = {(f.run, f.camcol, f.field): f for f in sky.frame_ids()}
    self.plan = plan
    self.injector = faults_lib.FaultInjector(plan)
    self.latency_s = max(0.0, latency_ms) / 1000.0
    self.stats = _Stats()
    self.workers = workers or min(4, max(2, os.cpu_count() or 2))
    self.executor: concurrent.futures.ThreadPoolExecutor | None = None
    self._inflight: dict[str, asyncio.Future[bytes]] = {}
    root = None
    if cache_dir is not None:
      fingerprint = hashlib.sha256('\x00'.join((
          str(getattr(sky, 'seed', '')), str(getattr(sky, 'sas_root', '')),
          _digest_catalog(self.rows),
          _digest_sources(sky))).encode()).hexdigest()[:16]
      root = pathlib.Path(cache_dir) / f'sky-{fingerprint}'
    self.cache = _PayloadCache(root)

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

  async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(self.executor, fn, *args)

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
    try:
      return await handler(request)
    except _HttpError as e:
      return web.Response(status=e.status, text=e.message + '\n')

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

  async def _serve(self, request: web.Request, *, payload: str,
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
      raise _HttpError(404, f'Not Found: {_reason(e)}') from None
    except ValueError as e:
      raise _HttpError(400, f'Bad Request: {_reason(e)}') from None
    if content_type is None:
      body, content_type = body
    if isinstance(body, str):
      body = body.encode('utf-8')
    response = await faults_lib.payload_response(request, kind, body,
                                                 content_type, self.plan)
    if kind in (None, 'slow'):
      self.stats.served[key] += 1
    return response

  # -- handlers
  async def sql_search(self, request: web.Request) -> web.StreamResponse:
    _release(request)
    params = dict(request.query)
    if request.method == 'POST':
      params.update(await request.post())
    cmd = str(params.get('cmd', ''))
    fmt = str(params.get('format', 'csv')).strip().lower() or 'csv'

    def answer() -> tuple[str, str]:
      if fmt not in ('csv', 'json'):
        return sql_error_page(f"format '{fmt}' is not supported by the "
                              'emulated SkyServer: use csv or json.',
                              cmd), 'text/html; charset=utf-8'
      if len(cmd) > MAX_QUERY_CHARS:
        return sql_error_page(f'The query is {len(cmd)} characters long: '
                              f'the limit is {MAX_QUERY_CHARS}.',
                              ''), 'text/html; charset=utf-8'
      if not self.has_catalog:
        return sql_error_page('The emulated SkyServer was started without a '
                              'catalogue.', cmd), 'text/html; charset=utf-8'
      try:
        query = sql_lib.parse(cmd)
        rows = query.run(self.rows)
      except sql_lib.SqlError as e:
        return sql_error_page(str(e), cmd), 'text/html; charset=utf-8'
      if fmt == 'json':
        return sql_lib.to_json(query.columns, rows), 'application/json'
      return sql_lib.to_csv(query.columns, rows), 'text/plain; charset=utf-8'

    return await self._serve(request, payload='text', content_type=None,
                             produce=answer)

  async def sas_frame(self, request: web.Request) -> web.StreamResponse:
    tail = request.match_info['tail']
    frame = parse_frame_path(tail)
    frame_id = self.frame_ids.get((frame.run, frame.camcol, frame.field))
    if frame_id is None:
      # A field without catalogue objects exists only as a real file.
      sas_root = getattr(self.sky, 'sas_root', None)
      if sas_root is None or not (pathlib.Path(sas_root) / tail).is_file():
        raise _HttpError(404, f'Not Found: field {frame.run:06d}-'
                         f'{frame.camcol}-{frame.field:04d} holds no '
                         'catalogue object in this emulated sky.')
      frame_id = catalog_lib.FrameId(frame.run, RERUN, frame.camcol,
                                     frame.field)
    # Real files (a local SAS mirror) are read as they are, not cached again.
    sas_root = getattr(self.sky, 'sas_root', None)
    real = sas_root is not None and (pathlib.Path(sas_root) / tail).is_file()
    return await self._serve(
        request, payload='bz2', content_type='application/x-bzip2',
        cache_name=None if real else 'sas/' + tail,
        produce=lambda: self.sky.frame_bytes(frame_id, frame.band,
                                             frame.release))

  async def getjpeg(self, request: web.Request) -> web.StreamResponse:
    release = _release(request)
    q = request.query
    ra = _float_param(q, 'ra', low=0.0, high=360.0)
    dec = _float_param(q, 'dec', low=-90.0, high=90.0)
    scale = _float_param(q, 'scale', CUTOUT_DEFAULTS['scale'],
                         *CUTOUT_SCALE_RANGE)
    width = _int_param(q, 'width', CUTOUT_DEFAULTS['width'],
                       *CUTOUT_SIZE_RANGE)
    height = _int_param(q, 'height', CUTOUT_DEFAULTS['height'],
                        *CUTOUT_SIZE_RANGE)
    opt = q.get('opt', '')
    if not _OPT_RE.fullmatch(opt):
      raise _HttpError(400, f'Parameter opt={opt!r}: letters only (e.g. G, L, '
                       'GL).')
    ra = ra % 360.0
    name = hashlib.sha256(
        f'{release}|{ra!r}|{dec!r}|{scale!r}|{width}|{height}'.encode()
    ).hexdigest()
    return await self._serve(
        request, payload='jpeg', content_type='image/jpeg',
        cache_name=f'getjpeg/{name[:2]}/{name}.jpg',
        produce=lambda: self.sky.cutout_jpeg(ra, dec, scale=scale, width=width,
                                             height=height))

  async def ps1_filenames(self, request: web.Request) -> web.StreamResponse:
    q = request.query
    ra = _float_param(q, 'ra', low=0.0, high=360.0)
    dec = _float_param(q, 'dec', low=-90.0, high=90.0)
    filters = q.get('filters', 'grizy') or 'grizy'
    if not re.fullmatch(r'[grizy]{1,5}', filters):
      raise _HttpError(400, f'Parameter filters={filters!r}: give letters from '
                       'grizy.')
    return await self._serve(
        request, payload='text', content_type='text/plain; charset=utf-8',
        produce=lambda: self.sky.ps1_filenames(ra % 360.0, dec, filters))

  async def fitscut(self, request: web.Request) -> web.StreamResponse:
    q = request.query
    ra = _float_param(q, 'ra', low=0.0, high=360.0) % 360.0
    dec = _float_param(q, 'dec', low=-90.0, high=90.0)
    size = _int_param(q, 'size', 240, *PS1_SIZE_RANGE)
    fmt = q.get('format', 'jpg').lower()
    if fmt not in ('jpg', 'jpeg'):
      raise _HttpError(400, f'Parameter format={fmt!r}: the emulator serves '
                       'jpg only.')
    files = {}
    for channel in ('red', 'green', 'blue'):
      value = q.get(channel, '')
      if not value:
        raise _HttpError(400, f'Missing parameter {channel}= (a PS1 file name '
                         'from ps1filenames.py).')
      if not _PS1_FILE_RE.fullmatch(value) or '..' in value:
        raise _HttpError(400, f'Parameter {channel}={value[:80]!r} is not a '
                         'PS1 file name.')
      files[channel] = value
    name = hashlib.sha256(
        f'{ra!r}|{dec!r}|{size}|{files}'.encode()).hexdigest()
    return await self._serve(
        request, payload='jpeg', content_type='image/jpeg',
        cache_name=f'fitscut/{name[:2]}/{name}.jpg',
        produce=lambda: self.sky.ps1_jpeg(ra, dec, size=size, **files))

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
             workers: int | None = None) -> web.Application:
  """The emulator as an aiohttp.web Application.

  Args:
    sky: a `skytfds.emulator.sky.Sky` (frame_ids, frame_bytes, cutout_jpeg,
      ps1_filenames, ps1_jpeg).
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

  Returns:
    The Application; `app[EMULATOR_KEY]` is the Emulator (stats, cache).
  """
  plan = faults_lib.FaultPlan(
      rate=float(fault_rate), seed=int(seed),
      kinds=faults_lib.parse_kinds(fault_kinds),
      max_per_url=max_faults_per_url, retry_after_s=int(retry_after_s),
      slow_s=max(0.0, slow_ms) / 1000.0)
  emulator = Emulator(sky, cache_dir=cache_dir, plan=plan,
                      latency_ms=latency_ms, catalog=catalog, workers=workers)
  app = web.Application(middlewares=[emulator.middleware],
                        client_max_size=2 * 2**20)
  app[EMULATOR_KEY] = emulator
  app.on_startup.append(emulator.start)
  app.on_cleanup.append(emulator.stop)
  dr = r'/dr{release:\d{1,3}}/SkyServerWS'
  sql_path = dr + '/SearchTools/SqlSearch'
  app.router.add_get(sql_path, emulator.sql_search)
  app.router.add_post(sql_path, emulator.sql_search)
  app.router.add_get(dr + '/ImgCutout/getjpeg', emulator.getjpeg)
  app.router.add_get('/sas/{tail:.+}', emulator.sas_frame)
  app.router.add_get('/cgi-bin/ps1filenames.py', emulator.ps1_filenames)
  app.router.add_get('/cgi-bin/fitscut.cgi', emulator.fitscut)
  app.router.add_get('/_stats', emulator.stats_handler)
  app.router.add_get('/_health', emulator.health)
  return app


# ----------------------------------------------------------------------------
# Catalogues: the shared real one, or a small generated one.


def repo_root() -> pathlib.Path:
  return pathlib.Path(__file__).resolve().parents[2]


def default_catalog_path() -> pathlib.Path | None:
  """../shared/data/catalogs/specobj_35k.csv (from the repo root), if there."""
  path = repo_root().parent / 'shared' / 'data' / 'catalogs' / 'specobj_35k.csv'
  return path if path.is_file() else None


def default_sas_root() -> pathlib.Path | None:
  """../shared/data/sas (from the repo root), if there."""
  path = repo_root().parent / 'shared' / 'data' / 'sas'
  return path if path.is_dir() else None


def encode_objid(run: int, camcol: int, field: int, obj: int,
                 rerun: int = RERUN, sky_version: int = 2) -> int:
  """An SDSS PhotoObj objID (bits: skyVersion 59-62, rerun 48-58, run 32-47,
  camcol 29-31, firstField 28, field 16-27, object 0-15)."""
  return ((sky_version << 59) | (rerun << 48) | (run << 32) | (camcol << 29)
          | (field << 16) | obj)


def generated_catalog_csv(seed: int = 0, n_fields: int = 12,
                          per_field: int = 12) -> str:
  """A small deterministic catalogue in the specobj_35k.csv layout.

  Fields of run 2583 (rerun 301) near the celestial equator, camcols 1..6 and
  consecutive fields; each object lies within 0.05 deg (ra) and 0.07 deg (dec)
  of its field's centre (a frame spans about 0.16 x 0.23 deg). Classes about
  55% GALAXY, 30% STAR, 15% QSO with class-typical colours (quasars' UV
  excess, red galaxies) and redshifts.

  Args:
    seed: the random seed.
    n_fields: number of fields.
    per_field: objects per field.

  Returns:
    CSV text: objid,ra,dec,u,g,r,i,z,class,redshift (magnitudes AB).
  """
  rng = np.random.default_rng(seed)
  lines = ['objid,ra,dec,u,g,r,i,z,class,redshift']
  for k in range(n_fields):
    camcol = 1 + k % 6
    field = 100 + k // 6
    ra0 = 10.0 + 0.15 * (field - 100)
    dec0 = (camcol - 3.5) * 0.21
    for n in range(per_field):
      cls = rng.choice(['GALAXY', 'STAR', 'QSO'], p=[0.55, 0.30, 0.15])
      ra = ra0 + rng.uniform(-0.05, 0.05)
      dec = dec0 + rng.uniform(-0.07, 0.07)
      if cls == 'STAR':
        r = rng.uniform(15.0, 20.0)
        gr = rng.uniform(0.2, 1.3)
        colours = (gr * 2.0 + 0.6, gr, 0.0, -0.4 * gr, -0.6 * gr)
        redshift = rng.normal(0.0, 1e-4)
      elif cls == 'GALAXY':
        r = rng.uniform(15.5, 19.0)
        gr = rng.uniform(0.5, 1.0)
        colours = (gr + 1.2, gr, 0.0, -0.4, -0.7)
        redshift = rng.uniform(0.02, 0.3)
      else:
        r = rng.uniform(17.0, 20.5)
        colours = (0.45, 0.2, 0.0, -0.1, -0.15)
        redshift = rng.uniform(0.5, 2.5)
      mags = [r + c for c in colours]
      objid = encode_objid(2583, camcol, field, n + 1)
      lines.append(f'{objid},{ra:.8f},{dec:.8f},'
                   + ','.join(f'{m:.5f}' for m in mags)
                   + f',{cls},{redshift:.6g}')
  return '\n'.join(lines) + '\n'


def load_catalog(path: str | os.PathLike | None, *, seed: int = 0) -> Any:
  """The catalogue at `path`, or the generated one when path is None."""
  if path is None:
    return catalog_lib.parse_catalog(generated_catalog_csv(seed),
                                     f'generated catalogue (seed {seed})')
  data = pathlib.Path(path).read_bytes()
  return catalog_lib.parse_catalog(data, str(path))


# ----------------------------------------------------------------------------
# Running in a background thread (tests, demo).


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
