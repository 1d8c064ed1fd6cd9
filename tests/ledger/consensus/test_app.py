from __future__ import annotations

import dataclasses

from ledger.blocks import build_block
from ledger.canonical import sha256
from ledger.codec import block_id, tx_hash
from ledger.commit import make_commit
from ledger.consensus.app import LedgerApp, decode_value, encode_value
from ledger.state import State, genesis_state
from ledger.types import Commit, Tx
from tests.ledger.builders import T0, make_net, settlement_body


def app_for(state: State, pending: list[Tx]) -> LedgerApp:
    return LedgerApp(
        state,
        None,
        proposer=state.validators.validators[0].address,
        clock_ms=lambda: T0 + 5000,
        pending=lambda n: pending[:n],
        max_block_txs=10,
    )


def test_get_value_builds_a_valid_block_of_pending_txs_skipping_invalid_ones() -> None:
    net = make_net(4)
    good = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(3)]
    twice = net.csms_tx(settlement_body("s-0", transaction_id="other"))  # s-0 settles twice
    forged = Tx(good[1].data.replace(b"s-1", b"s-9"))  # signature no longer matches
    app = app_for(genesis_state(net.genesis), [good[0], twice, good[1], forged, good[2]])
    value = app.get_value(1, 0)
    block, last_commit = decode_value(value)
    assert last_commit is None and block.header.height == 1
    assert [tx_hash(t) for t in block.txs] == [tx_hash(t) for t in good]
    assert app.valid_value(1, value)
    assert app.value_id(value) == block_id(block.header)
    assert not app.valid_value(2, value)  # not the next height


def test_tampered_or_garbage_values_are_invalid() -> None:
    net = make_net(4)
    app = app_for(genesis_state(net.genesis), [net.csms_tx(settlement_body("s-1"))])
    block, _ = decode_value(app.get_value(1, 0))
    bad_root = dataclasses.replace(block.header, state_hash=bytes(32))
    assert not app.valid_value(1, encode_value(dataclasses.replace(block, header=bad_root), None))
    assert not app.valid_value(1, encode_value(dataclasses.replace(block, txs=()), None))
    assert not app.valid_value(1, b"not a block")
    assert app.value_id(b"not a block") == sha256(b"not a block")


def test_next_block_binds_any_valid_certificate_of_the_decided_tip() -> None:
    net = make_net(4)
    state0 = genesis_state(net.genesis)
    block1, state1 = build_block(
        state0,
        [],
        time=T0 + 1000,
        proposer=state0.validators.validators[1].address,
        last_commit=None,
    )
    bid = block_id(block1.header)
    keys = net.validator_keys

    def cert(signers: list[int]) -> Commit:
        return make_commit(
            chain_id=state0.chain_id, height=1, block_id=bid, keys=[keys[i] for i in signers]
        )

    mine, theirs, weak = cert([0, 1, 2]), cert([1, 2, 3]), cert([0, 1])
    app = app_for(state1, [])
    app.advance(state1, mine, tip_validators=state0.validators)
    cases: list[tuple[Commit | None, bool]] = [
        (mine, True),
        (theirs, True),
        (weak, False),
        (None, False),
    ]
    for bound, ok in cases:
        block2, _ = build_block(
            state1,
            [],
            time=T0 + 2000,
            proposer=state0.validators.validators[1].address,
            last_commit=bound,
        )
        assert app.valid_value(2, encode_value(block2, bound)) is ok
    # Once the tip is stored with its certificate, only that exact certificate may be bound.
    app.advance(state1, theirs, tip_validators=None)
    block2, _ = build_block(
        state1,
        [],
        time=T0 + 2000,
        proposer=state0.validators.validators[1].address,
        last_commit=mine,
    )
    assert not app.valid_value(2, encode_value(block2, mine))
    assert app.valid_value(2, app.get_value(2, 0))


def test_pending_transactions_that_no_longer_apply_are_dropped() -> None:
    net = make_net(4)
    good = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(2)]
    twice = net.csms_tx(settlement_body("s-0", transaction_id="other"))
    dropped: list[Tx] = []
    state = genesis_state(net.genesis)
    app = LedgerApp(
        state,
        None,
        proposer=state.validators.validators[0].address,
        clock_ms=lambda: T0 + 5000,
        pending=lambda n: [good[0], twice, good[1]],
        drop=dropped.extend,
    )
    block, _ = decode_value(app.get_value(1, 0))
    assert block.txs == tuple(good)
    assert dropped == [twice]
