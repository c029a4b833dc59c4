"""Which objects a build takes: pure choices over counts the server answered.

* `hash_range`: the objid-hash window of the spread selection
  (`queries.class_query`), from a class's count, so that a little more than
  the wanted number of objects pass.
* `choose_fields`: the frame-economical ("dense") selection: balanced classes
  from the fewest fields, greedily taking the field that adds most still-needed
  objects (ties: lowest run, camcol, field), so a frame product fetches few
  frames per object.
* `take_planned`, `cap_per_class`: never more objects per class than asked,
  whatever the service answered.
* `class_counts`, `field_counts`: the count queries' answers, read through the
  one table reader (`catalog.tables`).
"""

from __future__ import annotations

import heapq
import math
import re
from typing import Iterable, Mapping, NamedTuple

from skytfds import survey
from skytfds.catalog import queries
from skytfds.catalog import tables
from skytfds.catalog.objects import CatalogError
from skytfds.catalog.objects import CatalogObject
from skytfds.catalog.objects import FrameId

# The hash window lets about 5% more objects through than wanted (so TOP n
# leaves out only the last ~5% in the server's scan order); a shortfall is
# topped up from the next window (see `hash_range`).
MARGIN = 1.05
_COUNT_RE = re.compile(r'[0-9]{1,12}')


def objid_hash(objid: int) -> int:
  """`queries.OBJID_HASH` of one objid, as the server computes it."""
  return (objid % queries.HASH_MODULUS) * queries.HASH_MULTIPLIER % (
      queries.HASH_MODULUS)


def hash_range(count: int, wanted: int, start: int = 0) -> tuple[int, int]:
  """The next objid-hash window [start, stop) that ~`wanted` * MARGIN objects pass.

  `queries.class_query(hash_range=...)` keeps objects with
  start <= objid_hash(objid) < stop: about count * (stop - start) /
  HASH_MODULUS of the class's `count`. A top-up for a shortfall takes the
  next window (start = the previous stop), so no object is taken twice.
  """
  if wanted < 1:
    raise ValueError(f'wanted={wanted}: must be at least 1')
  modulus = queries.HASH_MODULUS
  if count <= 0 or start >= modulus:
    return start, modulus
  width = math.ceil(modulus * wanted * MARGIN / count)
  return start, min(start + width, modulus)


def _counts(data: bytes | str, source: str,
            columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
  """(line, {column: text}) of an answer that must hold `columns`."""
  table = tables.read_table(data, source)
  header = [h.strip().lower() for h in table.header]
  missing = [c for c in columns if c not in header]
  if missing:
    raise CatalogError(
        f'{source}: the count query answered without column(s) '
        f'{", ".join(missing)} (found: {", ".join(header) or "none"}); check '
        'that the service is a SkyServer SqlSearch.')
  index = {c: header.index(c) for c in columns}
  out = []
  for number, fields in table.rows:
    if len(fields) < len(header):
      raise CatalogError(
          f'{source} {table.where} {number}: {len(fields)} fields, expected '
          f'{len(header)}.')
    out.append((number, {c: fields[i].strip() for c, i in index.items()}))
  return out


def _count(source: str, number: int, column: str, text: str) -> int:
  if not _COUNT_RE.fullmatch(text):
    raise CatalogError(
        f'{source} line {number}: {column}={tables.quote(text)} is not a '
        'count (a whole number); check that the service is a SkyServer '
        'SqlSearch.')
  return int(text)


def class_counts(data: bytes | str, source: str) -> dict[str, int]:
  """{class: n} from `queries.class_count_query`'s answer (0 when absent)."""
  counts = dict.fromkeys(survey.CLASSES, 0)
  for number, row in _counts(data, source, ('class', 'n')):
    cls = row['class'].upper()
    if cls in counts:
      counts[cls] = _count(source, number, 'n', row['n'])
  return counts


def field_counts(data: bytes | str,
                 source: str) -> dict[FrameId, dict[str, int]]:
  """{field: {class: n}} from `queries.field_count_query`'s answer."""
  names = ('run', 'rerun', 'camcol', 'field')
  classes = tuple(c.lower() for c in survey.CLASSES)
  counts = {}
  for number, row in _counts(data, source, names + classes):
    frame = FrameId(*(_count(source, number, c, row[c]) for c in names))
    counts[frame] = {cls: _count(source, number, cls.lower(), row[cls.lower()])
                     for cls in survey.CLASSES}
  return counts


class FieldPlan(NamedTuple):
  """One chosen field and how many objects of each class to take from it."""
  frame: FrameId
  take: dict[str, int]


def choose_fields(counts: Mapping[FrameId, Mapping[str, int]],
                  per_class: int) -> list[FieldPlan]:
  """Balanced classes from few fields: greedy by objects still needed.

  Each step takes the field whose objects fill most of what each class still
  needs (sum over classes of min(available, still needed)); a field's gain
  only falls as classes fill, so a lazy heap finds the best field without
  rescoring all of them. Deterministic: ties go to the lowest FrameId.

  Args:
    counts: field -> {class: objects available}.
    per_class: objects wanted of each class.

  Returns:
    The chosen fields in order, each with its objects to take per class; a
    class may end short when the fields do not hold enough of it.
  """
  need = dict.fromkeys(survey.CLASSES, per_class)

  def gain(frame):
    return sum(min(counts[frame].get(c, 0), need[c]) for c in survey.CLASSES)

  heap = [(-gain(f), f) for f in counts]
  heapq.heapify(heap)
  plan = []
  while heap and any(need.values()):
    stale, frame = heapq.heappop(heap)
    now = gain(frame)
    if now == 0:
      continue
    if now < -stale:  # Classes filled since it was scored: score again.
      heapq.heappush(heap, (-now, frame))
      continue
    take = {c: min(counts[frame].get(c, 0), need[c]) for c in survey.CLASSES}
    for c, n in take.items():
      need[c] -= n
    plan.append(FieldPlan(frame, take))
  return plan


def take_planned(objects: Iterable[CatalogObject],
                 plan: Iterable[FieldPlan]) -> list[CatalogObject]:
  """The planned number of each class from each field, lowest objids first."""
  by_field: dict[FrameId, list[CatalogObject]] = {}
  for obj in sorted(objects, key=lambda o: (o.objid, o.key)):
    by_field.setdefault(obj.frame, []).append(obj)
  chosen = []
  for frame, take in plan:
    left = dict(take)
    for obj in by_field.get(frame, ()):
      if left.get(obj.cls, 0) > 0:
        left[obj.cls] -= 1
        chosen.append(obj)
  return chosen


def cap_per_class(objects: Iterable[CatalogObject], per_class: int
                  ) -> tuple[list[CatalogObject], dict[str, int]]:
  """At most `per_class` objects of each class, in order; and how many over."""
  kept, seen, over = [], dict.fromkeys(survey.CLASSES, 0), {}
  for obj in objects:
    seen[obj.cls] = seen.get(obj.cls, 0) + 1
    if seen[obj.cls] <= per_class:
      kept.append(obj)
    else:
      over[obj.cls] = over.get(obj.cls, 0) + 1
  return kept, over
