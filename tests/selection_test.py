"""Tests of skytfds.datasets.selection against the emulated SkyServer.

The emulator answers the real T-SQL (on sqlite3), so these tests check that
the spread selection really spreads over the footprint, that unreliable
spectra are never taken, and that the dense selection needs few frames.
"""

import asyncio
import collections
import pathlib
import urllib.parse
import urllib.request

import aiohttp.web
import numpy as np
import pytest

from skytfds import catalog
from skytfds import settings
from skytfds.datasets import selection
from skytfds.emulator import app as app_lib
from skytfds.emulator import catalogs
from skytfds.emulator import sky as sky_lib
from skytfds.emulator import tables
from skytfds.services import http

pytestmark = pytest.mark.network
SPECOBJ_35K = (pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data'
               / 'catalogs' / 'specobj_35k.csv')


def footprint_catalog(seed=3, runs=60, fields_per_run=12) -> catalog.Catalog:
  """Objects over `runs` runs (94..~7900), denser in some fields than others."""
  rng = np.random.default_rng(seed)
  lines = ['objid,ra,dec,u,g,r,i,z,class']
  run_numbers = sorted(rng.choice(np.arange(94, 8000), runs, replace=False))
  for run in run_numbers:
    for k in range(fields_per_run):
      camcol, field = 1 + k % 6, 11 + k
      density = int(rng.choice([2, 4, 40], p=[0.5, 0.4, 0.1]))
      for number in range(1, density + 1):
        cls = rng.choice(['GALAXY', 'STAR', 'QSO'], p=[0.55, 0.3, 0.15])
        objid = catalogs.encode_objid(int(run), camcol, field, number)
        ra, dec = rng.uniform(0, 360), rng.uniform(-10, 60)
        lines.append(f'{objid},{ra:.6f},{dec:.6f},20,19.5,19,18.8,18.7,{cls}')
  return catalog.parse_catalog('\n'.join(lines) + '\n', 'footprint test')


@pytest.fixture(scope='module')
def footprint():
  cat = footprint_catalog()
  with app_lib.serve_in_background(sky_lib.Sky(cat, seed=0)) as emu:
    yield cat, emu


def _select(url, monkeypatch, per_class, how):
  monkeypatch.setenv(settings.SKYSERVER_URL_ENV, url)
  monkeypatch.delenv(settings.CATALOG_ENV, raising=False)

  async def run():
    async with http.Fetcher(None) as fetcher:
      return await selection.select_objects(
          fetcher, per_class=per_class, release=17, selection=how)

  return asyncio.run(run()).catalog


def _ks(sample, population) -> float:
  """Two-sample Kolmogorov-Smirnov distance."""
  grid = np.union1d(sample, population)
  cdf = lambda x: np.searchsorted(np.sort(x), grid, side='right') / len(x)
  return float(np.max(np.abs(cdf(sample) - cdf(population))))


def test_spread_sample_follows_each_class_over_runs(footprint, monkeypatch):
  cat, emu = footprint
  got = _select(emu.url, monkeypatch, 60, 'spread')
  assert got.class_counts() == {'GALAXY': 60, 'QSO': 60, 'STAR': 60}
  reliable = [o for o in cat.objects if not tables.unreliable(o.objid)]
  for cls in catalog.CLASSES:
    population = [o.frame.run for o in reliable if o.cls == cls]
    sample = [o.frame.run for o in got.objects if o.cls == cls]
    n, m = len(sample), len(population)
    # KS critical distance at alpha = 0.001: 1.95 * sqrt((n + m) / (n m)).
    assert _ks(sample, population) < 1.95 * ((n + m) / (n * m)) ** 0.5, cls
    assert len(set(sample)) > 20  # Many runs, not the first few.


def test_sorted_top_n_would_fail_the_same_check(footprint):
  """The check above has power: the old `ORDER BY p.objid` sample fails it."""
  cat, emu = footprint
  sql = catalog.class_query('GALAXY', 60) + ' ORDER BY p.objid'
  url = (f'{emu.url}/dr17/SkyServerWS/SearchTools/SqlSearch?'
         + urllib.parse.urlencode({'cmd': sql, 'format': 'csv'}))
  with urllib.request.urlopen(url, timeout=30) as answer:
    sorted_sample = catalog.parse_catalog(answer.read(), 'sorted')
  population = [o.frame.run for o in cat.objects if o.cls == 'GALAXY']
  sample = [o.frame.run for o in sorted_sample.objects]
  assert _ks(sample, population) > 0.5


