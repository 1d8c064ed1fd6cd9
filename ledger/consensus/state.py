"""The consensus state (Algorithm 1's per-process variables) and the context it runs in.

``ConsensusState`` is a value: the core returns a new one per event. ``ConsensusContext``
holds what does not change between events: chain id, own address, timeouts and the injected
pure functions (signature checks, value validity, value ids, value to propose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ledger.consensus.messages import Proposal, Step, TimeoutKind
from ledger.consensus.signing import Verifier
from ledger.consensus.votes import VoteBook
from ledger.types import ValidatorSet


class Application(Protocol):
    """The pure functions consensus needs from the ledger: Algorithm 1's valid, id, getValue."""

    def valid_value(self, height: int, value: bytes) -> bool: ...

    def value_id(self, value: bytes) -> bytes: ...

    def get_value(self, height: int, round_: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Timeouts grow linearly per round: ``timeout(r) = base + r * delta`` (milliseconds)."""

    propose_base_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_base_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_base_ms: int = 1000
    precommit_delta_ms: int = 500

    def duration_ms(self, kind: TimeoutKind, round_: int) -> int:
        if kind is TimeoutKind.PROPOSE:
            return self.propose_base_ms + round_ * self.propose_delta_ms
        if kind is TimeoutKind.PREVOTE:
            return self.prevote_base_ms + round_ * self.prevote_delta_ms
        return self.precommit_base_ms + round_ * self.precommit_delta_ms


@dataclass(frozen=True, slots=True)
class ConsensusContext:
    """Everything the core reads but never changes."""

    chain_id: str
    address: str | None  # None for a node that follows consensus without voting
    verifier: Verifier
    app: Application
    timeouts: TimeoutConfig = TimeoutConfig()


@dataclass(frozen=True, slots=True)
class ConsensusState:
    """Algorithm 1's ``h_p, round_p, step_p, lockedValue_p, lockedRound_p, validValue_p,
    validRound_p, decision_p[h_p]`` plus the message log of the current height.

    ``fired`` remembers the "for the first time" upon-rules already executed, as
    ``(rule, round)`` pairs. ``validity`` caches ``valid(v)`` per block id, since checking a
    block is costly and the answer cannot change within a height.
    """

    height: int
    round: int
    step: Step
    validators: ValidatorSet
    locked_round: int = -1
    locked_value: bytes | None = None
    valid_round: int = -1
    valid_value: bytes | None = None
    decided: bool = False
    proposals: Mapping[int, tuple[Proposal, ...]] = field(default_factory=dict)
    validity: Mapping[bytes, bool] = field(default_factory=dict)
    votes: VoteBook = field(default_factory=VoteBook)
    fired: frozenset[tuple[str, int]] = frozenset()
    evidence_seen: frozenset[tuple[str, int, str]] = frozenset()


def initial_state(validators: ValidatorSet) -> ConsensusState:
    """A state that waits for its first ``NewHeight`` event (it reacts to nothing else)."""
    return ConsensusState(height=0, round=0, step=Step.PROPOSE, validators=validators, decided=True)
