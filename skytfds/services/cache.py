"""The cache of fetched bodies (a local folder or any fsspec URL): safe names,
validated reads, atomic writes."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re

from skytfds import files
from skytfds.services import bodies
from skytfds.services.errors import AttemptFailed


def validate_cache_name(cache_name: str) -> str:
  """Checks that `cache_name` is a safe relative POSIX path; returns it.

  Raises:
    ValueError: absolute, empty, '.', '..', backslashes or control characters.
  """
  if not isinstance(cache_name, str) or not cache_name:
    raise ValueError(f'cache_name {cache_name!r}: expected a non-empty relative path')
  if cache_name.startswith('/') or '\\' in cache_name or re.search(
      r'[\x00-\x1f\x7f]', cache_name) or re.match(r'^[A-Za-z]:', cache_name):
    raise ValueError(f'cache_name {cache_name!r}: must be a relative path with '
                     "'/' separators and no drive, backslash or control characters")
  parts = cache_name.split('/')
  if any(part in ('', '.', '..') for part in parts):
    raise ValueError(f"cache_name {cache_name!r}: empty, '.' or '..' parts are "
                     'not allowed (the cache cannot be escaped)')
  return cache_name


def cache_root(cache_dir: str | os.PathLike | files.UrlPath) -> files.Location:
  """The cache directory as a location: a pathlib.Path, or a UrlPath for a URL.

  A URL squeezed through `pathlib.Path` ('gs://b/x' became 'gs:/b/x',
  'file:///tmp/x' became 'file:/tmp/x') by a caller is turned back into
  its URL (`Fetcher` keeps a URL a string and never needs this). A local
  folder really named 'gs:' would be read as a URL: nobody names one so.
  """
  if isinstance(cache_dir, pathlib.PurePath) and not cache_dir.is_absolute():
    mangled = _SQUEEZED_URL.match(cache_dir.as_posix())
    if mangled:
      protocol, rest = mangled.groups()
      slashes = '/' if protocol in ('file', 'local') else ''  # An absolute path.
      rest = (rest or '').lstrip('/')
      return files.UrlPath(f'{protocol}://{slashes}{rest}')
  return files.location(cache_dir)


# 'gs:/bucket/x', what pathlib makes of 'gs://bucket/x' (two letters or more:
# 'C:' is a drive).
_SQUEEZED_URL = re.compile(r'^([A-Za-z][A-Za-z0-9+.\-]+):(/.*)?$')


class DiskCache:
  """Bodies under `root`, one file per cache name (blocking calls).

  `root` is a local directory or a URL on any fsspec filesystem (gs://,
  s3://, file://, memory://). A file is written atomically
  (`skytfds.files.write_bytes`: a local one flushed to disk and renamed, an
  object-store one in a single upload, another fsspec one under a temporary
  name moved into place), so a reader never sees half of one; a file that
  fails validation (left by an older, non-atomic writer, or damaged) is
  dropped and fetched again.

  Args:
    root: the cache directory.
    max_bytes: size cap of a cached body.
  """

  def __init__(self, root: str | os.PathLike | files.UrlPath, *, max_bytes: int):
    self.root = cache_root(root)
    self.max_bytes = max_bytes

  def path(self, cache_name: str) -> files.Location:
    """Where `cache_name` lives under root (validated; cannot escape it)."""
    validate_cache_name(cache_name)
    root = self.root.resolve()
    path = (root / cache_name).resolve()
    if not path.is_relative_to(root):
      raise ValueError(f'cache_name {cache_name!r} leaves the cache directory {root}')
    return path

  def evict(self, cache_name: str) -> bool:
    """Drops a cached file; True if there was one."""
    with contextlib.suppress(FileNotFoundError):
      self.path(cache_name).unlink()
      return True
    return False

  def read(self, cache_name: str, kind: str) -> tuple[bytes | None, str]:
    """(the validated body or None, why a file was dropped: '' or a reason)."""
    try:
      data = self.path(cache_name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
      return None, ''
    try:
      bodies.validate_body(data, kind, max_bytes=self.max_bytes)
    except AttemptFailed as e:
      self.evict(cache_name)
      return None, e.reason
    return data, ''

  def write(self, cache_name: str, data: bytes) -> None:
    """Stores `data` under `cache_name`, atomically (durably on a local disk).

    Raises OSError if it cannot (a remote store's own errors included).
    """
    path = self.path(cache_name)
    try:
      files.write_bytes(path, data, fsync=True)
    except OSError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (remote stores vary)
      raise OSError(f'{type(e).__name__}: {e}') from e
