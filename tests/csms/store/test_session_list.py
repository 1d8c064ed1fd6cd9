"""Sessions listed a page at a time by the database, on SQLite and PostgreSQL: the same rows in
the same order as joining and filtering everything in Python, each once, never more than a
page read; the tallies that /metrics and the stations page read agree with the rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from csms.review import SessionFilter, build_rows, filter_rows, iter_rows, load_page
from csms.store import tallies
from csms.store.migrations import MIGRATIONS
from csms.store.session_list import MAX_PAGE, BadCursor, Cursor
from csms.store.sqlite import CsmsStore
from csms.store.tallies import CommitLatency, Tallies, latency_s
from tests.csms.store.session_rows import T0, add_sessions, at, station

FILTERS = [
    SessionFilter(),
    SessionFilter(station=station(3)),
    SessionFilter(station="nowhere"),
    SessionFilter(status="committed"),
    SessionFilter(status="flagged"),
    SessionFilter(status="active"),
    SessionFilter(status="ended"),
    SessionFilter(bad_evidence=True),
    SessionFilter(bad_evidence=False),
    SessionFilter(pseudonym="v1:ev1"),
    SessionFilter(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=90)),
    SessionFilter(station=station(2), status="pending", since=T0 + timedelta(minutes=10)),
]


async def reference(store: CsmsStore, wanted: SessionFilter) -> list[Any]:
    """What the review listed before: every session and settlement, joined and filtered here."""
    rows = build_rows(await store.list_sessions(), await store.list_settlements())
    return filter_rows(rows, wanted)


@pytest.fixture
async def store(database: str) -> Any:
    opened = await CsmsStore.open(database)
    await add_sessions(opened, 130, 7)
    yield opened
    await opened.close()


async def test_pages_give_every_row_once_in_the_order_and_filter_of_before(
    store: CsmsStore,
) -> None:
    for wanted in FILTERS:
        expected = await reference(store, wanted)
        for limit in (1, 7, 200):
            seen: list[Any] = []
            after = None
            while True:
                page = await load_page(store, wanted, limit=limit, after=after)
                assert len(page.rows) <= limit
                seen += page.rows
                if page.next is None:
                    break
                assert len(page.rows) == limit
                after = Cursor.parse(page.next.text())  # as a client sends it back
            assert seen == expected, (wanted, limit)
        assert [r async for p in iter_rows(store, wanted, page=9) for r in p] == expected
    some = await reference(store, FILTERS[0])
    assert any(r.credits for r in some) and any(r.status == "rejected" for r in some)
    assert len({r.started_at for r in some}) < len(some)  # ties were ordered alike


async def test_offsets_page_like_before(store: CsmsStore) -> None:
    expected = await reference(store, SessionFilter())
    page = await load_page(store, SessionFilter(), limit=10, offset=25)
    assert list(page.rows) == expected[25:35]


async def test_a_page_reads_no_more_rows_than_it_holds(
    store: CsmsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    largest: list[int] = []
    read = store.fetchall

    async def counting(sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        rows = await read(sql, params)
        largest.append(len(rows))
        return rows

    monkeypatch.setattr(store, "fetchall", counting)
    for wanted in FILTERS:
        largest.clear()
        page = await load_page(store, wanted, limit=5)
        assert len(page.rows) <= 5
        # the page (and one row more to know there is a next), its settlements and credits
        assert max(largest, default=0) <= 5 + 1 + 5, (wanted, largest)
    assert MAX_PAGE == 1_000
    assert len((await load_page(store, SessionFilter(), limit=10**6)).rows) <= MAX_PAGE


async def test_the_database_reads_the_newest_sessions_through_an_index(store: CsmsStore) -> None:
    from csms.store.session_list import SessionQuery, explain

    if store.dialect.name == "sqlite":  # PostgreSQL plans by its statistics: tiny tables scan
        plan = await explain(store, SessionQuery())
        assert "sessions_newest" in plan and "TEMP B-TREE" not in plan, plan
        plan = await explain(store, SessionQuery(station=station(1)), Cursor("x", "y", "z"))
        assert "sessions_station_newest" in plan and "TEMP B-TREE" not in plan, plan


def test_a_cursor_not_written_here_is_refused() -> None:
    for text in ("", "%%%", "bm90IGpzb24", Cursor("a", "b", "c").text()[:-3] + "x" * 3000):
        with pytest.raises(BadCursor):
            Cursor.parse(text)
    assert Cursor.parse(Cursor("2026", "CS:1", "tx").text()) == Cursor("2026", "CS:1", "tx")


async def counts(store: CsmsStore) -> tuple[dict[str, int], dict[str, int]]:
    rows = await store.fetchall("SELECT status, COUNT(*) FROM settlements GROUP BY status")
    per_station = await store.fetchall(
        "SELECT station_id, COUNT(*) FROM sessions GROUP BY station_id"
    )
    return {r[0]: int(r[1]) for r in rows}, {r[0]: int(r[1]) for r in per_station}


async def test_the_tallies_follow_every_write_of_settlements_and_sessions(
    store: CsmsStore,
) -> None:
    by_status, per_station = await counts(store)
    assert await store.settlement_counts() == by_status
    ids = sorted(per_station)
    assert await Tallies(store).session_counts(ids) == per_station
    await store.execute_write("UPDATE settlements SET status = 'rejected' WHERE status = 'pending'")
    await store.execute_write("DELETE FROM settlements WHERE kind = 'credit'")
    await store.execute_write("UPDATE settlements SET reason = 'x'")  # no status change
    await store.execute_write(f"DELETE FROM sessions WHERE station_id = '{station(1)}'")
    await add_sessions(store, 5, 9, first=500)
    by_status, per_station = await counts(store)
    assert await store.settlement_counts() == by_status
    tallied = await Tallies(store).session_counts([station(n) for n in range(9)])
    assert {k: v for k, v in tallied.items() if v} == per_station


async def test_the_commit_histogram_counts_each_commit_once(store: CsmsStore) -> None:
    pending = await store.list_settlements("pending")
    committed = [
        latency_s(r.created_at, r.committed_at or "")
        for r in await store.list_settlements("committed")
    ]
    assert await Tallies(store).commit_latency() == CommitLatency.of([])  # written by hand
    async with store.transaction() as db:  # what the migration does
        await db.run(lambda: tallies.rebuild(db.conn()))
    latencies = [s for s in committed if s is not None]
    assert await Tallies(store).commit_latency() == CommitLatency.of(latencies)
    for n, record in enumerate(pending):
        for _ in range(2):  # marked twice (a receipt fetched again): counted once
            await store.mark_committed(
                record.settlement_id,
                at=at(4 * 3600 + n),
                block_height=1,
                block_hash="ab",
                tx_index=n,
                receipt=None,
            )
        latencies.append(latency_s(record.created_at, at(4 * 3600 + n)) or 0.0)
    tallied = await Tallies(store).commit_latency()
    expected = CommitLatency.of(latencies)
    assert tallied.buckets == expected.buckets and tallied.count == expected.count
    assert tallied.sum_s == pytest.approx(expected.sum_s, abs=0.01)
    assert tallied.count == len(await store.list_settlements("committed"))


_NEW_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER settlements_tally_added",
        "DROP TRIGGER settlements_tally_removed",
        "DROP TRIGGER settlements_tally_changed",
        "DROP TRIGGER sessions_tally_added",
        "DROP TRIGGER sessions_tally_removed",
    ],
    "postgresql": [
        "DROP TRIGGER settlements_tally_added_removed ON settlements",
        "DROP TRIGGER settlements_tally_changed ON settlements",
        "DROP TRIGGER sessions_tally_added_removed ON sessions",
    ],
}


async def test_a_database_from_before_the_tallies_gets_them_counted(database: str) -> None:
    store = await CsmsStore.open(database)
    async with store.transaction() as db:  # back to the schema before the tallies
        for statement in _NEW_TRIGGERS[store.dialect.name]:
            await db.execute(statement)
        for table in ("settlement_tally", "station_session_tally", "commit_latency_tally"):
            await db.execute(f"DROP TABLE {table}")
        for index in (
            "sessions_newest",
            "sessions_station_newest",
            "sessions_open",
            "transaction_events_received",
        ):
            await db.execute(f"DROP INDEX {index}")
        await db.execute("DELETE FROM schema_version WHERE version = ?", (len(MIGRATIONS),))
    await add_sessions(store, 40, 3)
    await store.close()
    store = await CsmsStore.open(database)
    try:
        by_status, per_station = await counts(store)
        assert await store.settlement_counts() == by_status
        assert await Tallies(store).session_counts(sorted(per_station)) == per_station
        committed = await store.list_settlements("committed")
        assert (await Tallies(store).commit_latency()).count == len(committed) > 0
        await add_sessions(store, 3, 3, first=100)  # and the triggers keep them from now on
        assert await store.settlement_counts() == (await counts(store))[0]
    finally:
        await store.close()
