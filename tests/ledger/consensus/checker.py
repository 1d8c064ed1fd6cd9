"""Safety checker for simulated runs: watches every decision as it happens.

It records, per height, the block ids decided by honest validators and flags a fork as soon as
two differ; it verifies every certificate (distinct members, valid precommit signatures for the
decided block at the decided round, more than two thirds of the power); and it flags an honest
validator that signs two different votes in one (height, round, kind), across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.consensus.messages import Decide
from ledger.consensus.signing import Verifier
from ledger.types import ValidatorSet, Vote, VoteKind


@dataclass
class Checker:
    validators: ValidatorSet
    verifier: Verifier
    chain_id: str
    decided: dict[int, dict[bytes, Decide]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    decisions: int = 0
    signed: dict[tuple[str, int, int, str], bytes | None] = field(default_factory=dict)

    def on_signed_vote(self, vote: Vote) -> None:
        """An honest validator's signed vote: it must never conflict with an earlier one."""
        slot = (vote.validator, vote.height, vote.round, str(vote.kind))
        if slot in self.signed and self.signed[slot] != vote.block_id:
            self.violations.append(f"honest {vote.validator} double-signed at {slot}")
        self.signed.setdefault(slot, vote.block_id)

    def on_decide(self, node: str, d: Decide, *, honest: bool = True) -> None:
        """Check one decision; record it for fork detection if its node is honest."""
        self.decisions += 1
        problem = certificate_problem(d, self.validators, self.verifier, self.chain_id)
        if problem is not None:
            self.violations.append(f"{node} height {d.height}: bad certificate: {problem}")
        if not honest:
            return
        by_id = self.decided.setdefault(d.height, {})
        by_id.setdefault(d.block_id, d)
        if len(by_id) > 1:
            self.violations.append(f"fork at height {d.height}: {len(by_id)} blocks decided")

    def forks(self) -> dict[int, list[Decide]]:
        return {h: list(ds.values()) for h, ds in self.decided.items() if len(ds) > 1}

    def max_height(self) -> int:
        return max(self.decided, default=0)


def certificate_problem(
    d: Decide, validators: ValidatorSet, verifier: Verifier, chain_id: str
) -> str | None:
    """Why ``d.commit`` does not certify ``d``, or None if it does."""
    if d.block_id != d.proposal.block_id or d.value != d.proposal.value:
        return "decision does not match its proposal"
    seen: set[str] = set()
    for vote in d.commit:
        if vote.validator in seen:
            return f"{vote.validator} counted twice"
        seen.add(vote.validator)
        slot = (vote.chain_id, vote.height, vote.round, vote.kind, vote.block_id)
        if slot != (chain_id, d.height, d.round, VoteKind.PRECOMMIT, d.block_id):
            return f"vote of {vote.validator} is not a precommit for the block"
        member = validators.get(vote.validator)
        if member is None or not verifier.verify_vote(vote, member):
            return f"signature of {vote.validator} does not verify"
    if not validators.is_quorum(validators.power_of(seen)):
        return f"power {validators.power_of(seen)} of {validators.total_power} is no quorum"
    return None
