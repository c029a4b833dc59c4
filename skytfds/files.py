"""Where files live, and writing them so that a reader never sees half of one.

A location is either a local path (`pathlib.Path`: POSIX calls, fsync,
`os.replace`) or a URL with a protocol (`gs://`, `s3://`, `file://`,
`memory://`, any fsspec filesystem: `UrlPath`). `location()` picks one;
`write_bytes` writes either atomically:

* local path: a temporary file in the same folder, flushed if asked, then
  `os.replace` (atomic on POSIX);
* object stores (`ONE_PUT_PROTOCOLS`: gs, s3, az, ...): the final name in one
  upload. An object appears whole or not at all: "Amazon S3 never adds
  partial objects" (S3 API reference, PutObject); Cloud Storage gives
  "atomic guarantees for most operations involving individual objects, such
  as uploading" and read-after-write consistency
  (https://cloud.google.com/storage/docs/consistency). A rename there is a
  copy plus a delete, so a temporary name would cost two more requests and
  leave an orphan object behind a writer that dies between them;
* any other fsspec filesystem (`file://`, `memory://`, sftp, hdfs, ...),
  where a write may be visible while it is under way: a unique temporary
  name in the same folder (`.tmp-<hex>-<name>`), then `fs.mv` onto the final
  name (a rename on local disks, sftp and hdfs).

Readers open final names only, never a `.tmp-` one, and check what they read.
"""

import contextlib
import os
import pathlib
import posixpath
import re
import tempfile
import uuid
from typing import Iterator, Union

# Protocols whose single-object upload is atomic: written in one put.
ONE_PUT_PROTOCOLS = frozenset({'gs', 'gcs', 's3', 's3a', 'az', 'abfs', 'abfss'})
TEMP_PREFIX = '.tmp-'
# 'gs://', 's3://', 'simplecache::gs://'; a one-letter scheme is a drive.
_URL = re.compile(r'^[A-Za-z][A-Za-z0-9+.\-]+(::[A-Za-z][A-Za-z0-9+.\-]+)*://')


def is_url(where) -> bool:
  """True for a URL with a protocol (gs://..., file:///...), not a plain path."""
  if isinstance(where, UrlPath):
    return True
  # (A pathlib path never holds '://'; an etils gs:// path gives its URL.)
  return bool(_URL.match(os.fspath(where)))


class UrlPath:
  """The part of `pathlib.Path` the caches use, on any fsspec filesystem.

  Deliberately not `os.PathLike`: `open()` or `pathlib.Path()` of one would
  silently turn 'gs://b/x' into a local 'gs:/b/x'. Pickles as its URL (Beam
  ships it to workers, which open their own filesystem).
  """

  def __init__(self, url: str):
    url = os.fspath(url)
    if not _URL.match(url):
      raise ValueError(f'{url!r}: expected a URL with a protocol (gs://, file://, ...)')
    self.url = url if url.endswith('://') else url.rstrip('/')
    self._fs_path = None

  def __reduce__(self):
    return UrlPath, (self.url,)

  @property
  def fs(self):
    return self._resolve_fs()[0]

  @property
  def path(self) -> str:
    """The path within its filesystem, as fsspec spells it."""
    return self._resolve_fs()[1]

  def _resolve_fs(self):
    if self._fs_path is None:
      import fsspec  # pylint: disable=g-import-not-at-top  (only for URLs)
      self._fs_path = fsspec.core.url_to_fs(self.url)
    return self._fs_path

  @property
  def protocol(self) -> str:
    """The storage's protocol, read off the URL: 'gs', 'file', 'memory', ..."""
    return self.url.partition('://')[0].rpartition('::')[2].lower()

  def __str__(self) -> str:
    return self.url

  def __repr__(self) -> str:
    return f'UrlPath({self.url!r})'

  def __eq__(self, other) -> bool:
    return isinstance(other, UrlPath) and other.url == self.url

  def __hash__(self) -> int:
    return hash(self.url)

  def __truediv__(self, name) -> 'UrlPath':
    name = os.fspath(name).strip('/')
    return UrlPath(self.url + name if self.url.endswith('://')
                   else f'{self.url}/{name}')

  def joinpath(self, *names) -> 'UrlPath':
    out = self
    for name in names:
      out = out / name
    return out

  @property
  def name(self) -> str:
    return self.url.rpartition('/')[2]

  @property
  def parent(self) -> 'UrlPath':
    head = self.url.rpartition('/')[0]
    return UrlPath(head + '/' if head.endswith(':/') else head)

  def resolve(self) -> 'UrlPath':
    """The canonical URL: '.' and '..' removed; on a local disk, links followed."""
    path = self.path
    if self.protocol in ('file', 'local'):
      path = os.path.realpath(path)
    elif path:
      path = posixpath.normpath(path)
    return UrlPath(self.fs.unstrip_protocol(path))

  def is_relative_to(self, other: 'UrlPath') -> bool:
    return isinstance(other, UrlPath) and (
        self.url == other.url or self.url.startswith(other.url.rstrip('/') + '/'))

  def exists(self) -> bool:
    return self.fs.exists(self.path)

  def read_bytes(self) -> bytes:
    return self.fs.cat_file(self.path)

  def write_bytes(self, data: bytes) -> None:
    """Writes in one put, not atomically on every filesystem: see `write_bytes`."""
    try:
      self.fs.pipe_file(self.path, data)
    except FileNotFoundError:  # A local-like filesystem without the folder.
      self.parent.mkdir(parents=True, exist_ok=True)
      self.fs.pipe_file(self.path, data)

  def open(self, mode: str = 'rb'):
    return self.fs.open(self.path, mode)

  def unlink(self, missing_ok: bool = False) -> None:
    try:
      self.fs.rm_file(self.path)
    except FileNotFoundError:
      if not missing_ok:
        raise

  def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
    del parents  # fsspec makes the parents too (a no-op on object stores).
    self.fs.makedirs(self.path, exist_ok=exist_ok)


