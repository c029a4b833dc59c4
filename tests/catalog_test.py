"""Tests for skytfds.catalog: query text, objid decoding, parsing, checks."""

import csv
import io
import json
import math
import pathlib

import pytest

from skytfds import catalog
from skytfds.catalog import CatalogError
from skytfds.catalog import objects

DATA = pathlib.Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
SPECOBJ = DATA / 'catalogs' / 'specobj_35k.csv'
EXPORT = DATA / 'catalogs' / 'skyserver_export_dr14_10k.csv'
LABELS = DATA / 'labels' / 'photometric_003918-3-0213.csv'

# 1237645879579967591: run 94, rerun 301, camcol 6, field 535 (first row of
# specobj_35k.csv); 1237645879580098737 is in run 94, camcol 6, field 537.
OBJID = 1237645879579967591
OBJID2 = 1237645879580098737
HEADER = 'objid,ra,dec,u,g,r,i,z,class,redshift'
ROW1 = (f'{OBJID},54.92850031,1.27188765,20.77,18.52,17.39,16.88,16.50,'
        'GALAXY,0.13')
ROW2 = f'{OBJID2},55.296197,1.27169206,20.19,20.11,20.00,19.53,19.36,QSO,1.83'
FRAME_HEADER = 'ra,dec,run,rerun,camcol,field,class'
FRAME_ROW = '229.4681027,42.8323403,3918,301,3,213,STAR'


def need_data():
  if not DATA.is_dir():
    pytest.skip('../shared/data not found: real SDSS frames are needed')


def parse(text, source='cat.csv'):
  return catalog.parse_catalog(text.encode('utf-8'), source)


def error_of(text, source='cat.csv'):
  with pytest.raises(CatalogError) as info:
    catalog.parse_catalog(
        text.encode('utf-8') if isinstance(text, str) else text, source)
  return str(info.value)


def make_objid(run, camcol, field, number=1, rerun=301, sky_version=2):
  return (sky_version << 59 | rerun << 48 | run << 32 | camcol << 29
          | field << 16 | number)


# --------------------------------------------------------------------------
# Query text.

DEFAULT_STAR_QUERY = (
    'SELECT TOP 100 p.objid, p.ra, p.dec, p.u, p.g, p.r, p.i, p.z, p.run, '
    'p.rerun, p.camcol, p.field, s.specobjid, s.class, s.z AS redshift, '
    's.plate, s.mjd, s.fiberid FROM PhotoObj AS p JOIN SpecObj AS s ON '
    "s.bestobjid = p.objid WHERE s.class = 'STAR' AND s.zWarning = 0 AND "
    'p.r BETWEEN 0 AND 22')


def test_class_query_default_text():
  assert catalog.class_query('STAR', 100) == DEFAULT_STAR_QUERY
  assert catalog.class_query('star', 100, release=12) == DEFAULT_STAR_QUERY


def test_class_query_never_sorts_and_keeps_reliable_spectra():
  for sql in (catalog.class_query('GALAXY', 25_000, hash_range=(0, 9)),
              catalog.field_count_query(), catalog.class_count_query()):
    assert 's.zWarning = 0' in sql
  assert 'ORDER BY' not in catalog.class_query('GALAXY', 25_000,
                                               hash_range=(0, 9))
  assert 'ORDER BY' not in catalog.class_count_query()


def test_class_query_hash_range():
  sql = catalog.class_query('QSO', 50, hash_range=(300, 4500))
  assert sql.endswith("WHERE s.class = 'QSO' AND s.zWarning = 0 AND "
                      'p.r BETWEEN 0 AND 22 AND '
                      '((p.objid % 1000003) * 618034) % 1000003 '
                      'BETWEEN 300 AND 4499')
  with pytest.raises(CatalogError, match=r'hash_range\[1\]=300'):
    catalog.class_query('QSO', 50, hash_range=(300, 300))
  with pytest.raises(CatalogError, match=r'hash_range\[0\]=-1'):
    catalog.class_query('QSO', 50, hash_range=(-1, 10))


def test_class_query_cuts_and_region():
  sql = catalog.class_query(
      'QSO', 2500, release=14,
      mag_limits={'u': (0, 19.6), 'g': (0, 20), 'r': (0.0, 19.5),
                  'i': (0, 19), 'z': (0, 18.25)},
      region=(120, 130.5, -5, 10))
  assert sql.startswith('SELECT TOP 2500 p.objid, p.ra, ')
  assert sql.endswith(
      "WHERE s.class = 'QSO' AND s.zWarning = 0 AND p.u BETWEEN 0 AND 19.6 AND "
      'p.g BETWEEN 0 AND 20 AND p.r BETWEEN 0 AND 19.5 AND '
      'p.i BETWEEN 0 AND 19 AND p.z BETWEEN 0 AND 18.25 AND '
      'p.ra BETWEEN 120 AND 130.5 AND p.dec BETWEEN -5 AND 10')


def test_class_query_without_cuts():
  assert catalog.class_query('GALAXY', 5, mag_limits=None).endswith(
      "WHERE s.class = 'GALAXY' AND s.zWarning = 0")
  assert catalog.class_query('GALAXY', 5, mag_limits={}).endswith(
      "WHERE s.class = 'GALAXY' AND s.zWarning = 0")


def test_count_queries_text():
  assert catalog.class_count_query(release=16) == (
      'SELECT s.class, COUNT(*) AS n FROM PhotoObj AS p JOIN SpecObj AS s ON '
      's.bestobjid = p.objid WHERE s.zWarning = 0 AND p.r BETWEEN 0 AND 22 '
      'GROUP BY s.class')
  sql = catalog.field_count_query(min_objects=3, top=500)
  assert sql.startswith('SELECT TOP 500 p.run, p.rerun, p.camcol, p.field, '
                        "SUM(CASE WHEN s.class = 'GALAXY' THEN 1 ELSE 0 END) "
                        'AS galaxy, ')
  assert sql.endswith('GROUP BY p.run, p.rerun, p.camcol, p.field '
                      'HAVING COUNT(*) >= 3 ORDER BY n DESC')


