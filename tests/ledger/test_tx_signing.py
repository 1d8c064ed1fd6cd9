"""The bytes a signature covers are cut from a record's canonical bytes: the same bytes
as encoding the record without ``sig``, whatever the record holds."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.canonical import encode
from ledger.codec import tx_record
from ledger.keys import public_bytes
from ledger.tx import CanonicalRecord, key_authorisation_body, topup_body, tx_signing_bytes
from ledger.validation import decode_tx
from tests.ledger.builders import make_net, settlement_body


def generic(record: dict[str, Any], chain_id: str) -> bytes:
    return tx_signing_bytes(dict(record), chain_id)


@pytest.mark.parametrize("chain_id", ["test-chain", 'odd "chain" ü'])
def test_cut_bytes_equal_encoded_bytes(chain_id: str) -> None:
    net = make_net(4)
    txs = [
        net.csms_tx(settlement_body("s-1")),
        net.csms_tx(settlement_body('s-"quoted"-ü')),
        net.aggregator_tx(topup_body(topup_id="t-1", account="ev:x", amount=5)),
        net.aggregator_tx(
            key_authorisation_body(
                update_id="u-1", public_key=public_bytes(net.csms_key), authorised=False
            )
        ),
    ]
    for tx in txs:
        record = decode_tx(tx)
        assert isinstance(record, CanonicalRecord)
        assert tx_signing_bytes(record, chain_id) == generic(record, chain_id)


def test_a_nested_sig_member_falls_back_to_encoding() -> None:
    net = make_net(4)
    record = tx_record(net.csms_tx(settlement_body("s-1")))
    record["tariff"]["sig"] = record["sig"]  # the same member twice: cutting is ambiguous
    raw = encode(record)
    wrapped = CanonicalRecord(record, raw)
    assert tx_signing_bytes(wrapped, "c") == generic(record, "c")
    lone = {"sig": "ab"}
    assert tx_signing_bytes(CanonicalRecord(lone, encode(lone)), "c") == generic(lone, "c")
