"""The build report: what was asked for, what was written, and why anything was not.

Written next to the data as `build_report.json`. Every object that does not
become an example is counted under a reason, with a few examples of each.
"""

import collections
import dataclasses
import json
import time
from typing import Any

from absl import logging

# Why an object was not written. Keys are stable: tests and users grep for them.
SKIP_REASONS = {
    'off_frame': 'the object lies outside the frame its catalogue row names',
    'near_edge': 'more than half of the stamp falls off the frame',
    'frame_missing': 'the archive has no such frame (404)',
    'fetch_failed': 'the download kept failing after all retries',
    'corrupt_download': 'the file failed to decode, again after fresh downloads',
    'no_ps1_coverage': 'outside Pan-STARRS 3pi coverage (dec < -30)',
    'outside_footprint': 'outside the SDSS imaging footprint (getjpeg answered 404)',
    'bad_image': 'the service answered with something that is not a valid image',
    'bad_frame': 'the frame file is whole but a header value or its WCS cannot be used',
    'corrupt_image': 'the JPEG\'s coded data is damaged, again after fresh downloads',
    'non_finite': 'the stamp would hold inf or NaN values (extreme frame pixels)',
    'too_large': 'the file is over its size cap (bytes, or FITS header cards)',
}
_EXAMPLES_PER_REASON = 20


@dataclasses.dataclass
class BuildReport:
  """Counts for one build. Mutated by the stages, written at the end."""

  dataset: str
  config: str
  source: str = ''
  requested: int = 0
  written: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  skipped_examples: dict = dataclasses.field(
      default_factory=lambda: collections.defaultdict(list))
  notes: list = dataclasses.field(default_factory=list)
  frames_decoded: int = 0
  fetch: dict = dataclasses.field(default_factory=dict)
  started: float = dataclasses.field(default_factory=time.time)
  wall_time_s: float = 0.0
  # When set, only these keys are counted (a Beam worker counting its own split).
  only: frozenset | None = None
  # Built by an Apache Beam pipeline (`--beam_pipeline_options`), not in-process.
  beam: bool = False
  requested_by_split: dict = dataclasses.field(default_factory=dict)
  # How the objects were picked: 'spread', 'dense' or 'catalogue' (a user's).
  selection: str = ''
  # Frame products: distinct frames the objects lie in, and their estimated
  # download (survey.FRAME_FILE_BYTES per band file) before anything is fetched.
  frames: int = 0
  estimated_frame_bytes: int = 0
  # Where the data came from (also DatasetInfo.metadata['provenance']):
  # skytfds version, services, release, selection, the catalogue, simulated.
  provenance: dict = dataclasses.field(default_factory=dict)
  # Origins that said they are the bundled emulator, and requests made to the
  # services (a user's catalogue file is none), over the selection and the
  # stage (see `simulated`).
  emulated: dict = dataclasses.field(default_factory=dict)
  requests: int = 0

  def emulators(self) -> dict[str, str]:
    """Origin -> what it said of itself, for every answer from the emulator."""
    return {**self.emulated, **self.fetch.get('emulated', {})}

  def simulated(self) -> bool | None:
    """True: some answer came from the bundled emulator; False: requests were
    made and none did; None: nothing was requested (all from the caches)."""
    if self.emulators():
      return True
    return False if self.requests + self.fetch.get('requests', 0) else None

  def skip(self, key: str, reason: str, detail: str = '') -> None:
    """Counts one object as skipped for `reason` (one of SKIP_REASONS)."""
    if reason not in SKIP_REASONS:
      raise ValueError(f'unknown skip reason {reason!r}')
    if self.only is not None and key not in self.only:
      return
    self.skipped[reason] += 1
    examples = self.skipped_examples[reason]
    if len(examples) < _EXAMPLES_PER_REASON:
      examples.append(f'{key}: {detail}' if detail else key)

  def as_dict(self) -> dict[str, Any]:
    written = sum(self.written.values())
    return {
        'dataset': self.dataset,
        'config': self.config,
        'source': self.source,
        'selection': self.selection,
        'provenance': dict(self.provenance),
        'pipeline': 'beam' if self.beam else 'default',
        'objects_requested': self.requested,
        'requested_by_split': dict(self.requested_by_split),
        'objects_written': written,
        'written_by_split': dict(sorted(self.written.items())),
        'objects_skipped': sum(self.skipped.values()),
        'skipped_by_reason': dict(sorted(self.skipped.items())),
        'skip_reasons': {r: SKIP_REASONS[r] for r in sorted(self.skipped)},
        'skipped_examples': {r: self.skipped_examples[r] for r in sorted(self.skipped)},
        'notes': list(self.notes),
        'frames': self.frames,
        'frames_per_object': (round(self.frames / written, 4)
                              if self.frames and written else None),
        'estimated_frame_bytes': self.estimated_frame_bytes,
        'frames_decoded': self.frames_decoded,
        'fetch': dict(self.fetch),
        'wall_time_s': round(self.wall_time_s, 2),
    }

  def finish(self) -> None:
    self.wall_time_s = time.time() - self.started

  def write(self, path) -> None:
    """Writes the report as JSON (path: anything with write_text, or a str)."""
    text = json.dumps(self.as_dict(), indent=2, sort_keys=False) + '\n'
    if hasattr(path, 'write_text'):
      path.write_text(text)
    else:
      with open(path, 'w') as f:
        f.write(text)

  def summary(self) -> str:
    """One paragraph for the log."""
    d = self.as_dict()
    skipped = ', '.join(f'{k} {v}' for k, v in d['skipped_by_reason'].items()) or 'none'
    return (
        f'{self.dataset}/{self.config}: {d["objects_written"]} of '
        f'{self.requested} objects written {d["written_by_split"]}; skipped: '
        f'{skipped}; {self.frames_decoded} frames decoded; fetch {self.fetch}; '
        f'{d["wall_time_s"]} s'
    )

  def log(self) -> None:
    logging.info('%s', self.summary())
