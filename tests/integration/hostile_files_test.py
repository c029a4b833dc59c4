"""Hostile files as a user meets them: whole builds that must finish (issue 20).

Each file below was accepted, or ended the build in a traceback, before: a
frame with BSCALE = 'abc', a TAN-SIP WCS that astropy cannot invert, a header
of 400,000 COMMENT cards, pixels of +-3.4e38 next to an object (the cubic
spline overshoots to inf), and JPEG cutouts that libjpeg decodes without an
error although they are damaged (cut in half with FFD9 put back, middle bytes
zeroed, a progressive JPEG cut after its first scan) or padded with COM
segments to 62 MB. Now each is one counted skip whose detail names the file,
and the build writes every other object.

Frames come from a local SAS folder of synthetic frames
(tests/synthetic_frames.py); cutouts from the emulator on 127.0.0.1 over a sky
of synthetic JPEGs. No real data is needed.
"""

import json
import pathlib
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
# pylint: disable=g-import-not-at-top,wrong-import-position
import synthetic_frames as sf
import skytfds  # pylint: disable=unused-import  (registers the builders)
from skytfds import catalog
from skytfds import settings
from skytfds.datasets import products
from skytfds.emulator import app as emulator_app
from skytfds.imaging import frames as frames_lib
from skytfds.services import http
# pylint: enable=g-import-not-at-top,wrong-import-position

ENV_KEYS = (settings.SKYSERVER_URL_ENV, settings.SAS_URL_ENV,
            settings.PS1_URL_ENV, settings.CATALOG_ENV,
            settings.MAX_CONCURRENCY_ENV)
STARS = [(1000.3, 700.2, 40.0), (1500.7, 300.4, 25.0), (400.2, 1100.8, 30.0)]


def _field(n: int) -> catalog.FrameId:
  return catalog.FrameId(3918, 301, 3, n)


def _extreme_pixels() -> np.ndarray:
  """Stars, and a 4x4 patch of +-3.4e38 (finite float32) next to star 0."""
  pixels = sf.image(STARS)
  pixels[697:701, 1003:1007] = [[3.4e38, -3.4e38] * 2, [-3.4e38, 3.4e38] * 2] * 2
  return pixels


# field: (what it is, {band: file} replacing good bands, objects at STARS[k],
#         skip reason of its objects (None: written), detail of the skip).
# The damaged bands are among the i, r, g that both products read.
FRAME_CASES = {
    213: ('good', {}, (0, 1), None, None),
    214: ('bscale_abc', {'i': lambda: sf.frame_bytes_as_given(
        sf.header('i', BSCALE='abc'), sf.image(STARS))}, (0,), 'bad_frame',
          "003918-3-0214 band i: BSCALE = 'abc' in HDU0 header: expected a "
          'finite number'),
    215: ('sip_not_invertible', {'g': lambda: sf.frame_bytes(
        'g', sf.image(STARS), sf.sip_header('g'))}, (0,), 'bad_frame',
          '003918-3-0215 band g: the WCS of HDU0 cannot be inverted on the '
          'frame (NoConvergence: '),
    216: ('400000_comment_cards', {'r': lambda: sf.frame_bytes_with_comments(
        400_000)}, (0,), 'too_large',
          '003918-3-0216 band r: HDU0 header has more than 1000 cards'),
    217: ('float32_extremes_near_an_object', {'i': lambda: sf.frame_bytes(
        'i', _extreme_pixels())}, (0,), 'non_finite',
          '003918-3-0217 band r: '),
    218: ('float32_extremes_elsewhere', {'i': lambda: sf.frame_bytes(
        'i', _extreme_pixels())}, (2,), None, None),
}


def _catalogue(path: pathlib.Path, rows) -> dict:
  """Writes a catalogue CSV of (frame, ra, dec, class); returns key -> row."""
  lines = ['ra,dec,class,run,rerun,camcol,field']
  for frame, ra, dec, cls in rows:
    lines.append(f'{ra:.7f},{dec:.7f},{cls},{frame.run},{frame.rerun},'
                 f'{frame.camcol},{frame.field}')
  path.write_text('\n'.join(lines) + '\n')
  return {o.key: o for o in sf.objects(rows)}


def _build(name: str, root: pathlib.Path, env: dict[str, str]):
  with pytest.MonkeyPatch.context() as mp:
    for key in ENV_KEYS:
      mp.delenv(key, raising=False)
    for key, value in env.items():
      mp.setenv(key, value)
    mp.setitem(http.Fetcher.__init__.__kwdefaults__, 'backoff_s', 0.01)
    builder = tfds.builder(f'{name}/custom', data_dir=root / 'data')
    builder.download_and_prepare(download_dir=root / 'dl')
  report = json.loads((builder.data_path / 'build_report.json').read_text())
  return builder, report


def _examples(builder, feature: str, decoders=None) -> dict:
  """(field, ra, dec rounded to 7 decimals) -> the feature, over every split."""
  out = {}
  for split in builder.info.splits:
    ds = builder.as_dataset(split=split, decoders=decoders)
    for ex in tfds.as_numpy(ds):
      out[int(ex['field']), round(float(ex['ra']), 7),
          round(float(ex['dec']), 7)] = ex[feature]
  return out


