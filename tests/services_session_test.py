"""Tests of skytfds.services.session: headers, limits and emulator provenance."""

import asyncio

from aiohttp import web

import services_test as helpers  # The local-server helpers of the client's tests.
from skytfds.services import session


def test_session_sends_the_user_agent_and_notes_emulated_origins():
  agents = []

  async def handler(request):
    agents.append(request.headers.get('User-Agent'))
    if request.path == '/emulated':
      return web.Response(text='x', headers={session.EMULATOR_HEADER: 'y' * 300})
    return web.Response(text='x')

  async def go():
    emulated = {}
    async with helpers._serve(handler) as base:  # pylint: disable=protected-access
      client = session.new_session(max_concurrency=3, timeout_s=5,
                                   user_agent='skytfds-test/1', emulated=emulated)
      async with client:
        assert client.connector.limit == 3
        assert client.connector.limit_per_host == 3
        assert client.timeout.total == 5
        async with client.get(base + '/real') as response:
          assert response.status == 200
        assert emulated == {}  # The real services never send the header.
        async with client.get(base + '/emulated?a=1') as response:
          assert response.status == 200
    return emulated, base

  emulated, base = asyncio.run(go())
  assert agents == ['skytfds-test/1', 'skytfds-test/1']
  # Keyed by origin (no path or query), what the header said cut to 200 characters.
  assert emulated == {base: 'y' * 200}
