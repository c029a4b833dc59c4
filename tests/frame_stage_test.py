"""datasets.frame_stage: staging a frame, reading it back, resuming, and faults.

Synthetic frames (tests/synthetic_frames.py) from a local SAS folder or the
emulator on 127.0.0.1: no real data needed.
"""

import collections

import numpy as np
import pytest

import synthetic_frames as sf
from skytfds import catalog
from skytfds.datasets import context as context_lib
from skytfds.datasets import frame_stage
from skytfds.datasets import products
from skytfds.datasets import report as report_lib
from skytfds.emulator import app as emulator_app
from skytfds.services import http
from skytfds.services import sas

GR = products.UgrizStamps('test', 'gr', 16)
FRAMES = [catalog.FrameId(3918, 301, 3, f) for f in (213, 214, 215)]
STAR = (1000.3, 700.2)


def _stars(band: str) -> np.ndarray:
  return sf.image([(*STAR, 50.0 + 'ugriz'.index(band)), (1500.7, 300.4, 20.0)])


def _objects(frame):
  """A star, an object at the corner (near_edge) and one off the frame."""
  return sf.objects([(frame, *sf.sky(*STAR), 'STAR'),
                     (frame, *sf.sky(1500.7, 300.4), 'GALAXY'),
                     (frame, *sf.sky(1.0, 1.0), 'QSO'),
                     (frame, *sf.sky(-500.0, 700.0), 'STAR')])


@pytest.fixture(scope='module')
def good_files():
  return {b: sf.frame_bytes(b, _stars(b)) for b in 'ugriz'}


def _ctx(tmp_path, sas_url):
  return context_lib.BuildContext(workdir=str(tmp_path / 'work'), release=17,
                                  sas_url=str(sas_url), skyserver_url='unused',
                                  ps1_url='unused', max_concurrency=4)


def _report():
  return report_lib.BuildReport(dataset='test', config='tiny')


def _mirror(tmp_path, files_by_frame):
  root = tmp_path / 'sas'
  for frame, files in files_by_frame.items():
    sf.write_mirror(root, frame, files)
  return root


def test_group_by_frame_orders_frames_and_keeps_object_order():
  a, b = _objects(FRAMES[1]), _objects(FRAMES[0])
  mixed = [a[0], b[0], a[1], b[1]]
  groups = frame_stage.group_by_frame(mixed)
  assert list(groups) == [FRAMES[0], FRAMES[1]]
  assert groups[FRAMES[1]] == [a[0], a[1]]


def test_stage_frame_writes_stamps_and_skips_read_back(tmp_path, good_files):
  objs = _objects(FRAMES[0])
  path = tmp_path / 'f.npz'
  frame_stage.stage_frame(GR, good_files, objs, path)
  staged = frame_stage.StagedFrame.read(path)
  assert list(staged.arrays) == [objs[0].key, objs[1].key]
  stamp = staged.arrays[objs[0].key]['stamp']
  assert stamp.shape == (16, 16, 2) and stamp.dtype == np.float32
  assert stamp.sum(axis=(0, 1)) == pytest.approx([52.0, 53.0], rel=0.02)
  assert not staged.arrays[objs[0].key]['mask'].any()
  assert staged.skips == {
      objs[2].key: ('near_edge', '65% of the stamp is off the frame'),
      objs[3].key: ('off_frame', f'ra={objs[3].ra:.6f} dec={objs[3].dec:.6f}')}
  assert staged.covers(objs)
  assert not staged.covers(objs + _objects(FRAMES[1])[:1])
  with pytest.raises(products.CorruptBand):
    frame_stage.stage_frame(GR, {**good_files, 'g': b'BZh9junk'}, objs,
                            tmp_path / 'g.npz')
  assert not (tmp_path / 'g.npz').exists()


def test_prepare_stages_from_a_mirror_and_resumes(tmp_path, good_files):
  root = _mirror(tmp_path, {f: good_files for f in FRAMES[:2]})
  stage = frame_stage.FrameStage(GR, _ctx(tmp_path, root))
  objs = _objects(FRAMES[0]) + _objects(FRAMES[1])
  report = _report()
  stage.prepare(objs, report)
  assert report.notes == ['2 frames needed, 0 already staged']
  assert report.frames_decoded == 4
  assert report.skipped == {'near_edge': 2, 'off_frame': 2}
  written = dict((o.key, a) for o, a in stage.examples(objs))
  assert set(written) == {objs[i].key for i in (0, 1, 4, 5)}

  again = _report()
  stage.prepare(objs, again)  # Resumed: nothing fetched, skips counted again.
  assert again.notes == ['2 frames needed, 2 already staged']
  assert again.frames_decoded == 0 and again.fetch == {}
  assert again.skipped == report.skipped
  more = objs + sf.objects([(FRAMES[1], *sf.sky(900.0, 900.0), 'STAR')])
  third = _report()
  stage.prepare(more, third)  # FRAMES[1] gained an object: staged again.
  assert third.notes == ['2 frames needed, 1 already staged']
  assert third.frames_decoded == 2
  for obj, arrays in stage.examples(objs):
    np.testing.assert_array_equal(arrays['stamp'], written[obj.key]['stamp'])


