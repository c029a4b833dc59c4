"""What every stage of a build needs to know, in one picklable value (Beam ships it)."""

import dataclasses
import pathlib

from skytfds import settings


@dataclasses.dataclass(frozen=True)
class BuildContext:
  """Where a build keeps its files and which services it reads.

  Attributes:
    workdir: `<download_dir>/skytfds`: the fetch cache (`cache/`) and staged
      stamps (`staged/`) live here and nowhere else, so two builds with
      different download directories never share files, and an interrupted
      build resumes from what is there.
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
  def cache_dir(self) -> pathlib.Path:
    return pathlib.Path(self.workdir) / 'cache'

  def staging_dir(self, name: str) -> pathlib.Path:
    return pathlib.Path(self.workdir) / 'staged' / name
