r"""Benchmarks skytfds against the original study's workflow and the machine.

  python tools/benchmark.py --suite=build|download|input|train|all [--quick]
      [--workdir=DIR] [--results=benchmarks.jsonl]

Each suite measures, in one run on the same data, the project and a faithful
reimplementation of the original study's method (the baseline), and where it
makes sense the machine's limit for that work. Its result is one JSON object;
all of them are printed as the last lines of the output (one per suite), e.g.

  {"suite": "input", "project": 3500.0, "baseline": 1190.0, "limit": 6800.0,
   "unit": "images/s", "ratio": 2.94, "of_limit": 0.51, ...}

`ratio` is always the speed-up of the project over the baseline (> 1: the
project is faster); `of_limit` is project / limit. Extra keys describe the
data, the load average before and after, and suite specifics.

Suites:
  build     FITS frames per minute from local .fits.bz2 files (the real SDSS
            frames of ../shared/data/sas, repeated under other field numbers
            without --quick). Baseline: astropy open + matplotlib imshow of the
            whole frame + savefig PNG, one process, as the study did. Project:
            `sdss_filters` built from those frames (a local SAS mirror and a
            catalogue of objects in them). Limit: bz2 decompression of the same
            files on all cores (threads: bz2 releases the GIL).
  download  Frame files per second from the emulator (in-process, 100 ms
            latency per request). Baseline: `wget -i` over a URL list with one
            URL per object and band, duplicates as listed. Project: the
            service client (`http.Fetcher`, its default concurrency) fetching
            each distinct (frame, band) once. Limit: the latency bound of
            that concurrency.
  input     Images per second delivered to the model. Baseline: the same
            JPEGs in class folders through Keras
            `ImageDataGenerator.flow_from_directory` (224 px, batch 32,
            MobileNet preprocess_input). Project: `sdss_cutouts` TFRecords
            (built against the emulator) through `input_pipeline.make_dataset`
            as the trainer streams them (decoded images kept in memory after
            the first epoch; `project_decoding_every_epoch` without). Limit:
            `tf.io.decode_jpeg` + resize of the same bytes in a parallel
            tf.data map on all cores.
  train     Wall time for N epochs (10 with --quick, else 50) of the frozen
            MobileNet (random weights, BatchNorm calibrated: ImageNet weights
            cannot be downloaded offline) + the study's dense head. Baseline:
            `model.fit` over ImageDataGenerator. Project: `trainers/train.py`
            with its defaults (cached embeddings). Both validation accuracies
            are reported.

Work files live under --workdir (default: <tmp>/skytfds-benchmark); rendered
emulator payloads and built datasets are kept there between runs, so only the
first run pays for them (never inside a timed part).
"""

import asyncio
import bz2
import concurrent.futures
import contextlib
import csv
import hashlib
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Iterator

from absl import app
from absl import flags
from absl import logging
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
from skytfds import catalog as catalog_lib
from skytfds import settings
from skytfds.services import http
from skytfds.services import sas
# pylint: enable=g-import-not-at-top,wrong-import-position

SUITES = ('build', 'download', 'input', 'train')
BANDS = catalog_lib.BANDS
RERUN = 301
# Targets of issue 7: the project's speed-up over the baseline, and the
# fraction of the machine's limit it reaches.
TARGETS = {
    'build': {'ratio': 3.0, 'of_limit': 0.8},
    'download': {'ratio': 10.0},
    'input': {'ratio': 3.0, 'of_limit': 0.6},
    'train': {'ratio': 20.0},
}
IMAGE_SIZE = 224        # MobileNet's input, pixels.
BATCH_SIZE = 32         # The study's batch size.
FRAME_MARGIN_PX = 64    # Objects are placed at least this far from a frame edge.
FIELD_COPY_STEP = 400   # Copy k of field F is served as field F + k * 400.
MAX_FIELD = 4095        # 12 bits in an objid: the catalogue refuses larger.

FLAGS = flags.FLAGS
flags.DEFINE_enum('suite', 'all', SUITES + ('all',), 'Which suite to run.')
flags.DEFINE_bool('quick', False, 'Small sizes: each suite under a minute.')
flags.DEFINE_string(
    'workdir', os.path.join(tempfile.gettempdir(), 'skytfds-benchmark'),
    'Work files (emulator cache, built datasets); kept between runs.')
