"""What every stage of a build needs to know, in one picklable value (Beam ships it)."""

import dataclasses
import hashlib
import json

from skytfds import files
from skytfds import settings


@dataclasses.dataclass(frozen=True)
class BuildContext:
  """Where a build keeps its files and which services it reads.

  Attributes:
    workdir: `<download_dir>/skytfds`, a local path or any fsspec URL
      (`gs://bucket/dl/skytfds`; kept a string, never squeezed through
      pathlib): the fetch cache (`cache/<source_key>/`) and staged stamps
      (`staged/<source_key>/`) live here and nowhere else, so two builds with
      different download directories never share files, builds from
      different services never share them either, and an interrupted build
      resumes from what is there.
    release: SDSS data release.
    sas_url, skyserver_url, ps1_url: service bases, read once from the
      environment by the process that plans the build.
  """

  workdir: str
  release: int
  sas_url: str = dataclasses.field(default_factory=settings.sas_url)
  skyserver_url: str = dataclasses.field(default_factory=settings.skyserver_url)
  ps1_url: str = dataclasses.field(default_factory=settings.ps1_url)
  max_concurrency: int = dataclasses.field(default_factory=settings.max_concurrency)

  @property
  def services(self) -> dict[str, str]:
    """The service bases this build reads, by service."""
    return {'skyserver': self.skyserver_url, 'sas': self.sas_url,
            'ps1': self.ps1_url}

  @property
  def source_key(self) -> str:
    """12 hex digits naming the services and release: the caches' folder.

    Downloads and staged stamps live under it, so nothing fetched from one
    source (the real SkyServer, a mirror, an emulator with another seed) is
    ever served to a build from another.
    """
    text = json.dumps({**self.services, 'release': self.release},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]

  @property
  def storage(self) -> str:
    """How the caches are read and written: 'local' or 'fsspec:<protocol>'."""
    return files.backend(self.workdir)

  @property
  def cache_dir(self) -> files.Location:
    """The fetch cache: a pathlib.Path, or a files.UrlPath for a URL."""
    return files.location(self.workdir) / 'cache' / self.source_key

  @property
  def source_record(self) -> files.Location:
    """`cache/<source_key>.json`, beside the cache: whether this source
    said it is the emulator (provenance for builds served from the cache)."""
    return files.location(self.workdir) / 'cache' / f'{self.source_key}.json'

  def staging_dir(self, name: str) -> files.Location:
    return files.location(self.workdir) / 'staged' / self.source_key / name
