"""The same store on SQLite and PostgreSQL: migrations, group commit, rows, constraint errors."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from typing import Any

import psycopg
import pytest

from csms.errors import CsmsError, RegistryError
from csms.store.engine import LostConnection, PostgresEngine, SqliteEngine, is_postgresql_url
from csms.store.migrations import MIGRATIONS
from csms.store.sqlite import CsmsStore
from tests.postgres import PostgresServer


async def test_a_new_sqlite_file_locked_by_another_opener_is_waited_for(tmp_path: Any) -> None:
    # Another process opening the same new file holds its write lock (still in rollback
    # mode): switching to WAL is then refused at once by SQLite, without its busy handler.
    path = tmp_path / "csms.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    loop = asyncio.get_running_loop()
    released = loop.call_later(0.3, lambda: other.execute("COMMIT"))
    began = loop.time()
    try:
        engine = await SqliteEngine.open(path)
    finally:
        released.cancel()
        other.close()
    try:
        assert loop.time() - began >= 0.25  # it waited for the lock rather than failing
        row = await engine.fetchone("PRAGMA journal_mode")
        assert row[0] == "wal"
    finally:
        await engine.close()


async def test_a_file_that_is_not_a_database_is_named_and_left_closed(tmp_path: Any) -> None:
    """The error names the file, and the connection's thread is gone (it kept a command
    that had printed its error from ever exiting)."""
    path = tmp_path / "csms.sqlite"
    path.write_bytes(b"not a database, but last month's notes\n" * 100)
    threads = threading.active_count()
    with pytest.raises(CsmsError, match=f"{path}: cannot open the database"):
        await CsmsStore.open(path)
    for _ in range(100):
        if threading.active_count() == threads:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() == threads


async def test_processes_opening_a_new_database_together_migrate_it_once(database: str) -> None:
    stores = await asyncio.gather(*(CsmsStore.open(database) for _ in range(3)))
    try:
        assert [await s.schema_version() for s in stores] == [len(MIGRATIONS)] * 3
        rows = await stores[0].fetchall("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
        await stores[1].add_station("CS-1", "h", "t")  # one schema, seen by every connection
        assert [s.station_id for s in await stores[2].list_stations()] == ["CS-1"]
    finally:
        for store in stores:
            await store.close()


async def test_a_failing_unit_is_rolled_back_alone_in_its_batch(database: str) -> None:
    store = await CsmsStore.open(database)

    def insert(event: str) -> Any:
        def unit(conn: Any) -> int:
            conn.execute(
                "INSERT INTO connections_log (station_id, event, at) VALUES ('CS-1', ?, 't')",
                (event,),
            )
            if event == "bad":
                conn.execute("INSERT INTO operators (name) VALUES ('x')")  # NOT NULL broken
            return 1

        return unit

    results = await asyncio.gather(
        *(store.group.submit(insert(e)) for e in ("a", "bad", "b")), return_exceptions=True
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], store.integrity_errors)
    assert await store.connection_log("CS-1") == [("a", None), ("b", None)]
    await store.close()


async def test_rows_read_by_name_position_and_as_dict(database: str) -> None:
    store = await CsmsStore.open(database)
    await store.add_station("CS-1", "h", "t", "pem")
    row = await store.fetchone("SELECT station_id, meter_key FROM stations")
    assert row[0] == "CS-1" and row["meter_key"] == "pem"
    assert dict(row) == {"station_id": "CS-1", "meter_key": "pem"}
    assert await store.fetchone("SELECT * FROM stations WHERE station_id = 'none'") is None
    with pytest.raises(RegistryError, match="already registered"):
        await store.add_station("CS-1", "h", "t")
    with pytest.raises(RegistryError, match="already registered"):
        await store.add_stations(
            [("CS-2", "h", None, None, None), ("CS-1", "h", None, None, None)], "t"
        )
    assert [s.station_id for s in await store.list_stations()] == ["CS-1"]  # all or nothing
    await store.close()


async def on_writer(store: CsmsStore, sql: str) -> Any:
    """One statement on the store's writer connection (reads go to the read connections)."""
    engine = store._engine
    conn = engine.conn()
    return await engine.run(lambda: conn.execute(sql).fetchone())


