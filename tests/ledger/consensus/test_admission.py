"""The admission backlog: gossip and submissions checked in arrival order by one worker, a
slice at a time, so that other work (consensus messages) gets the event loop in between."""

from __future__ import annotations

import asyncio

import pytest

from ledger.checked import CheckedTxs
from ledger.codec import tx_record
from ledger.consensus.admission import Admission
from ledger.consensus.mempool import Mempool
from ledger.consensus.submissions import Waiters
from ledger.consensus.wire import TxBatch
from ledger.errors import SignatureError
from ledger.types import Tx
from tests.ledger.builders import Net, make_net, settlement_body


def admission(net: Net) -> tuple[Admission, Mempool]:
    mempool = Mempool()
    gate = Admission(
        mempool, CheckedTxs(), Waiters(), state=lambda: net.state, work_arrived=lambda: None
    )
    return gate, mempool


def forged(tx: Tx) -> Tx:
    return Tx(tx.data.replace(tx_record(tx)["sig"].encode(), b"00" * 64))


async def drained(gate: Admission) -> None:
    for _ in range(1000):
        if gate.backlog == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError("the backlog never drained")


async def test_other_work_runs_between_slices_of_a_long_backlog() -> None:
    net = make_net(4)
    gate, mempool = admission(net)
    gate.slice_s = 0.0  # one check per slice
    txs = tuple(net.csms_tx(settlement_body(f"s-{i}")) for i in range(6))
    seen: list[int] = []

    gate.queue_batch(TxBatch(txs))
    asyncio.get_running_loop().call_soon(lambda: seen.append(gate.backlog))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert seen and seen[0] > 0  # a callback (a vote, say) ran with checks still waiting
    await drained(gate)
    assert len(mempool) == 6 and all(tx in mempool for tx in txs)


async def test_a_submission_is_checked_in_turn_and_gets_its_record_or_its_rejection() -> None:
    net = make_net(4)
    gate, mempool = admission(net)
    gossiped = tuple(net.csms_tx(settlement_body(f"g-{i}")) for i in range(3))
    mine = net.csms_tx(settlement_body("s-mine"))

    gate.queue_batch(TxBatch(gossiped))
    record = await gate.check_queued(mine)

    assert record["settlement_id"] == "s-mine"
    assert all(tx in mempool for tx in gossiped)  # the gossip before it was admitted first
    assert mine not in mempool  # checked, not admitted: the submitter adds it
    with pytest.raises(SignatureError):
        await gate.check_queued(forged(net.csms_tx(settlement_body("s-bad"))))


async def test_gossip_past_the_bound_is_dropped_and_counted_but_a_submission_gets_in() -> None:
    net = make_net(4)
    gate, mempool = admission(net)
    gate.max_backlog = 3
    txs = tuple(net.csms_tx(settlement_body(f"s-{i}")) for i in range(5))

    gate.queue_batch(TxBatch(txs))
    assert gate.backlog == 3 and gate.shed == 2
    gate.queue_batch(TxBatch(txs[:1]))
    assert gate.shed == 3
    assert (await gate.check_queued(net.csms_tx(settlement_body("s-mine"))))["type"]

    assert [tx in mempool for tx in txs] == [True, True, True, False, False]


async def test_a_bad_gossiped_transaction_is_skipped_and_the_rest_admitted() -> None:
    net = make_net(4)
    gate, mempool = admission(net)
    good = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(2)]
    bad = forged(net.csms_tx(settlement_body("s-bad")))

    gate.queue_batch(TxBatch((good[0], bad, good[1], Tx(b"not json"))))
    await drained(gate)

    assert good[0] in mempool and good[1] in mempool and len(mempool) == 2


async def test_stop_cancels_the_submissions_still_waiting() -> None:
    net = make_net(4)
    gate, _ = admission(net)
    gate.slice_s = 0.0
    gate.queue_batch(TxBatch(tuple(net.csms_tx(settlement_body(f"g-{i}")) for i in range(20))))
    waiting = asyncio.ensure_future(gate.check_queued(net.csms_tx(settlement_body("s-mine"))))
    await asyncio.sleep(0)

    await gate.stop()

    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.backlog == 0
