"""Limits: frame size, per-station rate limit, connection cap; one station's excess never
disturbs another's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.limits import TokenBucket, Verdict
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION, RawClient, open_client

OTHER = "CS-TEST-2"


# -- the token bucket ---------------------------------------------------------------------


def test_bucket_allows_a_burst_then_the_sustained_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, disconnect_after=100)
    assert [bucket.take(0.0) for _ in range(4)] == [Verdict.ACCEPT] * 3 + [Verdict.LIMIT]
    assert bucket.take(0.4) is Verdict.LIMIT  # 0.8 token: not yet
    assert bucket.take(0.5) is Verdict.ACCEPT  # one token after 0.5 s at 2/s
    assert bucket.take(0.5) is Verdict.LIMIT
    assert [bucket.take(10.0) for _ in range(4)] == [Verdict.ACCEPT] * 3 + [Verdict.LIMIT]


def test_bucket_disconnects_a_station_that_keeps_flooding() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, disconnect_after=5)
    verdicts = [bucket.take(i * 0.01) for i in range(20)]  # 100 frames/s against 10/s
    assert verdicts[:2] == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert Verdict.DISCONNECT in verdicts
    first = verdicts.index(Verdict.DISCONNECT)
    assert verdicts[2:first].count(Verdict.LIMIT) == 4  # five limited frames in a row


def test_bucket_forgives_a_past_burst_once_refilled() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, disconnect_after=3)
    assert [bucket.take(0.0) for _ in range(4)][-1] is Verdict.LIMIT  # two limited
    assert bucket.take(5.0) is Verdict.ACCEPT  # quiet long enough: the count restarts
    assert bucket.take(5.0) is Verdict.ACCEPT
    assert bucket.take(5.0) is Verdict.LIMIT
    assert bucket.take(5.0) is Verdict.LIMIT
    assert bucket.take(5.0) is Verdict.DISCONNECT


def test_bucket_tolerates_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, disconnect_after=10)
    assert bucket.take(5.0) is Verdict.ACCEPT
    assert bucket.take(1.0) is Verdict.LIMIT  # no refill from a negative interval
    assert bucket.take(6.0) is Verdict.ACCEPT


@pytest.mark.parametrize(("rate", "burst", "after"), [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_bucket_refuses_nonsense(rate: float, burst: int, after: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, after)


# -- over real sockets --------------------------------------------------------------------


async def limited_csms(tmp_path: Path, **settings: Any) -> CsmsApp:
    config = CsmsConfig(
        port=0, ping_interval=0.3, ping_timeout=0.3, close_timeout=0.3, call_timeout=5, **settings
    )
    app = await start_csms(tmp_path / "data", config)
    for station_id in (STATION, OTHER):
        await app.store.add_station(
            station_id, hash_password(PASSWORD), format_timestamp(utc_now())
        )
    return app


@pytest.fixture
async def small_frames(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    app = await limited_csms(tmp_path, max_frame_bytes=1024)
    yield app
    await app.stop()


@pytest.fixture
async def slow_rate(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    app = await limited_csms(
        tmp_path, rate_limit_per_s=2.0, rate_limit_burst=5, rate_limit_disconnect_after=30
    )
    yield app
    await app.stop()


@pytest.fixture
async def one_connection(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    app = await limited_csms(tmp_path, max_connections=1)
    yield app
    await app.stop()


async def heartbeat_ok(client: RawClient) -> bool:
    answer = await client.call("Heartbeat", {})
    return bool(answer[0] == 3 and "currentTime" in answer[2])


async def test_oversize_frame_closes_only_that_station(small_frames: CsmsApp) -> None:
    big = await open_client(small_frames)
    other = await open_client(small_frames, OTHER)
    await big.send_raw(json.dumps([2, "m1", "DataTransfer", {"vendorId": "x" * 2000}]))
    with pytest.raises(ConnectionClosed):
        await big.recv_json()
    assert big.ws.close_code == 1009
    assert await heartbeat_ok(other)
    await other.ws.close()


async def test_frames_beyond_the_rate_are_answered_rate_limited(slow_rate: CsmsApp) -> None:
    client = await open_client(slow_rate)
    other = await open_client(slow_rate, OTHER)
    for i in range(8):
        await client.send_raw(json.dumps([2, f"h{i}", "Heartbeat", {}]))
    answers = [await client.recv_json() for _ in range(8)]
    assert [a[1] for a in answers] == [f"h{i}" for i in range(8)]  # every frame answered
    assert [a[0] for a in answers] == [3] * 5 + [4] * 3
    assert {(a[2], a[3]) for a in answers[5:]} == {("GenericError", "rate limited: slow down")}
    connection = slow_rate.server.connections[STATION]
    assert connection.rate_limited == 3
    assert await heartbeat_ok(other)  # the other station has its own bucket
    await asyncio.sleep(0.6)  # one token back at 2/s
    assert await heartbeat_ok(client)
    await client.ws.close()
    await other.ws.close()


async def test_a_flooding_station_is_disconnected_and_others_carry_on(
    slow_rate: CsmsApp,
) -> None:
    flooder = await open_client(slow_rate)
    other = await open_client(slow_rate, OTHER)
    frames = [json.dumps([2, f"f{i}", "Heartbeat", {}]) for i in range(200)]
    try:
        for frame in frames:
            await flooder.send_raw(frame)
    except ConnectionClosed:
        pass
    with pytest.raises(ConnectionClosed):
        while True:
            await flooder.recv_json()
    assert flooder.ws.close_code == 1008
    assert flooder.ws.close_reason == "message rate limit exceeded"
    assert await heartbeat_ok(other)
    await other.ws.close()
    log = await slow_rate.store.connection_log(STATION)
    assert log[-1][0] == "disconnected" and "1008" in (log[-1][1] or "")


async def test_connection_cap_answers_503_but_lets_a_station_replace_itself(
    one_connection: CsmsApp,
) -> None:
    first = await open_client(one_connection)
    with pytest.raises(InvalidStatus) as info:
        await open_client(one_connection, OTHER)
    assert info.value.response.status_code == 503
    assert await one_connection.store.connection_log(OTHER) == []
    again = await open_client(one_connection)  # same station id: replaces the old one
    assert await heartbeat_ok(again)
    with pytest.raises(ConnectionClosed):
        await first.recv_json()
    await again.ws.close()
    for _ in range(50):  # the slot frees once the server saw the close
        if not one_connection.server.connections:
            break
        await asyncio.sleep(0.02)
    other = await open_client(one_connection, OTHER)
    assert await heartbeat_ok(other)
    await other.ws.close()