def test_frames_stage_into_a_url_and_a_damaged_one_is_staged_again(
    tmp_path, good_files):
  """A memory:// download dir (fsspec): staged files there, never half-read."""
  import fsspec  # pylint: disable=g-import-not-at-top
  memory = fsspec.filesystem('memory')
  root = _mirror(tmp_path, {f: good_files for f in FRAMES[:2]})
  ctx = context_lib.BuildContext(
      workdir=f'memory://stage-test-{tmp_path.name}/skytfds', release=17,
      sas_url=str(root), skyserver_url='unused', ps1_url='unused',
      max_concurrency=4)
  assert ctx.storage == 'fsspec:memory'
  stage = frame_stage.FrameStage(GR, ctx)
  objs = _objects(FRAMES[0]) + _objects(FRAMES[1])
  stage.prepare(objs, _report())
  staged = [stage.staged_path(f).path for f in FRAMES[:2]]
  assert sorted(memory.find(stage.dir.path)) == sorted(staged)
  want = {o.key: a['stamp'] for o, a in stage.examples(objs)}
  local = frame_stage.FrameStage(GR, _ctx(tmp_path, root))
  local.prepare(objs, _report())
  got = {o.key: a['stamp'] for o, a in local.examples(objs)}
  assert set(got) == set(want) and len(want) == 4
  for key, stamp in want.items():
    np.testing.assert_array_equal(stamp, got[key])

  # Damage one staged file and leave a dead writer's temporary name beside.
  memory.pipe_file(staged[0], memory.cat_file(staged[0])[:200])
  temp = f'{stage.dir.path}/.tmp-dead-{FRAMES[1].name}-r301.npz'
  memory.pipe_file(temp, b'half a file')
  again = _report()
  stage.prepare(objs, again)
  assert again.notes == ['2 frames needed, 1 already staged']
  assert again.frames_decoded == 2  # The damaged frame only.
  assert again.skipped == {'near_edge': 2, 'off_frame': 2}
  assert {o.key for o, _ in stage.examples(objs)} == set(want)
  memory.rm(stage.dir.path, recursive=True)


def _counting(monkeypatch, serve):
  """Replaces sas.fetch_frame by serve(frame, band, n) (n: its n-th call)."""
  calls = collections.Counter()

  async def fetch_frame(fetcher, frame, band, release=17, base=None):
    del fetcher, release, base
    calls[frame, band] += 1
    return serve(frame, band, calls[frame, band])

  monkeypatch.setattr(sas, 'fetch_frame', fetch_frame)
  return calls


def test_a_band_corrupt_three_times_in_a_row_is_fetched_until_whole(
    tmp_path, monkeypatch, good_files):
  """Issue 20.13: a corrupt download gets the client's retry budget, not 2 tries."""
  bad = sf.corrupt_bz2(good_files['g'])
  calls = _counting(monkeypatch, lambda frame, band, n: (
      bad if band == 'g' and n <= 3 else good_files[band]))
  stage = frame_stage.FrameStage(GR, _ctx(tmp_path, tmp_path / 'sas'))
  report = _report()
  stage.prepare(_objects(FRAMES[0]), report)
  assert calls[FRAMES[0], 'g'] == 4 and calls[FRAMES[0], 'r'] == 1
  assert report.skipped == {'near_edge': 1, 'off_frame': 1}
  assert len(list(stage.examples(_objects(FRAMES[0])))) == 2


def test_a_band_corrupt_every_time_is_skipped_after_the_budget(
    tmp_path, monkeypatch, good_files):
  bad = sf.corrupt_bz2(good_files['g'])
  calls = _counting(monkeypatch, lambda frame, band, n: (
      bad if band == 'g' and frame == FRAMES[0] else good_files[band]))
  stage = frame_stage.FrameStage(GR, _ctx(tmp_path, tmp_path / 'sas'))
  report = _report()
  objs = _objects(FRAMES[0]) + _objects(FRAMES[1])
  stage.prepare(objs, report)
  budget = http.Fetcher(None).max_attempts
  assert calls[FRAMES[0], 'g'] == budget
  assert report.skipped == {'corrupt_download': 4, 'near_edge': 1, 'off_frame': 1}
  [detail] = {e.split(': ', 1)[1] for e in report.skipped_examples['corrupt_download']}
  assert detail.startswith('003918-3-0213 band g: corrupt bz2 data')
  assert detail.endswith(f'(gave up after {budget} downloads)')
  assert len(list(stage.examples(objs))) == 2  # The other frame's objects.


