"""Transactions: their kinds, the bytes a signer signs, and builders for each kind.

A transaction is a JSON record, canonically encoded. Signed kinds carry ``signer`` (a
key id) and ``sig`` (hex Ed25519 signature over the record without ``sig``, wrapped with
the domain tag and chain id). Evidence of double signing carries no signer: the two
votes inside it are already signed.

Kinds: ``settlement`` and ``credit`` (CSMS-signed); ``topup``, ``validator_update`` and
``key_authorisation`` (aggregator-signed); ``evidence``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from ledger.canonical import DOMAIN_TX, encode, encode_decoded, signing_bytes
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


class CanonicalRecord(dict[str, Any]):
    """A decoded transaction record that keeps the canonical bytes it was decoded from, so
    the bytes its signature covers are cut from them rather than encoded again. Read-only
    by convention: a changed record would no longer match ``raw``."""

    __slots__ = ("raw",)

    def __init__(self, record: Mapping[str, Any], raw: bytes) -> None:
        super().__init__(record)
        self.raw = raw


def tx_signing_bytes(record: Mapping[str, Any], chain_id: str, *, decoded: bool = False) -> bytes:
    """The bytes a transaction's signature covers: the record without ``sig``.

    ``decoded=True``: the record came from ``canonical.decode`` (skips the type walk).
    """
    if isinstance(record, CanonicalRecord):
        body_bytes = _without_sig(record.raw, record.get("sig"))
        if body_bytes is not None:
            return _signing_head(chain_id) + body_bytes + b"}"
    body = {k: v for k, v in record.items() if k != "sig"}
    return signing_bytes(DOMAIN_TX, chain_id, body, decoded=decoded)


@functools.lru_cache(maxsize=16)
def _signing_head(chain_id: str) -> bytes:
    """What a transaction's signing bytes start with, up to its payload (per chain)."""
    return encode_decoded({"chain_id": chain_id, "domain": DOMAIN_TX})[:-1] + b',"payload":'


def _without_sig(raw: bytes, sig: Any) -> bytes | None:
    """Canonical bytes of a record minus its top-level ``sig`` member, cut from ``raw``.

    Every unescaped quote in canonical JSON is structural, so ``"sig":"<value>"`` found
    exactly once is the top-level member (which the record has); None when not so.
    """
    if not isinstance(sig, str):
        return None
    if sig.isascii() and sig.isalnum():  # hex, as the schema wants: its JSON form is itself
        member = b'"sig":"' + sig.encode("ascii") + b'"'
    else:
        member = b'"sig":' + encode_decoded(sig)
    at = raw.find(member)
    if at < 0 or raw.find(member, at + 1) >= 0:
        return None
    end = at + len(member)
    if raw[at - 1 : at] == b",":
        return raw[: at - 1] + raw[end:]
    if raw[end : end + 1] == b",":
        return raw[:at] + raw[end + 1 :]
    return raw[:at] + raw[end:]


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
