"""The catalogue's types: imaging fields, objects, catalogues, objIDs."""

from __future__ import annotations

import collections
import dataclasses
import numbers
from typing import NamedTuple

from skytfds import survey

# Bit layout of a PhotoObj objID (SDSS objID algorithm page; idlutils
# sdss_objid): 63 empty, 59-62 skyVersion, 48-58 rerun, 32-47 run, 29-31
# camcol, 28 firstField, 16-27 field, 0-15 id within the field. (Not camcol in
# bits 28-30: that reads camcol 0 for a third of specobj_35k.csv and never
# matches the camcol column of skyserver_export_dr14_10k.csv.)
_RUN_SHIFT, _RUN_MASK = 32, 0xFFFF
_RERUN_SHIFT, _RERUN_MASK = 48, 0x7FF
_CAMCOL_SHIFT, _CAMCOL_MASK = 29, 0x7
_FIELD_SHIFT, _FIELD_MASK = 16, 0xFFF

# (column, lowest, highest) of the imaging-field coordinates.
FRAME_LIMITS = (
    ('run', 1, _RUN_MASK),
    ('rerun', 0, _RERUN_MASK),
    ('camcol', 1, 6),
    ('field', 0, _FIELD_MASK),
)
FRAME_COLUMNS = tuple(name for name, _, _ in FRAME_LIMITS)


class FrameId(NamedTuple):
  """One SDSS imaging field: (run, rerun, camcol, field)."""
  run: int
  rerun: int
  camcol: int
  field: int

  @property
  def name(self) -> str:
    """'003918-3-0213': run (6 digits), camcol, field (4 digits)."""
    return f'{self.run:06d}-{self.camcol}-{self.field:04d}'


# The frame of an object whose field is not known (an unlabelled catalogue
# row with neither objid nor run, camcol, field). Never a real field: run and
# camcol 0 are out of range, so no path or URL is ever made from it.
UNKNOWN_FRAME = FrameId(0, 0, 0, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogObject:
  """One validated catalogue object.

  Attributes:
    key: unique stable id: str(objid); 'plate-mjd-fiberid' when the objids
      were unusable (spreadsheet-rounded) or absent and plate/mjd/fiberid
      are given; otherwise '<frame name>_<ra><dec>' (degrees, 7 decimals).
    objid: exact PhotoObj objID (uint64 < 2**63); 0 when unknown.
    ra: right ascension, degrees, in [0, 360).
    dec: declination, degrees, in [-90, 90].
    cls: one of survey.CLASSES; '' in an unlabelled catalogue (objects to
      classify, `parse_catalog(..., labelled=False)`).
    frame: the imaging field holding the object; UNKNOWN_FRAME only in an
      unlabelled catalogue that gives no objid or run, camcol, field.
    mags: u, g, r, i, z AB magnitudes; NaN when missing or a sentinel.
    specobjid: exact SpecObjID (may exceed 2**63); 0 when unknown.
    redshift: spectroscopic redshift; NaN when unknown.
    plate: spectroscopic plate; 0 when unknown.
    mjd: MJD of the spectroscopic observation; 0 when unknown.
    fiberid: spectroscopic fibre; 0 when unknown.
    source: where the row came from, e.g. 'catalog.csv line 17'.
    name: the row's `name` column (unlabelled catalogues); '' when none.
  """
  key: str
  objid: int
  ra: float
  dec: float
  cls: str
  frame: FrameId
  mags: tuple[float, float, float, float, float]
  specobjid: int
  redshift: float
  plate: int
  mjd: int
  fiberid: int
  source: str
  name: str = ''


class CatalogError(ValueError):
  """A catalogue that cannot be used; the message says where and what to do."""


@dataclasses.dataclass
class Catalog:
  """Validated objects in file order, and notes on what was repaired."""
  objects: list[CatalogObject]
  notes: list[str]
  source: str

  def __len__(self) -> int:
    return len(self.objects)

  def by_frame(self) -> dict[FrameId, list[CatalogObject]]:
    """Objects grouped by imaging field, in order of first appearance."""
    groups: dict[FrameId, list[CatalogObject]] = {}
    for obj in self.objects:
      groups.setdefault(obj.frame, []).append(obj)
    return groups

  def class_counts(self) -> dict[str, int]:
    """Number of objects per class, in survey.CLASSES order (zeros included)."""
    counts = collections.Counter(obj.cls for obj in self.objects)
    return {cls: counts[cls] for cls in survey.CLASSES}



def decode_objid(objid: int) -> FrameId:
  """The imaging field encoded in a PhotoObj objID.

  Bits 32-47 hold the run, 48-58 the rerun, 29-31 the camcol and 16-27 the
  field (bit 28 is the firstField flag, bits 0-15 the object's number in the
  field). The result is not range-checked (see `parse_catalog` for that).

  Args:
    objid: the exact objID, a non-negative integer below 2**64.

  Returns:
    The FrameId, e.g. 1237645879579967591 -> FrameId(94, 301, 6, 535).
  """
  if isinstance(objid, bool) or not isinstance(objid, numbers.Integral):
    raise CatalogError(
        f'objid {objid!r} is not an integer; pass the exact integer objID '
        '(never a float: 64-bit ids do not fit in one).')
  objid = int(objid)  # numpy integers too.
  if not 0 <= objid < 2**64:
    raise CatalogError(
        f'objid {objid} is outside the unsigned 64-bit range; pass a PhotoObj '
        'objID.')
  return FrameId(
      run=(objid >> _RUN_SHIFT) & _RUN_MASK,
      rerun=(objid >> _RERUN_SHIFT) & _RERUN_MASK,
      camcol=(objid >> _CAMCOL_SHIFT) & _CAMCOL_MASK,
      field=(objid >> _FIELD_SHIFT) & _FIELD_MASK,
  )
