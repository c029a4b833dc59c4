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
            cannot be downloaded offline) + the study's dense head, on
            `sdss_cutouts/small` (--quick: 40 per class). Baseline: the
            study's `model.fit` over ImageDataGenerator for
            --baseline_epochs (3; every epoch does the same work), each
            epoch timed, scaled to N by the median epoch. Project:
            `trainers/train.py` with its defaults (cached embeddings), the
            whole run. Floor: one backbone pass over the training images
            plus the head's N epochs fitted alone; project_over_floor.
            Both validation accuracies are reported. five_band: ugriz_cnn
            for N epochs on `sdss_filters/small_dense` beside the frozen
            MobileNet on it (--quick: 2 epochs on the quick cutouts).

One module per suite in tools/benchmarks/ (build, download, input, train),
each with run(work, quick) -> its JSON object; common.py, fields.py and
cutouts.py hold what they share.

--suite=all runs each suite in a fresh interpreter (nothing an earlier suite
left running shares the cores), one after the other.

Work files live under --workdir (default: <tmp>/skytfds-benchmark); rendered
emulator payloads and built datasets are kept there between runs, so only the
first run pays for them (never inside a timed part).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import build
from benchmarks import common
from benchmarks import download
from benchmarks import input as input_suite
from benchmarks import train
# pylint: enable=g-import-not-at-top,wrong-import-position

SUITE_MODULES = {'build': build, 'download': download, 'input': input_suite,
                 'train': train}
SUITES = tuple(SUITE_MODULES)

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
flags.DEFINE_integer('baseline_epochs', None,
                     'train: epochs of the study\'s model.fit actually run '
                     '(default 3), scaled to --epochs by the median epoch.')
flags.DEFINE_string(
    'data_dir', None,
    'train: TFDS data_dir of the prebuilt sdss_cutouts/small and '
    'sdss_filters/small_dense (default <workdir>/data); what is missing is '
    'built there against the emulator first, untimed (sdss_filters/'
    'small_dense: about 35 min on 2 cores).')
flags.DEFINE_bool('five_band', True,
                  'train: also time ugriz_cnn beside the frozen MobileNet on '
                  'sdss_filters/small_dense (--quick: on the quick cutouts).')
flags.DEFINE_integer('epochs', None, 'train: epochs (default 10 with --quick, '
                     'else 50).')


def run_suite(suite: str, work: pathlib.Path,
              description: dict) -> dict:
  """One suite in this process: its JSON object, with where and when."""
  common.log(f'{suite}: start (load average {common.load_average()})')
  with common.Timer() as t:
    out = SUITE_MODULES[suite].run(work, FLAGS.quick)
  out.update(quick=FLAGS.quick, suite_wall_s=round(t.seconds, 1),
             nproc=description['nproc'], cpu=description['cpu'],
             date=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
  common.log(f'{suite}: done in {t.seconds:.0f} s')
  return out


# The flags a suite reads, passed on to its subprocess.
SUITE_FLAGS = ('quick', 'workdir', 'shared_data', 'copies', 'objects_per_field',
               'latency_ms', 'per_class', 'repeats', 'baseline_epochs',
               'data_dir', 'five_band', 'epochs')


def suite_in_subprocess(suite: str) -> dict:
  """One suite in a fresh interpreter: nothing left over from another.

  An earlier suite's thread pools, tf.data iterators and in-memory caches
  would otherwise share the cores with the next one (the first full run had
  the trainer's embedding pass 1.6x slower than alone).
  """
  args = []
  for name in SUITE_FLAGS:
    value = FLAGS[name].value
    if isinstance(value, bool):
      args.append(f'--{"" if value else "no"}{name}')
    elif value is not None:
      args.append(f'--{name}={value}')
  run = subprocess.run([sys.executable, __file__, f'--suite={suite}', *args],
                       stdout=subprocess.PIPE, text=True, check=False)
  if run.returncode:
    raise SystemExit(f'benchmark: suite {suite} failed (exit {run.returncode}); '
                     'its output is above')
  return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  work = pathlib.Path(FLAGS.workdir)
  work.mkdir(parents=True, exist_ok=True)
  description = common.machine()
  common.log(f'machine: {json.dumps(description)}')
  suites = SUITES if FLAGS.suite == 'all' else (FLAGS.suite,)
  results = []
  for suite in suites:
    out = (suite_in_subprocess(suite) if len(suites) > 1
           else run_suite(suite, work, description))
    results.append(out)
    if FLAGS.results:  # At once: a later suite's failure keeps this one.
      with open(FLAGS.results, 'a') as f:
        f.write(json.dumps(out) + '\n')
  lines = [json.dumps(r) for r in results]
  sys.stdout.flush()
  for line in lines:
    print(line, flush=True)


if __name__ == '__main__':
  app.run(main)
