"""The installed distribution's version and home page, and the User-Agent made of them.

Read from the package metadata (`importlib.metadata`), which setup.py writes
at install time, so nothing here imports the package root (that would be an
import cycle for the modules the root itself imports).
"""

import functools
import importlib.metadata

DISTRIBUTION = 'skytfds'
_HOME_PAGE_LABELS = ('homepage', 'home', 'source', 'repository')


@functools.cache
def _metadata() -> importlib.metadata.PackageMetadata | None:
  try:
    return importlib.metadata.metadata(DISTRIBUTION)
  except importlib.metadata.PackageNotFoundError:
    return None  # Run from a source tree that was never installed.


def version() -> str:
  """The installed version, e.g. '0.1.0'; '0+unknown' when not installed."""
  meta = _metadata()
  return meta['Version'] if meta is not None else '0+unknown'


def home_page() -> str:
  """The project's URL from setup.py (`url=` or `project_urls`); '' if none."""
  meta = _metadata()
  if meta is None:
    return ''
  if meta.get('Home-page'):
    return meta['Home-page']
  for entry in meta.get_all('Project-URL') or ():
    label, _, url = entry.partition(',')
    if label.strip().lower() in _HOME_PAGE_LABELS and url.strip():
      return url.strip()
  return ''


def user_agent() -> str:
  """'skytfds/<version> (+<home page>)', or 'skytfds/<version>' without one."""
  url = home_page()
  product = f'{DISTRIBUTION}/{version()}'
  return f'{product} (+{url})' if url else product
