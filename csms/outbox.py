"""The settlement outbox: submits pending settlements to the ledger until each is committed.

The outbox rows are written in the same database transaction that closes a session, so a
settlement survives any crash; this worker submits them (again, after a restart) until the
ledger returns a receipt. Submission is idempotent: the ledger answers a settlement it has
already committed with the existing receipt, so a retry after a crash never settles twice.

Several CSMS processes may share one database: each worker claims the entries it delivers
(``CsmsStore.claim_due``) for a lease of ``lease`` seconds, renewed while it runs, so an entry
is submitted by one process at a time; when a process dies, its claims run out and another
process takes the entries over.

A settlement written by a session's close in this process skips the outbox's pass: its entry
is written already claimed by this worker (``handoff``, ``CsmsStore.handoff``), and once the
closing transaction is durable the store hands the signed settlement over in memory, to be
submitted at once, neither claimed nor read back. The entry stays in the outbox until the
commit is recorded: should the process die first, its claim runs out and a worker (another
process, or this one restarted) submits it again, which the ledger answers with the existing
receipt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from csms.model import SettlementRecord
from csms.store.sqlite import CsmsStore, Handoff
from csms.timeutil import Clock, format_timestamp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerReceipt:
    """Where a transaction was committed, and the self-contained receipt document."""

    height: int
    block_hash: str
    tx_index: int
    document: dict[str, Any]


class LedgerRejected(Exception):
    """The ledger refused the transaction for good (invalid): retrying will not help."""


class LedgerUnavailable(Exception):
    """The ledger could not be reached or did not commit in time: retry later."""


class LedgerClient(Protocol):
    """The narrow port between the CSMS and the ledger (DESIGN.md: ``submit(tx) -> receipt``).

    ``submit`` returns once a block commits the transaction (a repeat of a committed one
    returns its existing receipt); ``receipt_document`` returns the self-contained receipt
    once the block is stored, None before that.
    """

    async def submit(self, tx: bytes) -> LedgerReceipt: ...

    async def receipt_document(self, settlement_id: str) -> dict[str, Any] | None: ...


class OutboxWorker:
    """Drains the outbox with bounded concurrency and exponential backoff per entry."""

    def __init__(
        self,
        store: CsmsStore,
        client: LedgerClient,
        clock: Clock,
        *,
        concurrency: int = 64,
        poll_interval: float = 0.5,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        lease: float = 20.0,
        claimer: str | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lease = lease
        # who holds a claim: this process (host and pid for the operator, a nonce for a reused pid)
        self.claimer = claimer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._in_flight: set[str] = set()  # settlement ids being delivered by ``run``
        self._tasks: set[asyncio.Task[Any]] = set()
        self._filling: asyncio.Task[None] | None = None
        self._stopped = False  # ``run`` has ended: nothing new is started
        self.committed = 0

    def wake(self) -> None:
        """Ask for an immediate pass (a new settlement was written)."""
        self._wake.set()

    def handoff(self) -> Handoff:
        """What the store needs to hand this worker the settlements it writes (see above)."""
        return Handoff(self.claimer, self.lease, self.deliver)

    def deliver(self, record: SettlementRecord) -> None:
        """Submit a pending settlement this process wrote, claimed for this worker, at once."""
        if self._stopped or record.settlement_id in self._in_flight:
            return  # stopped: the entry stays claimed until its lease runs out, then is retried
        self._in_flight.add(record.settlement_id)
        self._spawn(self._deliver(record, read_back=False), record.settlement_id)

    async def run(self) -> None:
        """Run until cancelled; failures of one pass are logged and the loop goes on.

        Each pass starts a delivery (submit, then fetch the receipt) for every due entry
        not already on its way, without waiting for earlier ones: a settlement written
        while a block is being agreed is submitted at once, not after that block.
        """
        try:
            while True:
                try:
                    await self._start_due()
                    self._start_receipt_fill()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox pass failed; retrying")
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            self._stopped = True
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _claim_due(self) -> list[SettlementRecord]:
        """The due entries this worker now holds (new claims and its own renewed ones)."""
        now = self.clock()
        return await self.store.claim_due(
            self.claimer,
            now=format_timestamp(now),
            until=format_timestamp(now + timedelta(seconds=self.lease)),
            renew_before=format_timestamp(now + timedelta(seconds=self.lease / 2)),
            limit=1000,
        )

    async def _start_due(self) -> None:
        due = await self._claim_due()
        for record in due:
            if record.settlement_id in self._in_flight:
                continue
            self._in_flight.add(record.settlement_id)
            self._spawn(self._deliver(record), record.settlement_id)

    def _spawn(self, work: Any, settlement_id: str | None) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if settlement_id is not None:
                self._in_flight.discard(settlement_id)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("outbox delivery failed", exc_info=finished.exception())

        task.add_done_callback(done)

    async def _deliver(self, record: SettlementRecord, *, read_back: bool = True) -> None:
        """Submit ``record``; ``read_back=False`` for one handed over as written (pending and
        held by this worker since), which has nothing to read back first."""
        async with self._limit:
            if read_back:
                current = await self.store.get_settlement(record.settlement_id)
                if current is None or current.status != "pending":
                    return  # a delivery that finished after the due list was read already did it
            receipt = await self._commit(record)
        if receipt is not None and not receipt.document:  # not given with the commit
            await self._fetch_receipt(record.settlement_id)

    async def _fetch_receipt(self, settlement_id: str) -> bool:
        settled = await self.store.get_settlement(settlement_id)
        if settled is None or settled.receipt is not None:
            return True
        document = await self.client.receipt_document(settlement_id)
        if document is None:
            return False  # not stored yet: a later pass tries again
        await self.store.set_receipt(settlement_id, json.dumps(document, sort_keys=True))
        return True

    def _start_receipt_fill(self) -> None:
        """Fetch receipts still missing (e.g. after a restart), one background pass at a time."""
        if self._filling is None or self._filling.done():
            self._filling = asyncio.create_task(self._fill_receipts_in_background())
            self._tasks.add(self._filling)
            self._filling.add_done_callback(self._tasks.discard)

    async def _fill_receipts_in_background(self) -> None:
        missing = await self.store.settlements_without_receipt(limit=200)
        waiting = [m for m in missing if m not in self._in_flight]
        await asyncio.gather(*(self._fetch_receipt(m) for m in waiting))

    async def run_once(self) -> int:
        """Submit every due entry once, then fetch missing receipts; return commits made."""
        committed = await self._submit_due()
        await self._fill_receipts()
        return committed

    async def _fill_receipts(self) -> None:
        for settlement_id in await self.store.settlements_without_receipt(limit=200):
            document = await self.client.receipt_document(settlement_id)
            if document is None:
                return  # not stored yet: the next pass tries again
            await self.store.set_receipt(settlement_id, json.dumps(document, sort_keys=True))

    async def _submit_due(self) -> int:
        due = await self._claim_due()
        if not due:
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def one(record: SettlementRecord) -> bool:
            async with limit:
                return await self._submit(record)

        results = await asyncio.gather(*(one(record) for record in due))
        return sum(results)

    async def _submit(self, record: SettlementRecord) -> bool:
        return await self._commit(record) is not None

    async def _commit(self, record: SettlementRecord) -> LedgerReceipt | None:
        """Submit ``record`` and store its commit (with the receipt document when the ledger
        gave it); None when it is not committed (rejected, or to be retried)."""
        assert record.tx is not None, "only signed settlements enter the outbox"
        try:
            receipt = await self.client.submit(record.tx)
        except LedgerRejected as exc:
            log.error("settlement %s rejected by the ledger: %s", record.settlement_id, exc)
            await self.store.mark_rejected(record.settlement_id, f"ledger rejected: {exc}")
            return None
        except Exception as exc:
            attempts = await self._attempts(record.settlement_id)
            delay = min(self.retry_max, self.retry_base * (2**attempts))
            next_at = format_timestamp(self.clock() + timedelta(seconds=delay))
            log.warning("settlement %s not committed yet: %s", record.settlement_id, exc)
            await self.store.retry_later(
                record.settlement_id, str(exc) or type(exc).__name__, next_at
            )
            return None
        now = self.clock()
        await self.store.mark_committed(
            record.settlement_id,
            at=format_timestamp(now),
            block_height=receipt.height,
            block_hash=receipt.block_hash,
            tx_index=receipt.tx_index,
            receipt=json.dumps(receipt.document, sort_keys=True) if receipt.document else None,
        )
        self.committed += 1
        log.info(
            "settlement %s committed at height %d (%s:%s)",
            record.settlement_id,
            receipt.height,
            record.station_id,
            record.transaction_id,
        )
        return receipt

    async def _attempts(self, settlement_id: str) -> int:
        return await self.store.outbox_attempts(settlement_id)
