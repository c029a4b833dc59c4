"""Tests of skytfds.catalog.sampling: strides, the densest-fields choice, caps."""

import pytest

from skytfds import catalog
from skytfds.catalog import sampling
from skytfds.catalog.objects import CatalogError

F = catalog.FrameId


def _obj(objid, cls, frame):
  return catalog.CatalogObject(
      key=str(objid), objid=objid, ra=1.0, dec=1.0, cls=cls, frame=frame,
      mags=(20.0,) * 5, specobjid=0, redshift=0.1, plate=0, mjd=0, fiberid=0,
      source=f'row {objid}')


def test_hash_range_lets_a_little_more_than_wanted_through():
  modulus = catalog.queries.HASH_MODULUS
  for count, wanted in [(2_500_000, 100), (35_000, 100), (20_260, 1000),
                        (632, 60), (1_000_000, 25_000)]:
    lo, hi = sampling.hash_range(count, wanted)
    assert lo == 0
    expected = count * (hi - lo) / modulus
    assert wanted * sampling.MARGIN <= expected < (
        wanted * sampling.MARGIN + count / modulus)  # one unit of the hash


def test_hash_range_top_up_and_small_classes():
  assert sampling.hash_range(632, 10, start=99_000)[0] == 99_000
  assert sampling.hash_range(50, 100) == (0, catalog.queries.HASH_MODULUS)
  assert sampling.hash_range(0, 100) == (0, catalog.queries.HASH_MODULUS)
  with pytest.raises(ValueError):
    sampling.hash_range(10, 0)


def test_hash_windows_are_uniform_over_objids():
  """The objid hash takes a fair share of objects, spread over the fields."""
  objids = [catalog_objid(run, camcol, field, n)
            for run in (94, 1035, 3918) for camcol in range(1, 7)
            for field in range(11, 111) for n in range(1, 8)]
  lo, hi = sampling.hash_range(len(objids), 1000)
  passed = [o for o in objids if lo <= sampling.objid_hash(o) < hi]
  assert 1000 * 0.85 < len(passed) < 1000 * 1.25
  # Independent picks would touch ~820 of the 1,800 fields; a hash that kept
  # a field's consecutive objids together would touch a few hundred.
  assert len({o >> 16 for o in passed}) > 700


def catalog_objid(run, camcol, field, number):
  return 2 << 59 | 301 << 48 | run << 32 | camcol << 29 | field << 16 | number


def test_choose_fields_greedy_balanced():
  counts = {
      F(1, 301, 1, 10): {'GALAXY': 9, 'QSO': 0, 'STAR': 1},
      F(1, 301, 1, 11): {'GALAXY': 1, 'QSO': 1, 'STAR': 1},
      F(2, 301, 3, 40): {'GALAXY': 0, 'QSO': 3, 'STAR': 3},
      F(3, 301, 1, 99): {'GALAXY': 1, 'QSO': 1, 'STAR': 1},
  }
  plan = sampling.choose_fields(counts, per_class=3)
  # 9 galaxies are worth only 3 (the need); field 40 gives 6: it goes first.
  assert [p.frame for p in plan] == [F(2, 301, 3, 40), F(1, 301, 1, 10)]
  assert plan[0].take == {'GALAXY': 0, 'QSO': 3, 'STAR': 3}
  assert plan[1].take == {'GALAXY': 3, 'QSO': 0, 'STAR': 0}


def test_choose_fields_short_class_and_ties():
  counts = {F(5, 301, 2, 2): {'GALAXY': 2, 'QSO': 0, 'STAR': 0},
            F(5, 301, 1, 2): {'GALAXY': 2, 'QSO': 0, 'STAR': 0}}
  plan = sampling.choose_fields(counts, per_class=2)
  assert [p.frame for p in plan] == [F(5, 301, 1, 2)]  # tie: lowest FrameId
  plan = sampling.choose_fields(counts, per_class=3)
  assert sum(p.take['GALAXY'] for p in plan) == 3
  assert sum(p.take['QSO'] for p in plan) == 0  # none to be had


def test_take_planned_and_cap():
  a, b = F(1, 301, 1, 1), F(1, 301, 1, 2)
  objs = [_obj(5, 'STAR', a), _obj(3, 'STAR', a), _obj(4, 'QSO', a),
          _obj(9, 'STAR', b)]
  plan = [sampling.FieldPlan(a, {'GALAXY': 0, 'QSO': 1, 'STAR': 1})]
  assert [o.objid for o in sampling.take_planned(objs, plan)] == [3, 4]
  kept, over = sampling.cap_per_class(objs, 1)
  assert [o.objid for o in kept] == [5, 4]
  assert over == {'STAR': 2}


def test_count_answers_read_and_checked():
  data = b'#Table1\nclass,n\nGALAXY,20000\nSTAR,11000\n'
  assert sampling.class_counts(data, 'src') == {
      'GALAXY': 20000, 'QSO': 0, 'STAR': 11000}
  fields = sampling.field_counts(
      b'#Table1\nrun,rerun,camcol,field,galaxy,qso,star,n\n'
      b'94,301,6,535,3,1,0,4\n', 'src')
  assert fields == {F(94, 301, 6, 535): {'GALAXY': 3, 'QSO': 1, 'STAR': 0}}
  with pytest.raises(CatalogError, match='without column'):
    sampling.class_counts(b'#Table1\nobjid,ra\n1,2\n', 'src')
  with pytest.raises(CatalogError, match="src line 3: n='1e5' is not a count"):
    sampling.class_counts(b'#Table1\nclass,n\nSTAR,1e5\n', 'src')
