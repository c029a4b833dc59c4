"""emulator.field_labels and Sky.background_in: a simulated field's labelled sources."""

import math
import pathlib
import sys

import numpy as np
import pytest

import emulator_testing as et
from skytfds import catalog as catalog_lib
from skytfds import survey
from skytfds.emulator import field_labels
from skytfds.emulator import fields
from skytfds.emulator import sas_layout
from skytfds.emulator import sky as sky_lib

FRAME = et.STARS_AND_QSOS[1]
TOOLS = pathlib.Path(__file__).resolve().parents[1] / 'tools'


@pytest.fixture(scope='module')
def sky():
  return et.sky()


def test_background_lies_inside_the_frame_and_is_what_is_painted(sky):
  geometry = sky.geometry(FRAME)
  inside = sky.background_in(FRAME, margin_px=48)
  assert len(inside) > 200
  for source in inside[::25]:
    assert geometry.contains(source.ra, source.dec) >= 48
  painted = {(s.ra, s.dec)
             for s in sky.sources_near(*geometry.center, fields.FRAME_RADIUS_DEG)}
  assert {(s.ra, s.dec) for s in inside} <= painted
  # No catalogue object among them: those carry spectroscopic classes.
  catalogue = {(o.ra, o.dec) for o in sky.catalog.by_frame()[FRAME]}
  assert not catalogue & {(s.ra, s.dec) for s in inside}
  # A smaller margin keeps more of them, none of the first set lost.
  assert len(sky.background_in(FRAME)) > len(inside)


def _concentration(image, x, y):
  """Flux within 1.5 px over flux within 5 px of (x, y)."""
  rows, cols = np.mgrid[-6:7, -6:7]
  window = image[int(round(y)) - 6:int(round(y)) + 7,
                 int(round(x)) - 6:int(round(x)) + 7]
  dist = np.hypot(cols + round(x) - x, rows + round(y) - y)
  return window[dist <= 1.5].sum() / window[dist <= 5].sum()


def test_labels_say_what_the_frame_shows(sky):
  # STAR rows are point sources on the rendered frame, GALAXY rows extended:
  # among bright, isolated sources the stars' light is far more concentrated.
  rows = field_labels.label_rows(sky, [FRAME])
  image, wcs = sky.render_band(FRAME, 'r')
  everything = sky.sources_near(*sky.geometry(FRAME).center,
                                fields.FRAME_RADIUS_DEG)
  xyz = fields.unit([s.ra for s in everything], [s.dec for s in everything])
  concentration = {'STAR': [], 'GALAXY': []}
  for row in rows:
    if not 16.5 < row['r'] < 19.5:
      continue
    near = xyz @ fields.unit(row['ra'], row['dec']) > math.cos(
        math.radians(8 / 3600))
    if near.sum() > 1:
      continue                              # a neighbour within 8"
    x, y = wcs.wcs_world2pix([[row['ra'], row['dec']]], 0)[0]
    concentration[row['class']].append(_concentration(image, x, y))
  assert len(concentration['STAR']) >= 5 and len(concentration['GALAXY']) >= 5
  assert min(concentration['STAR']) > np.median(concentration['GALAXY'])


def test_rows_keep_the_r_range_and_list_each_source_once(sky):
  frames = [FRAME, FRAME]                  # the same field twice: no repeats
  rows = field_labels.label_rows(sky, frames, r_range=(18.0, 21.0))
  assert rows and all(18.0 <= row['r'] <= 21.0 for row in rows)
  assert len({(row['ra'], row['dec']) for row in rows}) == len(rows)
  assert {row['class'] for row in rows} == {'STAR', 'GALAXY'}
  assert all((row['run'], row['rerun'], row['camcol'], row['field']) == FRAME
             for row in rows)
  by_position = {(s.ra, s.dec): s.galaxy for s in sky.background_in(FRAME)}
  assert all(by_position[(row['ra'], row['dec'])] == (row['class'] == 'GALAXY')
             for row in rows)


def test_the_csv_is_a_labelled_catalogue(sky):
  rows = field_labels.label_rows(sky, [FRAME])
  parsed = catalog_lib.parse_catalog(field_labels.labels_csv(rows), 'labels')
  assert len(parsed.objects) == len(rows)
  assert {obj.frame for obj in parsed.objects} == {FRAME}
  assert ([obj.cls for obj in parsed.objects]
          == [row['class'] for row in rows])
  np.testing.assert_allclose([obj.mags[2] for obj in parsed.objects],
                             [row['r'] for row in rows], atol=1e-4)
  np.testing.assert_allclose([obj.ra for obj in parsed.objects],
                             [row['ra'] for row in rows], atol=1e-7)


def test_densest_fields_leave_out_the_fields_served_real(tmp_path):
  catalog = et.catalog()
  simulated = sky_lib.Sky(catalog, seed=0, sas_root=None)
  densest = field_labels.densest_fields(simulated, 3)
  counts = [len(catalog.by_frame()[frame]) for frame in densest]
  assert counts == sorted(counts, reverse=True) and len(densest) == 3
  assert all(len(objects) <= counts[-1]
             for frame, objects in catalog.by_frame().items()
             if frame not in densest)
  # A mirror that holds the densest field's g frame: its sources are real.
  path = tmp_path / sas_layout.frame_path(survey.DEFAULT_RELEASE,
                                          densest[0].run, densest[0].camcol,
                                          densest[0].field, 'g')
  path.parent.mkdir(parents=True)
  path.write_bytes(b'')
  mirrored = sky_lib.Sky(catalog, seed=0, sas_root=tmp_path)
  assert field_labels.densest_fields(mirrored, 3) == densest[1:] + [
      field_labels.densest_fields(simulated, 4)[3]]


def test_sky_server_writes_the_labels(tmp_path, monkeypatch, capsys):
  et.catalog()
  monkeypatch.syspath_prepend(str(TOOLS))
  import sky_server  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  out = tmp_path / 'labels.csv'
  assert sky_server.main(['--field_labels', '1', str(out)]) == 0
  parsed = catalog_lib.parse_catalog(out.read_bytes(), str(out))
  assert len(parsed.objects) > 200
  assert f'saved {out}: {len(parsed.objects)} objects' in capsys.readouterr().out
  with pytest.raises(SystemExit):
    sky_server.main(['--field_labels', '0', str(out)])
