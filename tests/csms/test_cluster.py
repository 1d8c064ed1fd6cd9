"""Two CSMS servers on one PostgreSQL database (each its own connections, as two processes
would have): one live connection per station, and operator calls that reach a station
wherever it is connected. ``test_cluster_processes`` does the same with real processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.errors import (
    CallErrorResponse,
    CallTimeout,
    OcppCallError,
    StationNotConnected,
)
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.remote_calls import RemoteCallsBusy
from csms.store.leases import live_leases
from csms.timeutil import format_timestamp, utc_now
from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.conftest import PASSWORD, STATION, auth_header
from tests.postgres import PostgresServer

OPERATOR = ("olivia", "operator-pw")


def settings(url: str, name: str, **overrides: Any) -> CsmsConfig:
    return CsmsConfig(
        port=0,
        ping_interval=0.3,
        ping_timeout=0.3,
        close_timeout=0.3,
        call_timeout=1.5,
        database=url,
        process_name=name,
        **overrides,
    )


@pytest.fixture
async def url(postgres: PostgresServer) -> AsyncIterator[str]:
    database = postgres.create_database()
    yield database
    postgres.drop_database(database)


@pytest.fixture
async def pair(url: str, tmp_path: Path) -> AsyncIterator[tuple[CsmsApp, CsmsApp]]:
    a = await start_csms(tmp_path / "a", settings(url, "A"))
    b = await start_csms(tmp_path / "b", settings(url, "B", max_remote_calls=2))
    await a.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    yield a, b
    await b.stop()
    await a.stop()


class Station:
    """A 2.0.1 station that answers the CSMS's calls: Accepted, a CALLERROR, or nothing."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.silent: set[str] = set()
        self.refused: set[str] = set()

    async def serve(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame[0] != 2:
                    continue
                _, message_id, action, payload = frame
                self.asked.append((action, payload))
                if action in self.silent:
                    continue
                if action in self.refused:
                    answer: list[Any] = [4, message_id, "NotSupported", "not here", {}]
                else:
                    answer = [3, message_id, {"status": "Accepted"}]
                await self.ws.send(json.dumps(answer))
        except ConnectionClosed:
            pass


@asynccontextmanager
async def station_on(app: CsmsApp) -> AsyncIterator[Station]:
    ws = await connect(
        f"ws://127.0.0.1:{app.port}/ocpp/{STATION}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
        open_timeout=5,
    )
    station = Station(ws)
    task = asyncio.create_task(station.serve())
    await eventually(lambda: holder_is(app, STATION), f"{STATION} connected")
    try:
        yield station
    finally:
        await ws.close()
        await task


async def holder_is(app: CsmsApp, station_id: str) -> bool:
    connection = app.server.connections.get(station_id)
    return connection is not None and connection.lease_epoch is not None


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(400):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_station_connecting_to_another_process_is_closed_on_the_first(
    pair: tuple[CsmsApp, CsmsApp],
) -> None:
    a, b = pair
    async with station_on(a) as first:
        leases = await live_leases(b.store)
        assert (leases[STATION].process, leases[STATION].epoch) == ("A", 1)
        async with station_on(b):
            await asyncio.wait_for(first.ws.wait_closed(), 5)
            assert first.ws.close_reason == "connected to another CSMS process"
            await eventually(lambda: no_connection(a), "A let go of the station")
            leases = await live_leases(a.store)
            assert (leases[STATION].process, leases[STATION].epoch) == ("B", 2)
            assert a.server.cluster is not None and a.server.cluster.released == 1
        # B's connection ended: its lease is gone, and nobody holds the station
        await eventually(lambda: no_lease(b), "B released the lease")
    log = await a.store.connection_log(STATION)
    assert [event for event, *_ in log].count("connected") == 2


async def no_connection(app: CsmsApp) -> bool:
    return STATION not in app.server.connections


async def no_lease(app: CsmsApp) -> bool:
    return STATION not in await live_leases(app.store)


async def test_a_lease_taken_while_a_notice_was_missed_closes_the_connection_at_renewal(
    pair: tuple[CsmsApp, CsmsApp], url: str
) -> None:
    a, _ = pair
    async with station_on(a) as station:
        with psycopg.connect(url, autocommit=True) as conn:  # as if C took it, unheard by A
            conn.execute("UPDATE station_leases SET process = 'C', epoch = epoch + 1")
        assert a.server.cluster is not None
        await a.server.cluster.renew()
        await asyncio.wait_for(station.ws.wait_closed(), 5)
        assert a.server.cluster.lost == 1
        leases = await live_leases(a.store)
        assert leases[STATION].process == "C"  # not released by A's closing connection


async def test_a_dead_process_lease_lapses(pair: tuple[CsmsApp, CsmsApp], url: str) -> None:
    a, b = pair
    with psycopg.connect(url, autocommit=True) as conn:  # a process that died long ago
        conn.execute(
            "INSERT INTO station_leases VALUES (%s, 'gone', 7, 'ocpp2.0.1', 'then', 0)",
            (STATION,),
        )
    assert await live_leases(b.store) == {}
    with pytest.raises(StationNotConnected):
        await b.stations.reset(STATION)
    async with station_on(a):  # taken over with no one to tell
        assert (await live_leases(b.store))[STATION].epoch == 8


async def test_operator_calls_on_b_reach_a_station_connected_to_a(
    pair: tuple[CsmsApp, CsmsApp],
) -> None:
    a, b = pair
    with pytest.raises(StationNotConnected):
        await b.stations.operator_call(STATION, "Reset", {"type": "Immediate"})
    async with station_on(a) as station:
        done = await b.stations.operator_call(STATION, "Reset", {"type": "OnIdle", "evseId": 1})
        assert done.response == {"status": "Accepted"} and done.action == "Reset"
        assert station.asked == [("Reset", {"type": "OnIdle", "evseId": 1})]
        # the version-aware helpers too (they learn the version where the station is)
        assert await b.stations.trigger_message(STATION, "Heartbeat") == {"status": "Accepted"}
        assert station.asked[-1] == ("TriggerMessage", {"requestedMessage": "Heartbeat"})
        station.refused.add("UnlockConnector")
        with pytest.raises(CallErrorResponse) as refused:
            await b.stations.operator_call(
                STATION, "UnlockConnector", {"evseId": 1, "connectorId": 1}
            )
        assert refused.value.code == "NotSupported" and refused.value.action == "UnlockConnector"
        with pytest.raises(OcppCallError):  # checked against the schema where it runs
            await b.stations.operator_call(STATION, "Reset", {"type": "Sideways"})
        with pytest.raises(ValueError, match="not a message an operator can send"):
            await b.stations.operator_call(STATION, "BootNotification", {})
        station.silent.add("ClearCache")
        with pytest.raises(CallTimeout):
            await b.stations.operator_call(STATION, "ClearCache", {})
        assert b.server.cluster is not None and a.server.cluster is not None
        assert b.server.cluster.forwarded == 6 and a.server.cluster.served == 6
        assert await pending_calls(b) == 0  # every call row was removed by its asker


async def test_an_answer_heard_before_its_asker_resumes_is_not_lost(
    pair: tuple[CsmsApp, CsmsApp],
) -> None:
    a, b = pair
    cluster = b.server.cluster
    assert cluster is not None
    send = cluster.leases.send_call

    async def slow_to_resume(*args: Any) -> int:
        call_id = await send(*args)
        await asyncio.sleep(0.5)  # the holder answers, and B hears it, meanwhile
        return call_id

    cluster.leases.send_call = slow_to_resume  # type: ignore[method-assign]
    async with station_on(a):
        began = asyncio.get_running_loop().time()
        done = await b.stations.operator_call(STATION, "Reset", {"type": "Immediate"})
        took = asyncio.get_running_loop().time() - began
    assert done.response == {"status": "Accepted"}
    assert took < 1.5, f"waited {took:.1f} s for an answer already there"


async def pending_calls(app: CsmsApp) -> int:
    row = await app.store.fetchone("SELECT COUNT(*) FROM station_calls")
    return int(row[0])


async def test_remote_calls_waiting_at_once_are_capped(pair: tuple[CsmsApp, CsmsApp]) -> None:
    a, b = pair
    async with station_on(a) as station:
        station.silent.add("ClearCache")
        waiting = [
            asyncio.create_task(b.stations.operator_call(STATION, "ClearCache", {}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.2)
        with pytest.raises(RemoteCallsBusy):  # max_remote_calls: 2
            await b.stations.operator_call(STATION, "ClearCache", {})
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(o, CallTimeout) for o in outcomes), outcomes
        assert b.server.cluster is not None and b.server.cluster.refused_busy == 1
        # and once they are answered, calls flow again
        done = await b.stations.operator_call(STATION, "Reset", {"type": "Immediate"})
        assert done.response == {"status": "Accepted"}


async def test_the_api_of_b_answers_for_a_station_on_a_as_for_its_own(
    pair: tuple[CsmsApp, CsmsApp], tmp_path: Path
) -> None:
    a, b = pair
    await OperatorRegistry(b.store).add(*OPERATOR, "operator", "2026-01-01")
    web = await start_web(
        ReviewDeps(store=b.store, data_dir=tmp_path, stations=b.stations, server=b.server),
        "127.0.0.1",
        0,
    )
    base = f"http://127.0.0.1:{web.port}/api/stations/{STATION}"
    try:
        async with httpx.AsyncClient(timeout=15) as http:
            gone = await http.post(f"{base}/ocpp/Reset", json={"type": "Immediate"}, auth=OPERATOR)
            assert gone.status_code == 409, gone.text
            async with station_on(a) as station:
                sent = await http.post(
                    f"{base}/ocpp/Reset", json={"type": "Immediate"}, auth=OPERATOR
                )
                assert sent.status_code == 200, sent.text
                assert sent.json()["response"] == {"status": "Accepted"}
                reset = await http.post(f"{base}/reset", json={}, auth=OPERATOR)
                assert reset.status_code == 200, reset.text
                assert [action for action, _ in station.asked] == ["Reset", "Reset"]
                station.silent.add("ClearCache")
                late = await http.post(f"{base}/ocpp/ClearCache", json={}, auth=OPERATOR)
                assert late.status_code == 502 and "timed out" in late.text, late.text
            scraped = await http.get(f"http://127.0.0.1:{web.port}/metrics", auth=OPERATOR)
            assert 'v2g_cluster_calls_total{kind="forwarded"} 3' in scraped.text
            assert "v2g_cluster_calls_waiting 0" in scraped.text
    finally:
        await web.stop()


async def test_the_fleet_view_of_any_process_shows_which_process_holds_each_station(
    pair: tuple[CsmsApp, CsmsApp], tmp_path: Path
) -> None:
    a, b = pair
    await b.store.add_station("CS-IDLE", hash_password(PASSWORD), format_timestamp(utc_now()))
    await OperatorRegistry(b.store).add(*OPERATOR, "operator", "2026-01-01")
    live = await start_web(
        ReviewDeps(store=b.store, data_dir=tmp_path, stations=b.stations, server=b.server),
        "127.0.0.1",
        0,
    )
    read_only = await start_web(ReviewDeps(store=b.store, data_dir=tmp_path), "127.0.0.1", 0)
    try:
        async with station_on(a), httpx.AsyncClient(timeout=10) as http:
            for web in (live, read_only):
                listed = await http.get(f"http://127.0.0.1:{web.port}/api/stations", auth=OPERATOR)
                assert listed.status_code == 200, listed.text
                by_id = {s["station_id"]: s for s in listed.json()}
                assert by_id[STATION]["connected"] and by_id[STATION]["process"] == "A"
                assert by_id[STATION]["ocpp_version"] == "ocpp2.0.1"
                assert not by_id["CS-IDLE"]["connected"] and by_id["CS-IDLE"]["process"] is None
            page = f"http://127.0.0.1:{live.port}"
            await http.post(f"{page}/login", data={"name": OPERATOR[0], "password": OPERATOR[1]})
            html = (await http.get(f"{page}/stations")).text
            assert "Connected through CSMS processes" in html
            assert '<td class="process">A</td>' in html and '<td class="process">-</td>' in html
    finally:
        await read_only.stop()
        await live.stop()


def test_cluster_settings_are_checked_naming_file_and_key(tmp_path: Path) -> None:
    from csms.config import load_config
    from csms.errors import ConfigError

    config = tmp_path / "csms.yaml"
    for text, key in [
        ("process_name: ''\n", "'process_name'"),
        ('process_name: "a\\nb"\n', "'process_name'"),
        ("station_lease_seconds: 0\n", "'station_lease_seconds'"),
        ("max_remote_calls: -1\n", "'max_remote_calls'"),
    ]:
        config.write_text(text)
        with pytest.raises(ConfigError) as bad:
            load_config(config)
        assert str(config) in str(bad.value) and key in str(bad.value), text
    config.write_text("process_name: csms-east-1\nstation_lease_seconds: 5\nmax_remote_calls: 8\n")
    loaded = load_config(config)
    assert (loaded.process_name, loaded.station_lease_seconds, loaded.max_remote_calls) == (
        "csms-east-1",
        5.0,
        8,
    )


async def test_a_second_running_process_with_the_same_name_is_refused_at_start(
    pair: tuple[CsmsApp, CsmsApp], url: str, tmp_path: Path
) -> None:
    from csms.errors import ConfigError

    a, b = pair
    async with station_on(a):
        with pytest.raises(ConfigError, match="process_name 'A' is in use"):
            await start_csms(tmp_path / "again", settings(url, "A"))
        # ... and it took nothing from the running A on its way out
        assert (await live_leases(b.store))[STATION].process == "A"
        assert STATION in a.server.connections
