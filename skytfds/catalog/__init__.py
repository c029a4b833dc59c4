"""The SDSS object catalogue: SkyServer query text, parsing and validation.

This is the one catalogue parser of skytfds. It is pure (no I/O): callers fetch
or read the bytes and hand them to `parse_catalog`, which accepts

* SkyServer SqlSearch CSV (`format=csv`: a `#Table1` line, then the header),
* SkyServer SqlSearch JSON (`format=json`: `[{"TableName": "Table1",
  "Rows": [{...}, ...]}]`), or a plain JSON list of row objects,
* a user CSV with the same columns: at least `ra`, `dec` (degrees), `class`,
  and either `objid` or all of `run`, `rerun`, `camcol`, `field`; the
  magnitudes `u g r i z` (AB), `specobjid`, `redshift`, `plate`, `mjd` and
  `fiberid` are optional; unknown columns are ignored; header names are
  matched case-insensitively (`objID`, `specObjID`, `fiberID`).

Ids (`objid`, `specobjid`) are read as exact integers from their decimal text,
never through a float: a spreadsheet rounds them to 15 significant digits
(`1.23764870457714E+018`), which silently merges different objects, so such
ids are refused as keys (or, when `plate`, `mjd`, `fiberid` identify every row
uniquely, replaced by a `plate-mjd-fiberid` key, with a note saying so).

Every problem is reported as a `CatalogError` that names the source, the line
(1-based line of the file; `row N` for JSON), the column, the value and what
to do; row problems are collected and reported together (the first 10 and the
total count).

Modules, one job each: `objects` (FrameId, CatalogObject, Catalog,
CatalogError, decode_objid), `queries` (the SkyServer SQL), `tables` (bytes
-> a table of text fields), `fields` (each field of a row checked on its
own), `validation` (a table -> checked objects: keys, frames, duplicates),
`sampling` (which objects a build takes: hash windows, densest fields),
`numbers` (plain ASCII numbers: the one reading of numeric text).
"""

from skytfds.catalog.fields import MAG_RANGE
from skytfds.catalog.objects import Catalog
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import CatalogObject
from skytfds.catalog.objects import decode_objid
from skytfds.catalog.objects import FrameId
from skytfds.catalog.queries import check_release
from skytfds.catalog.queries import class_count_query
from skytfds.catalog.queries import class_query
from skytfds.catalog.queries import DEFAULT_MAG_LIMITS
from skytfds.catalog.queries import field_count_query
from skytfds.catalog.queries import field_objects_query
from skytfds.catalog.queries import MAX_TOP
from skytfds.catalog.validation import MAX_ERRORS_SHOWN
from skytfds.catalog.validation import parse_catalog
from skytfds.catalog import sampling
from skytfds.survey import BANDS
from skytfds.survey import CLASSES
from skytfds.survey import DEFAULT_RELEASE
from skytfds.survey import RELEASES

__all__ = [
    'BANDS', 'CLASSES', 'Catalog', 'CatalogError', 'CatalogObject',
    'DEFAULT_MAG_LIMITS', 'DEFAULT_RELEASE', 'FrameId', 'MAG_RANGE',
    'MAX_ERRORS_SHOWN', 'MAX_TOP', 'RELEASES', 'check_release',
    'class_count_query', 'class_query', 'decode_objid', 'field_count_query',
    'field_objects_query', 'parse_catalog', 'sampling',
]