def test_unreliable_spectra_are_never_taken(footprint, monkeypatch):
  cat, emu = footprint
  flagged = {o.key for o in cat.objects if tables.unreliable(o.objid)}
  assert len(flagged) > 20  # The emulator flags about 1 in 40.
  for how in ('spread', 'dense'):
    got = _select(emu.url, monkeypatch, 150, how)
    assert not flagged & {o.key for o in got.objects}, how


def test_dense_selection_needs_far_fewer_frames(footprint, monkeypatch):
  _, emu = footprint
  spread = _select(emu.url, monkeypatch, 60, 'spread')
  dense = _select(emu.url, monkeypatch, 60, 'dense')
  assert dense.class_counts() == {'GALAXY': 60, 'QSO': 60, 'STAR': 60}
  frames = lambda c: len({o.frame for o in c.objects})
  assert frames(dense) * 3 < frames(spread)
  assert any('selection dense: 180 objects from' in n for n in dense.notes)


def test_selection_is_deterministic(footprint, monkeypatch):
  _, emu = footprint
  for how in ('spread', 'dense'):
    first = _select(emu.url, monkeypatch, 40, how)
    again = _select(emu.url, monkeypatch, 40, how)
    assert [o.key for o in first.objects] == [o.key for o in again.objects]


@pytest.mark.skipif(not SPECOBJ_35K.is_file(),
                    reason=f'real catalogue {SPECOBJ_35K} not present')
def test_dense_on_the_real_35k_catalogue(monkeypatch):
  cat = catalogs.load_catalog(SPECOBJ_35K)
  with app_lib.serve_in_background(sky_lib.Sky(cat, seed=0)) as emu:
    dense = _select(emu.url, monkeypatch, 100, 'dense')
    spread = _select(emu.url, monkeypatch, 100, 'spread')
  assert dense.class_counts() == {'GALAXY': 100, 'QSO': 100, 'STAR': 100}
  assert len({o.frame for o in dense.objects}) <= 25  # ~22 measured
  assert len({o.frame for o in spread.objects}) >= 200  # ~286 measured


def test_a_service_that_ignores_top_is_capped(monkeypatch):
  """SqlSearch answering 10 rows to TOP 3: 3 used per class, and said so."""

  def rows_of(cls, first):
    frame = 20 + first
    return '\n'.join(
        f'{catalogs.encode_objid(1000, 1, frame, k)},10.0,0.0,20,20,19,19,19,'
        f'1000,301,1,{frame},{cls}' for k in range(1, 11))

  async def sql(request):
    cmd = request.query['cmd']
    if 'COUNT(*)' in cmd:
      body = 'class,n\nGALAXY,1000\nQSO,1000\nSTAR,1000'
    else:
      cls = next(c for c in catalog.CLASSES if f"'{c}'" in cmd)
      body = ('objid,ra,dec,u,g,r,i,z,run,rerun,camcol,field,class\n'
              + rows_of(cls, catalog.CLASSES.index(cls)))
    return aiohttp.web.Response(text='#Table1\n' + body + '\n',
                                content_type='text/plain')

  async def scenario():
    app = aiohttp.web.Application()
    app.router.add_get('/dr17/SkyServerWS/SearchTools/SqlSearch', sql)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, '127.0.0.1', 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access
    monkeypatch.setenv(settings.SKYSERVER_URL_ENV, f'http://127.0.0.1:{port}')
    monkeypatch.delenv(settings.CATALOG_ENV, raising=False)
    try:
      async with http.Fetcher(None) as fetcher:
        return (await selection.select_objects(
            fetcher, per_class=3, release=17, selection='spread')).catalog
    finally:
      await runner.cleanup()

  got = asyncio.run(scenario())
  assert got.class_counts() == {'GALAXY': 3, 'QSO': 3, 'STAR': 3}
  assert ('SkyServer DR17 SqlSearch answered 10 STAR rows to TOP 3; used the '
          'first 3') in got.notes
  assert collections.Counter(o.cls for o in got.objects)['STAR'] == 3