flags.DEFINE_string('results', None,
                    'Also append the JSON lines to this file (for the plot).')
flags.DEFINE_string(
    'shared_data', str(REPO_ROOT.parent / 'shared' / 'data'),
    'The shared real SDSS data (sas/ and catalogs/).')
flags.DEFINE_integer('copies', None,
                     'build/download: copies of each real field (default: 1 '
                     'with --quick, else 4 for build and 8 for download).')
flags.DEFINE_integer('objects_per_field', None,
                     'build/download: objects placed in each field (default '
                     '20 for build, 5 for download: the median of the study\'s '
                     'catalogue).')
flags.DEFINE_float('latency_ms', 100.0, 'download: emulator latency per request.')
flags.DEFINE_integer('per_class', None,
                     'input/train: objects per class (default 40 with --quick, '
                     'else 100).')
flags.DEFINE_integer('repeats', None,
                     'build/input: interleaved repetitions, best kept (default '
                     '1 with --quick, else 2).')
flags.DEFINE_integer('epochs', None, 'train: epochs (default 10 with --quick, '
                     'else 50).')


# ---------------------------------------------------------------------------
# Machine and measurement helpers.


def machine() -> dict[str, Any]:
  """nproc, CPU model, memory and versions: where the numbers come from."""
  cpu = platform.processor() or platform.machine()
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  memory_gib = None
  try:
    for line in pathlib.Path('/proc/meminfo').read_text().splitlines():
      if line.startswith('MemTotal:'):
        memory_gib = round(int(line.split()[1]) / 2**20, 1)
        break
  except OSError:
    pass
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


# ---------------------------------------------------------------------------
# Frames: the real SDSS fields, repeated under other field numbers.


def real_fields(sas_root: pathlib.Path) -> dict[catalog_lib.FrameId,
                                                dict[str, pathlib.Path]]:
  """Fields of the local SAS mirror that have all five bands -> band -> path."""
  fields = {}
  for r_path in sorted(sas_root.glob(
      'dr17/eboss/photoObj/frames/*/*/*/frame-r-*.fits.bz2')):
    run, camcol, field = r_path.name[len('frame-r-'):-len('.fits.bz2')].split('-')
    frame = catalog_lib.FrameId(int(run), int(r_path.parts[-4]), int(camcol),
                                int(field))
    paths = {b: r_path.with_name(r_path.name.replace('frame-r-', f'frame-{b}-'))
             for b in BANDS}
    if all(p.is_file() for p in paths.values()):
      fields[frame] = paths
  if not fields:
    raise SystemExit(f'benchmark: no five-band fields under {sas_root}: point '
                     '--shared_data at the folder holding sas/')
  return fields


def frame_wcs(path: pathlib.Path):
  """The celestial WCS of a .fits.bz2 frame, from its primary header only."""
  from astropy import wcs as astropy_wcs  # pylint: disable=g-import-not-at-top
  from astropy.io import fits  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  raw = bz2.BZ2Decompressor().decompress(path.read_bytes(), max_length=2880 * 64)
  header = fits.Header.fromstring(raw[:raw.index(b'END' + b' ' * 77) + 80])
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', astropy_wcs.FITSFixedWarning)
    return astropy_wcs.WCS(header).celestial


def mirror_fields(sas_root: pathlib.Path, out: pathlib.Path, copies: int
                  ) -> dict[catalog_lib.FrameId, catalog_lib.FrameId]:
  """A SAS tree under `out` with `copies` of every real field (symlinks).

  Copy k of field F is field F + k * FIELD_COPY_STEP of the same run and
  camcol (at most MAX_FIELD). Returns served field -> the real field whose files it holds.
  """
  fields = real_fields(sas_root)
  highest = max(f.field for f in fields) + (copies - 1) * FIELD_COPY_STEP
  if copies < 1 or highest > MAX_FIELD:
    raise SystemExit(f'benchmark: --copies={copies}: field numbers would reach '
                     f'{highest} (> {MAX_FIELD}); use fewer copies')
  served = {}
  for real, paths in fields.items():
    for k in range(copies):
      frame = real._replace(field=real.field + k * FIELD_COPY_STEP)
      for band, path in paths.items():
        target = out / sas.frame_path(frame, band)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
          os.symlink(path.resolve(), target)
      served[frame] = real
  return served


