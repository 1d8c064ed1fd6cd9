"""A session's settlement is handed to the outbox as written: submitted at once, without a
pass over the outbox, only once durable, and still recovered if the process dies first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from csms.model import SettlementRecord
from csms.outbox import OutboxWorker
from csms.store import group
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp
from tests.csms.test_outbox_claims import LATER, CountingLedger
from tests.csms.test_outbox_pipeline import settle
from tests.csms.test_settling import Session, prepare

NEVER = 3600.0  # a poll interval no test waits for: only the handoff can deliver


async def outbox_claims(store: CsmsStore) -> list[tuple[str, str | None]]:
    rows = await store.fetchall("SELECT settlement_id, claimed_by FROM outbox")
    return [(row[0], row[1]) for row in rows]


async def test_a_written_settlement_is_submitted_without_an_outbox_pass(database: str) -> None:
    store, observer = await CsmsStore.open(database), await CsmsStore.open(database)
    ledger = CountingLedger()
    worker = OutboxWorker(store, ledger, lambda: LATER, poll_interval=NEVER)
    handed: list[tuple[SettlementRecord, list[tuple[str, str | None]]]] = []

    def deliver(record: SettlementRecord) -> None:
        # what another connection sees at that moment: the entry is committed, and claimed
        handed.append((record, []))
        task = asyncio.create_task(outbox_claims(observer))
        task.add_done_callback(lambda done: handed[-1][1].extend(done.result()))
        worker.deliver(record)

    session = Session()
    await prepare(store, session)
    handoff = worker.handoff()
    store.handoff = type(handoff)(handoff.claimer, handoff.lease_s, deliver)
    runner = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.05)  # the worker's first (empty) pass is over
        for n in range(3):
            await settle(store, session, f"tx-{n}", n + 1)
        async with asyncio.timeout(10):
            while worker.committed < 3 or await store.outbox_size():
                await asyncio.sleep(0.01)
        assert len(ledger.submits) == 3 and set(ledger.submits.values()) == {1}
        assert [record.status for record, _ in handed] == ["pending"] * 3
        for record, seen in handed:
            assert record.tx in ledger.submits
            assert (record.settlement_id, worker.claimer) in seen
        settled = await store.list_settlements("committed")
        assert len(settled) == 3 and all(s.receipt for s in settled)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()
        await observer.close()


async def test_a_settlement_the_process_died_holding_is_submitted_once_after_its_lease(
    database: str,
) -> None:
    crashed, survivor = await CsmsStore.open(database), await CsmsStore.open(database)
    session = Session()
    written = session.events()[-1].timestamp  # the Ended event's receive time, in these tests
    now = [written + timedelta(seconds=5)]
    hung, healthy = CountingLedger(hang=True), CountingLedger()
    dying = OutboxWorker(crashed, hung, lambda: now[0], poll_interval=NEVER, lease=20)
    other = OutboxWorker(survivor, healthy, lambda: now[0], poll_interval=NEVER, lease=20)
    await prepare(crashed, session)
    crashed.handoff = dying.handoff()
    runner = asyncio.create_task(dying.run())
    try:
        await settle(crashed, session, "tx-a", 1)
        async with asyncio.timeout(5):
            while not hung.submits:
                await asyncio.sleep(0.01)
        runner.cancel()  # died mid-submission: the entry stays, claimed, in the database
        await asyncio.gather(runner, return_exceptions=True)
        [(settlement_id, holder)] = await outbox_claims(survivor)
        assert holder == dying.claimer
        settled = await survivor.get_settlement(settlement_id)
        assert settled is not None and settled.status == "pending"
        assert await other.run_once() == 0  # held: the lease has not run out
        assert not healthy.submits
        now[0] = written + timedelta(seconds=21)  # the claim (from the write) has run out
        assert await other.run_once() == 1
        assert await other.run_once() == 0
        assert list(healthy.submits.values()) == [1]
        assert await survivor.outbox_size() == 0
        dying.deliver(settled)  # a late handoff to the stopped worker starts nothing
        await asyncio.sleep(0.05)
        assert list(hung.submits.values()) == [1]
    finally:
        await crashed.close()
        await survivor.close()


class CommitFails:
    """The writer connection, except that its COMMIT fails (a full disk, say)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if sql == "COMMIT":
            raise OSError("disk full")
        return self._conn.execute(sql, params)


async def test_a_close_whose_commit_fails_hands_nothing_over(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await CsmsStore.open(database)
    handed: list[SettlementRecord] = []
    worker = OutboxWorker(store, CountingLedger(), lambda: LATER, poll_interval=NEVER)
    session = Session()
    real_batch = group.write_batch
    try:
        await prepare(store, session)
        handoff = worker.handoff()
        store.handoff = type(handoff)(handoff.claimer, handoff.lease_s, handed.append)
        *before, ended = session.events()
        for event in before:
            await store.record_transaction_event(event, format_timestamp(event.timestamp))
        with monkeypatch.context() as patch:  # signed and written, but never durable
            patch.setattr(group, "write_batch", lambda conn, *a: real_batch(CommitFails(conn), *a))
            with pytest.raises(OSError):
                await store.record_transaction_event(ended, format_timestamp(ended.timestamp))
        assert handed == []  # nothing submitted that the database does not hold
        assert await store.outbox_size() == 0
        assert await store.list_settlements() == []
        # the station sends its Ended again: now it is written, and handed over once
        await store.record_transaction_event(ended, format_timestamp(ended.timestamp))
        assert [record.status for record in handed] == ["pending"]
        assert await outbox_claims(store) == [(handed[0].settlement_id, worker.claimer)]
    finally:
        await store.close()
