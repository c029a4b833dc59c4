"""datasets.cutout_stage: cutouts fetched, checked strictly, stored as served.

Against the emulator on 127.0.0.1 over a sky of synthetic JPEGs, some of them
hostile: damaged so that libjpeg decodes them without an error, padded past
the size cap, or of the wrong size.
"""

import collections

import pytest

import synthetic_frames as sf
from skytfds import catalog
from skytfds.datasets import context as context_lib
from skytfds.datasets import cutout_stage
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.emulator import app as emulator_app
from skytfds.services import http

FRAME = catalog.FrameId(3918, 301, 3, 213)
# The cutout the sky serves at ra = 10 + k (dec 1.5), by kind.
HOSTILE = {
    'cut_in_half_ffd9': lambda: sf.cut_in_half(sf.jpeg()),
    'middle_zeroed': lambda: sf.zero_middle(sf.jpeg()),
    'progressive_first_scan_only': lambda: sf.cut_after_first_scan(
        sf.jpeg(progressive=True)),
    'com_padded_600k': lambda: sf.com_padded(sf.jpeg(), 600_000),
    'wrong_size': lambda: sf.jpeg(100),
}
EXPECTED = {  # kind: (skip reason, downloads, detail)
    'cut_in_half_ffd9': ('corrupt_image', 6, 'does not decode as JPEG (corrupt '
                         'data: scan 1, coded data at byte'),
    'middle_zeroed': ('corrupt_image', 6, 'does not decode as JPEG (corrupt data: '),
    'progressive_first_scan_only': ('corrupt_image', 6, 'the progressive JPEG '
                                    'was cut short'),
    'com_padded_600k': ('too_large', 1, '600000 bytes, more than the '
                        '524288-byte cap for a 240x240 cutout'),
    'wrong_size': ('bad_image', 2, '100x100 px, expected 240x240'),
}


class _Sky:
  """The emulator's sky interface: whole JPEGs at ra < 10, HOSTILE above."""

  seed = 0
  sas_root = None
  catalog = None

  def frame_ids(self):
    return set()

  def ps1_jpeg(self, ra, dec, *, size=240, red, green, blue):
    del dec, red, green, blue
    return sf.jpeg(size, seed=int(ra * 10))

  def in_footprint(self, ra, dec):
    del dec
    return not 100 <= ra < 101  # SDSS never imaged ra 100..101 here.

  def cutout_jpeg(self, ra, dec, *, scale=0.4, width=240, height=240):
    del dec, scale, width, height
    if ra >= 10:
      return list(HOSTILE.values())[int(ra) - 10]()
    return sf.jpeg(seed=int(ra * 10))


def _objects(ras):
  return sf.objects([(FRAME, ra, 1.5, 'STAR') for ra in ras])


def _run(tmp_path, ras, product=products.SDSS, **faults):
  with emulator_app.EmulatorThread(_Sky(), **faults) as emulator:
    ctx = context_lib.BuildContext(
        workdir=str(tmp_path / 'work'), release=17, sas_url='unused',
        skyserver_url=emulator.url, ps1_url=emulator.url, max_concurrency=4)
    stage = cutout_stage.CutoutStage(product, ctx)
    objs = _objects(ras)
    report = report_lib.BuildReport(dataset='sdss_cutouts', config='tiny')
    stage.prepare(objs, report)
    stats = emulator.stats()
  served = collections.Counter()
  for path, n in stats['served'].items():
    if 'getjpeg' in path or 'fitscut' in path:
      served[float(path.split('ra=')[1].split('&')[0])] += n
  images = {o.key: a['image'] for o, a in stage.examples(objs)}
  return images, report, served, stats


GOOD = [1.0, 2.0, 3.0, 4.0]


def test_whole_cutouts_are_stored_byte_for_byte(tmp_path):
  images, report, served, _ = _run(tmp_path, GOOD)
  assert report.skipped == {}
  assert sorted(images.values()) == sorted(
      sf.jpeg(seed=int(ra * 10)) for ra in GOOD)
  assert set(served.values()) == {1}