Location = Union[pathlib.Path, UrlPath]


def location(where: 'str | os.PathLike | UrlPath') -> Location:
  """`where` as a UrlPath if it is a URL with a protocol, else a pathlib.Path."""
  if isinstance(where, (UrlPath, pathlib.Path)):
    return where
  text = os.fspath(where)  # An etils gs:// path gives its URL.
  return UrlPath(text) if is_url(text) else pathlib.Path(text)


def join(base: 'str | os.PathLike | UrlPath', *names: str) -> str:
  """`base`/`names` as a string, a URL kept a URL (pathlib would drop a '/')."""
  return str(location(base).joinpath(*names))


def backend(where: 'str | os.PathLike | UrlPath') -> str:
  """'local' (pathlib, fsync, os.replace) or 'fsspec:<protocol>'."""
  where = location(where)
  return f'fsspec:{where.protocol}' if isinstance(where, UrlPath) else 'local'


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False
                ) -> Iterator[pathlib.Path]:
  """Yields a temporary local path beside `path`; renames it onto `path` on success.

  The temporary name ends with `path`'s own name, so writers that insist on
  an extension (Keras' `.weights.h5`, NumPy's `.npz`) accept it. On any
  error the temporary file is removed and `path` is left as it was. Local
  paths only: `write_bytes` writes a URL.

  Args:
    path: the file to write.
    fsync: flush the file to disk before the rename (caches that must survive
      a power cut).
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX,
                              suffix=f'-{path.name}')
  os.close(fd)
  tmp = pathlib.Path(name)
  try:
    yield tmp
    if fsync:
      with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      tmp.unlink()
    raise


def _write_url(path: UrlPath, data: bytes) -> None:
  if path.protocol in ONE_PUT_PROTOCOLS:
    path.write_bytes(data)  # One put: the object appears whole or not at all.
    return
  tmp = path.parent / f'{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}'
  try:
    tmp.write_bytes(data)
    path.fs.mv(tmp.path, path.path)
  except BaseException:
    with contextlib.suppress(Exception):
      tmp.unlink(missing_ok=True)
    raise


def write_bytes(path: 'str | os.PathLike | UrlPath', data: bytes, *,
                fsync: bool = False) -> None:
  """Writes `data` to `path` (a local path or a URL) atomically.

  `fsync` applies to local paths; fsspec has no flush-to-disk call.
  """
  path = location(path)
  if isinstance(path, UrlPath):
    _write_url(path, data)
    return
  with atomic_path(path, fsync=fsync) as tmp:
    tmp.write_bytes(data)


def write_text(path: 'str | os.PathLike | UrlPath', text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  write_bytes(path, text.encode('utf-8'))
