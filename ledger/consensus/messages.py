"""Consensus messages, the events fed to the core and the outputs it returns.

All frozen dataclasses with no behaviour: the core (``core.py``) is a function from
(state, event) to (state, outputs), and these are its vocabulary. Values are opaque bytes (an
encoded block) identified by ``block_id``; the node layer decides what a value is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ledger.types import ValidatorSet, Vote


class Step(StrEnum):
    """Where a validator is inside a round (Algorithm 1's ``step_p``), in protocol order."""

    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"

    @property
    def order(self) -> int:
        return _STEP_ORDER[self]


_STEP_ORDER = {Step.PROPOSE: 0, Step.PREVOTE: 1, Step.PRECOMMIT: 2}


class TimeoutKind(StrEnum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"


@dataclass(frozen=True, slots=True)
class Proposal:
    """``<PROPOSAL, height, round, value, pol_round>`` signed by the round's proposer.

    ``pol_round`` is the paper's ``validRound``: -1 for a fresh value, otherwise the round in
    which the proposer saw a quorum of prevotes for this value (its proof of lock).
    """

    chain_id: str
    height: int
    round: int
    value: bytes
    block_id: bytes
    pol_round: int
    proposer: str
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class LockState:
    """The validator's lock (``lockedValue``/``lockedRound``): must survive a crash."""

    height: int
    locked_round: int = -1
    locked_value: bytes | None = None


# ---- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewHeight:
    """Start (or restart) consensus at ``height`` with this validator set.

    ``round`` and ``lock`` restore a restarted validator from its private validator's durable
    state; a fresh height uses round 0 and no lock.
    """

    height: int
    validators: ValidatorSet
    round: int = 0
    lock: LockState | None = None


@dataclass(frozen=True, slots=True)
class ReceiveProposal:
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class ReceiveVote:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutFired:
    """A timeout scheduled earlier by :class:`ScheduleTimeout` has expired."""

    kind: TimeoutKind
    height: int
    round: int


Event = NewHeight | ReceiveProposal | ReceiveVote | TimeoutFired


# ---- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BroadcastProposal:
    """Sign ``proposal`` (it carries no signature yet), send it to all, feed it back to self."""

    proposal: Proposal


@dataclass(frozen=True, slots=True)
class BroadcastVote:
    """Sign ``vote`` after persisting ``lock`` durably, send it to all, feed it back to self."""

    vote: Vote
    lock: LockState


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Feed back ``TimeoutFired(kind, height, round)`` after ``duration_ms``."""

    kind: TimeoutKind
    height: int
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    """``value`` is decided at ``height``; ``commit`` is its certificate (quorum precommits).

    ``proposal`` is the signed proposal the decision rests on, so a peer that lags can be sent
    the proposal plus the certificate and reach the same decision by Algorithm 1's line 49.
    """

    height: int
    round: int
    value: bytes
    block_id: bytes
    proposal: Proposal
    commit: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two validly signed votes by one validator at one (height, round, kind), different ids.

    ``vote_a`` sorts before ``vote_b`` by block id (nil first) so the pair is canonical.
    """

    vote_a: Vote
    vote_b: Vote

    @property
    def validator(self) -> str:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    evidence: DuplicateVoteEvidence


Output = BroadcastProposal | BroadcastVote | ScheduleTimeout | Decide | EvidenceFound
