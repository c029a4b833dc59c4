"""settings: service locations and limits from the environment."""

import pytest

from skytfds import settings


def test_defaults_are_the_real_services(monkeypatch):
  for env in (settings.SKYSERVER_URL_ENV, settings.SAS_URL_ENV,
              settings.PS1_URL_ENV, settings.MAX_CONCURRENCY_ENV,
              settings.CATALOG_ENV, settings.TRACEBACK_ENV):
    monkeypatch.delenv(env, raising=False)
  assert settings.skyserver_url() == 'https://skyserver.sdss.org'
  assert settings.sas_url() == 'https://data.sdss.org/sas'
  assert settings.ps1_url() == 'https://ps1images.stsci.edu'
  assert settings.max_concurrency() == settings.DEFAULT_MAX_CONCURRENCY
  assert settings.catalog_source() is None
  assert not settings.show_tracebacks()
  for env in (settings.MAX_RETRY_AFTER_ENV, settings.MAX_RATE_PER_HOST_ENV,
              settings.MAX_OUTAGE_ENV):
    monkeypatch.delenv(env, raising=False)
  assert settings.max_retry_after_s() == settings.DEFAULT_MAX_RETRY_AFTER_S == 300
  assert settings.max_rate_per_host() == settings.DEFAULT_MAX_RATE_PER_HOST
  assert settings.max_outage_s() == settings.DEFAULT_MAX_OUTAGE_S == 600


def test_urls_lose_surrounding_space_and_trailing_slash(monkeypatch):
  monkeypatch.setenv(settings.SAS_URL_ENV, '  http://127.0.0.1:8/sas/ ')
  assert settings.sas_url() == 'http://127.0.0.1:8/sas'
  monkeypatch.setenv(settings.SAS_URL_ENV, '   ')
  assert settings.sas_url() == settings.DEFAULT_SAS_URL


@pytest.mark.parametrize('raw', ['0', '257', 'eight', '2.5', '-1'])
def test_bad_concurrency_names_the_variable_and_the_range(monkeypatch, raw):
  monkeypatch.setenv(settings.MAX_CONCURRENCY_ENV, raw)
  with pytest.raises(settings.SettingsError,
                     match=rf"SKYTFDS_MAX_CONCURRENCY='{raw}'.*1 to 256"):
    settings.max_concurrency()


def test_concurrency_and_catalogue_from_the_environment(monkeypatch):
  monkeypatch.setenv(settings.MAX_CONCURRENCY_ENV, ' 16 ')
  monkeypatch.setenv(settings.CATALOG_ENV, ' /data/objects.csv ')
  assert settings.max_concurrency() == 16
  assert settings.catalog_source() == '/data/objects.csv'


@pytest.mark.parametrize('raw, shown', [('1', True), ('yes', True), ('0', False),
                                        ('', False)])
def test_traceback_switch(monkeypatch, raw, shown):
  monkeypatch.setenv(settings.TRACEBACK_ENV, raw)
  assert settings.show_tracebacks() is shown


def test_host_limits_from_the_environment(monkeypatch):
  monkeypatch.setenv(settings.MAX_RETRY_AFTER_ENV, ' 30 ')
  monkeypatch.setenv(settings.MAX_RATE_PER_HOST_ENV, '0')
  monkeypatch.setenv(settings.MAX_OUTAGE_ENV, '1800.5')
  assert settings.max_retry_after_s() == 30
  assert settings.max_rate_per_host() == 0  # No cap.
  assert settings.max_outage_s() == 1800.5


@pytest.mark.parametrize('env, raw, shown', [
    ('SKYTFDS_MAX_RETRY_AFTER_S', '-1', 'expected seconds from 0 to 86400'),
    ('SKYTFDS_MAX_RETRY_AFTER_S', 'nan', 'expected seconds from 0 to 86400'),
    ('SKYTFDS_MAX_RATE_PER_HOST', 'fast', 'requests per second (0 for no cap)'),
    ('SKYTFDS_MAX_OUTAGE_S', '0', 'expected seconds from 1 to 604800'),
    ('SKYTFDS_MAX_OUTAGE_S', 'inf', 'expected seconds from 1 to 604800'),
])
def test_bad_host_limits_name_the_variable_and_the_range(monkeypatch, env, raw, shown):
  monkeypatch.setenv(env, raw)
  read = {settings.MAX_RETRY_AFTER_ENV: settings.max_retry_after_s,
          settings.MAX_RATE_PER_HOST_ENV: settings.max_rate_per_host,
          settings.MAX_OUTAGE_ENV: settings.max_outage_s}[env]
  with pytest.raises(settings.SettingsError) as error:
    read()
  assert str(error.value).startswith(f'{env}={raw!r}: ')
  assert shown in str(error.value) and '(default ' in str(error.value)


def test_the_fetcher_reads_the_host_limits(monkeypatch):
  from skytfds.services import http  # pylint: disable=import-outside-toplevel
  monkeypatch.setenv(settings.MAX_RETRY_AFTER_ENV, '7')
  monkeypatch.setenv(settings.MAX_RATE_PER_HOST_ENV, '3')
  monkeypatch.setenv(settings.MAX_OUTAGE_ENV, '9')
  fetcher = http.Fetcher(None)
  assert (fetcher.retry_after_max_s, fetcher.max_rate_per_host,
          fetcher.max_outage_s) == (7, 3, 9)
  monkeypatch.setenv(settings.MAX_OUTAGE_ENV, 'soon')
  with pytest.raises(settings.SettingsError):
    http.Fetcher(None)