def test_field_objects_query():
  sql = catalog.field_objects_query([catalog.FrameId(3918, 301, 3, 213),
                                     catalog.FrameId(94, 301, 6, 535)])
  assert sql.endswith(
      'WHERE s.zWarning = 0 AND p.r BETWEEN 0 AND 22 AND ('
      '(p.run = 3918 AND p.rerun = 301 AND p.camcol = 3 AND p.field = 213) OR '
      '(p.run = 94 AND p.rerun = 301 AND p.camcol = 6 AND p.field = 535))')
  with pytest.raises(CatalogError, match='give 1 to 40 fields'):
    catalog.field_objects_query([])
  with pytest.raises(CatalogError, match='run='):
    catalog.field_objects_query([('1; DROP TABLE x', 301, 1, 1)])


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(cls='BLAZAR', top=10), "class 'BLAZAR' is not known; use one of "
     'GALAXY, QSO, STAR'),
    (dict(cls='STAR', top=0), 'top=0: give a whole number of objects from 1 '
     'to 500,000'),
    (dict(cls='STAR', top=500_001), 'top=500001'),
    (dict(cls='STAR', top=True), 'top=True'),
    (dict(cls='STAR', top=10.0), 'top=10.0'),
    (dict(cls='STAR', top=10, release=11), 'release=11: use a data release '
     'from DR12 to DR17'),
    (dict(cls='STAR', top=10, release='17'), "release='17'"),
    (dict(cls='STAR', top=10, mag_limits={'y': (0, 20)}),
     "mag_limits: unknown band(s) 'y'; use u, g, r, i, z"),
    (dict(cls='STAR', top=10, mag_limits={'r': (22, 14)}),
     "mag_limits['r'] = (22, 14): the first (brightest) magnitude must not "
     'exceed the second'),
    (dict(cls='STAR', top=10, mag_limits={'r': (0, math.nan)}),
     "mag_limits['r']: nan is not a finite number"),
    (dict(cls='STAR', top=10, mag_limits={'r': ('0; DROP TABLE x', 20)}),
     "mag_limits['r']: '0; DROP TABLE x' is not a number"),
    (dict(cls='STAR', top=10, region=(350, 10, 0, 5)),
     'region ra 350.0..10.0: need 0 <= ra_min < ra_max <= 360 degrees (for a '
     'region across ra = 0, run two queries'),
    (dict(cls='STAR', top=10, region=(0, 10, -95, 5)),
     'region dec -95.0..5.0: need -90 <= dec_min < dec_max <= 90 degrees'),
    (dict(cls='STAR', top=10, region=(0, 10, 5)),
     'region (0, 10, 5): give (ra_min, ra_max, dec_min, dec_max)'),
])
def test_class_query_refuses_bad_parameters(kwargs, fragment):
  with pytest.raises(CatalogError) as info:
    catalog.class_query(kwargs.pop('cls'), kwargs.pop('top'), **kwargs)
  assert fragment in str(info.value)


# --------------------------------------------------------------------------
# objid decoding and FrameId.


def test_decode_objid():
  assert catalog.decode_objid(OBJID) == catalog.FrameId(94, 301, 6, 535)
  assert catalog.decode_objid(OBJID).name == '000094-6-0535'
  frame = catalog.FrameId(run=3918, rerun=301, camcol=3, field=213)
  assert frame.name == '003918-3-0213'
  for run, camcol, field, rerun in [(3918, 3, 213, 301), (1, 1, 0, 0),
                                    (65535, 6, 4095, 2047)]:
    objid = make_objid(run, camcol, field, number=0xFFFF, rerun=rerun) | 1 << 28
    assert catalog.decode_objid(objid) == (run, rerun, camcol, field)


def test_numpy_numbers_are_accepted():
  np = pytest.importorskip('numpy')
  assert catalog.decode_objid(np.uint64(OBJID)) == (94, 301, 6, 535)
  assert catalog.class_query('STAR', np.int64(100), mag_limits={
      'r': (np.float32(0), np.float64(22))}) == DEFAULT_STAR_QUERY


@pytest.mark.parametrize('value, fragment', [
    (-1, 'outside the unsigned 64-bit range'),
    (2**64, 'outside the unsigned 64-bit range'),
    (1.237645879579967e18, 'is not an integer'),
    ('1237645879579967591', 'is not an integer'),
    (True, 'is not an integer'),
])
def test_decode_objid_refuses_non_ids(value, fragment):
  with pytest.raises(CatalogError) as info:
    catalog.decode_objid(value)
  assert fragment in str(info.value)


# --------------------------------------------------------------------------
# The real catalogues.


def test_specobj_35k_all_rows_exact():
  need_data()
  data = SPECOBJ.read_bytes()
  cat = catalog.parse_catalog(data, 'specobj_35k.csv')
  rows = list(csv.DictReader(io.StringIO(data.decode('ascii'))))
  assert len(rows) == len(cat.objects) == 35_000
  assert {o.objid for o in cat.objects} == {int(r['objid']) for r in rows}
  assert len({o.key for o in cat.objects}) == 35_000
  for obj, row in zip(cat.objects, rows):
    assert obj.key == row['objid']
    assert str(obj.objid) == row['objid']
    value = int(row['objid'])
    assert obj.frame == (value >> 32 & 0xFFFF, value >> 48 & 0x7FF,
                         value >> 29 & 7, value >> 16 & 0xFFF)
    assert obj.ra == float(row['ra']) and obj.dec == float(row['dec'])
    assert obj.cls == row['class']
    assert obj.specobjid == 0 and obj.plate == 0
  assert cat.class_counts() == {'GALAXY': 20_260, 'QSO': 3_716, 'STAR': 11_024}
  first = cat.objects[0]
  assert first.objid == OBJID
  assert first.frame == catalog.FrameId(94, 301, 6, 535)
  assert first.mags == (20.771816, 18.526823, 17.39205, 16.887115, 16.500648)
  assert first.redshift == 0.131787
  assert first.source == 'specobj_35k.csv line 2'
  # Sentinel magnitudes (-9999) are NaN, and counted.
  nan_mags = sum(math.isnan(m) for o in cat.objects for m in o.mags)
  assert nan_mags == 266
  assert cat.notes == [
      '266 sentinel magnitudes (<0 or >40, e.g. -9999) read as missing (NaN).']
  frames = cat.by_frame()
  assert len(frames) == 5_467
  assert all(f.rerun == 301 and 1 <= f.camcol <= 6 for f in frames)
  # SOURCES.md: frame 001035-6-0017 (in sas/) holds one STAR and one GALAXY.
  in_frame = frames[catalog.FrameId(1035, 301, 6, 17)]
  assert sorted(o.cls for o in in_frame) == ['GALAXY', 'STAR']


def test_skyserver_export_falls_back_to_plate_mjd_fiberid():
  need_data()
  cat = catalog.parse_catalog(EXPORT.read_bytes(), 'export.csv')
  assert len(cat.objects) == 10_000
  assert len({o.key for o in cat.objects}) == 10_000
  assert cat.class_counts() == {'GALAXY': 4_998, 'QSO': 850, 'STAR': 4_152}
  first = cat.objects[0]
  assert first.key == '3306-54922-491'
  assert (first.plate, first.mjd, first.fiberid) == (3306, 54922, 491)
  assert first.frame == catalog.FrameId(752, 301, 4, 267)
  assert all(o.objid == 0 and o.specobjid == 0 for o in cat.objects)
  assert len(cat.notes) == 1
  assert cat.notes[0].startswith(
      '10000 objid values were rounded by a spreadsheet (e.g. '
      '1.23764870457714E+018 on line 2; 3530 distinct among 10000): keys are '
      "'plate-mjd-fiberid' instead")
  assert 'Export the id columns as text' in cat.notes[0]


def test_skyserver_export_without_plate_columns_is_refused():
  need_data()
  rows = list(csv.reader(io.StringIO(EXPORT.read_text('ascii'))))
  keep = [i for i, name in enumerate(rows[0])
          if name not in ('plate', 'mjd', 'fiberid')]
  out = io.StringIO()
  csv.writer(out, lineterminator='\n').writerows(
      [[row[i] for i in keep] for row in rows])
  message = error_of(out.getvalue(), 'export.csv')
  assert message.startswith('export.csv: 1 problem(s) in the catalogue')
  assert ("line 2, column objid: '1.23764870457714E+018' was rounded by a "
          'spreadsheet or a float (10000 of 10000 objids look like this, 3530 '
          'distinct): such ids merge different objects and cannot be keys. '
          'Export the objid and specobjid columns as text') in message
  assert message.endswith(
      'or include unique plate, mjd, fiberid columns to use '
      "'plate-mjd-fiberid' keys (this file has no plate, mjd, fiberid "
      'columns).')


