"""Suite download: frame files per second from the emulator; bytes per object.

Baseline: `wget -i` over a URL list with one URL per object and band,
duplicates as listed. Project: the service client fetching each distinct
(frame, band) once. Limit: the latency bound of its concurrency.

Also (`selection`): frames and frame bytes per object of 100 objects per
class, spread selection vs the frame-economical dense one, selected by the
real queries against the emulator's SkyServer over the bundled 35,000-object
catalogue. Frame counts are exact; bytes are frames x 5 bands x the mean
frame-file size measured in this run's downloads.
"""

import asyncio
import math
import os
import pathlib
import shutil
import subprocess
import urllib.request
from typing import Any

from absl import flags

from benchmarks import common
from benchmarks import fields
from skytfds import catalog as catalog_lib
from skytfds import survey
from skytfds.services import http
from skytfds.services import sas

FLAGS = flags.FLAGS  # those of tools/benchmark.py


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
        for frame in groups for band in survey.BANDS))
    stats = fetcher.stats.as_dict()
    stats['max_concurrency'] = fetcher.max_concurrency
  stats['files'] = len(blobs)
  return stats


def selection_economy(shared_data: pathlib.Path, per_class: int,
                      mean_file_bytes: float) -> dict[str, Any]:
  """Frames (and frame bytes) per object: spread vs dense selection."""
  from skytfds.datasets import selection  # pylint: disable=g-import-not-at-top
  path = shared_data / 'catalogs' / 'specobj_35k.csv'
  if not path.is_file():
    return {'skipped': f'{path} not present'}
  emulator = common.start_emulator(path.read_text(), str(path), sas_root=None,
                                   cache_dir=None, latency_ms=0)
  out = {'per_class': per_class, 'mean_file_bytes': round(mean_file_bytes)}
  try:
    with common.environment(SKYTFDS_SKYSERVER_URL=emulator.url):
      for how in selection.SELECTIONS:

        async def select(how=how):
          async with http.Fetcher(None) as fetcher:
            return await selection.select_objects(
                fetcher, per_class=per_class, release=survey.DEFAULT_RELEASE,
                selection=how)

        objects = http.run(select()).catalog.objects
        frames = len({o.frame for o in objects})
        out[how] = {
            'objects': len(objects), 'frames': frames,
            'frames_per_object': round(frames / len(objects), 4),
            'frame_bytes_per_object': round(
                frames * len(survey.BANDS) * mean_file_bytes / len(objects))}
  finally:
    emulator.stop()
  out['bytes_ratio_spread_over_dense'] = round(
      out['spread']['frame_bytes_per_object']
      / out['dense']['frame_bytes_per_object'], 2)
  common.log(f'download: per object, spread {out["spread"]["frames_per_object"]}'
             f' frames, dense {out["dense"]["frames_per_object"]} '
             f'({out["bytes_ratio_spread_over_dense"]}x fewer bytes)')
  return out


def run(work: pathlib.Path, quick: bool) -> dict[str, Any]:
  work = work / 'download'
  _, catalog_path = fields.mirrored_sky(
      work, FLAGS.shared_data, copies=FLAGS.copies or (2 if quick else 8),
      per_field=FLAGS.objects_per_field or 5)
  catalog_text = catalog_path.read_text()
  objects = catalog_lib.parse_catalog(catalog_text, str(catalog_path)).objects
  emulator = common.start_emulator(catalog_text, str(catalog_path),
                                   sas_root=str(work / 'sas'), cache_dir=None,
                                   latency_ms=FLAGS.latency_ms)
  try:
    # As the study listed them: one URL per object and band, duplicates kept.
    urls = [sas.frame_url(o.frame, b, base=emulator.sas_url)
            for o in objects for b in survey.BANDS]
    distinct = sorted(set(urls))
    common.log(f'download: {len(urls)} URLs listed, {len(distinct)} '
               f'distinct (latency {FLAGS.latency_ms:g} ms)')
    # Warm-up outside the timed parts: every distinct file once (page cache,
    # emulator threads, connection set-up code paths).
    http.run(project_download(objects, common.fresh_dir(work / 'warm'),
                              emulator.sas_url))
    load_before = common.load_average()
    requests_before = emulator.stats()['requests']
    with common.Timer() as project_t:
      stats = http.run(project_download(
          objects, common.fresh_dir(work / 'cache'), emulator.sas_url))
    project_requests = emulator.stats()['requests'] - requests_before
    common.log(f'download: project {project_t.seconds:.2f} s, '
               f'{stats["files"]} files, {project_requests} requests')
    requests_before = emulator.stats()['requests']
    with common.Timer() as baseline_t:
      written, method = sequential_download(urls,
                                            common.fresh_dir(work / 'wget'))
    baseline_requests = emulator.stats()['requests'] - requests_before
    common.log(f'download: baseline ({method}) {baseline_t.seconds:.2f} s, '
               f'{written} files, {baseline_requests} requests')
  finally:
    emulator.stop()
  if written != len(urls):
    raise SystemExit(f'benchmark: the baseline wrote {written} files, expected '
                     f'{len(urls)}')
  mean_file_bytes = stats['bytes_fetched'] / max(stats['files'], 1)
  economy = selection_economy(pathlib.Path(FLAGS.shared_data), 100,
                              mean_file_bytes)
  concurrency = stats['max_concurrency']
  latency_bound_s = math.ceil(len(distinct) / concurrency) * FLAGS.latency_ms / 1e3
  return common.result(
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
      mean_file_mb=round(mean_file_bytes / 1e6, 2),
      selection=economy,
      project_s=project_t.seconds, baseline_s=baseline_t.seconds,
      load_before=load_before, load_after=common.load_average())
