from __future__ import annotations

import dataclasses

import pytest

from ledger.blocks import verify_block
from ledger.codec import block_id
from ledger.errors import BlockError, CommitError, PowError
from ledger.pow import leading_zero_bits
from ledger.state import State, genesis_state
from ledger.types import Block, Header, Tx
from tests.ledger.builders import Net, make_net, settlement_body


def verify_all(net: Net) -> State:
    state = genesis_state(net.genesis)
    last = None
    for sealed in net.chain:
        state = verify_block(state, sealed.block, sealed.commit, last_commit=last)
        last = sealed.commit
    return state


def three_blocks() -> Net:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1")), net.csms_tx(settlement_body("s-2"))])
    net.seal([])
    net.seal([net.csms_tx(settlement_body("s-3"))])
    return net


def test_sealed_chain_verifies_and_links() -> None:
    net = three_blocks()
    state = verify_all(net)
    assert state.height == 3
    assert set(state.settlements) == {"s-1", "s-2", "s-3"}
    b1, b2 = net.chain[0].block, net.chain[1].block
    assert b2.header.prev_hash == block_id(b1.header)
    assert state.last_block_id == block_id(net.chain[2].block.header)


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": "x"},
        {"height": 3},
        {"time": 0},
        {"prev_hash": bytes(32)},
        {"tx_root": bytes(32)},
        {"validators_hash": bytes(32)},
        {"last_commit_hash": bytes(32)},
        {"state_hash": bytes(32)},
        {"proposer": "nobody"},
        {"nonce": 7},
    ],
)
def test_any_header_change_fails_at_that_height(change: dict[str, object]) -> None:
    net = three_blocks()
    sealed = net.chain[1]
    header: Header = dataclasses.replace(sealed.block.header, **change)  # type: ignore[arg-type]
    net.chain[1] = dataclasses.replace(sealed, block=Block(header, sealed.block.txs))
    with pytest.raises(BlockError) as info:
        verify_all(net)
    assert info.value.height == 2


def test_changed_transaction_fails_at_its_height() -> None:
    net = three_blocks()
    sealed = net.chain[0]
    data = sealed.block.txs[1].data.replace(b'"s-2"', b'"s-9"')
    block = Block(sealed.block.header, (sealed.block.txs[0], Tx(data)))
    net.chain[0] = dataclasses.replace(sealed, block=block)
    with pytest.raises(BlockError, match="tx_root") as info:
        verify_all(net)
    assert info.value.height == 1


def test_missing_or_foreign_certificate_fails() -> None:
    net = three_blocks()
    net.chain[2] = dataclasses.replace(net.chain[2], commit=None)
    with pytest.raises(CommitError) as info:
        verify_all(net)
    assert info.value.height == 3
    net = three_blocks()
    net.chain[1] = dataclasses.replace(net.chain[1], commit=net.chain[0].commit)
    with pytest.raises(CommitError):
        verify_all(net)


def test_pow_chain_seals_and_verifies() -> None:
    net = make_net(sealing="pow", pow_bits=8)
    net.seal([net.csms_tx(settlement_body("s-1"))])
    net.seal([])
    state = verify_all(net)
    assert state.height == 2
    for sealed in net.chain:
        assert sealed.commit is None
        assert leading_zero_bits(block_id(sealed.block.header)) >= 8
    # a header whose nonce no longer meets the target is refused
    sealed = net.chain[1]
    for nonce in range(sealed.block.header.nonce + 1, sealed.block.header.nonce + 1000):
        header = dataclasses.replace(sealed.block.header, nonce=nonce)
        if leading_zero_bits(block_id(header)) < 8:
            break
    net.chain[1] = dataclasses.replace(sealed, block=Block(header, sealed.block.txs))
    with pytest.raises(PowError) as info:
        verify_all(net)
    assert info.value.height == 2
