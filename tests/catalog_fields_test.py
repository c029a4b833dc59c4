"""Tests of skytfds.catalog.fields: pass 1, every field of a row on its own."""

import math

import pytest

from skytfds.catalog import CatalogError
from skytfds.catalog import fields
from skytfds.catalog import tables

OBJID = 1237645879579967591
HEADER = ['objid', 'ra', 'dec', 'u', 'g', 'r', 'i', 'z', 'class', 'specobjid',
          'redshift', 'plate', 'mjd', 'fiberid']


def _reader(rows, header=HEADER, labelled=True, where='line'):
  table = tables.Table(header, list(rows), where)
  columns = tables.map_header(header, 'cat.csv', labelled=labelled)
  return fields.RowReader(table, columns, 'cat.csv', labelled)


def test_a_good_row_is_read_into_exact_values():
  reader = _reader([(2, [str(OBJID), '54.9', '1.27', '20.7', '-9999', '17.3',
                         '', 'nan', 'galaxy', str(2**64 - 1), '0.13', '266',
                         '51630', '7'])])
  (row,) = reader.read_rows()
  assert reader.errors == [] and reader.n_rows == 1
  assert (row.number, row.objid, row.ra, row.dec, row.cls) == (
      2, OBJID, 54.9, 1.27, 'GALAXY')
  assert row.mags[0] == 20.7 and row.mags[2] == 17.3
  assert all(math.isnan(row.mags[i]) for i in (1, 3, 4))
  assert reader.sentinels == {2: 1}  # -9999 only; empty and nan are no sentinel.
  assert (row.specobjid, row.redshift, row.plate, row.mjd, row.fiberid) == (
      2**64 - 1, 0.13, 266, 51630, 7)
  assert reader.has_pmf and not reader.has_frame_cols


def test_ids_through_a_float_are_kept_as_rounded():
  reader = _reader([(2, ['1.23764587957997E+18', '1', '2', '', '', '', '', '',
                         'STAR', '2.9e18', '', '', '', ''])])
  (row,) = reader.read_rows()
  assert reader.errors == []
  assert row.objid == fields.Rounded('1.23764587957997E+18')
  assert row.specobjid == fields.Rounded('2.9e18')


def test_every_problem_is_recorded_with_line_column_and_value():
  reader = _reader([
      (2, [str(OBJID), '360', '1', '', '', '', '', '', 'comet', '', 'x', '',
           '', '']),
      (3, ['12', '1']),
      (4, [''] * len(HEADER)),  # A blank spreadsheet row: skipped, not counted.
  ])
  assert reader.read_rows() == []
  assert reader.n_rows == 2
  assert reader.errors[0].startswith("line 2, column ra: '360' is outside "
                                     '[0, 360) degrees')
  assert reader.errors[1].startswith("line 2, column class: 'comet' is not a "
                                     'known class')
  assert reader.errors[2].startswith("line 2, column redshift: 'x' is not a "
                                     'number')
  assert reader.errors[3] == ('line 3: 2 fields, but the header has 14; check '
                              'for unquoted commas or a missing value.')
  assert len(reader.errors) == 4


def test_unlabelled_rows_may_leave_ids_empty():
  header = ['objid', 'ra', 'dec', 'name']
  reader = _reader([(2, ['', '10', '-5', ' M31 '])], header=header,
                   labelled=False)
  (row,) = reader.read_rows()
  assert reader.errors == []
  assert (row.objid, row.cls, row.name) == (None, '', 'M31')


def test_a_table_without_rows_is_refused_at_once():
  with pytest.raises(CatalogError, match='header but no rows'):
    _reader([(2, [''] * len(HEADER))]).read_rows()
