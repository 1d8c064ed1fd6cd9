"""GC pacing: each tick's survivors are frozen, closed connections' cycles collected in time."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.gc_pacing import (
    IDLE_TICK_S,
    TICK_S,
    AutomaticCollector,
    GcAction,
    GcPacer,
    apply,
    freeze_start_up_heap,
)
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, auth_header, url


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    """A CSMS whose keepalive survives a full collection of the test process's heap."""
    config = CsmsConfig(port=0, ping_interval=20, ping_timeout=20, evse_discovery=False)
    app = await start_csms(tmp_path / "data", config)
    yield app
    await app.stop()


def test_ticks_freeze_while_enough_stations_are_connected() -> None:
    pacer = GcPacer(minimum=100)
    assert [pacer.decide(n, 0.0) for n in (0, 50, 99)] == [None, None, None]
    assert pacer.decide(100, 0.0) is GcAction.FREEZE
    assert pacer.decide(50, TICK_S) is GcAction.FREEZE  # down to half the minimum
    assert pacer.decide(5000, 2 * TICK_S) is GcAction.FREEZE  # growth never needs a FULL
    # The tail of a mass disconnect: the ticks go on for `linger` seconds below half.
    assert pacer.decide(49, 1.0) is GcAction.FREEZE
    assert pacer.decide(60, 3.0) is GcAction.FREEZE  # back over half: the quiet restarts
    assert pacer.decide(49, 4.0) is GcAction.FREEZE
    assert pacer.decide(0, 4.0 + pacer.linger - TICK_S) is GcAction.FREEZE
    assert pacer.decide(0, 4.0 + pacer.linger) is None
    assert not pacer.active
    assert pacer.decide(99, 20.0) is None
    assert pacer.full_collections == 0


def test_far_below_the_minimum_the_counts_are_looked_at_once_a_second() -> None:
    pacer = GcPacer(minimum=200)
    assert pacer.interval(0) == pacer.interval(49) == IDLE_TICK_S > TICK_S
    assert pacer.interval(50) == TICK_S  # nearing the minimum: every tick
    pacer.decide(200, 0.0)
    assert pacer.active and pacer.interval(0) == TICK_S  # the ticks run (and linger)


