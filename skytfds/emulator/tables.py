"""The rows of the emulated SkyServer database: PhotoObj and SpecObj.

One row per catalogue object. Values that a catalogue may lack are derived
deterministically:
- run, rerun, camcol, field: from the objid (`CatalogObject.frame`).
- plate, mjd, fiberid: when missing, objects without them are given, in objid
  order, fibers 1..640 of plates numbered from 266 upwards that the catalogue
  does not use, with one MJD per plate (51578 + (53 * (plate - 266)) % 3100);
  so (plate, mjd, fiberid) is unique.
- specobjid: when missing, encoded from plate, fiberid, mjd as SDSS does
  (plate << 50 | fiberid << 38 | (mjd - 50000) << 24 | run2d << 10, run2d 26);
  when present but plate is missing, plate/mjd/fiberid are decoded from it.
- Missing magnitudes and redshifts (NaN) come back as -9999, SDSS's sentinel.
- PhotoObj `type` is 3 (galaxy) for GALAXY objects and 6 (star) otherwise;
  `mode` and `clean` are 1.
- SpecObj `zwarning` is 4 (bit 2, SMALL_DELTA_CHI2: the best redshift fit is
  barely better than the next) for about 1 object in 40, picked by a
  multiplicative hash of the objid (`unreliable`), and 0 otherwise; so a query
  that forgets `zWarning = 0` takes unreliable spectra, as on the real server.
"""

# Follows the SDSS DR17 schema as SkyServer's Schema Browser shows it
# (skyserver.sdss.org/dr17/MoreTools/browser: tables PhotoObjAll, SpecObjAll,
# and the specobjid bit layout of SpecObjAll.specObjID).

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

MISSING = -9999.0  # SDSS sentinel for a missing value.
FIBERS_PER_PLATE = 640
FIRST_PLATE = 266
RUN2D_CODE = 26  # specobjid bits 10-23 for run2d '26' (SDSS-I/II spectra).

PHOTO = 'PhotoObj'
SPEC = 'SpecObj'
PHOTO_COLUMNS = (
    'objid', 'ra', 'dec', 'u', 'g', 'r', 'i', 'z', 'run', 'rerun', 'camcol',
    'field', 'type', 'mode', 'clean', 'specobjid',
)
SPEC_COLUMNS = (
    'specobjid', 'bestobjid', 'class', 'z', 'plate', 'mjd', 'fiberid', 'ra',
    'dec', 'zwarning',
)
COLUMNS = {PHOTO: PHOTO_COLUMNS, SPEC: SPEC_COLUMNS}
# Columns that are not numbers (everything else is an integer or a float).
TEXT_COLUMNS = frozenset({'class'})
# Integer columns (the others are floats); specobjid is unsigned 64-bit.
INTEGER_COLUMNS = frozenset({
    'objid', 'run', 'rerun', 'camcol', 'field', 'type', 'mode', 'clean',
    'specobjid', 'bestobjid', 'plate', 'mjd', 'fiberid', 'zwarning'})

Row = dict[tuple[str, str], Any]  # (table, lower-case column) -> value
SMALL_DELTA_CHI2 = 4  # SpecObj.zWarning bit 2 (SDSS ZWARNING bitmask).


def unreliable(objid: int) -> bool:
  """Whether the emulator flags this object's spectrum (about 1 in 40).

  Knuth's multiplicative hash of the objid, so the flag does not follow the
  objid's residues modulo small numbers (the spread selection's stride).
  """
  return ((objid * 2654435761) >> 16) % 40 == 0


def encode_specobjid(plate: int, fiberid: int, mjd: int,
                     run2d_code: int = RUN2D_CODE) -> int:
  """SDSS DR8+ specobjid from plate, fiber, MJD and run2d code (exact int)."""
  return ((plate << 50) | (fiberid << 38) | ((mjd - 50000) << 24)
          | (run2d_code << 10))


def decode_specobjid(specobjid: int) -> tuple[int, int, int]:
  """(plate, mjd, fiberid) from an SDSS DR8+ specobjid."""
  plate = specobjid >> 50
  fiberid = (specobjid >> 38) & 0xFFF
  mjd = ((specobjid >> 24) & 0x3FFF) + 50000
  return plate, mjd, fiberid


def plate_mjd(plate: int) -> int:
  """The deterministic MJD given to a derived plate."""
  return 51578 + (53 * (plate - FIRST_PLATE)) % 3100


def _number(value: float) -> float:
  return MISSING if value is None or math.isnan(value) else float(value)


def build_rows(objects: Iterable[Any]) -> list[Row]:
  """Rows (objid order) for catalogue objects (`skytfds.catalog.CatalogObject`).

  Args:
    objects: objects with key, objid, ra, dec, cls, frame, mags, specobjid,
      redshift, plate, mjd, fiberid (as in `skytfds.catalog.CatalogObject`).

  Returns:
    One dict per object, keyed by (table, column), spectroscopic ids derived
    as the module docstring describes.
  """
  objects = sorted(objects, key=lambda o: (o.objid, o.key))
  used_plates = set()
  for o in objects:
    if o.plate:
      used_plates.add(o.plate)
    elif o.specobjid:
      used_plates.add(decode_specobjid(o.specobjid)[0])
  next_plate, next_fiber = FIRST_PLATE, FIBERS_PER_PLATE + 1
  plate_now = FIRST_PLATE
  rows = []
  for o in objects:
    plate, mjd, fiberid, specobjid = o.plate, o.mjd, o.fiberid, o.specobjid
    if not (plate and mjd and fiberid):
      if specobjid:
        plate, mjd, fiberid = decode_specobjid(specobjid)
      else:
        if next_fiber > FIBERS_PER_PLATE:
          while next_plate in used_plates:
            next_plate += 1
          plate_now = next_plate
          used_plates.add(plate_now)
          next_fiber = 1
        plate, fiberid = plate_now, next_fiber
        mjd = plate_mjd(plate)
        next_fiber += 1
    if not specobjid:
      specobjid = encode_specobjid(plate, fiberid, mjd)
    u, g, r, i, z = (_number(m) for m in o.mags)
    frame = o.frame
    row = {
        (PHOTO, 'objid'): o.objid,
        (PHOTO, 'ra'): float(o.ra),
        (PHOTO, 'dec'): float(o.dec),
        (PHOTO, 'u'): u,
        (PHOTO, 'g'): g,
        (PHOTO, 'r'): r,
        (PHOTO, 'i'): i,
        (PHOTO, 'z'): z,
        (PHOTO, 'run'): frame.run,
        (PHOTO, 'rerun'): frame.rerun,
        (PHOTO, 'camcol'): frame.camcol,
        (PHOTO, 'field'): frame.field,
        (PHOTO, 'type'): 3 if o.cls == 'GALAXY' else 6,
        (PHOTO, 'mode'): 1,
        (PHOTO, 'clean'): 1,
        (PHOTO, 'specobjid'): specobjid,
        (SPEC, 'specobjid'): specobjid,
        (SPEC, 'bestobjid'): o.objid,
        (SPEC, 'class'): o.cls,
        (SPEC, 'z'): _number(o.redshift),
        (SPEC, 'plate'): plate,
        (SPEC, 'mjd'): mjd,
        (SPEC, 'fiberid'): fiberid,
        (SPEC, 'ra'): float(o.ra),
        (SPEC, 'dec'): float(o.dec),
        (SPEC, 'zwarning'): SMALL_DELTA_CHI2 if unreliable(o.objid) else 0,
    }
    rows.append(row)
  return rows
