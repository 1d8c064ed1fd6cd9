"""Handshake credentials under load: cache, per-id lines in a bounded pool, dummy hash."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.credentials import load_credential_key, password_mac
from csms.looplag import LagHistogram, render_lag
from csms.passwords import hash_password
from csms.throttle import AuthThrottle
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION, auth_header, url

VICTIM = "CS-VICTIM"


ATTACKER = "127.0.0.2"  # another loopback address, so its backoff is not the legit client's


async def handshake(
    app: CsmsApp, station_id: str, password: str, source: str = "127.0.0.1"
) -> bool:
    return await status_of(app, station_id, password, source) == 101


async def status_of(app: CsmsApp, station_id: str, password: str, source: str) -> int:
    try:
        async with connect(
            url(app, station_id),
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(station_id, password),
            open_timeout=60,
            local_addr=(source, 0),
        ):
            return 101
    except InvalidStatus as refused:
        retry = refused.response.headers.get("Retry-After")
        assert (retry is not None) == (refused.response.status_code in (429, 503))
        return int(refused.response.status_code)


async def test_legitimate_handshake_is_quick_while_400_guesses_are_in_flight(
    csms: CsmsApp,
) -> None:
    await csms.store.add_station(VICTIM, hash_password("victim's own"), format_timestamp(utc_now()))
    guesses = [
        asyncio.create_task(handshake(csms, VICTIM, f"guess {i}", ATTACKER)) for i in range(400)
    ]
    try:
        checker = csms.server.credentials
        for _ in range(400):  # until the CSMS has all 400 guesses (the machine may be busy)
            if checker.checks >= 400:
                break
            await asyncio.sleep(0.05)
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


async def test_guesses_back_off_to_429_and_a_correct_password_elsewhere_still_connects(
    csms: CsmsApp, caplog: pytest.LogCaptureFixture
) -> None:
    throttle = csms.server.throttle
    throttle.base_delay = 0.01  # the backoff's shape, not its wall time, is under test
    statuses = [await status_of(csms, STATION, f"guess {i}", ATTACKER) for i in range(8)]
    assert statuses[: throttle.free_failures] == [401] * throttle.free_failures
    assert statuses[-1] == 429
    assert await handshake(csms, STATION, PASSWORD, "127.0.0.3")  # another address: at once
    assert await status_of(csms, STATION, PASSWORD, ATTACKER) == 429  # the throttled one waits
    assert throttle.failures["ocpp"] == 6 and throttle.refused[("ocpp", "address")] >= 2
    lines = [r.getMessage() for r in caplog.records if "security: auth_" in r.getMessage()]
    assert any(f"address={ATTACKER}" in line and "by=address" in line for line in lines)


def test_throttle_backs_off_exponentially_then_forgets_on_success() -> None:
    now = [0.0]
    t = AuthThrottle(free_failures=2, base_delay=0.1, clock=lambda: now[0])
    assert [t.failed("k") for _ in range(2)] == [0.1, 0.2]
    assert t.retry_after("k") == 0
    t.failed("k")
    assert t.retry_after("k") == 2
    t.failed("k")
    assert t.retry_after("k") == 4
    now[0] = 4.5
    assert t.retry_after("k") == 0
    t.succeeded("k")
    assert t.failure_count("k") == 0


async def test_a_full_hashing_backlog_is_answered_503_with_retry_after_at_once(
    csms: CsmsApp,
) -> None:
    checker = csms.server.credentials
    checker.max_queued = 2
    ids = [f"CS-STORM-{n}" for n in range(12)]
    now = format_timestamp(utc_now())
    for station_id in ids:
        await csms.store.add_station(station_id, hash_password(f"{station_id}-pw"), now)
    started = time.perf_counter()
    statuses = await asyncio.gather(
        *(status_of(csms, s, f"{s}-pw", "127.0.0.1") for s in ids)
    )  # status_of checks that every 503 carries Retry-After
    assert set(statuses) == {101, 503} and statuses.count(101) >= 2, statuses
    assert csms.server.throttle.refused[("ocpp", "busy")] == statuses.count(503)
    assert time.perf_counter() - started < 5
    refused = [s for s, status in zip(ids, statuses, strict=True) if status == 503]
    for station_id in refused:  # a refusal for load is no failure: it connects when retried
        assert await handshake(csms, station_id, f"{station_id}-pw")
    assert not csms.server.auth_failures


async def stored_mac(app: CsmsApp, station_id: str) -> str | None:
    row = await app.store.fetchone(
        "SELECT password_mac FROM stations WHERE station_id = ?", (station_id,)
    )
    return None if row is None or row[0] is None else str(row[0])


async def test_a_restarted_csms_verifies_a_known_password_with_no_scrypt(
    csms: CsmsApp, tmp_path: Path
) -> None:
    assert await handshake(csms, STATION, PASSWORD)  # one scrypt, then remembered
    assert csms.server.credentials.hashes == 1
    await csms.stop()
    again = await start_csms(csms.data_dir, CsmsConfig(port=0, close_timeout=0.3))
    try:
        assert await handshake(again, STATION, PASSWORD)
        assert again.server.credentials.hashes == 0  # an HMAC, not a scrypt
        assert not await handshake(again, STATION, "not it")
        assert again.server.credentials.hashes == 1  # a wrong one still costs a scrypt
    finally:
        await again.stop()


async def test_the_remembered_mac_is_keyed_by_the_data_dirs_key_not_kept_in_the_database(
    csms: CsmsApp,
) -> None:
    assert await handshake(csms, STATION, PASSWORD)
    await csms.server.credentials.drain()  # stored beside the handshake
    station = await csms.store.get_station(STATION)
    assert station is not None and station.password_mac == await stored_mac(csms, STATION)
    key = load_credential_key(csms.data_dir)
    assert station.password_mac == password_mac(key, STATION, station.password_hash, PASSWORD)
    other = password_mac(os.urandom(32), STATION, station.password_hash, PASSWORD)
    assert station.password_mac != other  # the database alone cannot check a guess
    rows = await csms.store.fetchall("SELECT * FROM stations")
    assert all(key.hex() not in str(tuple(r)) for r in rows)


async def test_a_new_password_drops_the_remembered_mac(csms: CsmsApp) -> None:
    assert await handshake(csms, STATION, PASSWORD)
    await csms.server.credentials.drain()
    assert await stored_mac(csms, STATION) is not None
    await csms.store.update_station_secret(STATION, hash_password("a new one"), None)
    assert await stored_mac(csms, STATION) is None
    assert not await handshake(csms, STATION, PASSWORD)
    assert await handshake(csms, STATION, "a new one")
    await csms.server.credentials.drain()
    assert await stored_mac(csms, STATION) is not None
