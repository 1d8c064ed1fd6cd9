"""Transactions: their kinds, the bytes a signer signs, and builders for each kind.

A transaction is a JSON record, canonically encoded. Signed kinds carry ``signer`` (a
key id) and ``sig`` (hex Ed25519 signature over the record without ``sig``, wrapped with
the domain tag and chain id). Evidence of double signing carries no signer: the two
votes inside it are already signed.

Kinds: ``settlement`` and ``credit`` (CSMS-signed); ``topup``, ``validator_update`` and
``key_authorisation`` (aggregator-signed); ``evidence``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger.canonical import DOMAIN_TX, encode, signing_bytes
from ledger.codec import vote_to_dict
from ledger.keys import SigningKey, key_id_of, sign
from ledger.types import Tx, Vote

SETTLEMENT = "settlement"
CREDIT = "credit"
TOPUP = "topup"
VALIDATOR_UPDATE = "validator_update"
KEY_AUTHORISATION = "key_authorisation"
EVIDENCE = "evidence"

SCHEMA_VERSION = 1


def ev_account(ev: str) -> str:
    """The ledger account of an EV pseudonym (the paper's crypto-payment path)."""
    return f"ev:{ev}"


def operator_account(operator: str) -> str:
    return f"operator:{operator}"


def tx_signing_bytes(record: Mapping[str, Any], chain_id: str, *, decoded: bool = False) -> bytes:
    """The bytes a transaction's signature covers: the record without ``sig``.

    ``decoded=True``: the record came from ``canonical.decode`` (skips the type walk).
    """
    body = {k: v for k, v in record.items() if k != "sig"}
    return signing_bytes(DOMAIN_TX, chain_id, body, decoded=decoded)


def sign_tx(body: Mapping[str, Any], key: SigningKey, chain_id: str) -> Tx:
    """Set ``signer`` to the key's id, sign, and return the canonical transaction."""
    record = {k: v for k, v in body.items() if k != "sig"}
    record["signer"] = key_id_of(key)
    record["sig"] = sign(key, tx_signing_bytes(record, chain_id)).hex()
    return Tx(encode(record))


def topup_body(*, topup_id: str, account: str, amount: int) -> dict[str, Any]:
    """Credit ``amount`` micro-units to a ledger account (signed by the aggregator)."""
    return {
        "type": TOPUP,
        "schema": SCHEMA_VERSION,
        "topup_id": topup_id,
        "account": account,
        "amount": amount,
    }


def validator_update_body(
    *, update_id: str, changes: Iterable[tuple[bytes, int]]
) -> dict[str, Any]:
    """Set validators' power (0 removes one); effective two heights after commit."""
    return {
        "type": VALIDATOR_UPDATE,
        "schema": SCHEMA_VERSION,
        "update_id": update_id,
        "validators": [{"public_key": pub.hex(), "power": power} for pub, power in changes],
    }


def key_authorisation_body(
    *, update_id: str, public_key: bytes, authorised: bool
) -> dict[str, Any]:
    """Authorise (or revoke) a CSMS signing key; effective two heights after commit."""
    return {
        "type": KEY_AUTHORISATION,
        "schema": SCHEMA_VERSION,
        "update_id": update_id,
        "public_key": public_key.hex(),
        "authorised": authorised,
    }


def evidence_tx(vote_a: Vote, vote_b: Vote) -> Tx:
    """Evidence that one validator signed two different blocks at one height and round."""
    return Tx(
        encode(
            {
                "type": EVIDENCE,
                "schema": SCHEMA_VERSION,
                "vote_a": vote_to_dict(vote_a),
                "vote_b": vote_to_dict(vote_b),
            }
        )
    )
