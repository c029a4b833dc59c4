"""Which objects a build covers: SkyServer queries, or the user's catalogue.

The choices are pure functions in `catalog.sampling`; this module sends the
queries (`catalog.queries`) and reads the answers through the one catalogue
parser. Two selections (the config's `selection`):

* 'spread': one count query, then per class `TOP n` of a window of an objid
  hash, topped up from the next window if too few passed;
* 'dense': one per-field count query, the greedy choice of fields, then the
  objects of those fields.
"""

import dataclasses
import hashlib
from typing import Any

from absl import logging

from skytfds import catalog
from skytfds import settings
from skytfds.catalog import sampling
from skytfds.services import http
from skytfds.services import skyserver

SELECTIONS = ('spread', 'dense')
# Query texts kept whole in the provenance (beyond: the first few and a hash).
MAX_QUERIES_RECORDED = 10


@dataclasses.dataclass
class Selected:
  """The objects of a build and where they came from.

  Attributes:
    catalog: the validated objects.
    selection: 'spread', 'dense', or 'catalogue' (SKYTFDS_CATALOG).
    catalogue: the provenance of the object list: the SkyServer queries sent,
      or the user's file (its location, credentials removed, and sha256).
  """
  catalog: catalog.Catalog
  selection: str
  catalogue: dict[str, Any]
# Most queries per class of the spread selection (1 + top-ups).
MAX_WINDOWS = 6


async def select_objects(
    fetcher: http.Fetcher, *, per_class: int, release: int,
    selection: str = 'spread',
) -> Selected:
  """Fetches and parses the objects of a build.

  With SKYTFDS_CATALOG set (a local path or any URL the fetcher reads), all
  rows of that catalogue are used and `selection` does not apply. Otherwise
  `per_class` objects of each class (balanced) are selected on SkyServer.
  """
  source = settings.catalog_source()
  if source:
    data = await fetcher.fetch(source, kind='text')
    shown = http.redact_url(source)
    parsed = catalog.parse_catalog(data, source=shown)
    return Selected(parsed, 'catalogue', {
        'kind': 'file', 'location': shown, 'rows': len(parsed),
        'sha256': hashlib.sha256(bytes(data)).hexdigest()})
  if selection not in SELECTIONS:
    raise ValueError(f'selection {selection!r}: use one of {SELECTIONS}')
  query = _Queries(fetcher, release)
  if selection == 'dense':
    parsed = await _dense(query, per_class, release)
  else:
    parsed = await _spread(query, per_class, release)
  return Selected(parsed, selection, query.provenance())


class _Queries:
  """Sends SQL to SkyServer DR{release}; the answers parsed."""

  def __init__(self, fetcher: http.Fetcher, release: int):
    self.fetcher = fetcher
    self.release = release
    self.source = f'SkyServer DR{release} SqlSearch'
    self.sent: list[str] = []

  async def raw(self, sql: str) -> bytes:
    self.sent.append(sql)
    return await skyserver.run_query(self.fetcher, sql, release=self.release)

  def provenance(self) -> dict[str, Any]:
    """The queries sent: whole, or (when many) the first few and a sha256."""
    recorded = {'kind': 'skyserver_query', 'release': self.release,
                'url': http.redact_url(settings.skyserver_url()),
                'query_count': len(self.sent)}
    if len(self.sent) <= MAX_QUERIES_RECORDED:
      recorded['queries'] = list(self.sent)
    else:
      recorded['queries_first'] = self.sent[:3]
      recorded['queries_sha256'] = hashlib.sha256(
          '\n'.join(self.sent).encode()).hexdigest()
    return recorded

  async def objects(self, sql: str) -> catalog.Catalog:
    return catalog.parse_catalog(await self.raw(sql), source=self.source)


async def _spread(query: _Queries, per_class: int,
                  release: int) -> catalog.Catalog:
  counts = sampling.class_counts(
      await query.raw(catalog.class_count_query(release=release)),
      f'{query.source} (class counts)')
  parts, notes = [], []
  for cls in catalog.CLASSES:
    got, window = [], (0, 0)
    for _ in range(MAX_WINDOWS):
      if len(got) >= per_class or window[1] >= catalog.queries.HASH_MODULUS:
        break
      # A top-up window asks for twice the shortfall: a few more queries
      # would cost more than taking a few objects fewer from its tail.
      short = per_class - len(got)
      window = sampling.hash_range(counts[cls], short if not got else max(
          2 * short, 10), window[1])
      part = await query.objects(catalog.class_query(
          cls, per_class - len(got), release=release, hash_range=window))
      got.extend(part.objects)
      notes.extend(part.notes)
    logging.info('%s: %s: %d of %d objects (objid hash < %d of %d; %d '
                 'reliable in all)', query.source, cls,
                 min(len(got), per_class), per_class, window[1],
                 catalog.queries.HASH_MODULUS, counts[cls])
    parts.append(catalog.Catalog(got, [], query.source))
  merged = merge(parts)
  objects, over = sampling.cap_per_class(merged.objects, per_class)
  notes.extend(merged.notes + _over_notes(query.source, over, per_class)
               + _short_notes(objects, per_class, counts))
  notes.append(f'selection spread: per class TOP {per_class} of a window of '
               f'the objid hash (no sort), reliable '
               'spectra (zWarning = 0)')
  return catalog.Catalog(objects, notes, query.source)


async def _dense(query: _Queries, per_class: int,
                 release: int) -> catalog.Catalog:
  counts = sampling.field_counts(
      await query.raw(catalog.field_count_query(release=release)),
      f'{query.source} (field counts)')
  plan = sampling.choose_fields(counts, per_class)
  found = []
  notes = []
  size = catalog.queries.FIELDS_PER_QUERY
  for start in range(0, len(plan), size):
    part = await query.objects(catalog.field_objects_query(
        [p.frame for p in plan[start:start + size]], release=release))
    found.extend(part.objects)
    notes.extend(part.notes)
  objects = sampling.take_planned(found, plan)
  logging.info('%s: %d objects from %d fields (densest first)', query.source,
               len(objects), len(plan))
  notes.extend(_short_notes(objects, per_class, None))
  notes.append(f'selection dense: {len(objects)} objects from {len(plan)} '
               f'fields of {len(counts)} holding 2 or more objects')
  return catalog.Catalog(objects, notes, query.source)


def _over_notes(source: str, over: dict[str, int], per_class: int) -> list[str]:
  return [f'{source} answered {per_class + n} {cls} rows to TOP {per_class}; '
          f'used the first {per_class}' for cls, n in sorted(over.items())]


def _short_notes(objects, per_class: int, counts) -> list[str]:
  have = catalog.Catalog(objects, [], '').class_counts()
  notes = []
  for cls, n in have.items():
    if n < per_class:
      total = '' if counts is None else f' (it holds {counts[cls]:,} in all)'
      notes.append(f'{cls}: {n} of {per_class} objects: the service has no '
                   f'more that pass the cuts{total}')
  return notes


def merge(parts: list[catalog.Catalog]) -> catalog.Catalog:
  """One catalogue from several (one per class); a repeated key keeps its first row."""
  objects, notes, seen = [], [], {}
  for part in parts:
    notes.extend(part.notes)
    for obj in part.objects:
      if obj.key in seen:
        notes.append(
            f'{obj.key} answered twice ({seen[obj.key].cls} and {obj.cls}): '
            f'kept {seen[obj.key].source}')
        continue
      seen[obj.key] = obj
      objects.append(obj)
  source = ' + '.join(sorted({p.source for p in parts}))
  return catalog.Catalog(objects=objects, notes=notes, source=source)