def test_photometric_labels_without_objid():
  need_data()
  cat = catalog.parse_catalog(LABELS.read_bytes(), 'labels.csv')
  assert len(cat.objects) == 643
  assert cat.class_counts() == {'GALAXY': 372, 'QSO': 0, 'STAR': 271}
  assert {o.frame for o in cat.objects} == {catalog.FrameId(3918, 301, 3, 213)}
  assert {o.frame.name for o in cat.objects} == {'003918-3-0213'}
  assert len({o.key for o in cat.objects}) == 643
  assert cat.objects[0].key == '003918-3-0213_229.4681027+42.8323403'
  assert all(o.objid == 0 for o in cat.objects)
  assert all(all(math.isnan(m) for m in o.mags) for o in cat.objects)
  assert cat.notes == [
      "no objid column: keys are '<run6>-<camcol>-<field4>_<ra><dec>' "
      '(degrees, 7 decimals) and objid is 0 (unknown).']


# --------------------------------------------------------------------------
# Formats.


def test_skyserver_csv_with_table_line_and_all_columns():
  spec = 2**63 + 12345  # specObjIDs may exceed 2**63.
  text = ('#Table1\n'
          'objID,ra,dec,u,g,r,i,z,run,rerun,camcol,field,specObjID,class,'
          'redshift,plate,mjd,fiberID\n'
          f'{OBJID},54.92850031,1.27188765,20.7,18.5,17.3,16.8,16.5,94,301,6,'
          f'535,{spec},galaxy,0.131787,1234,52000,321\n')
  cat = parse(text, 'SkyServer DR17')
  (obj,) = cat.objects
  assert obj == catalog.CatalogObject(
      key=str(OBJID), objid=OBJID, ra=54.92850031, dec=1.27188765,
      cls='GALAXY', frame=catalog.FrameId(94, 301, 6, 535),
      mags=(20.7, 18.5, 17.3, 16.8, 16.5), specobjid=spec, redshift=0.131787,
      plate=1234, mjd=52000, fiberid=321, source='SkyServer DR17 line 3')
  assert cat.notes == [] and cat.source == 'SkyServer DR17'


def test_crlf_bom_unknown_columns_and_text_input():
  text = '\ufeffObjId , RA,Dec,Class,comment\r\n' + \
      f'{OBJID},54.9,1.27,Star,"a, b"\r\n'
  cat = catalog.parse_catalog(text, 'c.csv')
  assert [(o.objid, o.cls, o.source) for o in cat.objects] == [
      (OBJID, 'STAR', 'c.csv line 2')]
  cat = catalog.parse_catalog(text.encode('utf-8'), 'c.csv')
  assert len(cat.objects) == 1
  assert all(math.isnan(m) for m in cat.objects[0].mags)
  assert math.isnan(cat.objects[0].redshift)


def test_skyserver_json_exact_ids():
  spec = 18_000_000_000_000_000_001  # Above 2**63, below 2**64.
  assert 2**63 < spec < 2**64
  body = ('[{"TableName":"Table1","Rows":['
          f'{{"objid":{OBJID},"ra":54.92850031,"dec":1.27188765,"u":20.771816,'
          '"g":18.526823,"r":17.39205,"i":16.887115,"z":16.500648,"run":94,'
          '"rerun":301,"camcol":6,"field":535,'
          f'"specobjid":{spec},"class":"GALAXY","redshift":0.131787,'
          '"plate":1,"mjd":51608,"fiberid":2},'
          f'{{"objid":{OBJID2},"ra":55.296197,"dec":1.27169206,"u":null,'
          '"g":-9999,"r":20.0,"i":19.5,"z":19.3,"run":94,"rerun":301,'
          '"camcol":6,"field":537,"specobjid":0,"class":"QSO",'
          '"redshift":1.837838,"plate":1,"mjd":51608,"fiberid":3}]}]')
  cat = parse(body, 'dr17.json')
  assert [o.objid for o in cat.objects] == [OBJID, OBJID2]
  assert cat.objects[0].specobjid == spec
  assert cat.objects[0].frame == catalog.FrameId(94, 301, 6, 535)
  assert cat.objects[0].source == 'dr17.json row 1'
  assert cat.objects[1].cls == 'QSO'
  assert math.isnan(cat.objects[1].mags[0])
  assert math.isnan(cat.objects[1].mags[1])
  assert cat.objects[1].mags[2:] == (20.0, 19.5, 19.3)
  assert cat.notes == [
      '1 sentinel magnitudes (<0 or >40, e.g. -9999) read as missing (NaN).']


def test_plain_json_list_and_columns_rows_form():
  rows = [{'objID': str(OBJID), 'ra': 54.9, 'dec': 1.2, 'class': 'star'}]
  cat = parse(json.dumps(rows), 'rows.json')
  assert [(o.objid, o.cls) for o in cat.objects] == [(OBJID, 'STAR')]
  table = {'TableName': 'Table1', 'Columns': [{'Name': 'objid'}, 'ra', 'dec',
                                              'class'],
           'Rows': [[OBJID, 54.9, 1.2, 'QSO']]}
  cat = parse(json.dumps(table), 'table.json')
  assert [(o.objid, o.cls) for o in cat.objects] == [(OBJID, 'QSO')]


def test_json_float_objid_is_refused():
  body = f'[{{"objid":{float(OBJID)!r},"ra":54.9,"dec":1.2,"class":"STAR"}}]'
  message = error_of(body, 'f.json')
  assert ("row 1, column objid: '1.2376458795799675e+18' was rounded by a "
          'spreadsheet or a float') in message


@pytest.mark.parametrize('body, fragment', [
    ('[{"objid": 1,', 'f.json: not valid JSON at line 1 column'),
    ('{"Message": "oops"}', 'f.json: JSON without catalogue rows (keys: '
     'Message); expected SkyServer JSON'),
    ('[1, 2]', 'f.json: JSON without catalogue rows; expected'),
    ('[{"TableName":"Table1","Rows":[]}]', 'f.json: the catalogue is empty '
     '(no rows); the query matched no objects: widen the cuts or the region.'),
    ('[]', 'f.json: the catalogue is empty (no rows)'),
])
def test_bad_json(body, fragment):
  assert fragment in error_of(body, 'f.json')


ROW_JSON = f'"objid":"{OBJID}","ra":54.9,"dec":1.2,"class":"STAR"'


