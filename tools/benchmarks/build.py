"""Suite build: FITS frames per minute from local .fits.bz2 files.

Baseline: the study's astropy open + matplotlib imshow of the whole frame +
savefig PNG, one process. Project: sdss_filters built from the same frames
(a local SAS mirror and a catalogue of objects in them). Limit: bz2
decompression of the same files on all cores.
"""

import bz2
import concurrent.futures
import json
import os
import pathlib
from typing import Any

from absl import flags

from benchmarks import common
from benchmarks import fields
from skytfds import settings
from skytfds import survey

FLAGS = flags.FLAGS  # those of tools/benchmark.py


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
  """Builds sdss_filters/custom from a local SAS mirror; its build report."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
  with common.environment(**{settings.SAS_URL_ENV: sas_url,
                             settings.CATALOG_ENV: str(catalog_path)}):
    builder = tfds.builder('sdss_filters/custom', data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(download_dir))
  return json.loads((pathlib.Path(builder.data_path) / 'build_report.json')
                    .read_text())


def run(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  per_field = FLAGS.objects_per_field or 20
  work = work / 'build'
  served, catalog_path = fields.mirrored_sky(
      work, FLAGS.shared_data, copies=FLAGS.copies or (1 if quick else 4),
      per_field=per_field)
  paths = sorted((work / 'sas').rglob('*.fits.bz2'))
  common.log(f'build: {len(paths)} frames ({len(served)} fields x '
             f'{len(survey.BANDS)} bands, {per_field} objects per field)')
  # Imports, first-use costs and the page cache outside the timed parts.
  import tensorflow_datasets  # pylint: disable=g-import-not-at-top,unused-import
  import skytfds.datasets  # pylint: disable=g-import-not-at-top,unused-import
  study_fits_to_png(paths[:1], common.fresh_dir(work / 'png-warmup'))
  for path in paths:
    path.read_bytes()
  load_before = common.load_average()
  repeats = FLAGS.repeats or (1 if quick else 2)
  times = {'limit': [], 'project': [], 'baseline': []}
  cpu = {'limit': [], 'project': [], 'baseline': []}
  for rep in range(repeats):  # Interleaved, so load changes hit all three.
    with common.Timer() as t:
      bz2_all_cores(paths)
    times['limit'].append(t.seconds)
    cpu['limit'].append(t.cpu_seconds)
    common.log(f'build: limit (bz2 on {os.cpu_count()} threads) '
               f'{t.seconds:.1f} s, {t.cpu_seconds:.1f} CPU s')
    with common.Timer() as t:
      report = build_sdss_filters(work / f'data-{rep}', work / f'dl-{rep}',
                                  str(work / 'sas'), catalog_path)
    times['project'].append(t.seconds)
    cpu['project'].append(t.cpu_seconds)
    frames = report['frames_decoded']
    common.log(f'build: project {t.seconds:.1f} s, {t.cpu_seconds:.1f} CPU s, '
               f'{frames} frames decoded, {report["objects_written"]} stamps '
               'written')
    with common.Timer() as t:
      study_fits_to_png(paths, common.fresh_dir(work / 'png'))
    times['baseline'].append(t.seconds)
    cpu['baseline'].append(t.cpu_seconds)
    common.log(f'build: baseline (study) {t.seconds:.1f} s, '
               f'{t.cpu_seconds:.1f} CPU s')
  per_min = lambda n, s: 60.0 * n / s
  best = {k: min(v) for k, v in times.items()}
  return common.result(
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
      load_before=load_before, load_after=common.load_average())
