"""Clients waiting for their transactions, and the receipts of settlements already committed.

Submission is idempotent so that a CSMS retrying after a crash gets its receipt: a
settlement committed before answers with where it was committed (``find_committed``), one
still pending is waited for (``Waiters``). A committed block answers every waiter of its
transactions, and every waiter whose settlement id it settled with another transaction:
the same signed record (signatures aside) gets that receipt, a different one is rejected.
A submitter connection submits only what the key it proved signed (``check_submitter``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from ledger.codec import block_id, tx_hash, tx_record
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.wire import Receipt
from ledger.errors import LedgerError
from ledger.state import State
from ledger.store import BlockStore, settlement_ids
from ledger.tx import CREDIT, SETTLEMENT
from ledger.types import Block, Tx


def same_record(a: Tx, b: Tx) -> bool:
    """The same signed record, signatures aside (a signer may sign one record twice)."""
    if a.data == b.data:
        return True
    try:
        ra, rb = tx_record(a), tx_record(b)
    except LedgerError:
        return False
    ra.pop("sig", None)
    rb.pop("sig", None)
    return ra == rb


async def find_committed(
    tx: Tx, state: State, tip: Block | None, store: BlockStore
) -> Receipt | None:
    """The receipt of the committed settlement that ``tx`` repeats, if it repeats one.

    ``state`` is the state after the decided ``tip`` (or after the store's last block when
    there is no tip); the settlement is looked up in the tip or in the store.
    """
    settlement_id = tx_record(tx).get("settlement_id")
    if not isinstance(settlement_id, str):
        return None
    ref = state.settlements.get(settlement_id)
    if ref is None:
        return None
    index: int | None
    if tip is not None and tip.header.height == ref.height:
        block = tip
        index = next((i for sid, i in settlement_ids(tip) if sid == settlement_id), None)
    else:
        stored = await store.get(ref.height)
        found = await store.find_settlement(settlement_id)
        if stored is None or found is None:
            return None
        block, index = stored.block, found[1]
    if index is None or index >= len(block.txs) or not same_record(block.txs[index], tx):
        return None
    return Receipt(ref.height, index, block_id(block.header), tx_hash(tx))


class Waiters:
    """Futures of submitted transactions by their bytes; settlements also by settlement id.

    Keyed by the bytes, not their SHA-256: each block's every transaction is looked up here,
    and the hash is taken only for a receipt that someone waits for."""

    def __init__(self) -> None:
        self._futures: dict[bytes, list[asyncio.Future[Receipt]]] = {}
        self._settlements: dict[bytes, tuple[str, Tx]] = {}

    def wait_for(self, tx: Tx, record: Mapping[str, Any]) -> asyncio.Future[Receipt]:
        """A future answered when a block commits ``tx`` (or settles its id otherwise)."""
        key = tx.data
        fut: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(key, []).append(fut)
        if record.get("type") in (SETTLEMENT, CREDIT):
            self._settlements[key] = (record["settlement_id"], tx)
        return fut

    def answer(self, block: Block, state: State) -> list[Tx]:
        """Answer the waiters ``block`` concerns (``state`` is the state after it); return
        the transactions it superseded."""
        bid = block_id(block.header)
        height = block.header.height
        for index, tx in enumerate(block.txs):
            key = tx.data
            self._settlements.pop(key, None)
            futures = self._futures.pop(key, None)
            if futures:
                _settle(futures, Receipt(height, index, bid, tx_hash(tx)))
        if not self._settlements:
            return []
        settled: dict[str, int] | None = None
        superseded = []
        for key, (settlement_id, tx) in list(self._settlements.items()):
            ref = state.settlements.get(settlement_id)
            if ref is None or ref.height != height:
                continue
            if settled is None:
                settled = dict(settlement_ids(block))
            at = settled.get(settlement_id)
            if at is None:
                continue
            del self._settlements[key]
            superseded.append(tx)
            outcome: Receipt | SubmitRejected
            if same_record(block.txs[at], tx):
                outcome = Receipt(height, at, bid, tx_hash(tx))
            else:
                outcome = SubmitRejected(
                    f"DuplicateSettlementError: settlement_id {settlement_id} already settled "
                    f"at height {height} by another transaction"
                )
            _settle(self._futures.pop(key, []), outcome)
        return superseded

    def reject(self, txs: Iterable[Tx], reason: str) -> None:
        """Fail the waiters of ``txs`` (dropped: they no longer apply to the ledger)."""
        for tx in txs:
            key = tx.data
            self._settlements.pop(key, None)
            _settle(self._futures.pop(key, []), SubmitRejected(reason))

    def cancel_all(self) -> None:
        for futures in self._futures.values():
            for fut in futures:
                fut.cancel()
        self._futures.clear()
        self._settlements.clear()


def _settle(futures: list[asyncio.Future[Receipt]], outcome: Receipt | SubmitRejected) -> None:
    for fut in futures:
        if fut.done():
            continue
        if isinstance(outcome, Receipt):
            fut.set_result(outcome)
        else:
            fut.set_exception(outcome)


def check_submitter(record: Mapping[str, Any], submitter: str | None) -> None:
    """A transaction from a submitter connection must be signed by the key it proved, so
    what a connection submits is attributed to that key (``SubmitRejected`` if not)."""
    if submitter is not None and record.get("signer") != submitter:
        raise SubmitRejected(
            f"signed by {str(record.get('signer'))!r:.80}, not by this connection's key "
            f"{submitter}: a connection submits only transactions signed by the key it proved"
        )
