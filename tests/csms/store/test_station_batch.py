"""A page of stations read in a few queries, on SQLite and PostgreSQL: the same facts as the
reads one station at a time, each per-station list bounded, every station on one page once."""

from __future__ import annotations

from typing import Any

import pytest

from csms.evse_limits import EvseFact
from csms.store.evse_caps import EvseCapsStore
from csms.store.sqlite import CsmsStore
from csms.store.station_overview import MAX_OPEN_LISTED, SKEW_EVENTS, StationBatch
from tests.csms.store.session_rows import add_sessions, at, station

STATIONS = 9


@pytest.fixture
async def store(database: str) -> Any:
    opened = await CsmsStore.open(database)
    await add_sessions(opened, 120, STATIONS)
    busy = station(0)
    async with opened.transaction() as db:
        await db.executemany(  # one station with more open transactions than are offered
            "INSERT INTO sessions (station_id, transaction_id, state, started_at, last_seq_no,"
            " updated_at) VALUES (?, ?, 'active', ?, 0, ?)",
            [(busy, f"open-{n}", at(10_000 + n), at(10_000 + n)) for n in range(30)],
        )
        await db.executemany(  # live events: station n's clock runs n seconds ahead
            "INSERT INTO transaction_events (station_id, transaction_id, seq_no, event_type,"
            " trigger_reason, offline, timestamp, received_at, raw)"
            " VALUES (?, 'tx', ?, 'Updated', 'x', ?, ?, ?, '{}')",
            [
                (station(n), seq, int(seq % 4 == 0), at(seq * 10 + n + seq % 3), at(seq * 10))
                for n in range(STATIONS)
                for seq in range(SKEW_EVENTS + 15)
            ],
        )
    for n in range(STATIONS):
        sid = station(n)
        if n % 3:
            await opened.log_connection(
                sid, "connected", at(n), "ocpp2.0.1" if n % 2 else "ocpp1.6"
            )
        if n % 3 == 2:
            await opened.log_connection(sid, "disconnected", at(n + 1))
        for evse in range(n % 3):
            await opened.set_connector_status(sid, evse + 1, 1, "Available", at(n))
        if n % 2:
            await opened.set_station_caps(
                sid, max_charge_w=11_000, discharge="2.0.1-negative-limit"
            )
            await EvseCapsStore(opened).record(
                sid, [EvseFact(1, max_power_w=7_400, source="device model")], at(n)
            )
    yield opened
    await opened.close()


async def test_a_page_of_stations_has_the_facts_read_one_station_at_a_time(
    store: CsmsStore,
) -> None:
    batch = StationBatch(store)
    ids = [s.station_id for s in await store.list_stations()]
    facts = await batch.facts(ids)
    assert sorted(facts) == ids
    for sid in ids:
        known = facts[sid]
        assert known.connectors == await store.connector_statuses(sid)
        assert known.caps == await store.get_station_caps(sid)
        assert known.evse_facts == await EvseCapsStore(store).facts(sid)
        assert known.clock_skew_s == await store.clock_skew(sid, SKEW_EVENTS)
        log = await store.connection_log(sid)
        assert known.last_event == (log[-1][0] if log else None)
        connected = [detail for event, detail in log if event == "connected"]
        assert known.last_protocol == (connected[-1] if connected else None)
        row = await store.fetchone("SELECT COUNT(*) FROM sessions WHERE station_id = ?", (sid,))
        assert known.session_count == int(row[0])
        rows = await store.fetchall(
            "SELECT transaction_id FROM sessions WHERE station_id = ? AND state = 'active'"
            " ORDER BY started_at",
            (sid,),
        )
        listed = [t.transaction_id for t in known.open_transactions]
        assert listed == [r[0] for r in rows][:MAX_OPEN_LISTED]
    assert facts[station(1)].clock_skew_s is not None
    assert len(facts[station(0)].open_transactions) == MAX_OPEN_LISTED  # of 30 and more


async def test_pages_of_stations_give_each_once(store: CsmsStore) -> None:
    batch = StationBatch(store)
    seen: list[str] = []
    after = None
    while True:
        page = await batch.page(after=after, limit=4)
        assert len(page) <= 4
        if not page:
            break
        seen += [s.station_id for s in page]
        after = page[-1].station_id
    assert seen == [s.station_id for s in await store.list_stations()]
    assert await batch.facts([]) == {}
