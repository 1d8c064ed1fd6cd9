"""Handshake credentials under load: cache, per-id lines in a bounded pool, dummy hash."""

from __future__ import annotations

import asyncio
import contextlib
import time

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms.app import CsmsApp
from csms.looplag import LagHistogram, render_lag
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION, auth_header, url

VICTIM = "CS-VICTIM"


async def handshake(app: CsmsApp, station_id: str, password: str) -> bool:
    try:
        async with connect(
            url(app, station_id),
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(station_id, password),
            open_timeout=60,
        ):
            return True
    except InvalidStatus:
        return False


async def test_legitimate_handshake_is_quick_while_400_guesses_are_in_flight(
    csms: CsmsApp,
) -> None:
    await csms.store.add_station(VICTIM, hash_password("victim's own"), format_timestamp(utc_now()))
    guesses = [asyncio.create_task(handshake(csms, VICTIM, f"guess {i}")) for i in range(400)]
    try:
        await asyncio.sleep(0.5)  # all 400 handshakes sent and waiting on password checks
        checker = csms.server.credentials
        assert 1 <= checker.hashes < 400, "the guesses must still be in flight"
        started = time.perf_counter()
        assert await handshake(csms, STATION, PASSWORD)
        elapsed = time.perf_counter() - started
        assert elapsed < 0.5, f"legitimate handshake took {elapsed:.3f} s"
    finally:
        for task in guesses:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*guesses, return_exceptions=True)


async def test_a_reconnect_costs_no_hash_and_a_new_password_drops_the_cache(
    csms: CsmsApp,
) -> None:
    checker = csms.server.credentials
    assert await handshake(csms, STATION, PASSWORD)
    first = checker.hashes
    assert await handshake(csms, STATION, PASSWORD)
    assert checker.hashes == first and checker.cache_hits == 1
    assert not await handshake(csms, STATION, "not it")
    await csms.store.update_station_secret(STATION, hash_password("a new one"), None)
    assert not await handshake(csms, STATION, PASSWORD)  # cached old password no longer counts
    assert await handshake(csms, STATION, "a new one")


async def test_unknown_ids_are_checked_against_a_dummy_hash(csms: CsmsApp) -> None:
    checker = csms.server.credentials
    before = checker.hashes
    assert not await handshake(csms, "CS-NOBODY", PASSWORD)
    assert checker.hashes == before + 1


def test_loop_lag_histogram_is_rendered_with_cumulative_buckets() -> None:
    h = LagHistogram()
    for lag in (0.001, 0.03, 0.3):
        h.observe(lag)
    text = "\n".join(render_lag(h))
    assert 'v2g_event_loop_lag_seconds_bucket{le="0.005"} 1' in text
    assert 'v2g_event_loop_lag_seconds_bucket{le="0.05"} 2' in text
    assert 'v2g_event_loop_lag_seconds_bucket{le="+Inf"} 3' in text
    assert "v2g_event_loop_lag_max_seconds 0.300000" in text
