"""The Pan-STARRS client (skytfds.services.ps1) against the answers of STScI's
ps1filenames.py and fitscut.cgi: the rows STScI's PS1_image notebook shows
(spacetelescope/mast_notebooks), a small aiohttp app on 127.0.0.1 answering
by hand, and the emulator, which answers as the real service does (a table
with an HTML content type; a POSTed file of positions)."""

import asyncio
import collections

import pytest
from aiohttp import test_utils
from aiohttp import web

from skytfds.emulator import app as emulator_app
from skytfds.emulator import catalogs
from skytfds.emulator import panstarrs
from skytfds.emulator import sky as sky_lib
from skytfds.services import http
from skytfds.services import ps1

HEADER = 'projcell subcell ra dec filter mjd type filename shortname badflag'


def _row(band, name=None, ra='83.63321', dec='22.01446', projcell=1784,
         subcell=59):
  name = name or (f'/rings.v3.skycell/{projcell:04d}/{subcell:03d}/'
                  f'rings.v3.skycell.{projcell:04d}.{subcell:03d}.stk.{band}.'
                  'unconv.fits')
  return (f'{projcell} {subcell} {ra} {dec} {band} 0.0 stack {name} '
          f'{name.rsplit("/", 1)[-1]} 0')


# The Crab's table as STScI's notebook shows the real answer (rows g, i, r,
# y, z of projcell 1784, sky cell 59).
RECORDED_CRAB = '\n'.join([HEADER] + [_row(b) for b in 'giryz']) + '\n'
JPEG = (b'\xff\xd8\xff\xe0' + b'\x00' * 200 + b'\xff\xd9')


def test_recorded_table_reads():
  files = ps1.parse_filenames(RECORDED_CRAB)
  assert list(files) == list('giryz')
  assert files['g'] == ('/rings.v3.skycell/1784/059/'
                        'rings.v3.skycell.1784.059.stk.g.unconv.fits')
  rows = ps1.parse_filename_rows(RECORDED_CRAB)
  assert {(r.ra, r.dec, r.kind) for r in rows} == {(83.63321, 22.01446, 'stack')}


@pytest.mark.parametrize('name, why', [
    ('/etc/passwd', 'expected a PS1 stack image'),
    ('/../../etc/passwd', 'expected a PS1 stack image'),
    ('/rings.v3.skycell/1784/059/../../../etc/passwd', 'expected a PS1 stack'),
    ('rings.v3.skycell/1784/059/rings.v3.skycell.1784.059.stk.y.unconv.fits',
     'expected a PS1 stack image'),
    ('/rings.v3.skycell/1784/059/rings.v3.skycell.1784.058.stk.y.unconv.fits',
     'expected a PS1 stack image'),  # Another sky cell in the name.
    ('/rings.v3.skycell/1784/059/rings.v3.skycell.1784.059.stk.y.unconv.fits'
     '&red=/etc/passwd', 'expected a PS1 stack image'),
    ('/rings.v3.skycell/1784/059/rings.v3.skycell.1784.059.stk.g.unconv.fits',
     'is a g image, not y'),
])
def test_only_the_real_filename_shape_is_accepted(name, why):
  """Issue 20 item 11: a name is never passed on to fitscut as given."""
  table = '\n'.join([HEADER, _row('g'), _row('i'), _row('y', name)]) + '\n'
  with pytest.raises(http.FetchError) as error:
    ps1.parse_filenames(table, source='http://x/cgi-bin/ps1filenames.py')
  assert error.value.reason == 'bad_table'
  assert str(error.value).startswith(
      f"cannot fetch http://x/cgi-bin/ps1filenames.py: line 4: PS1 file name "
      f"for band y {name[:120]!r}")
  assert why in str(error.value) and '\n' not in str(error.value)
  if why.startswith('expected'):  # Not a stack image at all.
    with pytest.raises(ValueError, match='PS1 file name'):
      ps1.fitscut_url(10.0, 0.0, red=name, green=name, blue=name)


class _Service:
  """A hand-written ps1filenames.py + fitscut.cgi on 127.0.0.1."""

  def __init__(self, table, table_type='text/html'):
    self.table, self.table_type = table, table_type
    self.hits = collections.Counter()
    self.posts = []
    self.queries = []

  async def filenames(self, request):
    self.hits[request.method + ' ' + request.path] += 1
    if request.method == 'POST':
      form = await request.post()
      self.posts.append({k: (v.file.read().decode() if hasattr(v, 'file')
                             else v) for k, v in form.items()})
    else:
      self.queries.append(dict(request.query))
    return web.Response(text=self.table, content_type=self.table_type)

  async def fitscut(self, request):
    self.hits[request.method + ' ' + request.path] += 1
    self.queries.append(dict(request.query))
    return web.Response(body=JPEG, content_type='image/jpeg')

  def run(self, work, cache_dir=None):
    async def go():
      app = web.Application()
      app.router.add_get('/cgi-bin/ps1filenames.py', self.filenames)
      app.router.add_post('/cgi-bin/ps1filenames.py', self.filenames)
      app.router.add_get('/cgi-bin/fitscut.cgi', self.fitscut)
      async with test_utils.TestServer(app, host='127.0.0.1') as server:
        async with http.Fetcher(cache_dir, max_attempts=3, backoff_s=0.01,
                                backoff_max_s=0.02, seed=0) as fetcher:
          return await work(fetcher, str(server.make_url('')).rstrip('/'))
    return asyncio.run(go())


