"""The caches on any fsspec filesystem: URLs kept, atomic writes, safe names.

In-process through fsspec's `memory://` (and `file://`, which goes through
fsspec's LocalFileSystem, not pathlib); tests/integration/beam_test.py builds
with worker processes through a `file://` download dir.
"""

import asyncio
import pathlib
import pickle
import uuid

from etils import epath
import fsspec
import pytest

import synthetic_frames as sf
from skytfds import files
from skytfds.datasets import context as context_lib
from skytfds.services import cache as cache_lib
from skytfds.services import http

JPEG = sf.jpeg(64)
MEMORY = fsspec.filesystem('memory')


@pytest.fixture
def memory_root():
  """A fresh memory:// folder (the memory filesystem is one per process)."""
  root = f'memory://cache-test-{uuid.uuid4().hex}'
  yield root
  if MEMORY.exists(root):
    MEMORY.rm(root, recursive=True)


def _names(root: str) -> list[str]:
  """Every file under a memory:// root, relative to it."""
  base = MEMORY._strip_protocol(root)  # pylint: disable=protected-access
  return sorted(p[len(base) + 1:] for p in MEMORY.find(base))


@pytest.mark.parametrize('download_dir, workdir, storage', [
    ('gs://bucket/dl', 'gs://bucket/dl/skytfds', 'fsspec:gs'),
    ('s3://bucket/dl/', 's3://bucket/dl/skytfds', 'fsspec:s3'),
    ('file:///tmp/dl', 'file:///tmp/dl/skytfds', 'fsspec:file'),
    ('memory://dl', 'memory://dl/skytfds', 'fsspec:memory'),
    (epath.Path('gs://bucket/dl'), 'gs://bucket/dl/skytfds', 'fsspec:gs'),
    ('/tmp/dl', '/tmp/dl/skytfds', 'local'),
    (pathlib.Path('rel/dl'), 'rel/dl/skytfds', 'local'),
])
def test_download_dirs_stay_urls_end_to_end(download_dir, workdir, storage):
  assert files.join(download_dir, 'skytfds') == workdir
  ctx = context_lib.BuildContext(workdir=workdir, release=17)
  assert ctx.storage == storage
  cache = ctx.cache_dir
  assert str(cache) == f'{workdir}/cache/{ctx.source_key}'
  assert str(ctx.staging_dir('rgb')) == f'{workdir}/staged/{ctx.source_key}/rgb'
  # Through Fetcher (which still makes a pathlib.Path of it) to the same place.
  assert str(cache_lib.DiskCache(str(cache), max_bytes=10).root) == str(cache)
  assert pickle.loads(pickle.dumps(cache)) == cache  # Beam ships it.


def test_url_location_names_and_parents():
  where = files.location('memory://a/b/c.npz')
  assert isinstance(where, files.UrlPath) and not isinstance(where, pathlib.PurePath)
  assert where.name == 'c.npz' and str(where.parent) == 'memory://a/b'
  assert str(files.location('gs://bucket/x').parent) == 'gs://bucket'
  assert str(where.joinpath('d', 'e')) == 'memory://a/b/c.npz/d/e'
  assert files.backend('C:/data') == 'local'  # A drive letter is no protocol.
  with pytest.raises(ValueError):
    files.UrlPath('/not/a/url')


def test_memory_cache_reads_back_what_it_wrote_and_nothing_else(memory_root):
  cache = cache_lib.DiskCache(memory_root, max_bytes=2**20)
  assert cache.read('sdss/x.jpg', 'jpeg') == (None, '')
  cache.write('sdss/x.jpg', JPEG)
  assert cache.read('sdss/x.jpg', 'jpeg') == (JPEG, '')
  assert _names(memory_root) == ['sdss/x.jpg']  # No temporary name left.
  assert cache.evict('sdss/x.jpg') and not cache.evict('sdss/x.jpg')
  assert _names(memory_root) == []