ODD_FRAMES = {
    # frame: (band files replacing the good ones, skip reason, downloads)
    FRAMES[0]: ({'g': sf.frame_bytes_as_given(sf.header('g', BSCALE='abc'))},
                'bad_frame', 2,
                "003918-3-0213 band g: BSCALE = 'abc' in HDU0 header"),
    FRAMES[1]: ({'r': sf.frame_bytes('r', h=sf.sip_header('r'))}, 'bad_frame', 2,
                '003918-3-0214 band r: the WCS of HDU0 cannot be inverted on the '
                'frame (NoConvergence: '),
    FRAMES[2]: ({'g': sf.frame_bytes_as_given(sf.header('g', **{
        f'C{n:05d}': n for n in range(1000)}))}, 'too_large', 1,
                '003918-3-0215 band g: HDU0 header has more than 1000 cards'),
}


def test_odd_frames_are_counted_skips_and_the_build_goes_on(
    tmp_path, monkeypatch, good_files):
  """Issue 20.2: BSCALE = 'abc', a WCS astropy cannot invert, a huge header."""
  good = catalog.FrameId(3918, 301, 3, 216)
  calls = _counting(monkeypatch, lambda frame, band, n: ODD_FRAMES.get(
      frame, ({},))[0].get(band, good_files[band]))
  stage = frame_stage.FrameStage(GR, _ctx(tmp_path, tmp_path / 'sas'))
  objs = [o for f in [*ODD_FRAMES, good] for o in _objects(f)]
  report = _report()
  stage.prepare(objs, report)
  assert len(list(stage.examples(objs))) == 2  # The good frame's two.
  assert report.skipped == {'bad_frame': 8, 'too_large': 4, 'near_edge': 1,
                            'off_frame': 1}
  for frame, (files, reason, downloads, detail) in ODD_FRAMES.items():
    [band] = files
    assert calls[frame, band] == downloads, frame
    entries = [e for e in report.skipped_examples[reason]
               if e.startswith(frame.name)]
    assert entries and all(detail in e for e in entries), entries


def test_an_object_the_wcs_cannot_place_is_a_staged_skip(tmp_path, good_files,
                                                         monkeypatch):
  objs = _objects(FRAMES[0])
  real_cut = products.stamps.cut_bands

  def cut_bands(frames, ra, dec, size, **kwargs):
    if ra == objs[1].ra:
      raise products.stamps.StampError('003918-3-0213 band g: the WCS cannot '
                                       'map the stamp (NoConvergence: ...)')
    return real_cut(frames, ra, dec, size, **kwargs)

  monkeypatch.setattr(products.stamps, 'cut_bands', cut_bands)
  frame_stage.stage_frame(GR, good_files, objs, tmp_path / 'f.npz')
  staged = frame_stage.StagedFrame.read(tmp_path / 'f.npz')
  assert list(staged.arrays) == [objs[0].key]
  assert staged.skips[objs[1].key][0] == 'bad_frame'


# -- through the emulator: faults change nothing -----------------------------


class _Sky:
  """The emulator's sky interface over fixed synthetic frames."""

  seed = 0
  sas_root = None
  catalog = None

  def __init__(self, files):
    self.files = files

  def frame_ids(self):
    return set(FRAMES[:2])

  def frame_bytes(self, frame, band, release=17):
    del release
    return self.files[frame][band]


def _stage_through_emulator(tmp_path, name, sky, **faults):
  with emulator_app.EmulatorThread(sky, slow_ms=10, retry_after_s=0,
                                   **faults) as emulator:
    ctx = _ctx(tmp_path / name, emulator.sas_url)
    stage = frame_stage.FrameStage(products.FILTERS, ctx)
    objs = _objects(FRAMES[0]) + _objects(FRAMES[1])
    report = _report()
    stage.prepare(objs, report)
    stats = emulator.stats()
  return {o.key: a for o, a in stage.examples(objs)}, report, stats


def test_sdss_filters_stamps_are_byte_identical_with_faults(tmp_path, good_files):
  """Issue 20.13: every frame fetched through 3 corrupt answers in a row
  (and through every default fault kind) gives the stamps of a clean run."""
  sky = _Sky({f: good_files for f in FRAMES[:2]})
  clean, clean_report, _ = _stage_through_emulator(tmp_path, 'clean', sky)
  assert len(clean) == 4 and clean_report.skipped == {'near_edge': 2,
                                                      'off_frame': 2}
  for name, faults in {
      # 3 corrupt copies of every band file, then a whole one.
      'corrupt_in_a_row': dict(fault_rate=1.0, fault_kinds='corrupt_bz2'),
      'every_kind': dict(fault_rate=0.5, seed=3),
  }.items():
    got, report, stats = _stage_through_emulator(tmp_path, name, sky, **faults)
    assert sum(stats['faults'].values()) >= 5, (name, stats['faults'])
    assert report.skipped == clean_report.skipped, (name, report.skipped_examples)
    assert set(got) == set(clean)
    for key, arrays in clean.items():
      for feature, value in arrays.items():
        assert got[key][feature].tobytes() == value.tobytes(), (name, key)
