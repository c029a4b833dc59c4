"""Which objects a build covers: the SkyServer query, or the user's catalogue."""

from skytfds import catalog
from skytfds import settings
from skytfds.services import http
from skytfds.services import skyserver


async def select_objects(
    fetcher: http.Fetcher, *, per_class: int, release: int
) -> catalog.Catalog:
  """Fetches and parses the objects of a build.

  With SKYTFDS_CATALOG set (a local path or any URL the fetcher reads), all
  rows of that catalogue are used. Otherwise one `TOP per_class` query per
  class is sent to SkyServer (balanced classes).
  """
  source = settings.catalog_source()
  if source:
    data = await fetcher.fetch(source, kind='text')
    return catalog.parse_catalog(data, source=source)
  parts = []
  for sql in catalog.balanced_queries(per_class, release=release):
    data = await skyserver.run_query(fetcher, sql, release=release)
    parts.append(catalog.parse_catalog(data, source=f'SkyServer DR{release} SqlSearch'))
  return merge(parts)


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
