"""Vote tallies for one height: who voted what in each round, weighted by power.

Immutable: adding a vote returns a new book, so the consensus state stays a value. Only the
first vote of a validator per (round, kind) is counted; a conflicting second one is evidence
and is reported by the core, never tallied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger.types import Vote, VoteKind


@dataclass(frozen=True, slots=True)
class VoteTally:
    """Votes of one kind in one round: each validator's first vote and power per block id."""

    votes: Mapping[str, Vote] = field(default_factory=dict)
    power_by_id: Mapping[bytes | None, int] = field(default_factory=dict)
    power: int = 0  # power of all votes counted, whatever their block id

    def with_vote(self, vote: Vote, power: int) -> VoteTally:
        votes = dict(self.votes)
        votes[vote.validator] = vote
        by_id = dict(self.power_by_id)
        by_id[vote.block_id] = by_id.get(vote.block_id, 0) + power
        return VoteTally(votes, by_id, self.power + power)

    def power_for(self, block_id: bytes | None) -> int:
        return self.power_by_id.get(block_id, 0)

    def votes_for(self, block_id: bytes | None) -> tuple[Vote, ...]:
        """The counted votes for ``block_id``, ordered by validator address."""
        return tuple(v for _, v in sorted(self.votes.items()) if v.block_id == block_id)


_EMPTY = VoteTally()


@dataclass(frozen=True, slots=True)
class VoteBook:
    """All tallies of one height, and the validators heard from in each round."""

    tallies: Mapping[tuple[int, VoteKind], VoteTally] = field(default_factory=dict)
    senders: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def tally(self, round_: int, kind: VoteKind) -> VoteTally:
        return self.tallies.get((round_, kind), _EMPTY)

    def existing(self, vote: Vote) -> Vote | None:
        """The vote already counted from this validator at this round and kind, if any."""
        return self.tally(vote.round, vote.kind).votes.get(vote.validator)

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
