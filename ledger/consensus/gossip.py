"""What a validator resends each gossip interval, so what one correct validator received,
all eventually do: its own signed messages of the current height, and others' votes and
proposals of the current round and the proof-of-lock rounds. A proposal carries a whole
block, so it goes out only every ``PROPOSAL_RESEND_TICKS`` ticks (links lose nothing while
they last). Pure: the node sends the list.

The height itself is told by ``StatusBeat``: every tick while a height is under way and for a
few ticks after it changed, then, at rest, once every ``QUIET_STATUS_TICKS`` ticks. An idle set
of four used to send 40 status frames a second between them (one per peer per 300 ms tick),
about 1.3% of a core for the embedded validators while nothing happened.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.consensus.messages import Proposal
from ledger.consensus.state import ConsensusState
from ledger.types import Vote, VoteKind

PROPOSAL_RESEND_TICKS = 4  # a proposal carries a block: resent every few gossip ticks only
# A peer one height behind waits two ticks (``FetchPolicy``'s patience) before it fetches the
# block it missed: the new height is told on this many ticks in a row.
STATUS_AFTER_CHANGE_TICKS = 3
QUIET_STATUS_TICKS = 10  # at rest, the height is told every this many ticks (a liveness beat)


class StatusBeat:
    """Whether a gossip tick tells the height (see the module docstring)."""

    def __init__(self) -> None:
        self._height: int | None = None
        self._changed = 0  # the tick the height last changed on
        self._told: int | None = None  # the tick it was last told on

    def due(self, tick: int, height: int, *, busy: bool) -> bool:
        """Whether tick ``tick`` tells ``height``; ``busy``: a height is under way."""
        if height != self._height:
            self._height, self._changed = height, tick
        due = (
            busy
            or tick - self._changed < STATUS_AFTER_CHANGE_TICKS
            or self._told is None
            or tick - self._told >= QUIET_STATUS_TICKS
        )
        if due:
            self._told = tick
        return due


def to_resend(
    tick: int, own: Sequence[Proposal | Vote], state: ConsensusState | None, address: str
) -> list[Proposal | Vote]:
    """The messages to send again on gossip tick number ``tick``."""
    with_proposals = tick % PROPOSAL_RESEND_TICKS == 0
    return [
        msg
        for msg in [*own, *relayed(state, address)]
        if with_proposals or not isinstance(msg, Proposal)
    ]


def relayed(state: ConsensusState | None, address: str) -> list[Proposal | Vote]:
    """Others' votes and proposals of the current round and the proof-of-lock rounds."""
    if state is None or state.decided:
        return []
    rounds = {state.round, state.valid_round, state.locked_round}
    rounds |= {p.pol_round for p in state.proposals.get(state.round, ())}
    rounds.discard(-1)
    out: list[Proposal | Vote] = []
    for r in sorted(rounds):
        out.extend(state.proposals.get(r, ()))
        for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
            for bucket in state.votes.tally(r, kind).by_id.values():
                out.extend(v for v in bucket.values() if v.validator != address)
    return out
