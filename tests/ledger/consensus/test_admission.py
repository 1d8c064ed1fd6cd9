"""The admission backlog: gossip and submissions checked in arrival order by one worker, a
slice at a time, so that other work (consensus messages) gets the event loop in between."""

from __future__ import annotations

import asyncio

import pytest

import ledger.codec
import ledger.validation
from ledger.apply import apply_txs
from ledger.checked import CheckedTxs
from ledger.codec import block_bytes, read_block, tx_record
from ledger.consensus.admission import Admission
from ledger.consensus.mempool import Mempool
from ledger.consensus.submissions import Waiters
from ledger.consensus.wire import TxBatch, dump, load
from ledger.errors import SignatureError
from ledger.types import Block, Tx
from tests.ledger.builders import Net, make_net, settlement_body
from tests.ledger.test_codec import HEADER  # any header: only the txs are read


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


async def test_a_block_holding_gossip_still_waiting_reads_and_checks_it_without_parsing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = make_net(4)
    gate, mempool = admission(net)
    gate.slice_s = 0.0  # one check per slice: most of the batch is still waiting below
    txs = tuple(net.csms_tx(settlement_body(f"g-{i}")) for i in range(6))
    batch = load(dump(TxBatch(txs)))  # as a peer's frame is read: each record parsed once
    assert isinstance(batch, TxBatch)
    parses = [0]
    real_decode, real_scan = ledger.validation.decode, ledger.codec.scan

    def counting_decode(data: bytes, **kw: object) -> object:
        parses[0] += 1
        return real_decode(data, **kw)

    def counting_scan(text: str, pos: int) -> object:
        parses[0] += 1
        return real_scan(text, pos)

    monkeypatch.setattr(ledger.validation, "decode", counting_decode)
    monkeypatch.setattr(ledger.codec, "scan", counting_scan)
    gate.queue_batch(batch)
    await asyncio.sleep(0)
    assert 0 < gate.backlog < len(txs)

    text = block_bytes(Block(HEADER, txs)).decode()
    block, _ = read_block(text, known=gate.checked.end_of)
    after = apply_txs(
        net.state, block.txs, time=net.state.time + 1, block_hash=bytes(32), checked=gate.checked
    )

    assert block.txs == txs and {f"g-{i}" for i in range(6)} <= set(after.settlements)
    assert parses[0] == 1  # the header's: no transaction sliced out by a parse or decoded
    # what the same block costs a reader that has none of them waiting: two parses each
    parses[0] = 0
    fresh = CheckedTxs()
    block, _ = read_block(text, known=fresh.end_of)
    apply_txs(net.state, block.txs, time=net.state.time + 1, block_hash=bytes(32), checked=fresh)
    assert parses[0] == 1 + 2 * len(txs)
    await drained(gate)
    assert len(mempool) == 6
    assert all(gate.checked.waiting(tx.data) is None for tx in txs)  # nothing left behind


async def test_what_waits_in_the_backlog_is_forgotten_when_checked_or_stopped() -> None:
    net = make_net(4)
    gate, _ = admission(net)
    gate.slice_s = 0.0
    good = net.csms_tx(settlement_body("g-ok"))
    bad = forged(net.csms_tx(settlement_body("g-bad")))
    batch = load(dump(TxBatch((bad, good))))
    assert isinstance(batch, TxBatch)
    gate.queue_batch(batch)
    assert gate.checked.waiting(bad.data) is not None
    await drained(gate)
    assert gate.checked.waiting(bad.data) is None and gate.checked.waiting(good.data) is None

    rest = load(dump(TxBatch(tuple(net.csms_tx(settlement_body(f"s-{i}")) for i in range(5)))))
    assert isinstance(rest, TxBatch)
    gate.queue_batch(rest)
    await gate.stop()
    assert all(gate.checked.waiting(tx.data) is None for tx in rest.txs)
    # and a stranger's text is never matched to it: only its exact bytes are
    assert gate.checked.end_of(good.data.decode().replace('"g-ok"', '"g-OK"'), 0) is None
