"""Brute-force backoff on the API's Basic auth and the dashboard login, over a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from csms.web.deps import ReviewDeps
from csms.web.server import WebServer, start_web
from tests.csms.web.world import OPERATOR, OPERATOR_PW, World


@pytest.fixture
async def web(world: World) -> AsyncIterator[WebServer]:
    server = await start_web(
        ReviewDeps(store=world.store, data_dir=world.data_dir, setup=world.setup), "127.0.0.1", 0
    )
    server.app.state.auth.throttle.base_delay = 0.01  # the shape of the backoff, not its time
    yield server
    await server.stop()


def from_address(web: WebServer, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{web.port}",
        transport=httpx.AsyncHTTPTransport(local_address=address),
        timeout=10,
    )


async def test_api_guesses_get_429_with_retry_after_and_others_still_get_in(
    web: WebServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with from_address(web, "127.0.0.2") as attacker, from_address(web, "127.0.0.3") as other:
        codes = [
            (await attacker.get("/api/sessions", auth=(OPERATOR, f"guess {i}"))).status_code
            for i in range(7)
        ]
        assert codes[:6] == [401] * 6 and codes[6] == 429
        held = await attacker.get("/api/sessions", auth=(OPERATOR, OPERATOR_PW))
        assert held.status_code == 429 and int(held.headers["retry-after"]) >= 1
        assert (await other.get("/api/sessions", auth=(OPERATOR, OPERATOR_PW))).status_code == 200
        metrics = (await other.get("/metrics", auth=(OPERATOR, OPERATOR_PW))).text
    assert 'v2g_auth_failures_total{path="api"} 6' in metrics
    assert 'v2g_auth_refused_total{path="api",by="address"} 2' in metrics
    assert any("security: auth_refused path=api" in r.getMessage() for r in caplog.records)


async def test_login_form_guesses_get_429(web: WebServer) -> None:
    async with from_address(web, "127.0.0.2") as attacker:
        for i in range(7):
            answer = await attacker.post("/login", data={"name": OPERATOR, "password": f"g{i}"})
        assert answer.status_code == 429 and "too many failed attempts" in answer.text.lower()
        assert "retry-after" in answer.headers