def objects_in_fields(sas_root: pathlib.Path,
                      served: dict[catalog_lib.FrameId, catalog_lib.FrameId],
                      per_field: int, seed: int = 0) -> list[dict[str, Any]]:
  """`per_field` catalogue rows at random positions inside each served field.

  Positions are drawn in r-band pixels at least FRAME_MARGIN_PX from the edges
  and mapped to (ra, dec) degrees through the real field's r-band WCS; copies of
  a field get the same positions. Classes cycle GALAXY, QSO, STAR.
  """
  fields = real_fields(sas_root)
  rng = np.random.default_rng(seed)
  positions = {}
  for real in sorted(set(served.values())):
    wcs = frame_wcs(fields[real]['r'])
    x = rng.uniform(FRAME_MARGIN_PX, 2048 - FRAME_MARGIN_PX, per_field)
    y = rng.uniform(FRAME_MARGIN_PX, 1489 - FRAME_MARGIN_PX, per_field)
    ra, dec = wcs.all_pix2world(x, y, 0)
    positions[real] = list(zip(np.mod(ra, 360.0), dec))
  rows = []
  for frame, real in sorted(served.items()):
    for n, (ra, dec) in enumerate(positions[real]):
      rows.append({'ra': f'{ra:.8f}', 'dec': f'{dec:.8f}', 'run': frame.run,
                   'rerun': frame.rerun, 'camcol': frame.camcol,
                   'field': frame.field,
                   'class': catalog_lib.CLASSES[n % len(catalog_lib.CLASSES)]})
  return rows


