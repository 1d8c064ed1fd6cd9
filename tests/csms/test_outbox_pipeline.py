"""The outbox delivers a new settlement at once, without waiting for one still in flight."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from csms.outbox import LedgerReceipt, OutboxWorker
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp
from tests.csms.test_settling import T0, Session, prepare


class GatedLedger:
    """Commits at once, except the first transaction, which waits for ``release``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.first: bytes | None = None
        self.submits: list[bytes] = []
        self.committed: dict[bytes, LedgerReceipt] = {}

    async def submit(self, tx: bytes) -> LedgerReceipt:
        self.submits.append(tx)
        if self.first is None:
            self.first = tx
        if tx == self.first:
            await self.release.wait()
        receipt = LedgerReceipt(len(self.committed) + 1, "cd" * 32, 0, {})
        return self.committed.setdefault(tx, receipt)

    async def receipt_document(self, settlement_id: str) -> dict[str, object] | None:
        return {"settlement_id": settlement_id}


async def settle(store: CsmsStore, session: Session, transaction_id: str, evse_id: int) -> None:
    """The session's events as ``transaction_id`` on ``evse_id`` (one EVSE runs one at a time)."""
    for event in session.events():
        await store.record_transaction_event(
            replace(event, transaction_id=transaction_id, evse_id=evse_id),
            format_timestamp(event.timestamp),
        )


async def status_of(store: CsmsStore, transaction_id: str) -> tuple[str, bool]:
    settled = await store.settlement_for_session("CS-SETTLE", transaction_id)
    assert settled is not None
    return settled.status, settled.receipt is not None


async def test_a_settlement_is_not_held_behind_one_in_flight(database: str) -> None:
    store = await CsmsStore.open(database)
    session = Session()
    await prepare(store, session)
    ledger = GatedLedger()
    worker = OutboxWorker(
        store, ledger, lambda: T0 + timedelta(hours=2), poll_interval=0.05, retry_base=0.0
    )
    runner = asyncio.create_task(worker.run())
    try:
        await settle(store, session, "tx-a", 1)
        worker.wake()
        async with asyncio.timeout(5):
            while not ledger.submits:
                await asyncio.sleep(0.01)
        await settle(store, session, "tx-b", 2)
        worker.wake()
        async with asyncio.timeout(5):
            while (await status_of(store, "tx-b")) != ("committed", True):
                await asyncio.sleep(0.01)
        assert await status_of(store, "tx-a") == ("pending", False)  # still in flight
        ledger.release.set()
        async with asyncio.timeout(5):
            while (await status_of(store, "tx-a")) != ("committed", True):
                await asyncio.sleep(0.01)
        assert len(ledger.committed) == 2
        assert len(ledger.submits) == 2  # each submitted once: no duplicate while in flight
        assert await store.outbox_size() == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()
