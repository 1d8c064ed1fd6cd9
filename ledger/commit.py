"""Commit certificates: checking one, and making one from validator keys.

A certificate is valid when its precommits for ``block_id`` come from distinct
validators of the set, every signature verifies, and their power is a quorum
(``3*w > 2*P``). ``make_commit`` signs with given keys: it lets tests and the
single-process sealing tool produce certified blocks without running consensus.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.errors import CommitError
from ledger.keys import SigningKey
from ledger.signing import sign_vote, vote_sign_bytes
from ledger.types import Commit, CommitSig, ValidatorSet, Vote, VoteKind
from ledger.verified import verify_once


def commit_vote(commit: Commit, sig: CommitSig, chain_id: str) -> Vote:
    """The precommit a commit signature stands for."""
    return Vote(
        chain_id=chain_id,
        height=commit.height,
        round=commit.round,
        kind=VoteKind.PRECOMMIT,
        block_id=commit.block_id,
        validator=sig.validator,
        signature=sig.signature,
    )


def verify_commit(commit: Commit, validator_set: ValidatorSet, chain_id: str) -> None:
    """Raise ``CommitError`` unless ``commit`` is a valid certificate under ``validator_set``."""
    seen: set[str] = set()
    for sig in commit.signatures:
        validator = validator_set.get(sig.validator)
        if validator is None:
            raise CommitError(commit.height, f"signature by unknown validator {sig.validator}")
        if sig.validator in seen:
            raise CommitError(commit.height, f"two signatures by validator {sig.validator}")
        seen.add(sig.validator)
        vote = commit_vote(commit, sig, chain_id)
        if not verify_once(validator.public_key, vote_sign_bytes(vote), sig.signature):
            raise CommitError(commit.height, f"bad precommit signature by {sig.validator}")
    power = validator_set.power_of(seen)
    if not validator_set.is_quorum(power):
        raise CommitError(
            commit.height,
            f"signatures hold power {power} of {validator_set.total_power}: "
            f"expected more than two thirds",
        )


def make_commit(
    *,
    chain_id: str,
    height: int,
    block_id: bytes,
    keys: Iterable[SigningKey],
    round: int = 0,
) -> Commit:
    """Sign precommits for ``block_id`` with ``keys`` and gather them into a certificate."""
    template = Vote(
        chain_id=chain_id,
        height=height,
        round=round,
        kind=VoteKind.PRECOMMIT,
        block_id=block_id,
        validator="",
    )
    votes = [sign_vote(template, key) for key in keys]
    sigs = tuple(
        sorted((CommitSig(v.validator, v.signature) for v in votes), key=lambda s: s.validator)
    )
    return Commit(height=height, round=round, block_id=block_id, signatures=sigs)


def commit_from_votes(votes: Iterable[Vote]) -> Commit:
    """Gather signed precommits for one block (as consensus collects them) into a certificate."""
    vote_list = list(votes)
    if not vote_list:
        raise ValueError("a commit needs at least one precommit")
    first = vote_list[0]
    if first.block_id is None:
        raise ValueError("a commit certifies a block, not nil")
    for v in vote_list:
        if (v.height, v.round, v.block_id, v.kind) != (
            first.height,
            first.round,
            first.block_id,
            VoteKind.PRECOMMIT,
        ):
            raise ValueError("precommits of a commit must share height, round and block")
    sigs = tuple(
        sorted(
            {v.validator: CommitSig(v.validator, v.signature) for v in vote_list}.values(),
            key=lambda s: s.validator,
        )
    )
    return Commit(height=first.height, round=first.round, block_id=first.block_id, signatures=sigs)
