"""Consensus values and tip files are spliced from transaction bytes: same bytes as the
canonical encoding, and nothing but that form is read back."""

from __future__ import annotations

import pytest

from ledger.blocks import build_block
from ledger.canonical import encode
from ledger.codec import block_bytes, block_id, block_to_dict, commit_to_dict, read_block
from ledger.commit import make_commit
from ledger.consensus.app import LedgerApp, decode_value, encode_value
from ledger.errors import EncodingError
from ledger.state import genesis_state
from ledger.types import Block, Commit, Tx
from tests.ledger.builders import T0, Net, make_net, settlement_body


def a_block(net: Net, count: int) -> tuple[Block, Commit]:
    state = genesis_state(net.genesis)
    # Non-ASCII text travels as UTF-8, unescaped.
    txs = [net.csms_tx(settlement_body(f"s-{i}-ü")) for i in range(count)]
    proposer = state.validators.validators[0].address
    block, _ = build_block(state, txs, time=T0 + 1, proposer=proposer, last_commit=None)
    commit = make_commit(
        chain_id=state.chain_id, height=1, block_id=block_id(block.header), keys=net.validator_keys
    )
    return block, commit


@pytest.mark.parametrize("count", [0, 1, 3])
def test_spliced_bytes_are_the_canonical_encoding(count: int) -> None:
    net = make_net(4)
    block, commit = a_block(net, count)
    assert block_bytes(block) == encode(block_to_dict(block))
    for last in (None, commit):
        value = encode_value(block, last)
        expected = {
            "block": block_to_dict(block),
            "last_commit": None if last is None else commit_to_dict(last),
        }
        assert value == encode(expected)
        assert decode_value(value) == (block, last)
    text = block_bytes(block).decode()
    assert read_block(text) == (block, len(text))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v.replace(b'{"block":{"header":{', b'{"block":{"header": {', 1),
        lambda v: v + b" ",
        lambda v: v[:-1] + b',"x":1}',
        lambda v: v.replace(b'"txs":[', b'"txs": [', 1),
        lambda v: v.replace(b'"last_commit":{"block_id"', b'"last_commit":{ "block_id"', 1),
        lambda v: v.replace(b'"txs":[{', b'"txs":[1,{', 1),
        lambda v: b"\xff" + v,
    ],
)
def test_other_forms_of_a_value_are_refused(mangle: object) -> None:
    net = make_net(4)
    block, commit = a_block(net, 2)
    value = encode_value(block, commit)
    with pytest.raises(EncodingError):
        decode_value(mangle(value))  # type: ignore[operator]


def test_a_non_canonical_transaction_makes_the_value_invalid() -> None:
    net = make_net(4)
    state = genesis_state(net.genesis)
    tx = net.csms_tx(settlement_body("s-1"))
    app = LedgerApp(
        state,
        None,
        proposer=state.validators.validators[0].address,
        clock_ms=lambda: T0 + 5000,
        pending=lambda n: [tx],
    )
    value = app.get_value(1, 0)
    assert app.valid_value(1, value)
    spaced = value.replace(b'"type":"settlement"', b'"type": "settlement"', 1)
    block, _ = decode_value(spaced)  # the envelope reads; the transaction is not canonical
    assert block.txs[0] != tx
    fresh = LedgerApp(state, None, proposer="x", clock_ms=lambda: T0, pending=lambda n: [Tx(b"{}")])
    assert not fresh.valid_value(1, spaced)
