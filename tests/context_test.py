"""datasets.context: where a build keeps its files, keyed by its source."""

from skytfds.datasets import context as context_lib


def _ctx(**overrides):
  values = dict(workdir='/dl/skytfds', release=17,
                sas_url='https://data.sdss.org/sas',
                skyserver_url='https://skyserver.sdss.org',
                ps1_url='https://ps1images.stsci.edu', max_concurrency=8)
  values.update(overrides)
  return context_lib.BuildContext(**values)


def test_caches_and_staged_stamps_are_keyed_by_source():
  """Issue 15 / 20.10: a build from a bad SAS never hands its staged stamps
  (or downloads) to a later build from a good mirror in the same dir."""
  base = _ctx()
  assert base.cache_dir == _ctx().cache_dir  # Same source: shared, resumable.
  for other in (_ctx(sas_url='/mirror/sas'), _ctx(release=16),
                _ctx(skyserver_url='http://127.0.0.1:8080'),
                _ctx(ps1_url='http://127.0.0.1:8080')):
    assert other.cache_dir != base.cache_dir
    assert other.staging_dir('filters') != base.staging_dir('filters')
  assert str(base.staging_dir('rgb')).startswith('/dl/skytfds/staged/')
  assert base.cache_dir.parent.as_posix() == '/dl/skytfds/cache'
  assert len(base.source_key) == 12
