from __future__ import annotations

import hashlib

import pytest

import ledger.codec
from ledger.blocks import build_block
from ledger.checked import Checked, CheckedTxs
from ledger.codec import (
    block_bytes,
    block_id,
    commit_from_dict,
    commit_to_dict,
    header_bytes,
    header_from_dict,
    header_to_dict,
    read_block,
    tx_record,
    vote_from_dict,
    vote_to_dict,
)
from ledger.errors import EncodingError
from ledger.state import genesis_state
from ledger.types import Commit, CommitSig, Header, Vote, VoteKind
from tests.ledger.builders import T0, make_net, settlement_body

HEADER = Header(
    chain_id="c",
    height=1,
    time=2,
    prev_hash=bytes(32),
    tx_root=b"\x11" * 32,
    validators_hash=b"\x22" * 32,
    last_commit_hash=bytes(32),
    state_hash=b"\x33" * 32,
    proposer="p",
    nonce=0,
)

# Written out by hand from the rules: keys sorted, no whitespace, bytes as lowercase hex.
HEADER_GOLDEN = (
    '{"chain_id":"c","height":1,"last_commit_hash":"' + "00" * 32 + '","nonce":0,'
    '"prev_hash":"' + "00" * 32 + '","proposer":"p","state_hash":"' + "33" * 32 + '",'
    '"time":2,"tx_root":"' + "11" * 32 + '","validators_hash":"' + "22" * 32 + '"}'
).encode()


def test_header_golden_vector_and_block_id() -> None:
    assert header_bytes(HEADER) == HEADER_GOLDEN
    assert block_id(HEADER) == hashlib.sha256(HEADER_GOLDEN).digest()


def test_commit_golden_vector() -> None:
    commit = Commit(2, 1, b"\xaa" * 32, (CommitSig("v1", b"\x01" * 64),))
    from ledger.canonical import encode

    expected = (
        '{"block_id":"' + "aa" * 32 + '","height":2,"round":1,'
        '"signatures":[{"signature":"' + "01" * 64 + '","validator":"v1"}]}'
    ).encode()
    assert encode(commit_to_dict(commit)) == expected
    assert commit_from_dict(commit_to_dict(commit)) == commit


def test_round_trips() -> None:
    assert header_from_dict(header_to_dict(HEADER)) == HEADER
    vote = Vote("c", 3, 0, VoteKind.PREVOTE, None, "v", b"\x05" * 64)
    assert vote_from_dict(vote_to_dict(vote)) == vote


@pytest.mark.parametrize(
    "change",
    [
        {"height": "1"},
        {"height": 0},
        {"nonce": True},
        {"prev_hash": "00" * 31},
        {"tx_root": "GG" * 32},
        {"extra": 1},
    ],
)
def test_strict_header_parsing(change: dict[str, object]) -> None:
    data = {**header_to_dict(HEADER), **change}
    with pytest.raises(EncodingError):
        header_from_dict(data)


def test_missing_field() -> None:
    data = header_to_dict(HEADER)
    del data["state_hash"]
    with pytest.raises(EncodingError, match="state_hash"):
        header_from_dict(data)


def test_known_transactions_are_found_without_parsing_and_read_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proposal's transactions that were checked before are cut out by their signature and
    compared whole, not parsed; the block read is the one a full parse gives, also when some
    are not known, when a string holds the very characters an end looks like, and when a
    known transaction's signature follows an unknown one's start."""
    net = make_net(4)
    state = genesis_state(net.genesis)
    tricky = settlement_body("s-tricky", transaction_id='tx},{"x":1}],{')
    txs = [net.csms_tx(settlement_body(f"s-{i}")) for i in range(5)] + [net.csms_tx(tricky)]
    block, _ = build_block(
        state, txs, time=T0 + 1, proposer=state.validators.validators[0].address, last_commit=None
    )
    text = block_bytes(block).decode("utf-8")
    parsed, end = read_block(text)
    assert parsed == block and end == len(text)
    cache = CheckedTxs()
    for tx in txs[1:5]:
        cache.put(tx.data, Checked(tx_record(tx), signer_key=None))
    scanned: list[int] = []
    real_scan = ledger.codec.scan

    def counting_scan(source: str, at: int) -> tuple[object, int]:
        scanned.append(at)
        return real_scan(source, at)

    monkeypatch.setattr(ledger.codec, "scan", counting_scan)
    guessed, end = read_block(text, known=cache.end_of)
    assert guessed == block and end == len(text)
    assert len(scanned) == 1 + 2  # the header, and the two transactions not known


def test_a_known_signature_at_another_start_is_no_end() -> None:
    """The signature found after a position names a checked transaction only if that whole
    transaction stands there: a different record with the same signature, or a position
    inside another transaction, is not known."""
    net = make_net(4)
    tx = net.csms_tx(settlement_body("s-1"))
    cache = CheckedTxs()
    cache.put(tx.data, Checked(tx_record(tx), signer_key=None))
    text = tx.data.decode("utf-8")
    assert cache.end_of(text, 0) == len(text)
    assert cache.end_of("[" + text, 1) == len(text) + 1
    assert cache.end_of(text, 1) is None  # inside it
    other = text.replace('"s-1"', '"s-2"')  # the same signature on another record
    assert cache.end_of(other, 0) is None
    assert cache.end_of('{"x":1}', 0) is None  # no signature at all
