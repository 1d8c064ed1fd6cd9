"""Several CSMS processes on one database: each outbox entry is claimed, and submitted, once.

Two stores on one database are two connections, as two ``v2g csms`` processes have; their
claims run on two threads against the real server at the same time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from csms.config import load_config
from csms.errors import ConfigError
from csms.outbox import LedgerReceipt, OutboxWorker
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp
from tests.csms.test_outbox_pipeline import settle
from tests.csms.test_settling import T0, Session, prepare

LATER = T0 + timedelta(hours=2)


class CountingLedger:
    """Commits after a short wait; counts the submissions of each transaction."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang  # never answer: the submitting process "dies" before the receipt
        self.submits: Counter[bytes] = Counter()

    async def submit(self, tx: bytes) -> LedgerReceipt:
        self.submits[tx] += 1
        if self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(0.01)
        return LedgerReceipt(len(self.submits), "cd" * 32, 0, {})

    async def receipt_document(self, settlement_id: str) -> dict[str, object] | None:
        return {"settlement_id": settlement_id}


async def settled_sessions(store: CsmsStore, count: int) -> None:
    session = Session()
    await prepare(store, session)
    for n in range(count):
        await settle(store, session, f"tx-{n}", n + 1)  # one EVSE each: same hours
    assert await store.outbox_size() == count


def stamp(at: datetime, seconds: float = 0.0) -> str:
    return format_timestamp(at + timedelta(seconds=seconds))


async def test_two_claimers_never_take_the_same_entry(database: str) -> None:
    first, second = await CsmsStore.open(database), await CsmsStore.open(database)
    try:
        await settled_sessions(first, 12)
        taken: dict[str, list[str]] = {"A": [], "B": []}

        async def claim(store: CsmsStore, name: str) -> int:
            rows = await store.claim_due(
                name, now=stamp(LATER), until=stamp(LATER, 20), renew_before=stamp(LATER), limit=2
            )
            taken[name] += [r.settlement_id for r in rows]
            return len(rows)

        while sum(await asyncio.gather(claim(first, "A"), claim(second, "B"))):
            pass
        everything = taken["A"] + taken["B"]
        assert len(everything) == 12 and len(set(everything)) == 12  # each entry once
        assert taken["A"] and taken["B"]  # and both took part
        # A claim that has not run out stays with its holder.
        held = await second.claim_due(
            "B", now=stamp(LATER, 5), until=stamp(LATER, 25), renew_before=stamp(LATER, 5)
        )
        assert held == []
        # Once it has run out, another claimer takes it over.
        expired = await second.claim_due(
            "B", now=stamp(LATER, 21), until=stamp(LATER, 41), renew_before=stamp(LATER, 21)
        )
        assert sorted(r.settlement_id for r in expired) == sorted(everything)
    finally:
        await first.close()
        await second.close()


async def test_two_workers_submit_each_settlement_once(database: str) -> None:
    first, second = await CsmsStore.open(database), await CsmsStore.open(database)
    ledger = CountingLedger()
    workers = [
        OutboxWorker(store, ledger, lambda: LATER, poll_interval=0.01, retry_base=0.0)
        for store in (first, second)
    ]
    await settled_sessions(first, 12)
    runners = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        async with asyncio.timeout(20):
            # the database may show a commit before its worker has counted it
            while await first.outbox_size() or sum(w.committed for w in workers) < 12:
                await asyncio.sleep(0.02)
        assert len(ledger.submits) == 12 and set(ledger.submits.values()) == {1}
        assert sum(worker.committed for worker in workers) == 12
        assert len(await first.list_settlements("committed")) == 12
    finally:
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        await first.close()
        await second.close()


async def test_the_claims_of_a_crashed_worker_are_taken_over_once_they_run_out(
    database: str,
) -> None:
    crashed, survivor = await CsmsStore.open(database), await CsmsStore.open(database)
    now = [LATER]
    hung, healthy = CountingLedger(hang=True), CountingLedger()
    first = OutboxWorker(crashed, hung, lambda: now[0], poll_interval=0.01, lease=20)
    second = OutboxWorker(survivor, healthy, lambda: now[0], poll_interval=0.01, lease=20)
    try:
        await settled_sessions(crashed, 3)
        dying = asyncio.create_task(first.run())
        async with asyncio.timeout(10):
            while len(hung.submits) < 3:
                await asyncio.sleep(0.01)
        dying.cancel()  # died mid-submission: its claims stay in the database
        await asyncio.gather(dying, return_exceptions=True)
        assert await second.run_once() == 0  # still held: the lease has not run out
        assert not healthy.submits
        now[0] = LATER + timedelta(seconds=21)
        assert await second.run_once() == 3
        assert set(healthy.submits.values()) == {1}
        assert await survivor.outbox_size() == 0
    finally:
        await crashed.close()
        await survivor.close()


def test_the_outbox_lease_is_configured_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "csms.yaml"
    config.write_text("outbox_lease_seconds: 0\n")
    with pytest.raises(ConfigError, match="'outbox_lease_seconds'") as refused:
        load_config(config)
    assert str(config) in str(refused.value)
    config.write_text("outbox_lease_seconds: 5\n")
    assert load_config(config).outbox_lease_seconds == 5
