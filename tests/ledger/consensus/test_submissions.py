"""Idempotent submission: waiters answered by a block, and receipts of committed settlements."""

from __future__ import annotations

import asyncio

import pytest

from ledger.codec import block_id, tx_hash, tx_record
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.submissions import Waiters, find_committed, same_record
from ledger.store import MemoryBlockStore
from ledger.types import Tx
from tests.ledger.builders import make_net, settlement_body


def test_same_record_ignores_only_the_signature() -> None:
    net = make_net(4)
    tx = net.csms_tx(settlement_body("s-1"))
    record = tx_record(tx)
    resigned = Tx(tx.data.replace(record["sig"].encode(), b"00" * 64))
    assert resigned.data != tx.data
    assert same_record(tx, resigned)
    assert not same_record(tx, net.csms_tx(settlement_body("s-1", transaction_id="other")))


async def test_a_block_answers_its_waiters_and_rejects_a_rival_record() -> None:
    net = make_net(4)
    mine = net.csms_tx(settlement_body("s-1"))
    rival = net.csms_tx(settlement_body("s-1", transaction_id="another-session"))
    unrelated = net.csms_tx(settlement_body("s-2"))
    waiters = Waiters()
    got_mine = waiters.wait_for(mine, tx_record(mine))
    got_rival = waiters.wait_for(rival, tx_record(rival))
    got_unrelated = waiters.wait_for(unrelated, tx_record(unrelated))
    sealed = net.seal([net.csms_tx(settlement_body("s-0")), mine])
    block = sealed.block

    superseded = waiters.answer(block, sealed.state)

    assert superseded == [rival]
    receipt = got_mine.result()
    assert (receipt.height, receipt.index, receipt.block_id) == (1, 1, block_id(block.header))
    assert receipt.tx_hash == tx_hash(mine)
    with pytest.raises(SubmitRejected, match="another transaction"):
        got_rival.result()
    assert not got_unrelated.done()
    waiters.cancel_all()
    assert got_unrelated.cancelled()


async def test_find_committed_in_the_store_and_in_the_decided_tip() -> None:
    net = make_net(4)
    first = net.csms_tx(settlement_body("s-1"))
    second = net.csms_tx(settlement_body("s-2"))
    store = MemoryBlockStore()
    b1 = net.seal([net.csms_tx(settlement_body("s-0")), first])
    b2 = net.seal([second])
    await store.append(b1.block, b1.commit)  # b2 is the decided tip, not yet stored
    state = b2.state

    stored = await find_committed(first, state, b2.block, store)
    assert stored is not None
    assert (stored.height, stored.index, stored.block_id) == (1, 1, block_id(b1.block.header))
    tip = await find_committed(second, state, b2.block, store)
    assert tip is not None
    assert (tip.height, tip.index, tip.block_id) == (2, 0, block_id(b2.block.header))
    rival = net.csms_tx(settlement_body("s-1", transaction_id="another-session"))
    assert await find_committed(rival, state, b2.block, store) is None
    assert await find_committed(net.csms_tx(settlement_body("s-9")), state, None, store) is None


async def test_waiting_twice_for_one_transaction_answers_both() -> None:
    net = make_net(4)
    tx = net.csms_tx(settlement_body("s-1"))
    waiters = Waiters()
    a, b = waiters.wait_for(tx, tx_record(tx)), waiters.wait_for(tx, tx_record(tx))
    sealed = net.seal([tx])
    waiters.answer(sealed.block, sealed.state)
    assert (await asyncio.wait_for(a, 1)) == (await asyncio.wait_for(b, 1))


async def test_rejecting_dropped_transactions_fails_their_waiters() -> None:
    net = make_net(4)
    tx, other = net.csms_tx(settlement_body("s-1")), net.csms_tx(settlement_body("s-2"))
    waiters = Waiters()
    dropped, kept = waiters.wait_for(tx, tx_record(tx)), waiters.wait_for(other, tx_record(other))
    waiters.reject([tx], "dropped")
    with pytest.raises(SubmitRejected, match="dropped"):
        dropped.result()
    assert not kept.done()
    sealed = net.seal([tx])  # a rejected waiter is gone: a later block answers nobody
    assert waiters.answer(sealed.block, sealed.state) == []
    waiters.cancel_all()