def test_a_damaged_entry_is_dropped(memory_root):
  cache = cache_lib.DiskCache(memory_root, max_bytes=2**20)
  MEMORY.pipe_file(f'{memory_root}/sdss/x.jpg', JPEG[:len(JPEG) // 2])
  data, dropped = cache.read('sdss/x.jpg', 'jpeg')
  assert data is None and dropped
  assert _names(memory_root) == []


def test_writes_go_to_a_temporary_name_then_move(memory_root, monkeypatch):
  """No reader can open the final name before the whole body is there."""
  puts, moves = [], []
  real_pipe, real_mv = MEMORY.pipe_file, MEMORY.mv

  def pipe_file(path, data, **kw):
    assert not MEMORY.exists(f'{memory_root}/sdss/x.jpg')  # Not there yet.
    puts.append((path.rpartition('/')[2], len(data)))
    return real_pipe(path, data, **kw)

  def mv(src, dst, **kw):
    moves.append((src.rpartition('/')[2], dst.rpartition('/')[2]))
    return real_mv(src, dst, **kw)

  monkeypatch.setattr(MEMORY, 'pipe_file', pipe_file)
  monkeypatch.setattr(MEMORY, 'mv', mv)
  cache_lib.DiskCache(memory_root, max_bytes=2**20).write('sdss/x.jpg', JPEG)
  [(tmp, size)] = puts
  assert tmp.startswith(files.TEMP_PREFIX) and tmp.endswith('-x.jpg')
  assert size == len(JPEG) and moves == [(tmp, 'x.jpg')]
  assert _names(memory_root) == ['sdss/x.jpg']


def test_on_object_stores_the_final_name_is_one_put(memory_root, monkeypatch):
  monkeypatch.setattr(files, 'ONE_PUT_PROTOCOLS', frozenset({'memory'}))
  puts = []
  real_pipe = MEMORY.pipe_file
  monkeypatch.setattr(MEMORY, 'pipe_file', lambda path, data, **kw: (
      puts.append(path.rpartition('/')[2]), real_pipe(path, data, **kw)))
  monkeypatch.setattr(MEMORY, 'mv', lambda *a, **kw: pytest.fail('no move'))
  cache_lib.DiskCache(memory_root, max_bytes=2**20).write('sdss/x.jpg', JPEG)
  assert puts == ['x.jpg'] and _names(memory_root) == ['sdss/x.jpg']


def test_a_failed_write_leaves_nothing_and_temp_names_are_never_read(
    memory_root, monkeypatch):
  cache = cache_lib.DiskCache(memory_root, max_bytes=2**20)

  def broken_mv(*args, **kwargs):
    raise RuntimeError('store went away')

  monkeypatch.setattr(MEMORY, 'mv', broken_mv)
  with pytest.raises(OSError, match='RuntimeError: store went away'):
    cache.write('sdss/x.jpg', JPEG)  # OSError: Fetcher's 'cache_write'.
  assert _names(memory_root) == []
  monkeypatch.undo()
  # What a writer killed between its put and its move leaves behind.
  MEMORY.pipe_file(f'{memory_root}/sdss/{files.TEMP_PREFIX}dead-x.jpg', JPEG)
  assert cache.read('sdss/x.jpg', 'jpeg') == (None, '')


def test_a_fetcher_caches_through_a_url(memory_root):
  source = f'{memory_root}-source/x.jpg'
  MEMORY.pipe_file(source, JPEG)

  async def fetch():
    async with http.Fetcher(memory_root, max_attempts=1) as fetcher:
      return await fetcher.fetch(source, kind='jpeg', cache_name='c/x.jpg'), fetcher

  first, fetcher = asyncio.run(fetch())
  assert fetcher.stats.requests == 1
  assert str(fetcher.cache_path('c/x.jpg')) == f'memory:///{memory_root[9:]}/c/x.jpg'
  MEMORY.rm_file(source)
  again, fetcher = asyncio.run(fetch())
  assert first == again == JPEG
  assert fetcher.stats.cache_hits == 1 and fetcher.stats.requests == 0


@pytest.mark.parametrize('name', ['../outside', 'sas/../../x', '/etc/passwd',
                                  'sas//x', 'a\\..\\b'])
def test_url_cache_names_cannot_escape(name, memory_root):
  with pytest.raises(ValueError):
    cache_lib.DiskCache(memory_root, max_bytes=10).path(name)


def test_a_file_url_cache_goes_through_fsspec_and_cannot_leave_by_a_symlink(
    tmp_path):
  root = f'file://{tmp_path}/cache'
  cache = cache_lib.DiskCache(root, max_bytes=2**20)
  assert isinstance(cache.root, files.UrlPath)
  assert type(cache.root.fs).__name__ == 'LocalFileSystem'  # Not pathlib.
  cache.write('sdss/x.jpg', JPEG)
  assert (tmp_path / 'cache' / 'sdss' / 'x.jpg').read_bytes() == JPEG
  (tmp_path / 'outside').mkdir()
  (tmp_path / 'outside' / 'secret.jpg').write_bytes(JPEG)
  (tmp_path / 'cache' / 'ps1').symlink_to(tmp_path / 'outside')
  with pytest.raises(ValueError, match='leaves the cache directory'):
    cache.read('ps1/secret.jpg', 'jpeg')


def test_a_url_squeezed_through_pathlib_is_restored(tmp_path, monkeypatch):
  """Fetcher makes a pathlib.Path of its cache_dir: 'file:/...' must not
  become a folder named 'file:' in the working directory."""
  monkeypatch.chdir(tmp_path)
  cache = cache_lib.DiskCache(pathlib.Path(f'file://{tmp_path}/c'),
                              max_bytes=2**20)
  assert str(cache.root) == f'file://{tmp_path}/c'
  cache.write('x.jpg', JPEG)
  assert (tmp_path / 'c' / 'x.jpg').read_bytes() == JPEG
  assert not (tmp_path / 'file:').exists()
  restored = cache_lib.cache_root(pathlib.Path('gs://bucket/dl'))
  assert str(restored) == 'gs://bucket/dl'
  assert cache_lib.cache_root(pathlib.Path('C:/dl')) == pathlib.Path('C:/dl')


@pytest.mark.parametrize('given, tfds_gets', [
    ('gs://bucket/dl', 'gs://bucket/dl'), ('file:///tmp/dl', '/tmp/dl'),
    ('memory://dl', None), ('/tmp/dl', '/tmp/dl'), (None, None),
    (epath.Path('gs://bucket/dl'), epath.Path('gs://bucket/dl'))])
def test_tfds_gets_a_download_dir_it_can_open(given, tfds_gets):
  """TFDS opens --download_dir with etils.epath, which refuses file:// and
  memory://; skytfds' own caches keep the URL (see the Beam test)."""
  from skytfds.datasets import builder as builder_lib  # pylint: disable=g-import-not-at-top
  assert builder_lib._tfds_download_dir(given) == tfds_gets  # pylint: disable=protected-access
  if tfds_gets:
    epath.Path(tfds_gets)
  if given and files.is_url(given) and str(given).split(':')[0] in ('file', 'memory'):
    with pytest.raises(Exception):
      epath.Path(given)  # Why the substitute is needed.
