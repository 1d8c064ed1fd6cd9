"""Sign bytes for votes: what a validator signs, and helpers to sign and check a vote.

The sign bytes carry the domain tag ``DOMAIN_VOTE`` and the chain id, so a vote can never
be replayed on another chain or read as another kind of message. The validator address
is not in the sign bytes: the key that verifies the signature identifies the signer.
"""

from __future__ import annotations

import dataclasses

from ledger.canonical import DOMAIN_VOTE, signing_bytes
from ledger.keys import SigningKey, key_id_of, sign
from ledger.types import Vote
from ledger.verified import verify_once


def vote_payload(vote: Vote) -> dict[str, object]:
    """The signed fields of a vote, as canonical data."""
    return {
        "block_id": None if vote.block_id is None else vote.block_id.hex(),
        "height": vote.height,
        "kind": str(vote.kind),
        "round": vote.round,
    }


def vote_sign_bytes(vote: Vote) -> bytes:
    """The exact bytes a validator signs for ``vote`` (domain tag + chain id + fields)."""
    return signing_bytes(DOMAIN_VOTE, vote.chain_id, vote_payload(vote))


def sign_vote(vote: Vote, key: SigningKey) -> Vote:
    """Return ``vote`` signed with ``key``; its ``validator`` is set to the key's id."""
    unsigned = dataclasses.replace(vote, validator=key_id_of(key), signature=b"")
    return dataclasses.replace(unsigned, signature=sign(key, vote_sign_bytes(unsigned)))


def verify_vote(vote: Vote, public_key: bytes) -> bool:
    """True iff the vote's signature is valid under ``public_key``."""
    return verify_once(public_key, vote_sign_bytes(vote), vote.signature)
