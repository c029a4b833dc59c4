"""The on-disk cache of fetched bodies: safe names, validated reads, atomic writes."""

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


class DiskCache:
  """Bodies under `root`, one file per cache name (blocking calls).

  A file is written atomically (`skytfds.files.write_bytes`, flushed to disk),
  so a reader never sees half of one; a file that fails validation (left by
  an older, non-atomic writer, or damaged) is dropped and fetched again.

  Args:
    root: the cache directory.
    max_bytes: size cap of a cached body.
  """

  def __init__(self, root: str | os.PathLike, *, max_bytes: int):
    self.root = pathlib.Path(root)
    self.max_bytes = max_bytes

  def path(self, cache_name: str) -> pathlib.Path:
    """Where `cache_name` lives under root (validated; cannot escape it)."""
    validate_cache_name(cache_name)
    root = self.root.resolve()
    path = (root / cache_name).resolve()
    if root != path and root not in path.parents:
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
    """Stores `data` under `cache_name`, atomically and durably."""
    files.write_bytes(self.path(cache_name), data, fsync=True)
