"""The PostgreSQL engine's connections: reads on a pool of their own, writes pipelined.

- a read is answered while the writer connection is busy (a group-commit batch, a transaction);
- a read inside the store's own transaction sees that transaction's uncommitted rows;
- a TransactionEvent Updated costs two waits for the server (statements whose results are not
  read go out with the next one that is), and a failing unit in a batch is still rolled back
  alone, its caller given the error;
- every pooled connection is opened again after the server drops it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from csms.model import MeterSample, TransactionEventRecord
from csms.sample_limits import SampleLimit
from csms.store.engine import PostgresEngine
from csms.store.sqlite import CsmsStore
from tests.postgres import PostgresServer, database_name

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
IMPORT = "Energy.Active.Import.Register"
LIMIT = SampleLimit(max_samples=1000, reserve=10, max_events=1000)


@pytest.fixture
def url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


def updated(station: str, seq: int) -> TransactionEventRecord:
    at = T0 + timedelta(seconds=seq)
    return TransactionEventRecord(
        station_id=station, transaction_id=f"tx-{station}", seq_no=seq, event_type="Updated",
        trigger_reason="MeterValuePeriodic", offline=False, timestamp=at, evse_id=1,
        connector_id=1, id_token=None, id_token_type=None, stopped_reason=None,
        charging_state=None, raw="{}",
        samples=(MeterSample(at, IMPORT, 1000 + seq, "Wh"), MeterSample(at, "SoC", 50, "Percent")),
    )  # fmt: skip


def pg_engine(store: CsmsStore) -> PostgresEngine:
    engine = store._engine
    assert isinstance(engine, PostgresEngine)
    return engine


async def test_a_read_does_not_wait_behind_the_writer(url: str) -> None:
    store = await CsmsStore.open(url)
    try:
        await store.add_station("CS-1", "h", "t")
        writer_busy = asyncio.Event()

        async def long_unit_of_work() -> None:
            async with store.transaction() as db:
                writer_busy.set()
                await db.execute("SELECT pg_sleep(1.5)")

        busy = asyncio.create_task(long_unit_of_work())
        await writer_busy.wait()
        began = time.monotonic()
        stations = await store.list_stations()
        assert [s.station_id for s in stations] == ["CS-1"]
        assert time.monotonic() - began < 1.0  # not after the writer's 1.5 s
        assert not busy.done()
        await busy
    finally:
        await store.close()


async def test_a_read_inside_a_transaction_sees_its_uncommitted_rows(url: str) -> None:
    store = await CsmsStore.open(url)
    try:
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO stations (station_id, password_hash, created_at)"
                " VALUES ('CS-T', 'h', 't')"
            )
            assert (await store.get_station("CS-T")) is not None
            # ... while a read from elsewhere sees only what is committed
            seen_outside = await asyncio.create_task(_outside(store))
            assert seen_outside is None
        assert (await store.get_station("CS-T")) is not None
    finally:
        await store.close()


async def _outside(store: CsmsStore) -> Any:
    # a task of its own, started from a fresh context: not inside the transaction
    return await asyncio.get_running_loop().create_task(
        store.get_station("CS-T"), context=contextvars.Context()
    )


async def test_an_updated_event_costs_two_waits_for_the_server(url: str) -> None:
    store = await CsmsStore.open(url)
    engine = pg_engine(store)
    try:
        stations = [f"CS-{i}" for i in range(40)]
        for seq in range(3):  # Started-like first events, then steady Updated
            await asyncio.gather(
                *(
                    store.store_transaction_event(updated(s, seq), "t", limit=LIMIT)
                    for s in stations
                )
            )
        before = engine.waits
        results = await asyncio.gather(
            *(store.store_transaction_event(updated(s, 3), "t", limit=LIMIT) for s in stations)
        )
        assert all(r.is_new for r in results)
        waits = engine.waits - before
        # per event: its reads, then its writes (kept if the event is new); per batch: the
        # COMMIT (was 8 per event: one per statement)
        assert waits <= 2 * len(stations) + 2 * store.group.batches, waits
        # idempotent: the same events again insert nothing
        again = await asyncio.gather(
            *(store.store_transaction_event(updated(s, 3), "t", limit=LIMIT) for s in stations)
        )
        assert not any(r.is_new for r in again)
        row = await store.fetchone("SELECT COUNT(*), SUM(event_count) FROM sessions")
        assert (row[0], row[1]) == (40, 160)
        row = await store.fetchone("SELECT COUNT(*) FROM meter_samples")
        assert row[0] == 40 * 4 * 2
    finally:
        await store.close()


async def test_a_failing_pipelined_statement_fails_only_its_unit(url: str) -> None:
    store = await CsmsStore.open(url)
    try:

        def unit(station: str, twice: bool) -> Any:
            def write(conn: Any) -> str:
                insert = (
                    "INSERT INTO stations (station_id, password_hash, created_at)"
                    " VALUES (?, 'h', 't')"
                )
                conn.execute(insert, (station,))  # result never read: pipelined
                if twice:
                    conn.execute(insert, (station,))  # a duplicate key, found at the RELEASE
                conn.execute("UPDATE stations SET vendor = 'v' WHERE station_id = ?", (station,))
                return station

            return write

        outcomes = await asyncio.gather(
            store.group.submit(unit("CS-A", False)),
            store.group.submit(unit("CS-B", True)),
            store.group.submit(unit("CS-C", False)),
            return_exceptions=True,
        )
        assert outcomes[0] == "CS-A" and outcomes[2] == "CS-C"
        assert isinstance(outcomes[1], psycopg.IntegrityError)
        rows = await store.fetchall("SELECT station_id, vendor FROM stations ORDER BY station_id")
        assert [tuple(r) for r in rows] == [("CS-A", "v"), ("CS-C", "v")]
        # and the writer goes on: a read of its own result, then a plain write
        await store.add_station("CS-D", "h", "t")
        assert (await store.get_station("CS-D")) is not None
    finally:
        await store.close()


async def test_every_pooled_connection_is_opened_again(postgres: PostgresServer, url: str) -> None:
    store = await CsmsStore.open(url)
    engine = pg_engine(store)
    try:
        await store.add_station("CS-1", "h", "t")
        # several reads at once: more than one pooled connection is open
        await asyncio.gather(*(store.fetchone("SELECT pg_sleep(0.2)") for _ in range(3)))
        links = engine.connections
        assert links >= 2
        with postgres.admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database_name(url),),
            )
            for _ in range(100):  # until the server has let them go
                row = admin.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s",
                    (database_name(url),),
                ).fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.05)
        # an idle connection the server closed is found closed before it is used: nothing fails
        rows = await asyncio.gather(
            *(store.fetchone("SELECT COUNT(*) FROM stations, pg_sleep(0.1)") for _ in range(3))
        )
        assert [r[0] for r in rows] == [1, 1, 1]
        await store.add_station("CS-2", "h", "t")
        await store.log_connection("CS-2", "connected", "t")
        assert [s.station_id for s in await store.list_stations()] == ["CS-1", "CS-2"]
        assert engine.reconnects == links
    finally:
        await store.close()


def test_a_connection_past_descriptor_1024_is_judged_alive_then_dead(url: str) -> None:
    """A CSMS holding thousands of stations opens its database connections on descriptors past
    1024: they are still judged alive while the server keeps them, dead once it drops them."""
    from csms.store.engine import _alive

    held = [open(__file__, "rb") for _ in range(1100)]  # noqa: SIM115 - closed below
    try:
        raw = psycopg.connect(url, autocommit=True)
        try:
            assert raw.fileno() > 1024
            assert _alive(raw)
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (raw.info.backend_pid,))
            deadline = time.monotonic() + 5
            while _alive(raw) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not _alive(raw)
        finally:
            raw.close()
    finally:
        for file in held:
            file.close()
