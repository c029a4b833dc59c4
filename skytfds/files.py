"""Writing files so that a reader never sees half of one: the one atomic-write helper."""

import contextlib
import os
import pathlib
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = False
                ) -> Iterator[pathlib.Path]:
  """Yields a temporary path beside `path`; renames it onto `path` on success.

  The temporary name ends with `path`'s own name, so writers that insist on
  an extension (Keras' `.weights.h5`, NumPy's `.npz`) accept it. On any
  error the temporary file is removed and `path` is left as it was.

  Args:
    path: the file to write.
    fsync: flush the file to disk before the rename (caches that must survive
      a power cut).
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, name = tempfile.mkstemp(dir=path.parent, prefix='.tmp-',
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


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False
                ) -> None:
  """Writes `data` to `path` atomically."""
  with atomic_path(path, fsync=fsync) as tmp:
    tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` (UTF-8) to `path` atomically."""
  write_bytes(path, text.encode('utf-8'))
