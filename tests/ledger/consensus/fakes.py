"""Test doubles for consensus: a fast keyed-hash signer/verifier and a toy application.

HMAC-SHA256 stands in for Ed25519 so hundreds of simulated schedules stay fast; the core only
sees the ``Verifier`` port, so this changes nothing it does. Real Ed25519 is covered separately.
"""

from __future__ import annotations

import hashlib
import hmac

from ledger.consensus.messages import Proposal
from ledger.consensus.signing import proposal_sign_bytes
from ledger.consensus.state import ConsensusContext, TimeoutConfig
from ledger.signing import vote_sign_bytes
from ledger.types import Validator, ValidatorSet, Vote

CHAIN = "test-chain"


def secret_of(address: str) -> bytes:
    return hashlib.sha256(b"secret:" + address.encode()).digest()


def public_of(address: str) -> bytes:
    return hashlib.sha256(b"public:" + secret_of(address)).digest()


class HmacSigner:
    def __init__(self, address: str) -> None:
        self._address = address

    @property
    def address(self) -> str:
        return self._address

    def vote_signature(self, vote: Vote) -> bytes:
        return hmac.new(secret_of(self._address), vote_sign_bytes(vote), "sha256").digest()

    def proposal_signature(self, proposal: Proposal) -> bytes:
        return hmac.new(secret_of(self._address), proposal_sign_bytes(proposal), "sha256").digest()


class HmacVerifier:
    """Verifies by recomputing the MAC; the public key must match the address's."""

    def verify_vote(self, vote: Vote, validator: Validator) -> bool:
        if (
            validator.public_key != public_of(validator.address)
            or vote.validator != validator.address
        ):
            return False
        expected = HmacSigner(validator.address).vote_signature(vote)
        return hmac.compare_digest(expected, vote.signature)

    def verify_proposal(self, proposal: Proposal, validator: Validator) -> bool:
        if proposal.proposer != validator.address:
            return False
        expected = HmacSigner(validator.address).proposal_signature(proposal)
        return hmac.compare_digest(expected, proposal.signature)


class ToyApp:
    """Values are ``b"h<height>:<anything>"``; a value starting ``b"bad"`` is invalid."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag

    def valid_value(self, height: int, value: bytes) -> bool:
        return value.startswith(f"h{height}:".encode())

    def value_id(self, value: bytes) -> bytes:
        return hashlib.sha256(value).digest()

    def get_value(self, height: int, round_: int) -> bytes:
        return f"h{height}:r{round_}:{self.tag}".encode()


def make_set(powers: list[int], prefix: str = "v") -> ValidatorSet:
    return ValidatorSet(
        tuple(
            Validator(f"{prefix}{i}", public_of(f"{prefix}{i}"), power)
            for i, power in enumerate(powers)
        )
    )


FAST = TimeoutConfig(100, 50, 100, 50, 100, 50)


def make_ctx(address: str | None, tag: str = "") -> ConsensusContext:
    return ConsensusContext(CHAIN, address, HmacVerifier(), ToyApp(tag or (address or "")), FAST)


def signed_vote(vote: Vote) -> Vote:
    return Vote(
        vote.chain_id,
        vote.height,
        vote.round,
        vote.kind,
        vote.block_id,
        vote.validator,
        HmacSigner(vote.validator).vote_signature(vote),
    )


def signed_proposal(p: Proposal) -> Proposal:
    return Proposal(
        p.chain_id,
        p.height,
        p.round,
        p.value,
        p.block_id,
        p.pol_round,
        p.proposer,
        HmacSigner(p.proposer).proposal_signature(p),
    )