@pytest.mark.parametrize('body, expected', [
    # 200,000 nested brackets: RecursionError inside json.loads before.
    ('[' * 200_000, 'f.json: JSON nested too deeply to read (hundreds of '
     'levels of [ or {); a catalogue is at most 4 levels deep ([{"Rows": '
     '[{...}]}]): send SkyServer JSON (format=json) or CSV.'),
    ('{"a":' * 200_000, 'f.json: JSON nested too deeply to read'),
    ('[{"TableName":"Table1","Columns":' + '[' * 200_000,
     'f.json: JSON nested too deeply to read'),
    # "Columns": true was a TypeError.
    ('[{"TableName":"Table1","Columns":true,"Rows":[[1,2,3,4]]}]',
     'f.json: JSON "Columns" is the JSON value true, not a list of column '
     'names; give "Columns": ["objid", "ra", ...] or leave it out and give '
     'each row as an object.'),
    ('{"Columns":{"Name":"ra"},"Rows":[[1]]}',
     'f.json: JSON "Columns" is a JSON object, not a list of column names'),
    ('{"Columns":["objid",{"Name":["ra"]}],"Rows":[[1, 2]]}',
     'f.json: JSON "Columns" entry 2 is a JSON object, not a column name (a '
     'string, or {"Name": "..."}).'),
    ('{"Columns":["objid",null],"Rows":[[1, 2]]}',
     'f.json: JSON "Columns" entry 2 is JSON null, not a column name'),
    ('{"Rows":"abc"}', 'f.json: JSON "Rows" is the JSON value \'abc\', not a '
     'list of rows; expected SkyServer JSON [{"TableName": "Table1", "Rows": '
     '[{...}]}] or a list of row objects.'),
    ('[{"Rows":{"ra":1}}]', 'f.json: JSON "Rows" is a JSON object, not a list '
     'of rows'),
    (f'{{"Rows":[{{{ROW_JSON}}},7]}}', "f.json: row 2 is the JSON value '7', "
     'not an object of column values; expected SkyServer JSON'),
    (f'{{"Rows":[{{{ROW_JSON}}},null]}}', 'f.json: row 2 is JSON null, not an '
     'object of column values'),
    (f'{{"Rows":[[1,2]]}}', 'f.json: row 1 is a JSON list, not an object of '
     'column values; expected'),
    ('{"Columns":["objid","ra","dec","class"],"Rows":[true]}',
     'f.json: row 1 is the JSON value true, not an object of column values or '
     'a list in the order of "Columns"; expected'),
    (f'[{{{ROW_JSON},"ra":55}}]', "f.json: row 1 has the key 'ra' twice (JSON "
     'keeps only the last value); keep one of them.'),
    ('[{"TableName":"a","TableName":"b","Rows":[]}]', "f.json: the JSON table "
     "has the key 'TableName' twice; keep one of them."),
    ('[' + ','.join(f'{{"c{i}":1}}' for i in range(1001)) + ']',
     'f.json: the JSON row objects have more than 1000 different keys; a '
     'catalogue has one key per column'),
    # SkyServer's own error object, when it comes with status 200.
    ('{"ErrorCode":500,"ErrorType":"SqlException","ErrorMessage":"Invalid '
     'column name \'bogus\'."}', 'f.json: the server answered with an error '
     'instead of a catalogue: "Invalid column name \'bogus\'.". Fix the SQL'),
])
def test_malformed_json_is_one_catalog_error(body, expected):
  assert expected in error_of(body, 'f.json')


@pytest.mark.parametrize('value, kind', [
    ('[1, 2]', "'[...]'"), ('{"deg": 54.9}', "'{...}'"),
    ('[' * 900 + ']' * 900, "'[...]'"),  # Deep, but within the JSON reader.
])
def test_json_list_or_object_as_a_value(value, kind):
  body = (f'[{{"objid":"{OBJID}","ra":{value},"dec":1.2,"class":"STAR"}},'
          f'{{"objid":"{OBJID2}","ra":55.3,"dec":1.2,"class":"QSO",'
          f'"comment":{value}}}]')
  message = error_of(body, 'f.json')
  assert message == (
      'f.json: 1 problem(s) in the catalogue; fix them and load it again:\n'
      f'  row 1, column ra: {kind} is a JSON list or object where one value '
      'belongs; give a single number or string (null when unknown).')
  # In a column that is not read, it is ignored like the column.
  cat = parse(body.replace(f'"ra":{value}', '"ra":54.9'), 'f.json')
  assert [o.objid for o in cat.objects] == [OBJID, OBJID2]


def test_huge_json_numbers_are_checked_as_text():
  digits = '9' * 100_000  # int() of it would be refused (4300 digits at most)
  body = (f'[{{"objid":{digits},"ra":1{"0" * 5000},"dec":1e999,"class":"STAR",'
          f'"redshift":1e400,"u":{digits}}}]')
  message = error_of(body, 'f.json')
  assert ("row 1, column ra: '1000000000000000000000000000000000000000...' is "
          'not a finite number') in message
  assert "row 1, column dec: '1e999' is not a finite number" in message
  assert ("row 1, column objid: '9999999999999999999999999999999999999999...' "
          'is out of range') in message
  assert ("row 1, column redshift: '1e400' is not a finite number; give the "
          'redshift as a decimal number, or leave it empty.') in message


# --------------------------------------------------------------------------
# Bad input: one test per kind, each asserting the message.


def row_error(header, row, source='cat.csv'):
  return error_of(f'{header}\n{row}\n', source)


@pytest.mark.parametrize('ra, dec, fragment', [
    ('nan', '1.2', "line 2, column ra: 'nan' is not a finite number; every "
     'object needs ra and dec in decimal degrees.'),
    ('54.9', 'NaN', "line 2, column dec: 'NaN' is not a finite number"),
    ('360', '1.2', "line 2, column ra: '360' is outside [0, 360) degrees; give "
     'ra in decimal degrees within [0, 360) degrees.'),
    ('-0.5', '1.2', "line 2, column ra: '-0.5' is outside [0, 360) degrees"),
    ('54.9', '90.01', "line 2, column dec: '90.01' is outside [-90, 90] "
     'degrees'),
    ('54.9', '-91', "line 2, column dec: '-91' is outside [-90, 90] degrees"),
    ('', '1.2', "line 2, column ra: '' is empty; every object needs ra and dec "
     'in decimal degrees.'),
    ('54.9', ' ', "line 2, column dec: '' is empty"),
    ('12:30:00', '1.2', "line 2, column ra: '12:30:00' is not a number; give "
     'decimal degrees (not sexagesimal h:m:s / d:m:s).'),
    ('54.9', 'inf', "line 2, column dec: 'inf' is not a finite number"),
])
def test_bad_positions(ra, dec, fragment):
  message = row_error('objid,ra,dec,class', f'{OBJID},{ra},{dec},STAR')
  assert message.startswith('cat.csv: 1 problem(s) in the catalogue; fix them '
                            'and load it again:\n')
  assert fragment in message


def test_position_edges_are_accepted():
  text = ('objid,ra,dec,class\n'
          f'{make_objid(94, 6, 1)},0,-90,STAR\n'
          f'{make_objid(94, 6, 2)},359.9999999,90,star\n')
  cat = parse(text)
  assert [(o.ra, o.dec) for o in cat.objects] == [(0.0, -90.0),
                                                  (359.9999999, 90.0)]