async def terminate_writer(postgres: PostgresServer, store: CsmsStore) -> None:
    """What a DBA's pg_terminate_backend (or a server restart) does to the writer connection;
    returns once the server has let it go."""
    pid = (await on_writer(store, "SELECT pg_backend_pid()"))[0]
    with postgres.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            if admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                await asyncio.sleep(0.02)


async def test_a_terminated_postgresql_connection_is_opened_again(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database()
    store = await CsmsStore.open(url)
    engine = store._engine
    assert isinstance(engine, PostgresEngine)
    try:
        await store.add_station("CS-1", "h", "t")
        pid = (await on_writer(store, "SELECT pg_backend_pid()"))[0]
        in_flight = asyncio.create_task(on_writer(store, "SELECT pg_sleep(5)"))
        await asyncio.sleep(0.3)
        with postgres.admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):  # the call in flight fails ...
            await in_flight
        # ... and the next ones run on a new connection: reads, group commit, transactions
        assert [s.station_id for s in await store.list_stations()] == ["CS-1"]
        await store.add_station("CS-2", "h", "t")
        await store.log_connection("CS-2", "connected", "t")
        assert engine.reconnects == 1
        # a connection the server closed while it was idle is opened again before it is used
        await terminate_writer(postgres, store)
        await store.add_station("CS-3", "h", "t")
        assert engine.reconnects == 2
        await store.remove_station("CS-3")

        # Lost inside a transaction: nothing of it is written, on the old or the new connection.
        with pytest.raises(LostConnection):
            async with store.transaction() as db:
                await db.execute(
                    "INSERT INTO connections_log (station_id, event, at)"
                    " VALUES ('CS-1', 'half', 't')"
                )
                await terminate_writer(postgres, store)
                with contextlib.suppress(psycopg.OperationalError):
                    await db.execute("SELECT 1")
                await db.execute(
                    "INSERT INTO connections_log (station_id, event, at)"
                    " VALUES ('CS-1', 'other half', 't')"
                )
        assert await store.connection_log("CS-1") == []
        assert engine.reconnects == 3

        # A server that cannot be reached: calls fail at once; new tries are spaced out.
        await terminate_writer(postgres, store)
        engine._url = f"postgresql://postgres@/nothing?host={postgres.root}/no-such-dir"
        engine.retry_base = 0.2
        failures = []
        for _ in range(20):
            with pytest.raises(LostConnection) as failed:
                await on_writer(store, "SELECT 1")
            failures.append(str(failed.value))
        assert engine._failures == 1  # one try so far: the others waited for the back-off
        assert "unreachable" in failures[0]
        engine._url = url
        await asyncio.sleep(0.25)
        assert (await on_writer(store, "SELECT COUNT(*) FROM stations"))[0] == 2
        assert engine.reconnects == 4 and engine._failures == 0
    finally:
        await store.close()
        postgres.drop_database(url)


async def test_the_registry_counter_counts_registry_changes_only(database: str) -> None:
    store, other = await CsmsStore.open(database), await CsmsStore.open(database)

    async def version() -> int:
        row = await other.fetchone("SELECT version FROM registry_changes")
        return int(row[0])

    try:
        counts = [await version()]
        await store.add_station("CS-1", "h", "t")
        counts.append(await version())
        await store.touch_station("CS-1", "t2")  # heartbeats and boots are not registry changes
        await store.record_boot(
            "CS-1", vendor="v", model="m", serial_number=None, firmware=None, at="t3"
        )
        counts.append(await version())
        await store.update_station_secret("CS-1", "h2", None)
        counts.append(await version())
        await store.execute_write("DELETE FROM stations")  # by hand, outside the store's methods
        counts.append(await version())
        assert counts == [0, 1, 1, 2, 3]
        if is_postgresql_url(database):  # what the registry watch reads there: the counter
            assert (await other.registry_mark())[0] == 3
    finally:
        await store.close()
        await other.close()
