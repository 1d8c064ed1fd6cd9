"""When a validator asks for blocks, and how it batches gossiped transactions."""

from __future__ import annotations

import asyncio

from ledger.consensus.pacing import FetchPolicy, TxBatcher
from ledger.types import Tx


def test_one_height_behind_waits_for_consensus_before_fetching() -> None:
    policy = FetchPolicy(patience_s=0.5, timeout_s=2.0)
    assert not policy.should_fetch(10, 11, now=0.0)
    assert not policy.should_fetch(10, 11, now=0.4)
    assert policy.should_fetch(10, 11, now=0.6)
    assert not policy.should_fetch(11, 11, now=0.7)  # caught up: nothing to ask


def test_far_behind_fetches_at_once_but_one_request_at_a_time() -> None:
    policy = FetchPolicy(patience_s=0.5, timeout_s=2.0)
    assert policy.should_fetch(10, 30, now=0.0)
    assert not policy.should_fetch(10, 30, now=1.0)  # the first request is outstanding
    assert policy.should_fetch(10, 30, now=2.1)  # unanswered: ask again
    assert not policy.should_fetch(10, 30, now=2.2)
    policy.progressed()  # blocks arrived
    assert policy.should_fetch(60, 80, now=2.3)


async def test_transactions_go_out_together_after_a_short_delay_or_when_full() -> None:
    sent: list[tuple[Tx, ...]] = []
    batcher = TxBatcher(sent.append, delay_s=0.01, max_batch=3)
    txs = [Tx(bytes([i])) for i in range(5)]
    for tx in txs[:2]:
        batcher.add(tx)
    assert sent == []
    await asyncio.sleep(0.05)
    assert sent == [tuple(txs[:2])]
    for tx in txs[2:]:
        batcher.add(tx)
    assert sent[-1] == tuple(txs[2:])  # full: sent at once
    await asyncio.sleep(0.05)
    assert len(sent) == 2  # the timer then finds nothing left
