"""What a validator signs, and the signer/verifier ports the consensus core is given.

Votes use ``ledger.signing`` (domain ``v2g/vote/v1``). Proposals get their own domain tag
here, so a proposal signature can never pass as a vote or a transaction. The core only
*verifies* through a :class:`Verifier`; signing happens outside it, in the private validator,
after the durable write (``privval.py``).
"""

from __future__ import annotations

from typing import Protocol

from ledger.canonical import signing_bytes
from ledger.consensus.messages import Proposal
from ledger.keys import SigningKey, key_id_of, sign
from ledger.signing import verify_vote, vote_sign_bytes
from ledger.types import Validator, Vote
from ledger.verified import verify_once

DOMAIN_PROPOSAL = "v2g/proposal/v1"


def proposal_payload(proposal: Proposal) -> dict[str, object]:
    """The signed fields of a proposal. The value is bound through its block id."""
    return {
        "block_id": proposal.block_id.hex(),
        "height": proposal.height,
        "pol_round": proposal.pol_round,
        "round": proposal.round,
    }


def proposal_sign_bytes(proposal: Proposal) -> bytes:
    """The exact bytes a proposer signs (domain tag + chain id + fields)."""
    return signing_bytes(DOMAIN_PROPOSAL, proposal.chain_id, proposal_payload(proposal))


class Signer(Protocol):
    """Raw signing by one validator key (no double-sign protection: see ``PrivValidator``)."""

    @property
    def address(self) -> str: ...

    def vote_signature(self, vote: Vote) -> bytes: ...

    def proposal_signature(self, proposal: Proposal) -> bytes: ...


class Verifier(Protocol):
    """Checks signatures against a validator's public key."""

    def verify_vote(self, vote: Vote, validator: Validator) -> bool: ...

    def verify_proposal(self, proposal: Proposal, validator: Validator) -> bool: ...


class Ed25519Signer:
    """:class:`Signer` over an Ed25519 key (the production signer)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self._address = key_id_of(key)

    @property
    def address(self) -> str:
        return self._address

    def vote_signature(self, vote: Vote) -> bytes:
        return sign(self._key, vote_sign_bytes(vote))

    def proposal_signature(self, proposal: Proposal) -> bytes:
        return sign(self._key, proposal_sign_bytes(proposal))


class Ed25519Verifier:
    """:class:`Verifier` for Ed25519 validator keys."""

    def verify_vote(self, vote: Vote, validator: Validator) -> bool:
        return vote.validator == validator.address and verify_vote(vote, validator.public_key)

    def verify_proposal(self, proposal: Proposal, validator: Validator) -> bool:
        return proposal.proposer == validator.address and verify_once(
            validator.public_key, proposal_sign_bytes(proposal), proposal.signature
        )