@pytest.fixture(scope='module')
def frame_files(tmp_path_factory):
  """A local SAS folder of the FRAME_CASES fields; the catalogue; its objects."""
  root = tmp_path_factory.mktemp('frames')
  good = {b: sf.frame_bytes(b, sf.image(STARS)) for b in 'ugriz'}
  rows, cases = [], []
  for field, (_, replaced, stars, reason, detail) in FRAME_CASES.items():
    files = {**good, **{b: make() for b, make in replaced.items()}}
    sf.write_mirror(root / 'sas', _field(field), files)
    for k in stars:
      rows.append((_field(field), *sf.sky(*STARS[k][:2]), 'STAR'))
      cases.append((reason, detail))
  objects = _catalogue(root / 'catalog.csv', rows)
  # key -> ((field, ra, dec), skip reason or None, detail)
  by_key = {o.key: ((o.frame.field, round(o.ra, 7), round(o.dec, 7)), *case)
            for o, case in zip(objects.values(), cases)}
  env = {settings.SAS_URL_ENV: str(root / 'sas'),
         settings.CATALOG_ENV: str(root / 'catalog.csv'),
         settings.SKYSERVER_URL_ENV: 'http://127.0.0.1:9',
         settings.PS1_URL_ENV: 'http://127.0.0.1:9'}
  return env, by_key


@pytest.mark.parametrize('name, feature', [('sdss_filters', 'stamp'),
                                           ('sdss_rgb', 'image')])
def test_odd_frames_are_counted_skips_and_the_build_finishes(
    frame_files, tmp_path, name, feature):
  env, by_key = frame_files
  builder, report = _build(name, tmp_path, env)
  expected_written = [pos for pos, reason, _ in by_key.values() if not reason]
  assert report['objects_requested'] == len(by_key)
  assert report['objects_written'] == len(expected_written) == 3
  assert report['skipped_by_reason'] == {'bad_frame': 2, 'too_large': 1,
                                         'non_finite': 1}
  for reason, entries in report['skipped_examples'].items():
    for entry in entries:
      key, detail = entry.split(': ', 1)
      _, want_reason, want_detail = by_key[key]
      assert reason == want_reason and detail.startswith(want_detail), entry
  [non_finite] = report['skipped_examples']['non_finite']
  assert ('stamp values are inf, NaN or beyond +-1e+19 nanomaggies after '
          'resampling, in band i') in non_finite
  written = _examples(builder, feature)
  assert sorted(written) == sorted(expected_written)
  for value in written.values():
    assert np.isfinite(value.astype(np.float64)).all()


def test_a_400000_card_header_is_refused_in_a_moment():
  """It took 15.5 s and 847 MB to parse; the cap refuses it before astropy."""
  data = sf.frame_bytes_with_comments(400_000)
  start = time.perf_counter()
  with pytest.raises(frames_lib.FrameTooLarge):
    frames_lib.decode_frame(data, band='r', source='x')
  assert time.perf_counter() - start < 5.0


# -- cutouts through the emulator ---------------------------------------------

CUTOUT_CASES = {  # ra: (what it is, bytes served, skip reason or None)
    50.0: ('whole', lambda: sf.jpeg(seed=1), None),
    51.0: ('whole_progressive', lambda: sf.jpeg(seed=2, progressive=True), None),
    52.0: ('cut_in_half_ffd9', lambda: sf.cut_in_half(sf.jpeg(seed=3)),
           'corrupt_image'),
    53.0: ('middle_zeroed', lambda: sf.zero_middle(sf.jpeg(seed=4)),
           'corrupt_image'),
    54.0: ('progressive_first_scan_only', lambda: sf.cut_after_first_scan(
        sf.jpeg(seed=5, progressive=True)), 'corrupt_image'),
    55.0: ('com_padded_to_62mb', lambda: sf.com_padded(sf.jpeg(seed=6),
                                                       62 * 10**6), 'too_large'),
}


class _CutoutSky:
  """The emulator's sky interface, serving CUTOUT_CASES by ra (and no frames)."""

  seed = 0
  sas_root = None
  catalog = None

  def __init__(self):
    self._made = {}

  def frame_ids(self):
    return set()

  def cutout_jpeg(self, ra, dec, *, scale=0.4, width=240, height=240):
    del dec, scale, width, height
    key = float(int(ra))
    if key not in self._made:
      self._made[key] = CUTOUT_CASES[key][1]()
    return self._made[key]


def test_hostile_cutouts_are_counted_skips_and_the_others_served_bytes(tmp_path):
  sky = _CutoutSky()
  rows = [(_field(213), ra + 0.25, 1.5, 'STAR') for ra in CUTOUT_CASES]
  _catalogue(tmp_path / 'catalog.csv', rows)
  with emulator_app.EmulatorThread(sky) as emulator:
    env = {**emulator.environ(), settings.CATALOG_ENV: str(tmp_path / 'catalog.csv')}
    builder, report = _build('sdss_cutouts', tmp_path, env)
  assert report['skipped_by_reason'] == {'corrupt_image': 3, 'too_large': 1}
  detail = ' '.join(report['skipped_examples']['too_large'])
  assert '62000000 bytes, more than the 524288-byte cap' in detail
  for entry in report['skipped_examples']['corrupt_image']:
    assert 'does not decode as JPEG (corrupt data: ' in entry, entry
    assert entry.endswith('(gave up after 6 downloads)'), entry
  written = _examples(builder, 'image', {'image': tfds.decode.SkipDecoding()})
  assert {ra for _, ra, _ in written} == {50.25, 51.25}
  for (_, ra, _), data in written.items():
    assert data == sky.cutout_jpeg(ra, 1.5)  # Byte for byte as served.
  assert products.SDSS.max_bytes == 512 * 2**10