def test_table_sent_as_html_is_read_by_its_body():
  service = _Service(RECORDED_CRAB, table_type='text/html')
  image = service.run(lambda f, base: ps1.fetch_color_cutout(
      f, 83.63321, 22.01446, base=base))
  assert image == JPEG
  # Only the filters of the colour image are asked for.
  assert service.queries[0]['filters'] == 'yig'
  assert service.queries[1]['red'].endswith('.stk.y.unconv.fits')


def test_html_page_is_still_html_whatever_its_type():
  service = _Service('<!DOCTYPE html><html><body><h1>Maintenance</h1></body>'
                     '</html>', table_type='text/plain')

  async def work(fetcher, base):
    with pytest.raises(http.FetchError) as error:
      await ps1.fetch_color_cutout(fetcher, 83.63321, 22.01446, base=base)
    return error.value

  error = service.run(work)
  assert error.reason == 'html' and error.attempts == 3
  assert service.hits == {'GET /cgi-bin/ps1filenames.py': 3}


def test_unsafe_name_in_a_table_never_reaches_fitscut():
  table = '\n'.join([HEADER, _row('g'), _row('i'), _row('y', '/etc/passwd')])

  async def work(fetcher, base):
    with pytest.raises(http.FetchError) as error:
      await ps1.fetch_color_cutout(fetcher, 83.63321, 22.01446, base=base)
    return error.value

  service = _Service(table + '\n')
  error = service.run(work)
  assert error.reason == 'bad_table' and 'GET /cgi-bin/fitscut.cgi' not in service.hits
  # The same for names handed over from a bulk lookup.
  service = _Service(RECORDED_CRAB)
  files = {'y': '/etc/passwd', 'i': ps1.parse_filenames(RECORDED_CRAB)['i'],
           'g': ps1.parse_filenames(RECORDED_CRAB)['g']}
  with pytest.raises(ValueError, match='PS1 file name for band y'):
    service.run(lambda f, base: ps1.fetch_color_cutout(
        f, 83.63321, 22.01446, base=base, files=files))
  assert not service.hits


def test_bulk_lookup_posts_one_file_of_positions(tmp_path):
  positions = [(83.63321, 22.01446), (10.0, -45.0), (150.25, 30.5)]
  table = '\n'.join([HEADER] + [_row(b, ra='83.633210', dec='22.014460')
                                for b in 'giy']) + '\n'

  service = _Service(table)
  found = service.run(lambda f, base: ps1.fetch_filenames_bulk(
      f, positions, base=base), cache_dir=tmp_path)
  assert service.hits == {'POST /cgi-bin/ps1filenames.py': 1}
  # As STScI's notebooks post it: filters, type and a file of "ra dec" lines;
  # the position south of the survey is not sent.
  assert service.posts == [{'filters': 'yig', 'type': 'stack',
                            'file': '83.633210 22.014460\n150.250000 30.500000\n'}]
  assert found[0] == ps1.parse_filenames(table) and found[1:] == [{}, {}]
  # Cached: asked again, nothing is sent.
  service.hits.clear()
  again = service.run(lambda f, base: ps1.fetch_filenames_bulk(
      f, positions, base=base), cache_dir=tmp_path)
  assert again == found and not service.hits


@pytest.fixture(scope='module')
def sky():
  return sky_lib.Sky(catalogs.load_catalog(None, seed=1), seed=0)


def test_bulk_lookup_and_cutouts_against_the_emulator(sky):
  objects = sky.catalog.objects[:5]
  positions = [(o.ra, o.dec) for o in objects] + [(10.0, -45.0)]

  async def work(fetcher, base):
    files = await ps1.fetch_filenames_bulk(fetcher, positions, base=base,
                                           chunk=2)
    images = [await ps1.fetch_color_cutout(fetcher, ra, dec, size=64,
                                           base=base, files=f)
              for (ra, dec), f in zip(positions[:5], files)]
    return files, images

  with emulator_app.serve_in_background(sky) as emu:
    async def go():
      async with http.Fetcher(None, seed=0) as fetcher:
        return await work(fetcher, emu.ps1_url)
    files, images = asyncio.run(go())
    stats = emu.stats()
  paths = collections.Counter()
  for key, n in stats['hits'].items():
    paths[key.split('?')[0]] += n
  # 5 covered positions, 2 a file: 3 POSTs, no GET lookup, one fitscut each.
  assert paths == {'/cgi-bin/ps1filenames.py': 3, '/cgi-bin/fitscut.cgi': 5}
  assert all(sorted(f) == ['g', 'i', 'y'] for f in files[:5])
  assert files[5] == {}
  assert all(image[:2] == b'\xff\xd8' for image in images)
  # The same names as the one-position lookup gives.
  for (ra, dec), f in zip(positions[:5], files):
    assert ps1.parse_filenames(panstarrs.ps1_filenames(ra, dec, 'yig')) == f
