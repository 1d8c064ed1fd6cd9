"""A validator checks each transaction's signature once; state rules every time."""

from __future__ import annotations

import pytest

import ledger.validation
from ledger.apply import apply_txs
from ledger.checked import Checked, CheckedTxs
from ledger.codec import tx_record
from ledger.errors import DuplicateSettlementError, SchemaError, SignatureError
from ledger.keys import public_bytes
from ledger.types import Tx
from ledger.validation import validate_tx
from tests.ledger.builders import make_net, settlement_body


def count_verifies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = ledger.validation.verify

    def counting(key: bytes, message: bytes, sig: bytes) -> bool:
        calls[0] += 1
        return real(key, message, sig)

    monkeypatch.setattr(ledger.validation, "verify", counting)
    return calls


def test_a_transaction_is_verified_once_then_applied_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = make_net(4)
    calls = count_verifies(monkeypatch)
    cache = CheckedTxs()
    txs = tuple(net.csms_tx(settlement_body(f"s-{i}")) for i in range(3))
    for tx in txs:
        validate_tx(tx, net.state, cache=cache)
    assert calls[0] == 3 and len(cache) == 3
    after = apply_txs(net.state, txs, time=net.state.time + 1, block_hash=bytes(32), checked=cache)
    assert calls[0] == 3
    assert {"s-0", "s-1", "s-2"} <= set(after.settlements)
    # State rules still apply to a cached transaction.
    with pytest.raises(DuplicateSettlementError):
        validate_tx(txs[0], after, cache=cache)
    # Without a cache every check verifies again.
    apply_txs(net.state, txs, time=net.state.time + 1, block_hash=bytes(32))
    assert calls[0] == 6


def test_a_cached_check_under_another_key_is_not_trusted() -> None:
    net = make_net(4)
    tx = net.csms_tx(settlement_body("s-1"))
    record = tx_record(tx)
    forged = Tx(tx.data.replace(record["sig"].encode(), b"00" * 64))
    cache = CheckedTxs()
    cache.put(forged.data, Checked(tx_record(forged), signer_key=b"\x01" * 32))
    with pytest.raises(SignatureError):
        validate_tx(forged, net.state, cache=cache)
    # What the cache says for the very key is trusted: that is its point.
    cache.put(forged.data, Checked(tx_record(forged), public_bytes(net.csms_key)))
    validate_tx(forged, net.state, cache=cache)


def test_an_invalid_transaction_is_not_cached() -> None:
    net = make_net(4)
    cache = CheckedTxs()
    bad = Tx(net.csms_tx(settlement_body("s-1")).data.replace(b",", b", ", 1))
    with pytest.raises(SchemaError):
        validate_tx(bad, net.state, cache=cache)
    assert len(cache) == 0


def test_the_cache_is_bounded_oldest_first() -> None:
    cache = CheckedTxs(limit=2)
    for i in range(3):
        cache.put(bytes([i]), Checked({"type": "settlement"}, None))
    assert len(cache) == 2
    assert cache.get(b"\x00") is None and cache.get(b"\x02") is not None
