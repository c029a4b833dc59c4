"""What one Fetcher did: requests, bytes, cache hits, retries, waits, reasons."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any


@dataclasses.dataclass
class FetchStats:
  """Counters for one `Fetcher`.

  Attributes:
    requests: network or storage reads attempted (each retry counts).
    bytes_fetched: bytes received from the network or storage (not the cache).
    cache_hits: fetches answered from the on-disk cache, with no request.
    retries: attempts repeated after a transient failure.
    failures: fetches that ended in an error.
    deduplicated: fetches that joined another in-flight fetch of the same name.
    cache_evictions: cached files dropped (failed validation, or `evict`).
    waited_s: seconds slept between attempts (backoff and Retry-After),
      summed over fetches (concurrent waits overlap in wall time).
    paused_s: seconds fetches waited at their host's gate (another fetch's
      429/503, the per-host rate cap), summed over fetches.
    host_pauses: times a host was paused for all fetches.
    by_reason: failed attempts counted per reason word.
    emulated: origins (scheme://host:port) whose answers said they come from
      skytfds' bundled emulator (the `X-Skytfds-Emulator` header), with what
      the header said; empty for the real services.
  """
  requests: int = 0
  bytes_fetched: int = 0
  cache_hits: int = 0
  retries: int = 0
  failures: int = 0
  deduplicated: int = 0
  cache_evictions: int = 0
  waited_s: float = 0.0
  paused_s: float = 0.0
  host_pauses: int = 0
  by_reason: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  emulated: dict = dataclasses.field(default_factory=dict)

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out['waited_s'] = round(self.waited_s, 3)
    out['paused_s'] = round(self.paused_s, 3)
    out['by_reason'] = dict(sorted(self.by_reason.items()))
    out['emulated'] = dict(sorted(self.emulated.items()))
    return out
