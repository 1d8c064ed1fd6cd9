"""Vote tallies for one height: who voted what in each round, weighted by power.

Immutable: adding a vote returns a new book, so the consensus state stays a value. A validator
counts once towards "votes for anything" (its first vote in a round and kind) but is counted
for every block id it signed, as the paper's message counting does: if a byzantine validator
equivocates, the value that a quorum really voted for still reaches its quorum at every
correct process. Conflicting votes are also reported as evidence by the core. Distinct ids per
validator and slot are bounded, so a validator cannot grow the tally without limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.types import Vote, VoteKind

MAX_IDS_PER_VALIDATOR = 2  # an honest validator signs one; an equivocator is heard twice at most


@dataclass(frozen=True, slots=True)
class VoteTally:
    """Votes of one kind in one round."""

    first: Mapping[str, Vote] = field(default_factory=dict)  # each validator's first vote
    by_id: Mapping[bytes | None, Mapping[str, Vote]] = field(default_factory=dict)
    power_by_id: Mapping[bytes | None, int] = field(default_factory=dict)
    power: int = 0  # power of distinct validators heard, whatever they voted for
    ids_of: Mapping[str, int] = field(default_factory=dict)  # distinct ids per validator

    def with_vote(self, vote: Vote, power: int) -> VoteTally:
        """Count ``vote`` (the caller has checked it is new for its block id)."""
        is_first = vote.validator not in self.first
        first = {**self.first, vote.validator: vote} if is_first else self.first
        bucket = {**self.by_id.get(vote.block_id, {}), vote.validator: vote}
        return VoteTally(
            first=first,
            by_id={**self.by_id, vote.block_id: bucket},
            power_by_id={
                **self.power_by_id,
                vote.block_id: self.power_by_id.get(vote.block_id, 0) + power,
            },
            power=self.power + (power if is_first else 0),
            ids_of={**self.ids_of, vote.validator: self.ids_of.get(vote.validator, 0) + 1},
        )

    def power_for(self, block_id: bytes | None) -> int:
        return self.power_by_id.get(block_id, 0)

    def votes_for(self, block_id: bytes | None) -> tuple[Vote, ...]:
        """The votes for ``block_id``, ordered by validator address."""
        return tuple(v for _, v in sorted(self.by_id.get(block_id, {}).items()))

    def has(self, vote: Vote) -> bool:
        """This validator's vote for this block id is already counted."""
        return vote.validator in self.by_id.get(vote.block_id, {})

    def full(self, validator: str) -> bool:
        return self.ids_of.get(validator, 0) >= MAX_IDS_PER_VALIDATOR


_EMPTY = VoteTally()


@dataclass(frozen=True, slots=True)
class VoteBook:
    """All tallies of one height, and the validators heard from in each round."""

    tallies: Mapping[tuple[int, VoteKind], VoteTally] = field(default_factory=dict)
    senders: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def tally(self, round_: int, kind: VoteKind) -> VoteTally:
        return self.tallies.get((round_, kind), _EMPTY)

    def existing(self, vote: Vote) -> Vote | None:
        """The first vote counted from this validator at this round and kind, if any."""
        return self.tally(vote.round, vote.kind).first.get(vote.validator)

    def with_vote(self, vote: Vote, power: int) -> VoteBook:
        tallies = dict(self.tallies)
        key = (vote.round, vote.kind)
        tallies[key] = tallies.get(key, _EMPTY).with_vote(vote, power)
        return VoteBook(tallies, self.with_sender(vote.round, vote.validator).senders)

    def with_sender(self, round_: int, address: str) -> VoteBook:
        """Record that ``address`` sent some message in ``round_`` (for the round-skip rule)."""
        current = self.senders.get(round_, frozenset())
        if address in current:
            return self
        senders = dict(self.senders)
        senders[round_] = current | {address}
        return VoteBook(self.tallies, senders)