@pytest.mark.parametrize('cls, fragment', [
    ('BLAZAR', "line 2, column class: 'BLAZAR' is not a known class; use one "
     'of GALAXY, QSO, STAR (any case).'),
    ('', "line 2, column class: '' is empty; give one of GALAXY, QSO, STAR"),
    ('3', "line 2, column class: '3' is not a known class"),
])
def test_bad_class(cls, fragment):
  assert fragment in row_error('objid,ra,dec,class', f'{OBJID},54.9,1.2,{cls}')


def test_class_any_case_is_normalised():
  text = (f'objid,ra,dec,class\n{make_objid(94, 6, 1)},1,1,galaxy\n'
          f'{make_objid(94, 6, 2)},1,2, Qso \n'
          f'{make_objid(94, 6, 3)},1,3,sTaR\n')
  assert [o.cls for o in parse(text).objects] == ['GALAXY', 'QSO', 'STAR']


@pytest.mark.parametrize('column, value, fragment', [
    ('run', '../../etc', "line 2, column run: '../../etc' is not a whole "
     'number; run must be an integer from 1 to 65535.'),
    ('camcol', '../3', "column camcol: '../3' is not a whole number; camcol "
     'must be an integer from 1 to 6.'),
    ('run', '-3', "line 2, column run: '-3' is out of range; run must be an "
     'integer from 1 to 65535.'),
    ('run', '0', "column run: '0' is out of range; run must be an integer from "
     '1 to 65535.'),
    ('run', '65536', "column run: '65536' is out of range"),
    ('run', '3918.5', "column run: '3918.5' is not a whole number"),
    ('run', '3918.0', "column run: '3918.0' is not a whole number"),
    ('rerun', '2048', "column rerun: '2048' is out of range; rerun must be an "
     'integer from 0 to 2047.'),
    ('camcol', '7', "column camcol: '7' is out of range; camcol must be an "
     'integer from 1 to 6.'),
    ('camcol', '0', "column camcol: '0' is out of range"),
    ('field', '4096', "column field: '4096' is out of range; field must be an "
     'integer from 0 to 4095.'),
    ('field', '-1', "column field: '-1' is out of range"),
    ('field', '', "column field: '' is empty; field must be an integer from 0 "
     'to 4095.'),
    ('field', '２１３', "column field: '２１３' is not a whole number"),
])
def test_bad_frame_columns(column, value, fragment):
  values = dict(ra='229.4', dec='42.8', run='3918', rerun='301', camcol='3',
                field='213', cls='STAR')
  values[column] = value
  row = ','.join(values.values())
  assert fragment in row_error(FRAME_HEADER, row)


@pytest.mark.parametrize('objid, fragment', [
    ('../../etc', "column objid: '../../etc' is not a whole number; objid must "
     'be the exact decimal PhotoObj objID.'),
    ('0x112', "column objid: '0x112' is not a whole number"),
    ('', "column objid: '' is empty; give the exact objID, or drop the objid "
     'column and give run, rerun, camcol, field.'),
    ('0', "column objid: '0' is out of range; objid must be a PhotoObj objID "
     'from 1 to 2**63-1.'),
    ('-5', "column objid: '-5' is out of range"),
    (str(2**63), f"column objid: '{2**63}' is out of range"),
    ('1' * 30, f"column objid: '{'1' * 30}' is out of range"),
    ('9' * 5000, "column objid: '9999999999999999999999999999999999999999...' "
     'is out of range'),
    (str(make_objid(94, 0, 5)), f"column objid: '{make_objid(94, 0, 5)}' does "
     'not encode an SDSS imaging object (camcol 0 out of range); give the '
     'PhotoObj objID (bestObjID), not another id.'),
    ('12345', "column objid: '12345' does not encode an SDSS imaging object "
     '(run 0, camcol 0 out of range)'),
])
def test_bad_objid(objid, fragment):
  assert fragment in row_error('objid,ra,dec,class', f'{objid},54.9,1.2,STAR')


def test_objid_disagreeing_with_frame_columns():
  message = row_error('objid,ra,dec,run,rerun,camcol,field,class',
                      f'{OBJID},54.9,1.2,94,301,4,536,STAR')
  assert (f'line 2: objid {OBJID} encodes camcol 6, field 535 but the row says '
          'camcol 4, field 536; fix the row or drop the run/rerun/camcol/field '
          'columns.') in message
  # Agreeing columns are fine.
  cat = parse('objid,ra,dec,run,rerun,camcol,field,class\n'
              f'{OBJID},54.9,1.2,94,301,6,535,STAR\n')
  assert cat.objects[0].frame == (94, 301, 6, 535)


def test_spreadsheet_rounded_objid_without_fallback():
  message = row_error('objid,ra,dec,class',
                      '1.23764587957997E+018,54.9,1.2,STAR')
  assert ("line 2, column objid: '1.23764587957997E+018' was rounded by a "
          'spreadsheet or a float (1 of 1 objids look like this, 1 distinct)'
          ) in message
  assert ("include unique plate, mjd, fiberid columns to use "
          "'plate-mjd-fiberid' keys (this file has no plate, mjd, fiberid "
          'columns).') in message
  # Any float-looking id counts, even when it has all 19 digits.
  message = row_error('objid,ra,dec,class', f'{OBJID}.0,54.9,1.2,STAR')
  assert f"column objid: '{OBJID}.0' was rounded by a spreadsheet" in message


def test_spreadsheet_rounded_objid_written_in_full():
  # A spreadsheet can also print the rounded number with all its digits.
  rows = [f'{make_objid(94, 6, f) // 10**4 * 10**4},54.9,{f / 100},STAR'
          for f in (1, 2, 3)]
  message = error_of('objid,ra,dec,class\n' + '\n'.join(rows) + '\n')
  assert (f"line 2, column objid: '{make_objid(94, 6, 1) // 10**4 * 10**4}' "
          'was rounded by a spreadsheet or a float (3 of 3 objids') in message
  # One id ending in zeros by chance is fine.
  lone = make_objid(94, 6, 1) // 10**4 * 10**4
  assert lone % 10**4 == 0 and catalog.decode_objid(lone).camcol == 6
  cat = parse(f'objid,ra,dec,class\n{lone},1,1,STAR\n{OBJID},2,2,STAR\n')
  assert [o.objid for o in cat.objects] == [lone, OBJID]


def test_rounded_objid_with_non_unique_plate_mjd_fiberid():
  header = 'objid,ra,dec,run,rerun,camcol,field,class,plate,mjd,fiberid'
  text = (f'{header}\n1.23764587957997E+018,54.9,1.2,94,301,6,535,STAR,1,2,3\n'
          '1.23764587957997E+018,54.8,1.3,94,301,6,535,STAR,1,2,3\n')
  assert ("keys (here (plate, mjd, fiberid) is not unique either)."
          in error_of(text))
  no_frame = text.replace(',run,rerun,camcol,field', '').replace(
      ',94,301,6,535', '')
  assert ('keys (that also needs run, rerun, camcol, field columns).'
          in error_of(no_frame))


def test_rounded_specobjid_is_dropped_with_a_note():
  text = ('objid,ra,dec,class,specobjid\n'
          f'{OBJID},54.9,1.2,STAR,3.72236013965159E+018\n')
  cat = parse(text)
  assert cat.objects[0].specobjid == 0
  assert cat.notes == [
      '1 specobjid values were rounded by a spreadsheet or a float and are set '
      'to 0 (unknown); export them as text to keep them.']


