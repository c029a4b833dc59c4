"""The emulator's render caches: payloads on disk or in memory; image LRUs.

Rendered frames and cutouts are kept under `root/<name>` (written
atomically, so a second server run renders nothing) or, without a root, in a
bounded in-memory LRU. `fingerprint` names the folder of one emulated sky, so
that a change of seed, catalogue, SAS mirror or emulator code never serves a
stale payload. `Lru` keeps a few rendered or decoded images in memory.
"""

# Follows the SDSS data model pages of the files the SAS serves (e.g.
# data.sdss.org/datamodel/files/BOSS_PHOTOOBJ/frames/RERUN/RUN/CAMCOL/frame.html):
# the real services serve stored files; this cache is the emulator's store.

from __future__ import annotations

import collections
import hashlib
import pathlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from skytfds import files

MEMORY_CACHE_BYTES = 256 * 2**20


class PayloadCache:
  """Rendered payloads on disk (atomic writes) or in a bounded memory LRU."""

  def __init__(self, root: pathlib.Path | None,
               memory_bytes: int = MEMORY_CACHE_BYTES):
    self.root = root
    self._memory: collections.OrderedDict[str, bytes] = (
        collections.OrderedDict())
    self._memory_bytes = 0
    self._memory_limit = memory_bytes
    self._lock = threading.Lock()

  def _path(self, name: str) -> pathlib.Path:
    parts = pathlib.PurePosixPath(name).parts
    if not parts or any(p in ('..', '.', '') or p.startswith('/')
                        for p in parts):
      raise ValueError(f'cache name {name!r} is not a relative path')
    return self.root.joinpath(*parts)

  def load(self, name: str) -> bytes | None:
    if self.root is None:
      with self._lock:
        body = self._memory.get(name)
        if body is not None:
          self._memory.move_to_end(name)
        return body
    try:
      return self._path(name).read_bytes()
    except FileNotFoundError:
      return None

  def store(self, name: str, body: bytes) -> None:
    if self.root is not None:
      files.write_bytes(self._path(name), body)
      return
    with self._lock:
      if name in self._memory:
        return
      self._memory[name] = body
      self._memory_bytes += len(body)
      while self._memory_bytes > self._memory_limit and len(self._memory) > 1:
        _, old = self._memory.popitem(last=False)
        self._memory_bytes -= len(old)

  def load_or_render(self, name: str,
                     render: Callable[[], bytes]) -> tuple[bytes, bool]:
    """(payload, whether it was rendered now). Runs in a worker thread."""
    body = self.load(name)
    if body is not None:
      return body, False
    body = render()
    self.store(name, body)
    return body, True


def _digest_rows(rows: Iterable[dict[Any, Any]]) -> str:
  h = hashlib.sha256()
  for row in rows:
    h.update(repr(sorted(row.items())).encode())
  return h.hexdigest()


def _digest_sources() -> str:
  """Hash of the emulator's Python sources (its renderer and its routes)."""
  h = hashlib.sha256()
  package = pathlib.Path(__file__).parent
  for source in sorted(package.rglob('*.py')):
    h.update(source.relative_to(package).as_posix().encode())
    h.update(source.read_bytes())
  return h.hexdigest()


def fingerprint(seed: Any, sas_root: Any, rows: Iterable[dict[Any, Any]]
                ) -> str:
  """16 hex digits naming one emulated sky's payloads (see module doc)."""
  return hashlib.sha256('\x00'.join((
      str(seed), str(sas_root), _digest_rows(rows),
      _digest_sources())).encode()).hexdigest()[:16]


class Lru:
  """A small thread-safe least-recently-used cache of values made on demand."""

  def __init__(self, size: int):
    self._size = size
    self._items: collections.OrderedDict = collections.OrderedDict()
    self._lock = threading.Lock()

  def get(self, key: Any, make: Callable[[], Any]) -> Any:
    with self._lock:
      if key in self._items:
        self._items.move_to_end(key)
        return self._items[key]
    value = make()
    with self._lock:
      self._items[key] = value
      while len(self._items) > self._size:
        self._items.popitem(last=False)
    return value