def write_csv(path: pathlib.Path, rows: list[dict[str, Any]]) -> pathlib.Path:
  with open(path, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  return path


# ---------------------------------------------------------------------------
# build


def study_fits_to_png(paths: list[pathlib.Path], out: pathlib.Path) -> None:
  """The study's FITS step: open, imshow the whole frame, colorbar, savefig."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from astropy.io import fits  # pylint: disable=g-import-not-at-top
  from astropy.visualization import astropy_mpl_style  # pylint: disable=g-import-not-at-top
  import warnings  # pylint: disable=g-import-not-at-top
  with plt.style.context(astropy_mpl_style), warnings.catch_warnings():
    warnings.simplefilter('ignore')  # vmin == vmax, as in the study.
    for i, path in enumerate(paths):
      with fits.open(path, memmap=True) as hdul:
        image = hdul[0].data
        plt.figure()
        plt.imshow(image, cmap='gray', vmin=0, vmax=0)
        plt.colorbar()
        plt.savefig(out / f'{i:04d}-{path.name[:-len(".fits.bz2")]}.png')
        plt.close()


def bz2_all_cores(paths: list[pathlib.Path]) -> int:
  """Decompresses every file on all cores (threads); total bytes out."""
  def one(path):
    return len(bz2.decompress(path.read_bytes()))
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
    return sum(pool.map(one, paths))


def build_sdss_filters(data_dir: pathlib.Path, download_dir: pathlib.Path,
                       sas_url: str, catalog_path: pathlib.Path
                       ) -> dict[str, Any]:
  """Builds sdss_filters/tiny from a local SAS mirror; its build report."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
  with environment(**{settings.SAS_URL_ENV: sas_url,
                      settings.CATALOG_ENV: str(catalog_path)}):
    builder = tfds.builder('sdss_filters/tiny', data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(download_dir))
  return json.loads((pathlib.Path(builder.data_path) / 'build_report.json')
                    .read_text())


def suite_build(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  sas_root = pathlib.Path(FLAGS.shared_data) / 'sas'
  copies = FLAGS.copies or (1 if quick else 4)
  per_field = FLAGS.objects_per_field or 20
  work = fresh_dir(work / 'build')
  served = mirror_fields(sas_root, work / 'sas', copies)
  catalog_path = write_csv(work / 'catalog.csv',
                           objects_in_fields(sas_root, served, per_field))
  paths = sorted((work / 'sas').rglob('*.fits.bz2'))
  log(f'build: {len(paths)} frames ({len(served)} fields x 5 bands, '
      f'{per_field} objects per field)')
  # Imports, first-use costs and the page cache outside the timed parts.
  import tensorflow_datasets  # pylint: disable=g-import-not-at-top,unused-import
  import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
  study_fits_to_png(paths[:1], fresh_dir(work / 'png-warmup'))
  for path in paths:
    path.read_bytes()
  load_before = load_average()
  repeats = FLAGS.repeats or (1 if quick else 2)
  times = {'limit': [], 'project': [], 'baseline': []}
  cpu = {'limit': [], 'project': [], 'baseline': []}
  for rep in range(repeats):  # Interleaved, so load changes hit all three.
    with Timer() as t:
      bz2_all_cores(paths)
    times['limit'].append(t.seconds)
    cpu['limit'].append(t.cpu_seconds)
    log(f'build: limit (bz2 on {os.cpu_count()} threads) {t.seconds:.1f} s, '
        f'{t.cpu_seconds:.1f} CPU s')
    with Timer() as t:
      report = build_sdss_filters(work / f'data-{rep}', work / f'dl-{rep}',
                                  str(work / 'sas'), catalog_path)
    times['project'].append(t.seconds)
    cpu['project'].append(t.cpu_seconds)
    frames = report['frames_decoded']
    log(f'build: project {t.seconds:.1f} s, {t.cpu_seconds:.1f} CPU s, '
        f'{frames} frames decoded, {report["objects_written"]} stamps written')
    with Timer() as t:
      study_fits_to_png(paths, fresh_dir(work / 'png'))
    times['baseline'].append(t.seconds)
    cpu['baseline'].append(t.cpu_seconds)
    log(f'build: baseline (study) {t.seconds:.1f} s, {t.cpu_seconds:.1f} CPU s')
  per_min = lambda n, s: 60.0 * n / s
  best = {k: min(v) for k, v in times.items()}
  return result(
      'build',
      project=per_min(frames, best['project']),
      baseline=per_min(len(paths), best['baseline']),
      limit=per_min(len(paths), best['limit']),
      unit='frames/min',
      frames=len(paths), frames_decoded_by_project=frames,
      objects=report['objects_requested'],
      stamps_written=report['objects_written'], repeats=repeats,
      seconds={k: [round(x, 2) for x in v] for k, v in times.items()},
      cpu_seconds={k: [round(x, 2) for x in v] for k, v in cpu.items()},
      load_before=load_before, load_after=load_average())


# ---------------------------------------------------------------------------
# download


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


def sequential_download(urls: list[str], out: pathlib.Path) -> tuple[int, str]:
  """One request at a time, duplicates as listed: `wget -i` (urllib without wget).

  Returns (files written, method).
  """
  url_list = out.parent / 'urls.txt'
  url_list.write_text('\n'.join(urls) + '\n')
  wget = shutil.which('wget')
  if wget:
    env = {**os.environ, 'no_proxy': '127.0.0.1,localhost',
           'NO_PROXY': '127.0.0.1,localhost'}
    subprocess.run([wget, '--quiet', '--no-proxy', '--tries=3', '-i',
                    str(url_list), '-P', str(out)], check=True, env=env)
    method = 'wget -i'
  else:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for i, url in enumerate(urls):
      with opener.open(url, timeout=60) as response:
        (out / f'{i:05d}-{url.rsplit("/", 1)[-1]}').write_bytes(response.read())
    method = 'urllib, one at a time'
  return sum(1 for _ in out.iterdir()), method


async def project_download(objects: list[catalog_lib.CatalogObject],
                           cache_dir: pathlib.Path, sas_url: str
                           ) -> dict[str, Any]:
  """The project's way: group by frame, fetch each (frame, band) once."""
  from skytfds.datasets import frame_stage  # pylint: disable=g-import-not-at-top
  async with http.Fetcher(cache_dir) as fetcher:
    groups = frame_stage.group_by_frame(objects)
    blobs = await asyncio.gather(*(
        sas.fetch_frame(fetcher, frame, band, base=sas_url)
        for frame in groups for band in BANDS))
    stats = fetcher.stats.as_dict()
    stats['max_concurrency'] = fetcher.max_concurrency
  stats['files'] = len(blobs)
  return stats


def suite_download(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  sas_root = pathlib.Path(FLAGS.shared_data) / 'sas'
  copies = FLAGS.copies or (2 if quick else 8)
  per_field = FLAGS.objects_per_field or 5
  work = fresh_dir(work / 'download')
  served = mirror_fields(sas_root, work / 'sas', copies)
  rows = objects_in_fields(sas_root, served, per_field)
  catalog_path = write_csv(work / 'catalog.csv', rows)
  catalog_text = catalog_path.read_text()
  objects = catalog_lib.parse_catalog(catalog_text, str(catalog_path)).objects
  emulator = start_emulator(catalog_text, str(catalog_path),
                            sas_root=str(work / 'sas'), cache_dir=None,
                            latency_ms=FLAGS.latency_ms)
  try:
    # As the study listed them: one URL per object and band, duplicates kept.
    urls = [sas.frame_url(o.frame, b, base=emulator.sas_url)
            for o in objects for b in BANDS]
    distinct = sorted(set(urls))
    log(f'download: {len(urls)} URLs listed, {len(distinct)} distinct '
        f'(latency {FLAGS.latency_ms:g} ms)')
    # Warm-up outside the timed parts: every distinct file once (page cache,
    # emulator threads, connection set-up code paths).
    http.run(project_download(objects, fresh_dir(work / 'warm'),
                              emulator.sas_url))
    load_before = load_average()
    requests_before = emulator.stats()['requests']
    with Timer() as project_t:
      stats = http.run(project_download(objects, fresh_dir(work / 'cache'),
                                        emulator.sas_url))
    project_requests = emulator.stats()['requests'] - requests_before
    log(f'download: project {project_t.seconds:.2f} s, {stats["files"]} files, '
        f'{project_requests} requests')
    requests_before = emulator.stats()['requests']
    with Timer() as baseline_t:
      written, method = sequential_download(urls, fresh_dir(work / 'wget'))
    baseline_requests = emulator.stats()['requests'] - requests_before
    log(f'download: baseline ({method}) {baseline_t.seconds:.2f} s, {written} '
        f'files, {baseline_requests} requests')
  finally:
    emulator.stop()
  if written != len(urls):
    raise SystemExit(f'benchmark: the baseline wrote {written} files, expected '
                     f'{len(urls)}')
  concurrency = stats['max_concurrency']
  latency_bound_s = math.ceil(len(distinct) / concurrency) * FLAGS.latency_ms / 1e3
  return result(
      'download',
      # Files the URL list asks for, obtained per second.
      project=len(urls) / project_t.seconds,
      baseline=len(urls) / baseline_t.seconds,
      limit=len(urls) / latency_bound_s if latency_bound_s else None,
      unit='listed files/s',
      listed_files=len(urls), distinct_files=len(distinct),
      dedup_factor=round(len(urls) / len(distinct), 2),
      project_distinct_files_per_s=len(distinct) / project_t.seconds,
      ratio_without_dedup=round(
          (len(distinct) / project_t.seconds) / (len(urls) / baseline_t.seconds),
          2),
      project_requests=project_requests, baseline_requests=baseline_requests,
      max_concurrency=concurrency, latency_ms=FLAGS.latency_ms,
      baseline_method=method, limit_kind='latency bound: ceil(distinct / '
      'max_concurrency) x latency',
      mean_file_mb=round(stats['bytes_fetched'] / max(stats['files'], 1) / 1e6, 2),
      project_s=project_t.seconds, baseline_s=baseline_t.seconds,
      load_before=load_before, load_after=load_average())


# ---------------------------------------------------------------------------
# input and train: SkyServer cutouts from the emulator, as TFRecords and JPEGs.


def balanced_catalog(per_class: int) -> str:
  """The first `per_class` rows of each class of specobj_35k.csv, as CSV text."""
  path = pathlib.Path(FLAGS.shared_data) / 'catalogs' / 'specobj_35k.csv'
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader)
    cls = header.index('class')
    taken = {c: 0 for c in catalog_lib.CLASSES}
    lines = [','.join(header)]
    for row in reader:
      if row[cls] in taken and taken[row[cls]] < per_class:
        taken[row[cls]] += 1
        lines.append(','.join(row))
  return '\n'.join(lines) + '\n'


class CutoutData:
  """sdss_cutouts/tiny built against the emulator, and its JPEGs in folders.

  Attributes:
    data_dir: the TFDS data_dir holding sdss_cutouts/tiny.
    jpeg_dir: <split>/<CLASS>/<key>.jpg, the same bytes as the TFRecords.
    builder: the prepared builder.
  """

  def __init__(self, work: pathlib.Path, per_class: int):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
    text = balanced_catalog(per_class)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    root = work / f'cutouts-{per_class}-{digest}'
    root.mkdir(parents=True, exist_ok=True)
    catalog_path = root / 'catalog.csv'
    catalog_path.write_text(text)
    self.data_dir = root / 'data'
    self.jpeg_dir = root / 'jpeg'
    builder = tfds.builder('sdss_cutouts/tiny', data_dir=str(self.data_dir))
    if not builder.is_prepared():
      log(f'input: building sdss_cutouts/tiny ({3 * per_class} objects) '
          'against the emulator (first run only)')
      emulator = start_emulator(text, str(catalog_path), sas_root=None,
                                cache_dir=work / 'emulator-cache', latency_ms=0)
      try:
        with environment(**emulator.environ(),
                         **{settings.CATALOG_ENV: str(catalog_path)}):
          builder.download_and_prepare(download_dir=str(root / 'dl'))
      finally:
        emulator.stop()
      if self.jpeg_dir.exists():
        shutil.rmtree(self.jpeg_dir)
    self.builder = builder
    if not self.jpeg_dir.exists():
      self._export_jpegs()

  def _export_jpegs(self) -> None:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    names = self.builder.info.features['label'].names
    tmp = fresh_dir(self.jpeg_dir.with_name('jpeg.tmp'))
    for split in self.builder.info.splits:
      ds = self.builder.as_dataset(
          split=split, decoders={'image': tfds.decode.SkipDecoding()})
      for example in tfds.as_numpy(ds):
        folder = tmp / split / names[example['label']]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'{example["objid"]}.jpg').write_bytes(example['image'])
    os.replace(tmp, self.jpeg_dir)

  def jpeg_bytes(self, split: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((self.jpeg_dir / split).rglob('*.jpg'))]

  def count(self, split: str) -> int:
    return self.builder.info.splits[split].num_examples


def images_per_s(batches: Iterator[Any], min_seconds: float
                 ) -> tuple[float, int, float]:
  """Takes batches from an endless iterator until min_seconds have gone by.

  One batch is taken first, untimed (pipeline start-up, thread pools), then
  the steady state is measured. Returns (images/s, images, seconds).
  """
  def size(batch) -> int:  # (images, labels) or a bare images tensor.
    return int((batch[0] if isinstance(batch, tuple) else batch).shape[0])

  next(batches)
  images, start = 0, time.perf_counter()
  while True:
    images += size(next(batches))
    seconds = time.perf_counter() - start
    if seconds >= min_seconds:
      return images / seconds, images, seconds


def flow_from_directory(directory: pathlib.Path, *, shuffle: bool,
                        preprocess: bool = True):
  """The study's Keras generator: 224 px, batch 32, categorical, RGB."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # Keras 3 keeps the deprecated generator only under tf.keras (legacy).
  generator = tf.keras.preprocessing.image.ImageDataGenerator(
      preprocessing_function=(keras.applications.mobilenet.preprocess_input
                              if preprocess else None))
  return generator.flow_from_directory(
      str(directory), target_size=(IMAGE_SIZE, IMAGE_SIZE), color_mode='rgb',
      batch_size=BATCH_SIZE, class_mode='categorical', shuffle=shuffle, seed=0)


def generator_batches(generator) -> Iterator[Any]:
  """Endless batches, pass after pass, as model.fit consumes the generator."""
  while True:
    for i in range(len(generator)):
      yield generator[i]
    generator.on_epoch_end()


def suite_input(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  per_class = FLAGS.per_class or (40 if quick else 100)
  repeats = FLAGS.repeats or (1 if quick else 2)
  min_seconds = 4.0 if quick else 8.0
  data = CutoutData(work, per_class)
  split = 'train'
  log(f'input: {data.count(split)} {split} images, each measurement >= '
      f'{min_seconds:g} s, {repeats} interleaved repeats')
  encoded = data.jpeg_bytes(split)

  def decode_resize(value):
    image = tf.io.decode_jpeg(value, channels=3)
    return tf.image.resize(image, (IMAGE_SIZE, IMAGE_SIZE))

  def limit_batches():
    # The same bytes, decode_jpeg + resize, parallel map on all cores.
    return iter(tf.data.Dataset.from_tensor_slices(encoded).repeat()
                .map(decode_resize, num_parallel_calls=tf.data.AUTOTUNE)
                .batch(BATCH_SIZE).prefetch(tf.data.AUTOTUNE))

  def project_batches(cache=True):
    # The trainer's streaming pipeline, repeated as epochs follow epochs: it
    # keeps the decoded images in memory after the first pass (cache=True).
    return iter(input_pipeline.make_dataset(
        data.builder, split, image_size=IMAGE_SIZE, batch_size=BATCH_SIZE,
        shuffle=True, cache=cache).repeat())

  def decoding_batches():
    # The same pipeline decoding every pass: its first epoch, or a split too
    # big for input_pipeline.CACHE_MAX_BYTES.
    return project_batches(cache=False)

  def baseline_batches():
    return generator_batches(flow_from_directory(data.jpeg_dir / split,
                                                 shuffle=True))

  makers = {'limit': limit_batches, 'project': project_batches,
            'baseline': baseline_batches,
            'project_decoding_every_epoch': decoding_batches}
  rates = {name: [] for name in makers}
  load_before = load_average()
  for _ in range(repeats):  # Interleaved, so load changes hit all of them.
    for name, make in makers.items():
      rate, n, _ = images_per_s(make(), min_seconds)
      rates[name].append(rate)
      log(f'input: {name} {rate:.0f} images/s ({n} images)')
  best = {k: max(v) for k, v in rates.items()}
  return result(
      'input', project=best['project'], baseline=best['baseline'],
      limit=best['limit'], unit='images/s', images=data.count(split),
      image_size=IMAGE_SIZE, batch_size=BATCH_SIZE, jpeg_px=240,
      repeats=repeats,
      all_rates={k: [round(x) for x in v] for k, v in rates.items()},
      project_decoding_every_epoch=best['project_decoding_every_epoch'],
      load_before=load_before, load_after=load_average(),
      note='steady state (iterators repeat); project delivers [0, 255] floats '
      '(preprocess_input is inside the model), baseline applies '
      'preprocess_input in the generator; project keeps decoded images in '
      'memory after its first pass, project_decoding_every_epoch does not')


def study_model(classifier):
  """The study's model: frozen application -> pooling -> dense head.

  preprocess_input runs in the generator, as in the study, so the model
  starts at the application (sharing the classifier's layers and weights).
  """
  import keras  # pylint: disable=g-import-not-at-top
  images = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name='images')
  x = classifier.application(images, training=False)
  x = keras.layers.GlobalAveragePooling2D(name='pool')(x)
  return keras.Model(images, classifier.head(x), name='study_model')


def suite_train(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  import keras  # pylint: disable=g-import-not-at-top
  from skytfds import input_pipeline  # pylint: disable=g-import-not-at-top
  from skytfds import models  # pylint: disable=g-import-not-at-top
  from trainers import flags as trainer_flags  # pylint: disable=g-import-not-at-top
  from trainers import train  # pylint: disable=g-import-not-at-top
  per_class = FLAGS.per_class or (40 if quick else 100)
  epochs = FLAGS.epochs or (10 if quick else 50)
  data = CutoutData(work, per_class)
  log(f'train: {data.count("train")} train / {data.count("validation")} '
      f'validation images, {epochs} epochs')
  load_before = load_average()

  workdir = fresh_dir(work / 'train-project')
  config = trainer_flags.TrainConfig(
      dataset='sdss_cutouts/tiny', data_dir=str(data.data_dir),
      workdir=str(workdir), weights=models.WEIGHTS_NONE, epochs=epochs,
      batch_size=BATCH_SIZE)
  with Timer() as project_t:
    metrics = train.run(config)
  project_acc = metrics['validation']['accuracy']
  log(f'train: project {project_t.seconds:.1f} s, validation accuracy '
      f'{project_acc:.3f}')

  # Baseline: the same random backbone (same seed, BatchNorm calibrated on the
  # same first 64 training images as the trainer does), the study's fit.
  keras.utils.set_random_seed(0)
  classifier = models.build_model('mobilenet', weights=models.WEIGHTS_NONE,
                                  num_classes=3)
  first = train.first_images(input_pipeline.make_dataset(
      data.builder, 'train', image_size=IMAGE_SIZE, batch_size=BATCH_SIZE),
                             train.CALIBRATION_IMAGES)
  models.calibrate_batch_norm(classifier, first)
  model = study_model(classifier)
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss='categorical_crossentropy', metrics=['accuracy'])
  train_gen = flow_from_directory(data.jpeg_dir / 'train', shuffle=True)
  val_gen = flow_from_directory(data.jpeg_dir / 'validation', shuffle=True)
  with Timer() as baseline_t:
    history = model.fit(train_gen, steps_per_epoch=train_gen.n // BATCH_SIZE,
                        epochs=epochs, validation_data=val_gen, verbose=0)
  baseline_acc = float(history.history['val_accuracy'][-1])
  test_gen = flow_from_directory(data.jpeg_dir / 'test', shuffle=False)
  baseline_test_acc = float(model.evaluate(test_gen, verbose=0)[1])
  log(f'train: baseline {baseline_t.seconds:.1f} s, validation accuracy '
      f'{baseline_acc:.3f}')
  return result(
      'train', project=project_t.seconds, baseline=baseline_t.seconds,
      limit=None, unit='s', higher_is_better=False, epochs=epochs,
      train_images=data.count('train'),
      validation_images=data.count('validation'),
      test_images=data.count('test'),
      project_val_accuracy=round(project_acc, 4),
      baseline_val_accuracy=round(baseline_acc, 4),
      project_test_accuracy=round(metrics['test']['accuracy'], 4),
      baseline_test_accuracy=round(baseline_test_acc, 4),
      accuracy_not_worse=project_acc >= baseline_acc,
      project_precision=metrics['precision'],
      project_features_s=sum(f.get('seconds') or 0.0
                             for f in metrics['features'].values()),
      project_fit_s=metrics['train_time_s'], weights='none (BatchNorm '
      'calibrated)', load_before=load_before, load_after=load_average())


SUITE_FUNCTIONS = {'build': suite_build, 'download': suite_download,
                   'input': suite_input, 'train': suite_train}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  work = pathlib.Path(FLAGS.workdir)
  work.mkdir(parents=True, exist_ok=True)
  description = machine()
  log(f'machine: {json.dumps(description)}')
  suites = SUITES if FLAGS.suite == 'all' else (FLAGS.suite,)
  results = []
  for suite in suites:
    log(f'{suite}: start (load average {load_average()})')
    with Timer() as t:
      out = SUITE_FUNCTIONS[suite](work, FLAGS.quick)
    out.update(quick=FLAGS.quick, suite_wall_s=round(t.seconds, 1),
               nproc=description['nproc'], cpu=description['cpu'],
               date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    results.append(out)
    log(f'{suite}: done in {t.seconds:.0f} s')
    if FLAGS.results:  # At once: a later suite's failure keeps this one.
      with open(FLAGS.results, 'a') as f:
        f.write(json.dumps(out) + '\n')
  lines = [json.dumps(r) for r in results]
  sys.stdout.flush()
  for line in lines:
    print(line, flush=True)


if __name__ == '__main__':
  app.run(main)