@pytest.mark.parametrize('column, value, fragment', [
    ('specobjid', '../x', "column specobjid: '../x' is not a whole number; "
     'give the exact decimal specObjID, or leave it empty.'),
    ('specobjid', str(2**64), f"column specobjid: '{2**64}' is out of range"),
    ('plate', 'abc', "column plate: 'abc' is not a whole number; plate must be "
     'an integer from 0 to 2147483647 (empty when unknown).'),
    ('fiberid', '1001', "column fiberid: '1001' is out of range; fiberid must "
     'be an integer from 0 to 1000'),
    ('u', 'bright', "column u: 'bright' is not a number; give the AB magnitude "
     'as a decimal number, or leave it empty when unknown.'),
    ('redshift', 'z=1', "column redshift: 'z=1' is not a number"),
])
def test_bad_optional_columns(column, value, fragment):
  assert fragment in row_error(f'objid,ra,dec,class,{column}',
                               f'{OBJID},54.9,1.2,STAR,{value}')


@pytest.mark.parametrize('column, value, fragment', [
    # float() and int() take '_' between digits and any Unicode digits.
    ('ra', '5_4.9285', "line 2, column ra: '5_4.9285' is not a number ('_' is "
     'not allowed between digits: write the digits alone); give decimal '
     'degrees (not sexagesimal h:m:s / d:m:s).'),
    ('ra', '５４.9285', "line 2, column ra: '５４.9285' is not a number (it "
     "holds '５', FULLWIDTH DIGIT FIVE: write numbers in the ASCII digits 0-9, "
     'with an optional sign, point and exponent); give decimal degrees'),
    ('dec', '١.٢', "line 2, column dec: '١.٢' is not a number (it holds '١', "
     'ARABIC-INDIC DIGIT ONE: write numbers in the ASCII digits 0-9'),
    ('dec', '\u22121.2', "line 2, column dec: '\u22121.2' is not a number (it "
     "holds '\u2212', MINUS SIGN: write numbers in the ASCII digits 0-9"),
    ('ra', '"54,9"', "line 2, column ra: '54,9' is not a number (a decimal "
     'comma: write a point instead)'),
    ('u', '1_8.5', "line 2, column u: '1_8.5' is not a number ('_' is not "
     'allowed between digits: write the digits alone); give the AB magnitude '
     'as a decimal number, or leave it empty when unknown.'),
    ('g', '１８', "line 2, column g: '１８' is not a number (it holds '１', "
     'FULLWIDTH DIGIT ONE'),
    ('redshift', '٠.٥', "line 2, column redshift: '٠.٥' is not a number (it "
     "holds '٠', ARABIC-INDIC DIGIT ZERO"),
    ('redshift', 'inf', "line 2, column redshift: 'inf' is not a finite "
     'number'),
    ('specobjid', '1_2', "line 2, column specobjid: '1_2' is not a whole "
     "number ('_' is not allowed between digits"),
    ('plate', '１２', "line 2, column plate: '１２' is not a whole number (it "
     "holds '１', FULLWIDTH DIGIT ONE"),
    ('objid', f'{OBJID}'.replace('12376', '1_2376'), "line 2, column objid: "
     "'1_237645879579967591' is not a whole number ('_' is not allowed between "
     'digits: write the digits alone); objid must be the exact decimal '
     'PhotoObj objID.'),
    ('objid', ''.join(chr(0xFF10 + int(d)) for d in str(OBJID)),
     "is not a whole number (it holds '１', FULLWIDTH DIGIT ONE"),
    ('objid', f'{OBJID}'.replace('1', '١'), "is not a whole number (it holds "
     "'١', ARABIC-INDIC DIGIT ONE"),
])
def test_numbers_must_be_plain_ascii(column, value, fragment):
  header = 'objid,ra,dec,class'
  values = {'objid': str(OBJID), 'ra': '54.9', 'dec': '1.2', 'class': 'STAR'}
  if column not in values:
    header += f',{column}'
  values[column] = value
  message = row_error(header, ','.join(values.values()))
  assert message.startswith('cat.csv: 1 problem(s) in the catalogue')
  assert fragment in message
  assert 'rounded by a spreadsheet' not in message


@pytest.mark.parametrize('header, row', [
    ('ra,dec,run,rerun,camcol,field,class', '229.4,42.8,39_18,301,3,213,STAR'),
    ('ra,dec,run,rerun,camcol,field,class', '229.4,42.8,3918,301,3,２１３,STAR'),
    ('ra,dec,run,rerun,camcol,field,class', '229.4,42.8,3918,301,٣,213,STAR'),
])
def test_frame_columns_must_be_plain_ascii(header, row):
  message = row_error(header, row)
  assert 'is not a whole number (' in message
  assert 'must be an integer from' in message


def test_signs_and_plain_numbers_are_accepted():
  text = ('objid,ra,dec,u,class,specobjid,redshift\n'
          f'+{OBJID},+54.9,-1.25,1.85e+1,STAR,+12,+.5\n'
          f'{OBJID2},5.5E1,.5,18.,QSO,0012,1E-3\n')
  first, second = parse(text).objects
  assert (first.objid, first.key, first.ra, first.dec, first.mags[0],
          first.specobjid, first.redshift) == (OBJID, str(OBJID), 54.9, -1.25,
                                               18.5, 12, 0.5)
  assert (second.ra, second.dec, second.mags[0], second.specobjid,
          second.redshift) == (55.0, 0.5, 18.0, 12, 0.001)
  cat = parse(f'{FRAME_HEADER}\n229.46810,42.83234,+3918,301,+3,0213,STAR\n')
  assert cat.objects[0].frame == (3918, 301, 3, 213)


def test_spreadsheet_rounding_is_told_apart_from_other_bad_ids():
  # Scientific notation, or a decimal point: an id that went through a float.
  for value in ('1.23764587957997E+018', '1.23764587957997e18',
                f'+{OBJID}.0', '1237645879579970000.00'):
    message = row_error('objid,ra,dec,class', f'{value},54.9,1.2,STAR')
    assert (f"line 2, column objid: {value!r} was rounded by a spreadsheet or "
            'a float (1 of 1 objids') in message
  # Not numbers at all, or not finite: not a rounding.
  for value in ('1.2376_4587957997E+018', '１.23764587957997E+018', '1e999',
                'nan'):
    message = row_error('objid,ra,dec,class', f'{value},54.9,1.2,STAR')
    assert f'column objid: {value!r} is not a whole number' in message
    assert 'rounded' not in message


def test_sentinel_and_missing_magnitudes():
  text = ('objid,ra,dec,u,g,r,i,z,class\n'
          f'{make_objid(94, 6, 1)},1,1,-9999,18,17,16,99,STAR\n'
          f'{make_objid(94, 6, 2)},1,2,,nan,17.5,-0.1,40,STAR\n'
          # An exact duplicate: dropped, and its sentinel is not counted.
          f'{make_objid(94, 6, 1)},1,1,-9999,18,17,16,99,STAR\n')
  cat = parse(text)
  first, second = (o.mags for o in cat.objects)
  assert math.isnan(first[0]) and first[1:4] == (18.0, 17.0, 16.0)
  assert math.isnan(first[4])
  assert math.isnan(second[0]) and math.isnan(second[1])
  assert second[2] == 17.5 and math.isnan(second[3]) and second[4] == 40.0
  assert cat.notes[1:] == [
      '3 sentinel magnitudes (<0 or >40, e.g. -9999) read as missing (NaN).']
  assert cat.notes[0].startswith('1 duplicate row(s)')


