"""Pruning a station's rows past its cap, on SQLite and PostgreSQL: the counts it keeps, a
database migrated with rows already in it, and rows deleted behind its back."""

from __future__ import annotations

from csms.store.migrations import MIGRATIONS
from csms.store.retention import SECURITY_EVENTS, count
from csms.store.sqlite import CsmsStore

T = "2026-11-25T10:00:00Z"


async def held(store: CsmsStore, station_id: str) -> list[str]:
    rows = await store.fetchall(
        "SELECT type FROM security_events WHERE station_id = ? ORDER BY id", (station_id,)
    )
    return [r[0] for r in rows]


async def test_each_insert_keeps_the_station_s_newest_rows(database: str) -> None:
    store = await CsmsStore.open(database)
    try:
        removed = [
            await store.record_security_event("CS-1", f"e{n}", T, None, keep=3) for n in range(6)
        ]
        await store.record_security_event("CS-2", "other", T, None, keep=3)
        assert removed == [0, 0, 0, 1, 1, 1]
        assert await held(store, "CS-1") == ["e3", "e4", "e5"]
        assert await held(store, "CS-2") == ["other"]
        # a lower cap takes effect with the next row
        assert await store.record_security_event("CS-1", "e6", T, None, keep=1) == 3
        assert await held(store, "CS-1") == ["e6"]
    finally:
        await store.close()


async def test_rows_deleted_by_hand_are_counted_again(database: str) -> None:
    store = await CsmsStore.open(database)
    try:
        for n in range(3):
            await store.record_security_event("CS-1", f"e{n}", T, None, keep=3)
        await store.execute_write("DELETE FROM security_events")  # cleared behind its back
        for n in range(3, 6):
            await store.record_security_event("CS-1", f"e{n}", T, None, keep=3)
        assert await held(store, "CS-1") == ["e3", "e4", "e5"]
        await store.record_security_event("CS-1", "e6", T, None, keep=3)
        assert await held(store, "CS-1") == ["e4", "e5", "e6"]
    finally:
        await store.close()


async def test_a_count_left_too_high_is_taken_again_within_keep_prunes(database: str) -> None:
    store = await CsmsStore.open(database)
    try:
        for n in range(4):
            await store.record_security_event("CS-1", f"e{n}", T, None, keep=4)
        await store.execute_write("DELETE FROM security_events WHERE type IN ('e0', 'e1')")
        for n in range(4, 10):
            await store.record_security_event("CS-1", f"e{n}", T, None, keep=4)
        assert len(await held(store, "CS-1")) == 4  # never more than the cap; full again
        assert (await held(store, "CS-1"))[-1] == "e9"
    finally:
        await store.close()


async def test_a_database_with_rows_already_is_counted_when_migrated(database: str) -> None:
    store = await CsmsStore.open(database)
    try:  # rows from before the counts: the migration's own statements count them
        for n in range(5):
            await store.execute_write(
                "INSERT INTO security_events (station_id, type, timestamp) VALUES ('CS-1', ?, ?)",
                (f"old{n}", T),
            )
        await store.execute_write("DELETE FROM station_retention")
        script = next(m for m in MIGRATIONS if "CREATE TABLE station_retention" in m)
        for statement in script.split(";"):
            if statement.strip().startswith("INSERT INTO station_retention"):
                await store.execute_write(statement)
        assert await store.record_security_event("CS-1", "new", T, None, keep=4) == 2
        assert await held(store, "CS-1") == ["old2", "old3", "old4", "new"]
        conn = store._engine.conn()
        assert await store._engine.run(lambda: count(conn, SECURITY_EVENTS, "CS-1")) == 4
    finally:
        await store.close()