def test_the_automatic_collector_is_off_only_while_the_ticks_run() -> None:
    automatic = AutomaticCollector()
    assert gc.isenabled()
    try:
        automatic.follow(True)
        assert not gc.isenabled()
        automatic.follow(True)
        automatic.follow(False)
        assert gc.isenabled()
        gc.disable()  # turned off by someone else: not ours to turn back on
        automatic.follow(True)
        automatic.follow(False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_closed_connections_call_for_a_full_collection_at_most_once_per_interval() -> None:
    pacer = GcPacer(minimum=100, garbage_share=0.25, min_interval=60.0)
    assert pacer.decide(1000, 0.0) is GcAction.FREEZE
    for _ in range(249):
        pacer.closed()  # a quarter of the fleet reconnects, one by one: live stays 1,000
    assert pacer.decide(1000, 1.0) is GcAction.FREEZE
    pacer.closed()
    assert pacer.decide(1000, 2.0) is GcAction.FULL
    assert pacer.closed_since_full == 0 and pacer.full_collections == 1
    for _ in range(800):
        pacer.closed()  # a mass disconnect soon after: no FULL within the interval
    assert pacer.decide(200, 61.0) is GcAction.FREEZE
    assert pacer.decide(200, 62.0) is GcAction.FULL
    for _ in range(90):
        pacer.closed()
    assert pacer.decide(110, 200.0) is GcAction.FREEZE  # fewer than the minimum closed
    for _ in range(10):
        pacer.closed()  # the rest go: the garbage is still collected, pacing or not
    assert pacer.decide(0, 201.0) is GcAction.FULL
    assert pacer.decide(0, 201.0 + pacer.linger) is None


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.mark.usefixtures("restore_gc")
def test_freeze_collects_the_new_cycles_and_full_the_frozen_ones() -> None:
    freeze_start_up_heap()
    assert not any(isinstance(o, _Node) for o in gc.get_objects())
    garbage = _cycle()  # made since the last tick, and unreachable
    apply(GcAction.FREEZE)
    assert garbage() is None
    kept = _Node()
    kept.other = _Node()
    kept.other.other = kept
    apply(GcAction.FREEZE)
    assert not any(o is kept for o in gc.get_objects())  # frozen: no collection walks it
    dropped = weakref.ref(kept)
    del kept  # a frozen cycle turned garbage: FREEZE leaves it, FULL collects it
    apply(GcAction.FREEZE)
    assert dropped() is not None
    apply(GcAction.FULL)
    assert dropped() is None


async def _connect(csms: CsmsApp, station_id: str) -> ClientConnection:
    return await connect(
        url(csms, station_id),
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(station_id, PASSWORD),
    )


async def _heartbeat(ws: ClientConnection, n: int) -> None:
    await ws.send(f'[2,"hb-{n}","Heartbeat",{{}}]')
    await asyncio.wait_for(ws.recv(), 10)


async def _register(csms: CsmsApp, count: int) -> list[str]:
    """Stations with their password remembered (as ``v2g stations import`` leaves them), so
    that a handshake costs an HMAC, not a scrypt."""
    stored, checker = hash_password(PASSWORD), csms.server.credentials
    ids = [f"CS-GC-{i}" for i in range(count)]
    macs = {s: checker.mac(s, stored, PASSWORD) for s in ids}
    rows = [(s, stored, None, None, None) for s in ids]
    await csms.store.add_stations(rows, format_timestamp(utc_now()), password_macs=macs)
    return ids


@pytest.mark.usefixtures("restore_gc")
async def test_what_stations_leave_waiting_is_frozen_within_a_tick(csms: CsmsApp) -> None:
    """Each message replaces the objects its connection waits on; they live until the
    station's next message. A tick later they are out of the collector's sight, so no
    collection walks them (at 5,000 stations "young" collections walked 100,000)."""
    csms.server.gc_pacer.minimum = 10
    ids = await _register(csms, 40)
    stations = await asyncio.gather(*(_connect(csms, s) for s in ids))
    try:
        for n in range(3):
            await asyncio.gather(*(_heartbeat(ws, n) for ws in stations))
        await asyncio.sleep(IDLE_TICK_S + 3 * TICK_S)  # the idle look, then ticks
        assert csms.server.gc_pacer.active
        waiting = [o for o in gc.get_objects() if type(o).__name__ == "coroutine"]
        assert len(waiting) < len(stations), f"{len(waiting)} coroutines still tracked"
    finally:
        await asyncio.gather(*(ws.close() for ws in stations))


@pytest.mark.usefixtures("restore_gc")
async def test_closed_connections_are_collected_while_the_fleet_stays_connected(
    csms: CsmsApp,
) -> None:
    """Stations reconnecting one by one keep the count of live connections up; the cycles
    their old connections leave among frozen objects are still collected."""
    pacer = csms.server.gc_pacer
    pacer.minimum, pacer.min_interval, pacer.garbage_share = 20, 0.0, 0.25
    ids = await _register(csms, 24)
    stations = {s: await _connect(csms, s) for s in ids}
    await asyncio.sleep(IDLE_TICK_S + 3 * TICK_S)  # the idle look, then ticks
    assert pacer.active
    gone: list[weakref.ref[object]] = []
    for station_id in ids:  # every station reconnects once: 24 closed, 24 still live
        gone.extend(weakref.ref(c.websocket) for c in [csms.server.connections[station_id]])
        await stations[station_id].close()
        stations[station_id] = await _connect(csms, station_id)
        await _heartbeat(stations[station_id], 0)
    try:
        await asyncio.sleep(3 * TICK_S)
        alive = sum(1 for ref in gone if ref() is not None)
        # a FULL once 20 (the minimum) had closed; the last 4 wait for the next
        assert alive <= len(gone) - pacer.minimum, f"{alive} of {len(gone)} still kept"
        assert pacer.full_collections == 1
    finally:
        await asyncio.gather(*(ws.close() for ws in stations.values()))


def _server_side(garbage: list[object], port: int) -> list[object]:
    """What of ``garbage`` is the server's: its connections' objects, its transports."""
    mine = []
    for obj in garbage:
        if isinstance(obj, weakref.ProxyTypes):
            continue  # a proxy to a collected object: touching it raises
        module = type(obj).__module__
        if module.startswith(("csms", "websockets.server", "websockets.asyncio.server")):
            mine.append(obj)
        elif isinstance(obj, asyncio.Transport):
            sockname = obj.get_extra_info("sockname")
            if isinstance(sockname, tuple) and sockname[1] == port:
                mine.append(obj)
    return mine


@pytest.mark.usefixtures("restore_gc")
async def test_closed_station_connections_leave_no_reference_cycles(csms: CsmsApp) -> None:
    """A closed connection is freed by its reference count, not left to the cyclic
    collector: while the fleet's heap is frozen, only a FULL collection (a walk of the whole
    heap, 0.4-0.6 s at 5,000 stations) could reach cycles. They used to be about 80 objects a
    connection (the connection, its protocol, headers, transport and socket)."""
    ids = await _register(csms, 20)
    warm = await _connect(csms, ids[0])
    await _heartbeat(warm, 0)
    await warm.close()
    gc.collect()
    gc.disable()
    try:
        stations = [await _connect(csms, s) for s in ids]
        for n, ws in enumerate(stations):
            await _heartbeat(ws, n)
        await asyncio.gather(*(ws.close() for ws in stations))
        for _ in range(100):
            if not csms.server.connections:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the server's side of each close runs to its end
        del stations, ws, warm
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = _server_side(gc.garbage, csms.port)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    kinds = Counter(type(obj).__qualname__ for obj in garbage)
    assert len(garbage) <= 2, f"closed connections left cycles: {kinds.most_common(8)}"


def test_a_mass_disconnect_waits_for_the_fleet_to_turn_over() -> None:
    """Closed connections leave no cycles, and a FULL walks the whole heap (the registry,
    the start-up heap) even once they are gone: a mass disconnect does not call for one, a
    fleet reconnecting four times over does."""
    pacer = GcPacer(minimum=200)
    assert pacer.decide(5000, 0.0) is GcAction.FREEZE
    for live in range(4999, -1, -1):
        pacer.closed()
        assert pacer.decide(live, 5000.0 - live) is not GcAction.FULL, live
    assert pacer.decide(5000, 9000.0) is GcAction.FREEZE
    for _ in range(14_999):
        pacer.closed()  # the fleet reconnects, one by one, three times more
    assert pacer.decide(5000, 9001.0) is GcAction.FREEZE
    pacer.closed()
    assert pacer.decide(5000, 9002.0) is GcAction.FULL
    assert pacer.peak == 5000 and pacer.closed_since_full == 0
