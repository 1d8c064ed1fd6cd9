"""Which transactions a validator keeps pending: checked against the ledger before they
enter the mempool, and dropped (their submitters told) once they no longer apply.

Each transaction is decoded and verified once (``ledger.checked``): at submission or when
gossip brings it (a batch per frame), not again when a block holds it.
"""

from __future__ import annotations

import asyncio
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

ADMIT_CHUNK = 32  # gossiped transactions checked between two looks at the event loop


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

    def check(self, tx: Tx) -> Mapping[str, Any]:
        """The record of ``tx`` if it applies to the ledger now (``LedgerError`` if not)."""
        return validate_tx(tx, self._state(), cache=self.checked)

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

    async def admit_all(self, batch: TxBatch) -> None:
        """Admit gossiped transactions a few at a time, letting consensus messages in
        between: checking a signature takes a while and votes should not wait for many.
        Each is parsed once: the frame reader's record is checked, not parsed again."""
        records = batch.records
        for index, tx in enumerate(batch.txs):
            if index and index % ADMIT_CHUNK == 0:
                await asyncio.sleep(0)
            self.admit(tx, None if records is None else records[index])

    def has_work(self) -> bool:
        """A pending transaction that still applies (stale ones met first are dropped)."""
        state = self._state()
        stale = []
        found = False
        for tx in self.mempool.take(len(self.mempool)):
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
