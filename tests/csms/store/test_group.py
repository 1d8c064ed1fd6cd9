"""Group commit: order, isolation of a failing unit, all-or-nothing commit, idempotency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from csms.model import TransactionEventRecord
from csms.store.group import WAKE_SLICE, GroupCommit, Outcome
from csms.store.sqlite import CsmsStore
from tests.csms.records import numbered_event


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, station TEXT, seq INTEGER)")
    return conn


def group_over(conn: sqlite3.Connection) -> GroupCommit:
    async def run(fn: Callable[[], list[Outcome]]) -> list[Outcome]:
        return await asyncio.to_thread(fn)

    return GroupCommit(lambda: conn, run, asyncio.Lock())


def insert(station: str, seq: int) -> Callable[[sqlite3.Connection], int]:
    def unit(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO rows (station, seq) VALUES (?, ?)", (station, seq))
        return seq

    return unit


async def test_units_commit_in_submission_order_in_few_batches(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "g.sqlite")
    group = group_over(conn)
    order = [(f"CS-{s}", n) for n in range(5) for s in range(40)]
    values = await asyncio.gather(*(group.submit(insert(s, n)) for s, n in order))
    assert values == [n for _, n in order]
    rows = conn.execute("SELECT station, seq FROM rows ORDER BY id").fetchall()
    assert rows == order
    assert 1 <= group.batches < len(order)  # concurrent units shared transactions
    conn.close()


async def test_a_failing_unit_is_rolled_back_alone(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "g.sqlite")
    group = group_over(conn)

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO rows (station, seq) VALUES ('bad', 1)")
        raise ValueError("broken unit")

    results = await asyncio.gather(
        group.submit(insert("a", 1)),
        group.submit(half_then_fail),
        group.submit(insert("b", 2)),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], ValueError)
    rows = conn.execute("SELECT station FROM rows ORDER BY id").fetchall()
    assert rows == [("a",), ("b",)]
    conn.close()


async def test_a_failed_batch_fails_every_caller_and_the_next_batch_works(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "g.sqlite")
    calls = 0

    async def run(fn: Callable[[], list[Outcome]]) -> list[Outcome]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return await asyncio.to_thread(fn)

    group = GroupCommit(lambda: conn, run, asyncio.Lock())
    first = await asyncio.gather(
        group.submit(insert("a", 1)), group.submit(insert("b", 1)), return_exceptions=True
    )
    assert all(isinstance(r, sqlite3.OperationalError) for r in first)
    assert await group.submit(insert("c", 1)) == 1
    assert conn.execute("SELECT station FROM rows").fetchall() == [("c",)]
    conn.close()


async def test_a_caller_that_goes_away_does_not_lose_the_others(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "g.sqlite")
    group = group_over(conn)
    gone = asyncio.create_task(group.submit(insert("gone", 1)))
    kept = asyncio.create_task(group.submit(insert("kept", 1)))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await gone
    stations = {r[0] for r in conn.execute("SELECT station FROM rows").fetchall()}
    assert "kept" in stations
    conn.close()


def event(station: str, seq_no: int, kind: str = "Updated") -> TransactionEventRecord:
    return numbered_event(station, seq_no, kind, wh_per_seq=100)


async def test_store_batches_keep_idempotency_and_per_station_order(database: str) -> None:
    store = await CsmsStore.open(database)
    stations = [f"CS-{i}" for i in range(30)]
    submitted: list[Any] = []
    for n, kind in enumerate(["Started", "Updated", "Updated", "Ended"]):
        for s in stations:
            submitted.append(store.record_transaction_event(event(s, n, kind), "t"))
            submitted.append(store.record_transaction_event(event(s, n, kind), "t"))  # resend
    results = await asyncio.gather(*submitted)
    assert results == [True, False] * (len(submitted) // 2)
    assert store.group.batches < len(submitted)
    sessions = await store.list_sessions()
    assert {(s.state, s.event_count, s.last_seq_no, s.import_wh) for s in sessions} == {
        ("ended", 4, 3, 300)
    }
    for s in stations[:3]:
        rows = await store.fetchall(
            "SELECT seq_no FROM meter_samples WHERE station_id = ? ORDER BY id", (s,)
        )
        stored = list(dict.fromkeys(r["seq_no"] for r in rows))
        assert stored == [0, 1, 2, 3]  # stored in the order sent
    await store.close()


async def test_a_big_batch_wakes_its_callers_a_slice_per_loop_pass(tmp_path: Path) -> None:
    """1,000 callers answered by one commit must not all resume in one pass of the event
    loop: that pass would hold every other station (and timers) for the lot."""
    conn = open_db(tmp_path / "g.sqlite")
    group = group_over(conn)
    passes = 0
    ticking = True

    def tick() -> None:  # counts passes of the loop: one call_soon chain, one step a pass
        nonlocal passes
        passes += 1
        if ticking:
            asyncio.get_running_loop().call_soon(tick)

    woke_in: list[int] = []

    async def caller(n: int) -> None:
        await group.submit(insert("CS", n))
        woke_in.append(passes)

    asyncio.get_running_loop().call_soon(tick)
    await asyncio.gather(*(caller(n) for n in range(1000)))
    ticking = False
    assert len(woke_in) == 1000
    per_pass = max(woke_in.count(p) for p in set(woke_in))
    assert per_pass <= WAKE_SLICE
    assert conn.execute("SELECT count(*) FROM rows").fetchone() == (1000,)
    conn.close()
