"""What every suite shares: the machine, timers, the result, the emulator."""

import contextlib
import importlib.metadata
import os
import pathlib
import platform
import shutil
import sys
import time
from typing import Any, Iterator

from skytfds import catalog as catalog_lib

# Targets of issue 7: the project's speed-up over the baseline, and the
# fraction of the machine's limit it reaches.
TARGETS = {
    'build': {'ratio': 3.0, 'of_limit': 0.8},
    'download': {'ratio': 10.0},
    'input': {'ratio': 3.0, 'of_limit': 0.6},
    'train': {'ratio': 20.0},
}


def machine() -> dict[str, Any]:
  """nproc, CPU model, memory and versions: where the numbers come from."""
  cpu = platform.processor() or platform.machine()
  with contextlib.suppress(OSError):  # Not Linux: the platform's name stays.
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  memory_gib = None
  with contextlib.suppress(OSError):
    for line in pathlib.Path('/proc/meminfo').read_text().splitlines():
      if line.startswith('MemTotal:'):
        memory_gib = round(int(line.split()[1]) / 2**20, 1)
        break
  versions = {'python': platform.python_version()}
  for package in ('numpy', 'astropy', 'matplotlib', 'aiohttp', 'tensorflow',
                  'tensorflow-datasets', 'keras', 'pillow'):
    try:  # Without importing them (TensorFlow takes seconds to import).
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return {'nproc': os.cpu_count(), 'cpu': cpu, 'memory_gib': memory_gib,
          'platform': platform.platform(), 'versions': versions}


def load_average() -> float:
  """The 1-minute load average (other users of the machine show up here)."""
  try:
    return round(os.getloadavg()[0], 2)
  except OSError:
    return float('nan')


def _cpu_seconds() -> float:
  """User + system CPU seconds of this process (all threads) and its children."""
  t = os.times()
  return t.user + t.system + t.children_user + t.children_system


class Timer:
  """`with Timer() as t: ...`; then t.seconds (wall) and t.cpu_seconds.

  CPU seconds count every thread of this process and its waited-for children:
  on a machine shared with other users they move much less than wall time.
  """

  def __enter__(self) -> 'Timer':
    self.start = time.perf_counter()
    self.cpu_start = _cpu_seconds()
    self.seconds = self.cpu_seconds = 0.0
    return self

  def __exit__(self, *exc) -> None:
    self.seconds = time.perf_counter() - self.start
    self.cpu_seconds = _cpu_seconds() - self.cpu_start


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
  """Sets environment variables for the block, restoring the old values."""
  old = {k: os.environ.get(k) for k in values}
  os.environ.update(values)
  try:
    yield
  finally:
    for key, value in old.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


def fresh_dir(path: pathlib.Path) -> pathlib.Path:
  """An empty directory at `path` (removed first if it exists)."""
  if path.exists():
    shutil.rmtree(path)
  path.mkdir(parents=True)
  return path


def result(suite: str, *, project: float, baseline: float, limit: float | None,
           unit: str, higher_is_better: bool = True, **extra) -> dict[str, Any]:
  """The JSON object of one suite, with ratio, of_limit and the targets."""
  if higher_is_better:
    ratio = project / baseline if baseline else None
    of_limit = project / limit if limit else None
  else:  # Times: the speed-up is baseline / project.
    ratio = baseline / project if project else None
    of_limit = limit / project if (limit and project) else None
  target = TARGETS[suite]
  meets = ratio is not None and ratio >= target['ratio']
  if 'of_limit' in target:
    meets = meets and of_limit is not None and of_limit >= target['of_limit']
  out = {
      'suite': suite,
      'project': round(project, 3),
      'baseline': round(baseline, 3),
      'limit': None if limit is None else round(limit, 3),
      'unit': unit,
      'ratio': None if ratio is None else round(ratio, 2),
      'of_limit': None if of_limit is None else round(of_limit, 2),
      'target_ratio': target['ratio'],
      'target_of_limit': target.get('of_limit'),
      'meets_target': meets,
  }
  for key, value in extra.items():
    out[key] = round(value, 3) if isinstance(value, float) else value
  return out


def log(message: str) -> None:
  print(f'[benchmark {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr,
        flush=True)


def start_emulator(catalog_text: str, source: str, *, sas_root: str | None,
                   cache_dir: pathlib.Path | None, latency_ms: float):
  """The emulator on 127.0.0.1 in a background thread (already started)."""
  from skytfds.emulator import app as emulator_app  # pylint: disable=g-import-not-at-top
  from skytfds.emulator import sky as sky_lib  # pylint: disable=g-import-not-at-top
  parsed = catalog_lib.parse_catalog(catalog_text, source)
  sky = sky_lib.Sky(parsed, seed=0, sas_root=sas_root)
  emulator = emulator_app.EmulatorThread(
      sky, cache_dir=None if cache_dir is None else str(cache_dir),
      latency_ms=latency_ms)
  return emulator.start()
