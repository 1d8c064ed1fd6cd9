"""What a validator resends each gossip interval, so what one correct validator received,
all eventually do: its own signed messages of the current height, and others' votes and
proposals of the current round and the proof-of-lock rounds. A proposal carries a whole
block, so it goes out only every ``PROPOSAL_RESEND_TICKS`` ticks (links lose nothing while
they last). Pure: the node sends the list.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.consensus.messages import Proposal
from ledger.consensus.state import ConsensusState
from ledger.types import Vote, VoteKind

PROPOSAL_RESEND_TICKS = 4  # a proposal carries a block: resent every few gossip ticks only


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
