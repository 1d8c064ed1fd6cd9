from __future__ import annotations

import json

import pytest

from ledger.canonical import decode
from ledger.errors import EncodingError
from ledger.keys import generate_key, key_id_of, public_bytes, verify
from ledger.tx import sign_tx, topup_body, tx_signing_bytes


def test_tx_signing_bytes_golden() -> None:
    record = {"type": "topup", "b": 1, "a": "x", "sig": "ignored"}
    expected = b'{"chain_id":"c-1","domain":"v2g/tx/v1","payload":{"a":"x","b":1,"type":"topup"}}'
    assert tx_signing_bytes(record, "c-1") == expected


def test_sign_tx_sets_signer_and_a_verifiable_signature() -> None:
    key = generate_key()
    body = topup_body(topup_id="t-1", account="ev:a", amount=5)
    tx = sign_tx({**body, "sig": "stale", "signer": "someone"}, key, "c-1")
    record = decode(tx.data)  # canonical bytes
    assert record["signer"] == key_id_of(key)
    assert {k: v for k, v in record.items() if k not in ("signer", "sig")} == body
    sig = bytes.fromhex(record["sig"])
    assert verify(public_bytes(key), tx_signing_bytes(record, "c-1"), sig)
    assert not verify(public_bytes(key), tx_signing_bytes(record, "c-2"), sig)
    assert json.loads(tx.data) == record


def test_sign_tx_refuses_floats() -> None:
    with pytest.raises(EncodingError):
        sign_tx({"type": "topup", "amount": 1.5}, generate_key(), "c")