def test_empty_catalogues():
  assert 'e.csv: the catalogue is empty (no header, no rows)' in error_of(
      b'', 'e.csv')
  assert 'e.csv: the catalogue is empty' in error_of(b'\xef\xbb\xbf \n\n',
                                                     'e.csv')
  assert 'e.csv: the catalogue is empty' in error_of('#Table1\n', 'e.csv')
  assert ('e.csv: the catalogue has a header but no rows; it needs at least '
          'one object.') in error_of('objid,ra,dec,class\n', 'e.csv')
  assert 'has a header but no rows' in error_of(
      'objid,ra,dec,class\n,,,\n\n', 'e.csv')


def test_wrong_columns():
  message = error_of('name,x,y\nM31,1,2\n', 'w.csv')
  assert message == (
      'w.csv: missing required column(s): ra, dec, class, objid (or run, '
      'rerun, camcol, field). Required: ra, dec, class, and either objid or '
      'all of run, rerun, camcol, field. Found: name, x, y.')
  message = error_of('ra,dec,class,run,camcol,field\n1,2,STAR,1,2,3\n', 'w.csv')
  assert 'missing required column(s): objid (or rerun)' in message
  message = error_of(f'objid;ra;dec;class\n{OBJID};1;2;STAR\n', 'w.csv')
  assert ('The file seems to be separated by semicolons: save it '
          'comma-separated.') in message
  message = error_of(f'objid,ra,dec,class,RA\n{OBJID},1,2,STAR,3\n', 'w.csv')
  assert ("w.csv: column 'ra' appears twice in the header (columns 2 and 5); "
          'keep one of them.') in message


def test_row_with_wrong_number_of_fields():
  message = error_of(f'objid,ra,dec,class\n{OBJID},1,2,STAR,extra\n', 'w.csv')
  assert ('line 2: 5 fields, but the header has 4; check for unquoted commas '
          'or a missing value.') in message


def test_not_utf8():
  data = (f'objid,ra,dec,class\n{OBJID},1,2,STAR\n'.encode() +
          f'{OBJID2},1,2,STAR,'.encode() + b'Caf\xe9\n')
  assert data.index(b'\xe9') == 80  # 48 bytes on lines 1-2, then 32 on line 3.
  message = error_of(data, 'latin1.csv')
  assert message == (
      'latin1.csv: line 3 is not UTF-8 text (byte 0xe9 is byte 33 of the line, '
      'byte 81 of the file); save the file as UTF-8 (in a spreadsheet: "CSV '
      'UTF-8") and try again.')
  message = error_of('objid,ra\n'.encode('utf-16'), 'u16.csv')
  assert message.startswith('u16.csv: the file is UTF-16 text (byte order mark '
                            'ff fe); save it as UTF-8')


def test_not_csv_text():
  message = error_of(
      f'objid,ra,dec,class\n{OBJID},"1,2,STAR\n{OBJID2},1,2,QSO\n', 'q.csv')
  assert message == (
      'q.csv: 1 problem(s) in the catalogue; fix them and load it again:\n'
      '  line 2: 2 fields, but the header has 4; a quote (") opened on this '
      'line is never closed.')
  with pytest.raises(CatalogError) as info:
    catalog.parse_catalog(12, 'n.csv')
  assert str(info.value) == (
      'n.csv: expected the catalogue as bytes or text, got int.')


@pytest.mark.parametrize('body, expected', [
    ('<!DOCTYPE html><html><head><title>Bad Gateway</title><style>p{x:1}'
     '</style></head><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>',
     'sky: got an HTML page instead of a CSV or JSON catalogue: "502 Bad '
     'Gateway nginx". Check the URL and the service, or save the query '
     'result as CSV.'),
    ('<html><head><title>Service Unavailable</title></head><body></body>'
     '</html>',
     'sky: got an HTML page instead of a CSV or JSON catalogue: "Service '
     'Unavailable".'),
    ('<html><body><h3>error_message</h3><p>Incorrect syntax near the keyword '
     '&#39;FROM&#39;.</p></body></html>',
     'sky: the server answered with an error instead of a catalogue: '
     '"Incorrect syntax near the keyword \'FROM\'.". Fix the SQL (columns, '
     'quotes, TOP n) or the release, or retry later if the service is down.'),
    ('#Table1\nerror_message\n Invalid column name \'bogus\'.\n',
     'sky: the server answered with an error instead of a catalogue: "Invalid '
     'column name \'bogus\'."'),
    ('{"error_message": "Query timed out after 600 s"}',
     'sky: the server answered with an error instead of a catalogue: "Query '
     'timed out after 600 s".'),
])
def test_html_and_error_message_bodies(body, expected):
  assert expected in error_of(body, 'sky')


def test_duplicate_rows_keep_the_first():
  text = ('objid,ra,dec,class\n'
          f'{OBJID},54.92850031,1.27188765,GALAXY\n'
          f'{OBJID2},55.3,1.27,QSO\n'
          f'{OBJID},54.92850031,1.27188765,galaxy\n')
  cat = parse(text)
  assert [o.objid for o in cat.objects] == [OBJID, OBJID2]
  assert cat.objects[0].source == 'cat.csv line 2'
  assert cat.notes == [
      '1 duplicate row(s) (same key, class and position) skipped, e.g. line 4 '
      'repeats line 2.']


def test_duplicate_key_with_conflicting_class():
  text = ('objid,ra,dec,class\n'
          f'{OBJID},54.92850031,1.27188765,GALAXY\n'
          f'{OBJID},54.92850031,1.27188765,STAR\n')
  assert (f'line 3: key {OBJID} already appears on line 2 (GALAXY at ra '
          '54.92850031, dec 1.27188765); here STAR at ra 54.92850031, dec '
          '1.27188765 (0.0 arcsec apart): two different objects share one id; '
          'remove the wrong row.') in error_of(text)


def test_duplicate_key_with_conflicting_position():
  text = ('objid,ra,dec,class\n'
          f'{OBJID},54.92850031,1.27188765,GALAXY\n'
          f'{OBJID},54.93,1.27188765,GALAXY\n')
  message = error_of(text)
  assert f'line 3: key {OBJID} already appears on line 2' in message
  assert '(5.4 arcsec apart)' in message


def test_duplicate_by_plate_mjd_fiberid_without_objid():
  text = ('ra,dec,run,rerun,camcol,field,class,plate,mjd,fiberid\n'
          '1,1,94,301,6,535,STAR,10,51000,5\n'
          '2,2,94,301,6,535,QSO,10,51000,5\n')
  assert 'line 3: key 10-51000-5 already appears on line 2' in error_of(text)
  cat = parse(text.replace('10,51000,5\n2,2', '10,51000,6\n2,2'))
  assert [o.key for o in cat.objects] == ['10-51000-6', '10-51000-5']
  assert cat.notes == ["no objid column: keys are 'plate-mjd-fiberid' and "
                       'objid is 0 (unknown).']


