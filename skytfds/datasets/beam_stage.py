"""The same stages as Apache Beam transforms, for `tfds build --beam_pipeline_options=...`.

Each Beam element is one frame (with all its objects) or one batch of cutout
objects. Workers fetch through the same client into the same cache under the
download directory and stage frames with the same code as the default path,
so both paths write the same examples. A frame whose objects fall in several
splits is staged once: whichever split's worker gets there first writes the
staged file atomically and the others read it.

Skips are counted with Beam metrics (namespace `skytfds`) and merged into the
build report when the pipeline ends.
"""

import collections

import tensorflow_datasets as tfds

from skytfds.datasets import cutout_stage
from skytfds.datasets import features
from skytfds.datasets import frame_stage
from skytfds.datasets import report as report_lib
from skytfds.services import http

METRICS_NAMESPACE = 'skytfds'
_CUTOUTS_PER_ELEMENT = 64


def examples_transform(stage, split_objects, all_objects):
  """A PTransform yielding (key, example) for the objects of one split."""
  beam = tfds.core.lazy_imports.apache_beam
  if isinstance(stage, frame_stage.FrameStage):
    all_groups = frame_stage.group_by_frame(all_objects)
    work = [
        (frame, all_groups[frame], [o.key for o in objs])
        for frame, objs in frame_stage.group_by_frame(split_objects).items()
    ]
    return beam.Create(work) | beam.FlatMap(_frame_examples, stage=stage)
  if isinstance(stage, cutout_stage.CutoutStage):
    batches = [split_objects[i:i + _CUTOUTS_PER_ELEMENT]
               for i in range(0, len(split_objects), _CUTOUTS_PER_ELEMENT)]
    return beam.Create(batches) | beam.FlatMap(_cutout_examples, stage=stage)
  raise TypeError(f'no Beam transform for {type(stage).__name__}')


def _count(report: report_lib.BuildReport) -> None:
  beam = tfds.core.lazy_imports.apache_beam
  for reason, n in report.skipped.items():
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, f'skipped/{reason}').inc(n)
  beam.metrics.Metrics.counter(METRICS_NAMESPACE, 'frames_decoded').inc(
      report.frames_decoded)


def _frame_examples(element, stage: frame_stage.FrameStage):
  frame, objs, keys = element
  report = report_lib.BuildReport(dataset='beam', config='', only=frozenset(keys))
  todo = stage.unstaged({frame: objs})
  if todo:
    http.run(stage.stage_frames(todo, report))
  by_key = {o.key: o for o in objs}
  mine = [by_key[k] for k in keys]
  # Each key is in one split, so each worker counts only its own skips.
  stage.count_staged_skips({frame: mine}, report)
  _count(report)
  for obj, images in stage.examples(mine):
    yield obj.key, {**images, **features.common_values(obj)}


def _cutout_examples(objects, stage: cutout_stage.CutoutStage):
  report = report_lib.BuildReport(dataset='beam', config='')
  stage.prepare(objects, report)
  _count(report)
  for obj, images in stage.examples(objects):
    yield obj.key, {**images, **features.common_values(obj)}


def merge_metrics(pipeline_result, report: report_lib.BuildReport) -> None:
  """Adds the workers' skip and decode counters to the build report."""
  beam = tfds.core.lazy_imports.apache_beam
  query = pipeline_result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE))
  totals = collections.Counter()
  for counter in query['counters']:
    totals[counter.key.metric.name] += counter.committed or counter.attempted or 0
  for name, n in totals.items():
    if name.startswith('skipped/'):
      report.skipped[name.split('/', 1)[1]] += n
    elif name == 'frames_decoded':
      report.frames_decoded += n
