"""Which transactions a validator keeps pending: checked against the ledger before they
enter the mempool, and dropped (their submitters told) once they no longer apply.

Each transaction is decoded and verified once (``ledger.checked``): at submission or when
gossip brings it (a batch per frame), not again when a block holds it.

Those checks are the bulk of a validator's work, so they wait in one backlog, gossiped
batches and submissions alike, in arrival order, and one worker runs them a slice at a time
(``ADMIT_SLICE_S``), giving the event loop a turn between slices. A vote or a proposal then
waits at most a slice per hop, however many transactions are waiting: checked by one task per
batch or per submission instead, every turn of the loop ran a chunk of each, and a burst of a
few thousand transactions held each consensus hop for a large part of a second (a height took
seconds). The backlog is bounded: gossip past ``MAX_BACKLOG`` is dropped and counted (its
transactions are checked when a proposal holds them); a submission always gets in (their
number is bounded per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ledger.checked import CheckedTxs
from ledger.consensus.mempool import Mempool
from ledger.consensus.submissions import Waiters
from ledger.consensus.wire import TxBatch
from ledger.errors import LedgerError
from ledger.state import State
from ledger.types import Tx
from ledger.validation import validate_tx

log = logging.getLogger(__name__)

ADMIT_SLICE_S = 0.004  # the longest the worker checks before the event loop gets a turn
MAX_BACKLOG = 100_000  # gossiped transactions waiting to be checked; more are dropped

# a transaction waiting to be checked, with its record if a frame reader parsed it: gossip,
# or a submission (the future its submitter waits on for the record, or why not)
_Item = tuple[Tx, "dict[str, Any] | None", "asyncio.Future[Mapping[str, Any]] | None"]


class Admission:
    """The mempool's gate: ``state()`` is the ledger state after the last block and
    ``work_arrived()`` is told when a transaction enters the pool."""

    def __init__(
        self,
        mempool: Mempool,
        checked: CheckedTxs,
        waiters: Waiters,
        *,
        state: Callable[[], State],
        work_arrived: Callable[[], None],
    ) -> None:
        self.mempool = mempool
        self.checked = checked
        self._waiters = waiters
        self._state = state
        self._work_arrived = work_arrived
        self._backlog: deque[_Item] = deque()
        self._worker: asyncio.Task[None] | None = None
        self.slice_s = ADMIT_SLICE_S
        self.max_backlog = MAX_BACKLOG
        self.shed = 0  # gossiped transactions dropped because the backlog was full

    @property
    def backlog(self) -> int:
        """Transactions waiting to be checked."""
        return len(self._backlog)

    def check(self, tx: Tx, parsed: dict[str, Any] | None = None) -> Mapping[str, Any]:
        """The record of ``tx`` if it applies to the ledger now (``LedgerError`` if not);
        ``parsed``: its record as a frame reader parsed it."""
        return validate_tx(tx, self._state(), cache=self.checked, parsed=parsed)

    def admit(self, tx: Tx, parsed: dict[str, Any] | None = None) -> bool:
        """Keep a gossiped (or own) transaction pending if it applies; True if it is new."""
        try:
            validate_tx(tx, self._state(), cache=self.checked, parsed=parsed)
        except LedgerError:
            return False
        return self.add(tx)

    def add(self, tx: Tx) -> bool:
        """Keep a checked transaction pending; True if it was not already."""
        if not self.mempool.add(tx):
            return False
        self._work_arrived()
        return True

    def queue_batch(self, batch: TxBatch) -> None:
        """Gossiped transactions to admit, behind those already waiting; each is parsed
        once (the frame reader's record is checked, not parsed again)."""
        room = self.max_backlog - len(self._backlog)
        txs = batch.txs
        if len(txs) > room:
            self.shed += len(txs) - max(room, 0)
            txs = txs[: max(room, 0)]
        if batch.records is None:
            self._backlog.extend(zip(txs, itertools.repeat(None), itertools.repeat(None)))
        else:
            records = batch.records  # zip stops at the transactions kept
            self._backlog.extend(zip(txs, records, itertools.repeat(None)))
            wait = self.checked.wait
            for tx, record in zip(txs, records, strict=False):
                wait(tx.data, record)  # a proposal holding it meanwhile need not parse it
        self._run()

    async def check_queued(self, tx: Tx, parsed: dict[str, Any] | None = None) -> Mapping[str, Any]:
        """``check`` run by the worker in its turn: the record of a submitted ``tx`` if it
        applies to the ledger then (``LedgerError`` if not)."""
        fut: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._backlog.append((tx, parsed, fut))
        self._run()
        try:
            return await fut
        finally:
            del fut  # a rejection's traceback holds this frame: no cycle through the future

    def _run(self) -> None:
        if self._backlog and (self._worker is None or self._worker.done()):
            self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        backlog = self._backlog
        while backlog:
            until = time.perf_counter() + self.slice_s
            while backlog:
                tx, parsed, fut = backlog.popleft()
                try:
                    if fut is None:
                        if parsed is not None:
                            self.checked.done_waiting(tx.data)  # checked now, from ``parsed``
                        self.admit(tx, parsed)
                    elif not fut.done():  # done: its submitter went away
                        fut.set_result(self.check(tx, parsed))
                except Exception as exc:  # a rejection (LedgerError) or a bug: never stop
                    if fut is not None and not fut.done():
                        fut.set_exception(exc)
                    elif not isinstance(exc, LedgerError):
                        log.exception("admitting a transaction failed")
                fut = None  # the exception it may hold has this frame in its traceback
                if time.perf_counter() >= until:
                    break
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """Stop checking: waiting submissions are cancelled, waiting gossip forgotten."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for _, _, fut in self._backlog:
            if fut is not None:
                fut.cancel()
        self._backlog.clear()
        self.checked.clear_waiting()

    def has_work(self) -> bool:
        """A pending transaction that still applies (stale ones met first are dropped)."""
        state = self._state()
        stale = []
        found = False
        for tx in self.mempool.oldest():  # walked only up to the first that applies
            try:
                validate_tx(tx, state, cache=self.checked)
            except LedgerError:
                stale.append(tx)
                continue
            found = True
            break
        if stale:
            self.drop(stale)
        return found

    def drop(self, txs: list[Tx]) -> None:
        """Pending transactions that no longer apply to the ledger: out of the mempool, and
        their submitters told (a proposer finds them when it builds a block)."""
        self.mempool.remove(txs)
        self._waiters.reject(txs, "no longer valid against the ledger: dropped")