def test_many_row_errors_are_reported_together():
  rows = [f'{make_objid(94, 6, f)},400,1,STAR' for f in range(1, 13)]
  rows.insert(3, f'{make_objid(94, 6, 99)},1,1,ROCK')
  message = error_of('objid,ra,dec,class\n' + '\n'.join(rows) + '\n')
  lines = message.split('\n')
  assert lines[0] == ('cat.csv: 13 problem(s) in the catalogue; fix them and '
                      'load it again (the first 10 shown):')
  assert len(lines) == 12
  assert lines[1] == ("  line 2, column ra: '400' is outside [0, 360) "
                      'degrees; give ra in decimal degrees within [0, 360) '
                      'degrees.')
  assert lines[4] == ("  line 5, column class: 'ROCK' is not a known class; "
                      'use one of GALAXY, QSO, STAR (any case).')
  assert lines[-1] == '  ... and 3 more (13 problems in total).'


def test_objects_are_frozen_and_hashable():
  obj = parse(f'{HEADER}\n{ROW1}\n{ROW2}\n').objects[0]
  with pytest.raises(AttributeError):
    obj.ra = 0.0
  assert hash(obj) == hash(parse(f'{HEADER}\n{ROW1}\n').objects[0])


# --------------------------------------------------------------------------
# Unlabelled catalogues: objects to classify (trainers.predict).


def unlabelled(text, source='t.csv'):
  return catalog.parse_catalog(text.encode('utf-8'), source, labelled=False)


def unlabelled_error(text, source='t.csv'):
  with pytest.raises(CatalogError) as info:
    unlabelled(text, source)
  return str(info.value)


def test_unlabelled_positions_only_keep_every_row():
  cat = unlabelled('ra,dec\n180.5,-1.25\n10,20\n180.5,-1.25\n')
  assert [(o.ra, o.dec, o.cls, o.objid, o.name, o.source)
          for o in cat.objects] == [
      (180.5, -1.25, '', 0, '', 't.csv line 2'),
      (10.0, 20.0, '', 0, '', 't.csv line 3'),
      (180.5, -1.25, '', 0, '', 't.csv line 4')]  # duplicates are kept
  assert all(o.frame == objects.UNKNOWN_FRAME for o in cat.objects)
  assert cat.objects[0].key == '180.5000000-1.2500000'
  assert cat.notes == []
  assert cat.class_counts() == {'GALAXY': 0, 'QSO': 0, 'STAR': 0}


def test_unlabelled_names_frames_and_ids():
  text = ('Name,ra,dec,objid,run,camcol,field,class,u\n'
          f'a,54.9,1.2,{OBJID},,,,PLANET,-9999\n'
          'b,229.4,42.8,,3918,3,213,,18.5\n'
          ' ,229.5,42.9,,,,,,\n')
  a, b, c = unlabelled(text).objects
  assert (a.name, a.objid, a.frame, a.key) == ('a', OBJID, (94, 301, 6, 535),
                                               str(OBJID))
  assert a.cls == '' and math.isnan(a.mags[0])  # class is not read
  assert (b.name, b.objid, b.frame) == ('b', 0, (3918, 301, 3, 213))
  assert b.key == '003918-3-0213_229.4000000+42.8000000' and b.mags[0] == 18.5
  assert (c.name, c.frame) == ('', objects.UNKNOWN_FRAME)
  # A rerun column is read; empty, it is 301.
  cat = unlabelled('ra,dec,run,rerun,camcol,field\n1,2,3918,,3,213\n'
                   '1,2,3918,40,3,213\n')
  assert [o.frame.rerun for o in cat.objects] == [301, 40]
  # Without a rerun column, an objid's rerun never disagrees with a default.
  objid = make_objid(94, 6, 535, rerun=40)
  cat = unlabelled(f'ra,dec,objid,run,camcol,field\n1,2,{objid},94,6,535\n')
  assert cat.objects[0].frame == (94, 40, 6, 535)
  # JSON too.
  cat = unlabelled(f'[{{"ra": 1, "dec": 2, "objid": "{OBJID}"}}]', 't.json')
  assert cat.objects[0].frame == (94, 301, 6, 535)
  assert cat.objects[0].source == 't.json row 1'


def test_unlabelled_problems_name_line_column_and_value():
  assert unlabelled_error('x,y\n1,2\n') == (
      't.csv: missing required column(s): ra, dec. Required: ra, dec '
      '(degrees); optional: name, objid, or run, camcol, field together '
      '(rerun defaults to 301). Found: x, y.')
  assert unlabelled_error('ra,dec,run,field\n1,2,3,4\n').startswith(
      't.csv: missing required column(s): camcol (run, field given: run, '
      'camcol, field go together).')
  message = unlabelled_error(
      'ra,dec,objid,run,camcol,field\n400,2,,,,\n1,5_4,,,,\n1,2,7,,,\n'
      '1,2,,3918,,213\n1,2,,3918,9,213\n'
      f'1,2,{OBJID},3918,3,213\n1,2,1.23764587957997E+018,,,\n')
  assert message.split('\n') == [
      't.csv: 7 problem(s) in the catalogue; fix them and load it again:',
      "  line 8, column objid: '1.23764587957997E+018' was rounded by a "
      'spreadsheet or a float (1 of 7 objids look like this, 1 distinct): '
      'such ids merge different objects and cannot be keys. Export the objid '
      'and specobjid columns as text (or download the CSV from SkyServer '
      'directly and do not open and re-save it in a spreadsheet), or include '
      "unique plate, mjd, fiberid columns to use 'plate-mjd-fiberid' keys "
      '(this file has no plate, mjd, fiberid columns).',
      "  line 2, column ra: '400' is outside [0, 360) degrees; give ra in "
      'decimal degrees within [0, 360) degrees.',
      "  line 3, column dec: '5_4' is not a number ('_' is not allowed between "
      'digits: write the digits alone); give decimal degrees (not '
      'sexagesimal h:m:s / d:m:s).',
      "  line 6, column camcol: '9' is out of range; camcol must be an integer "
      'from 1 to 6 (empty when unknown).',
      "  line 4, column objid: '7' does not encode an SDSS imaging object (run "
      '0, camcol 0 out of range); give the PhotoObj objID (bestObjID), not '
      'another id.',
      '  line 5: run, field given but camcol empty; give run, camcol and field '
      'together (rerun defaults to 301), or leave them all empty.',
      f'  line 7: objid {OBJID} encodes run 94, camcol 6, field 535 but the '
      'row says run 3918, camcol 3, field 213; fix the row or drop the '
      'run/rerun/camcol/field columns.']


def test_labelled_catalogues_still_need_a_class_and_ignore_names():
  assert 'missing required column(s): class.' in error_of(
      f'objid,ra,dec,name\n{OBJID},1,2,a\n')
  cat = parse(f'objid,ra,dec,class,name,Name\n{OBJID},1,2,STAR,a,b\n')
  assert cat.objects[0].name == '' and cat.objects[0].cls == 'STAR'