def test_cutouts_cached_through_a_url_are_served_from_it(tmp_path):
  """A memory:// download dir (fsspec): cached there, a corrupt copy evicted."""
  import fsspec  # pylint: disable=g-import-not-at-top
  memory = fsspec.filesystem('memory')
  folder = f'/cutout-test-{tmp_path.name}'
  objs = _objects(GOOD[:2] + [11.0])  # 11: corrupt every time, evicted.
  with emulator_app.EmulatorThread(_Sky()) as emulator:
    ctx = context_lib.BuildContext(
        workdir=f'memory://{folder}/skytfds', release=17, sas_url='unused',
        skyserver_url=emulator.url, ps1_url=emulator.url, max_concurrency=4)
    runs = []
    for _ in range(2):
      stage = cutout_stage.CutoutStage(products.SDSS, ctx)
      report = report_lib.BuildReport(dataset='sdss_cutouts', config='tiny')
      stage.prepare(objs, report)
      runs.append(({o.key: a['image'] for o, a in stage.examples(objs)},
                   report))
    served = emulator.stats()['served']
  (first, report), (again, report_again) = runs
  assert report.skipped == report_again.skipped == {'corrupt_image': 1}
  assert sorted(first.values()) == sorted(
      sf.jpeg(seed=int(ra * 10)) for ra in GOOD[:2])
  assert again == first and report_again.fetch['cache_hits'] == 2
  cached = memory.find(folder)
  assert len(cached) == 2 and not any('.tmp-' in p for p in cached)
  assert all(p.startswith(f'{folder}/skytfds/cache/{ctx.source_key}/')
             for p in cached)
  # The good ones fetched once; the corrupt one 6 times a run.
  assert sorted(served[p] for p in served if 'getjpeg' in p) == [1, 1, 12]
  memory.rm(folder, recursive=True)


def test_corrupt_cutouts_three_times_in_a_row_are_fetched_until_whole(tmp_path):
  """A corrupt JPEG is a transient fault: the client's retry budget, not 2."""
  clean, _, _, _ = _run(tmp_path / 'clean', GOOD)
  got, report, served, stats = _run(tmp_path / 'faulty', GOOD, fault_rate=1.0,
                                    fault_kinds='corrupt_jpeg')
  assert stats['faults'] == {'corrupt_jpeg': 3 * len(GOOD)}
  assert report.skipped == {}
  assert got == clean
  assert set(served.values()) == {1}  # Served whole once, after 3 corrupt.


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
  ras = [1.0] + [10.5 + k for k in range(len(HOSTILE))]
  images, report, served, _ = _run(tmp_path_factory.mktemp('hostile'), ras)
  keys = {kind: _objects([ras[k + 1]])[0].key for k, kind in enumerate(HOSTILE)}
  return images, report, served, keys, ras


@pytest.mark.parametrize('kind', HOSTILE)
def test_a_hostile_cutout_is_a_counted_skip(hostile, kind):
  """Issue 20.3 and 20.7: accepted before, skipped now, after the refetches
  its kind of failure deserves."""
  images, report, served, keys, ras = hostile
  reason, downloads, detail = EXPECTED[kind]
  [entry] = [e for e in report.skipped_examples[reason]
             if e.startswith(keys[kind] + ': ')]
  assert detail in entry, entry
  if downloads > 1:
    assert entry.endswith(f'(gave up after {downloads} downloads)'), entry
  assert served[ras[list(HOSTILE).index(kind) + 1]] == downloads
  assert keys[kind] not in images
  assert http.Fetcher(None).max_attempts == EXPECTED['middle_zeroed'][1]


def test_hostile_cutouts_leave_the_others_written(hostile):
  images, report, _, _, _ = hostile
  assert len(images) == 1
  assert dict(report.skipped) == {'corrupt_image': 3, 'too_large': 1,
                                  'bad_image': 1}


def test_outside_the_footprint_is_its_own_skip_asked_once(tmp_path):
  """getjpeg's 404 with a JPEG body: never imaged, not a failed download."""
  images, report, served, _ = _run(tmp_path, [1.0, 100.5])
  assert dict(report.skipped) == {'outside_footprint': 1}
  [entry] = report.skipped_examples['outside_footprint']
  assert 'outside the SDSS imaging footprint' in entry
  assert served[100.5] == 0 and len(images) == 1  # 404s are not "served"


def test_ps1_files_are_looked_up_in_one_post_not_one_get_each(tmp_path):
  """Issue 14.6: ps1filenames.py is asked once for all positions (POST)."""
  ras = [1.0, 2.0, 3.0, 4.0, 5.0]
  images, report, served, stats = _run(tmp_path, ras, products.PS1)
  assert report.skipped == {} and len(images) == 5
  lookups = {p: n for p, n in stats['hits'].items() if 'ps1filenames' in p}
  assert sum(lookups.values()) == 1, lookups
  assert set(served.values()) == {1}
  assert stats['requests'] == 1 + len(ras)  # one lookup, one fitscut each
