"""The one aiohttp session of a Fetcher: its limits, headers, and provenance.

A session keeps TLS verification at aiohttp's default (on; it is never
disabled), sends skytfds' User-Agent, takes proxies from the environment,
leaves statuses and redirects to `transport`, and notes every origin whose
answers say they come from skytfds' bundled emulator.
"""

from __future__ import annotations

import urllib.parse

import aiohttp

# The header by which skytfds' bundled emulator says so about itself in every
# answer; the real services never send it. Recorded in FetchStats.emulated, so
# a dataset's provenance says whether its data is simulated.
EMULATOR_HEADER = 'X-Skytfds-Emulator'


def _origin(url: str) -> str:
  parts = urllib.parse.urlsplit(url)
  return f'{parts.scheme}://{parts.hostname}:{parts.port or ""}'.rstrip(':')


def new_session(*, max_concurrency: int, timeout_s: float, user_agent: str,
                emulated: dict[str, str]) -> aiohttp.ClientSession:
  """A session of at most `max_concurrency` connections (per host too).

  Args:
    max_concurrency: connections open at once, in all and per host.
    timeout_s: the session's total timeout per request, seconds.
    user_agent: the User-Agent header of every request.
    emulated: origin (scheme://host:port) -> what EMULATOR_HEADER said, filled
      in as answers carrying it arrive (FetchStats.emulated).
  """
  connector = aiohttp.TCPConnector(limit=max_concurrency,
                                   limit_per_host=max_concurrency)
  return aiohttp.ClientSession(
      connector=connector,
      trace_configs=[_emulator_trace(emulated)],
      headers={'User-Agent': user_agent},
      timeout=aiohttp.ClientTimeout(total=timeout_s),
      raise_for_status=False,
      trust_env=True,
  )


def _emulator_trace(emulated: dict[str, str]) -> aiohttp.TraceConfig:
  """Notes every origin whose answers carry EMULATOR_HEADER (provenance)."""
  trace = aiohttp.TraceConfig()

  async def on_request_end(session, context, params) -> None:
    del session, context
    said = params.response.headers.get(EMULATOR_HEADER)
    if said:
      emulated[_origin(str(params.url))] = said[:200]

  trace.on_request_end.append(on_request_end)
  return trace
