"""Tests of the emulator's SQL (skytfds.emulator.sql) and its rows (.tables)."""

import pytest

from skytfds import catalog as catalog_lib
from skytfds.emulator import catalogs
from skytfds.emulator import sql as sql_lib
from skytfds.emulator import tables


@pytest.fixture(scope='module')
def catalog():
  return catalogs.load_catalog(None, seed=1)


def test_sql_filters_order_aliases(catalog):
  database = sql_lib.Database(tables.build_rows(catalog.objects))
  columns, got = database.execute(
      "SELECT TOP 4 p.objID AS id, s.z AS redshift FROM SpecObj s JOIN "
      "PhotoObj p ON p.objid = s.bestobjid WHERE (s.class = 'galaxy' OR "
      "s.class = 'QSO') AND p.g NOT BETWEEN 30 AND 40 AND p.r < 21 "
      "ORDER BY redshift DESC;")
  assert columns == ['id', 'redshift']
  want = sorted((o for o in catalog.objects if o.cls in ('GALAXY', 'QSO')
                 and o.mags[2] < 21), key=lambda o: -o.redshift)[:4]
  assert [r[0] for r in got] == [o.objid for o in want]
  _, got = database.execute('select top 2 objid from photoobj where camcol '
                            'in (3, 4) and field >= 100')
  assert len(got) == 2 and got == sorted(got)


def test_sql_derived_spectro_ids_unique(catalog):
  rows = tables.build_rows(catalog.objects)
  keys = {(r[('SpecObj', 'plate')], r[('SpecObj', 'mjd')],
           r[('SpecObj', 'fiberid')]) for r in rows}
  assert len(keys) == len(rows)
  for r in rows:
    assert tables.decode_specobjid(r[('SpecObj', 'specobjid')]) == (
        r[('SpecObj', 'plate')], r[('SpecObj', 'mjd')],
        r[('SpecObj', 'fiberid')])


def test_sql_unsigned_specobjid_exact_and_comparable():
  csv = ('objid,ra,dec,u,g,r,i,z,class,redshift,plate,mjd,fiberid\n'
         '1237656567040704514,10,0,18,17,16,15,15,STAR,0,9000,57000,5\n'
         '1237656567040704515,10,0,18,17,16,15,15,QSO,1,300,52000,5\n')
  rows = tables.build_rows(catalog_lib.parse_catalog(csv, 'two.csv').objects)
  database = sql_lib.Database(rows)
  big = tables.encode_specobjid(9000, 5, 57000)
  assert big >= 2**63
  _, got = database.execute('SELECT s.specobjid FROM SpecObj s ORDER BY '
                            's.specobjid DESC')
  assert got == [[big], [tables.encode_specobjid(300, 5, 52000)]]
  _, got = database.execute(f'SELECT objid FROM PhotoObj WHERE specobjid = '
                            f'{big}')
  assert got == [[1237656567040704514]]


def test_sql_t_sql_spellings(catalog):
  database = sql_lib.Database(tables.build_rows(catalog.objects))
  columns, got = database.execute(
      'SELECT TOP 2 [p].[objID], p.ra FROM dbo.PhotoPrimary AS p '
      "WHERE p.type = 6 -- stars\n ORDER BY p.objid;")
  assert columns == ['objID', 'ra'] and len(got) == 2
  with pytest.raises(sql_lib.SqlError, match='one SELECT'):
    database.execute('SELECT TOP 1 objid FROM PhotoObj; DROP TABLE PhotoObj')
  with pytest.raises(sql_lib.SqlError, match='PERCENT'):
    database.execute('SELECT TOP 10 PERCENT objid FROM PhotoObj')
