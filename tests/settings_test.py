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
