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
from csms.limits import PendingLimit, TokenBucket, Verdict
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.builders import transaction_event
from tests.csms.conftest import PASSWORD, STATION, RawClient, open_client

OTHER = "CS-TEST-2"


# -- the pure cores ----------------------------------------------------------------------


def test_bucket_serves_a_burst_then_spaces_frames_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve(0.0) == pytest.approx(0.5)  # the fourth waits for a token
    assert bucket.reserve(0.5) == pytest.approx(0.5)  # due at 1.0: the debt was paid at 0.5
    assert bucket.reserve(1.0) == pytest.approx(0.5)
    assert bucket.reserve(100.0) == 0.0  # refilled, capped at the burst
    assert [bucket.reserve(100.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve(100.0) > 0


def test_a_sequential_station_is_only_ever_delayed_by_one_interval() -> None:
    bucket = TokenBucket(rate=10.0, burst=5)
    now = 0.0
    for _ in range(200):  # a backlog flushed one CALL after the other
        delay = bucket.reserve(now)
        assert delay <= 0.1 + 1e-9
        now += delay + 0.001  # served after the delay, the next CALL follows the answer


def test_bucket_tolerates_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert bucket.reserve(5.0) == 0.0
    assert bucket.reserve(1.0) == pytest.approx(1.0)  # no refill from a negative interval


def test_pending_limit_refuses_beyond_the_bound_and_flags_a_flood() -> None:
    guard = PendingLimit(max_pending=2, disconnect_after=3)
    assert guard.admit(0) is Verdict.ACCEPT
    assert guard.admit(1) is Verdict.ACCEPT
    assert [guard.admit(2), guard.admit(5)] == [Verdict.LIMIT, Verdict.LIMIT]
    assert guard.admit(1) is Verdict.ACCEPT  # answers caught up: the count restarts
    assert [guard.admit(2) for _ in range(3)] == [Verdict.LIMIT, Verdict.LIMIT, Verdict.DISCONNECT]


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_bucket_refuses_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@pytest.mark.parametrize(("pending", "after"), [(0, 1), (1, 0)])
def test_pending_limit_refuses_nonsense(pending: int, after: int) -> None:
    with pytest.raises(ValueError):
        PendingLimit(pending, after)


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
    app = await limited_csms(tmp_path, rate_limit_per_s=10.0, rate_limit_burst=5)
    yield app
    await app.stop()


@pytest.fixture
async def few_pending(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    app = await limited_csms(
        tmp_path,
        rate_limit_per_s=5.0,
        rate_limit_burst=2,
        max_pending_frames=3,
        rate_limit_disconnect_after=20,
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


async def test_frames_beyond_the_rate_are_delayed_in_order_not_refused(
    slow_rate: CsmsApp,
) -> None:
    client = await open_client(slow_rate)
    other = await open_client(slow_rate, OTHER)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(8):
        await client.send_raw(json.dumps([2, f"h{i}", "Heartbeat", {}]))
    answers = [await client.recv_json() for _ in range(8)]
    elapsed = loop.time() - started
    assert [a[1] for a in answers] == [f"h{i}" for i in range(8)]  # every frame, in order
    assert [a[0] for a in answers] == [3] * 8  # throttled, not refused
    assert elapsed >= 0.25  # three frames past the burst of 5, at 10/s
    assert slow_rate.server.connections[STATION].throttled == 3
    started = loop.time()
    assert await heartbeat_ok(other)  # the other station has its own bucket
    assert loop.time() - started < 0.2
    await client.ws.close()
    await other.ws.close()


async def test_a_sequential_backlog_gets_through_without_refusal(few_pending: CsmsApp) -> None:
    client = await open_client(few_pending)
    for _ in range(6):  # one CALL after the other, as OCPP requires
        assert await heartbeat_ok(client)
    connection = few_pending.server.connections[STATION]
    assert connection.rate_limited == 0 and connection.throttled == 4
    await client.ws.close()


async def test_frames_beyond_the_pending_bound_are_refused_at_once(few_pending: CsmsApp) -> None:
    client = await open_client(few_pending)
    for i in range(10):
        await client.send_raw(json.dumps([2, f"p{i}", "Heartbeat", {}]))
    answers = {}
    for _ in range(10):
        answer = await client.recv_json()
        answers[answer[1]] = answer
    assert set(answers) == {f"p{i}" for i in range(10)}  # every frame answered exactly once
    refused = [a for a in answers.values() if a[0] == 4]
    assert refused and all(a[2:4] == ["GenericError", "rate limited: slow down"] for a in refused)
    assert [a for a in answers.values() if a[0] == 3]  # the first ones were served
    assert few_pending.server.connections[STATION].rate_limited == len(refused)
    await client.ws.close()


async def test_a_flooding_station_is_disconnected_and_others_carry_on(
    few_pending: CsmsApp,
) -> None:
    flooder = await open_client(few_pending)
    other = await open_client(few_pending, OTHER)
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
    for _ in range(100):  # the frames it had queued are answered first (throttled), then logged
        log = await few_pending.store.connection_log(STATION)
        if log[-1][0] == "disconnected":
            break
        await asyncio.sleep(0.05)
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


async def test_frames_received_before_a_close_are_still_handled(slow_rate: CsmsApp) -> None:
    """A station may send its last events and hang up without waiting (and never return)."""
    client = await open_client(slow_rate)
    events = [
        transaction_event("Started", 0, import_wh=1000),
        *[transaction_event("Updated", i, import_wh=1000 + 100 * i) for i in range(1, 8)],
        transaction_event("Ended", 8, import_wh=2000),
    ]
    for i, event in enumerate(events):  # past the burst of 5: the tail is throttled
        await client.send_raw(json.dumps([2, f"t{i}", "TransactionEvent", event]))
    await client.ws.close()
    for _ in range(100):
        session = await slow_rate.store.get_session(STATION, "tx-1")
        if session is not None and session.state == "ended":
            break
        await asyncio.sleep(0.02)
    assert session is not None and session.state == "ended"
    assert session.event_count == len(events)
    assert session.import_wh == 1000
