"""The Tendermint consensus core: Algorithm 1 of Buchman, Kwon, Milosevic (arXiv:1807.04938).

A pure function ``step(ctx, state, event) -> (state, outputs)``: no I/O, no clock, no event
loop. The driver (simulation or node) signs and sends what ``BroadcastProposal`` and
``BroadcastVote`` ask for, feeds the signed message back in as a received one (own messages
count like anyone's), fires timeouts, stores decisions and answers ``Decide`` with the next
``NewHeight``.

The paper's ``f + 1`` and ``2f + 1`` message counts become stake-weighted thresholds:
``ValidatorSet.is_one_third_plus`` and ``ValidatorSet.is_quorum`` over the power of distinct
senders. Line numbers in comments refer to Algorithm 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ledger.consensus.messages import (
    BroadcastProposal,
    BroadcastVote,
    Decide,
    DuplicateVoteEvidence,
    Event,
    EvidenceFound,
    LockState,
    NewHeight,
    Output,
    Proposal,
    ReceiveProposal,
    ReceiveVote,
    ScheduleTimeout,
    Step,
    TimeoutFired,
    TimeoutKind,
)
from ledger.consensus.proposer import check_validator_set, proposer_for
from ledger.consensus.state import ConsensusContext, ConsensusState
from ledger.types import Vote, VoteKind

_replace = dataclasses.replace

# Distinct proposals logged per round before only quorum-backed ones are taken (equivocation).
MAX_PROPOSALS_PER_ROUND = 2


def step(
    ctx: ConsensusContext, state: ConsensusState, event: Event
) -> tuple[ConsensusState, tuple[Output, ...]]:
    """Apply one event; return the new state and what the driver must do."""
    out: list[Output] = []
    if isinstance(event, NewHeight):
        state = _on_new_height(ctx, state, event, out)
    elif state.decided:
        return state, ()  # waiting for NewHeight: nothing else moves a decided height
    elif isinstance(event, ReceiveProposal):
        state = _on_proposal(ctx, state, event.proposal)
    elif isinstance(event, ReceiveVote):
        state = _on_vote(ctx, state, event.vote, out)
    else:
        state = _on_timeout(ctx, state, event, out)
    return _run_rules(ctx, state, out), tuple(out)


# ---- events -------------------------------------------------------------------------------


def _on_new_height(
    ctx: ConsensusContext, state: ConsensusState, event: NewHeight, out: list[Output]
) -> ConsensusState:
    """Lines 54 and 11: reset locks and the message log, then StartRound."""
    if event.height < 1:
        raise ValueError(f"heights start at 1, got {event.height}")
    check_validator_set(event.validators)
    lock = event.lock if event.lock is not None and event.lock.height == event.height else None
    locked_round = lock.locked_round if lock is not None else -1
    locked_value = lock.locked_value if lock is not None else None
    fresh = ConsensusState(
        height=event.height,
        round=event.round,
        step=Step.PROPOSE,
        validators=event.validators,
        locked_round=locked_round,
        locked_value=locked_value,
        # validRound >= lockedRound always holds in Algorithm 1; restore it with the lock.
        valid_round=locked_round,
        valid_value=locked_value,
    )
    return _start_round(ctx, fresh, event.round, out)


def _on_proposal(ctx: ConsensusContext, state: ConsensusState, p: Proposal) -> ConsensusState:
    """Log a proposal if it is well formed and signed by the proposer of its round.

    A byzantine proposer may sign several values for one round; the log keeps them (the
    upon-rules match any logged proposal), bounded per round unless a quorum of votes in
    that round already names the value, so the value a quorum decided is never shut out.
    """
    if p.chain_id != ctx.chain_id or p.height != state.height or p.round < 0:
        return state
    logged = state.proposals.get(p.round, ())
    if any(q.block_id == p.block_id for q in logged) or not -1 <= p.pol_round < p.round:
        return state
    if len(logged) >= MAX_PROPOSALS_PER_ROUND and not _has_quorum_votes(state, p):
        return state
    proposer = state.validators.get(p.proposer)
    if proposer is None or p.proposer != proposer_for(state.validators, p.height, p.round):
        return state
    if not ctx.verifier.verify_proposal(p, proposer):
        return state
    if ctx.app.value_id(p.value) != p.block_id:
        return state
    proposals = dict(state.proposals)
    proposals[p.round] = (*logged, p)
    validity = state.validity
    if p.block_id not in validity:
        validity = {**validity, p.block_id: ctx.app.valid_value(p.height, p.value)}
    votes = state.votes.with_sender(p.round, p.proposer)
    return _replace(state, proposals=proposals, validity=validity, votes=votes)


def _has_quorum_votes(state: ConsensusState, p: Proposal) -> bool:
    return any(
        state.validators.is_quorum(state.votes.tally(p.round, kind).power_for(p.block_id))
        for kind in (VoteKind.PREVOTE, VoteKind.PRECOMMIT)
    )


def _on_vote(
    ctx: ConsensusContext, state: ConsensusState, vote: Vote, out: list[Output]
) -> ConsensusState:
    """Log a validly signed vote; a conflicting second vote is also reported as evidence."""
    if vote.chain_id != ctx.chain_id or vote.height != state.height or vote.round < 0:
        return state
    validator = state.validators.get(vote.validator)
    if validator is None:
        return state
    tally = state.votes.tally(vote.round, vote.kind)
    if tally.has(vote) or tally.full(vote.validator):
        return state  # a duplicate delivery, or an equivocator already heard twice
    if not ctx.verifier.verify_vote(vote, validator):
        return state
    existing = state.votes.existing(vote)
    state = _replace(state, votes=state.votes.with_vote(vote, validator.power))
    if existing is not None:
        key = (vote.validator, vote.round, str(vote.kind))
        if key not in state.evidence_seen:
            out.append(EvidenceFound(make_evidence(existing, vote)))
            state = _replace(state, evidence_seen=state.evidence_seen | {key})
    return state


def make_evidence(first: Vote, second: Vote) -> DuplicateVoteEvidence:
    """Canonical evidence from two conflicting votes (nil sorts first)."""
    a, b = sorted(
        (first, second), key=lambda v: b"" if v.block_id is None else b"\x01" + v.block_id
    )
    return DuplicateVoteEvidence(a, b)


def _on_timeout(
    ctx: ConsensusContext, state: ConsensusState, event: TimeoutFired, out: list[Output]
) -> ConsensusState:
    """Lines 57-66: OnTimeoutPropose, OnTimeoutPrevote, OnTimeoutPrecommit."""
    if event.height != state.height or event.round != state.round:
        return state
    if event.kind is TimeoutKind.PROPOSE and state.step is Step.PROPOSE:
        _vote(ctx, state, VoteKind.PREVOTE, None, out)
        return _replace(state, step=Step.PREVOTE)
    if event.kind is TimeoutKind.PREVOTE and state.step is Step.PREVOTE:
        _vote(ctx, state, VoteKind.PRECOMMIT, None, out)
        return _replace(state, step=Step.PRECOMMIT)
    if event.kind is TimeoutKind.PRECOMMIT:
        return _start_round(ctx, state, state.round + 1, out)
    return state


# ---- upon-rules ---------------------------------------------------------------------------

Rule = Callable[[ConsensusContext, ConsensusState, list[Output]], ConsensusState | None]


def _run_rules(ctx: ConsensusContext, state: ConsensusState, out: list[Output]) -> ConsensusState:
    """Fire enabled upon-rules until none is enabled (one firing may enable another)."""
    while not state.decided:
        for rule in _RULES:
            changed = rule(ctx, state, out)
            if changed is not None:
                state = changed
                break
        else:
            return state
    return state


def _rule_decide(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 49: a proposal of any round r and a quorum of precommits for it decide."""
    total = state.validators
    for r, logged in sorted(state.proposals.items()):
        tally = state.votes.tally(r, VoteKind.PRECOMMIT)
        for p in logged:
            if total.is_quorum(tally.power_for(p.block_id)) and state.validity[p.block_id]:
                commit = tally.votes_for(p.block_id)
                out.append(Decide(state.height, r, p.value, p.block_id, p, commit))
                return _replace(state, decided=True)
    return None


def _rule_skip_round(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 55: more than 1/3 of the power heard from at a higher round: go there."""
    target = -1
    for r, senders in state.votes.senders.items():
        power = state.validators.power_of(senders)
        if r > max(state.round, target) and state.validators.is_one_third_plus(power):
            target = r
    if target < 0:
        return None
    return _start_round(ctx, state, target, out)


def _rule_prevote_fresh(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 22: a fresh proposal (validRound -1) in the propose step."""
    if state.step is not Step.PROPOSE:
        return None
    p = next((q for q in state.proposals.get(state.round, ()) if q.pol_round == -1), None)
    if p is None:
        return None
    accept = state.validity[p.block_id] and (
        state.locked_round == -1 or state.locked_value == p.value
    )
    _vote(ctx, state, VoteKind.PREVOTE, p.block_id if accept else None, out)
    return _replace(state, step=Step.PREVOTE)


def _rule_prevote_pol(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 28: a re-proposal with a proof of lock (quorum prevotes at its pol_round)."""
    if state.step is not Step.PROPOSE:
        return None
    p = next((q for q in state.proposals.get(state.round, ()) if _has_pol(state, q)), None)
    if p is None:
        return None
    accept = state.validity[p.block_id] and (
        state.locked_round <= p.pol_round or state.locked_value == p.value
    )
    _vote(ctx, state, VoteKind.PREVOTE, p.block_id if accept else None, out)
    return _replace(state, step=Step.PREVOTE)


def _has_pol(state: ConsensusState, p: Proposal) -> bool:
    """``p`` re-proposes a value with a quorum of prevotes at its ``pol_round`` < round."""
    if not 0 <= p.pol_round < p.round:
        return False
    pol = state.votes.tally(p.pol_round, VoteKind.PREVOTE)
    return state.validators.is_quorum(pol.power_for(p.block_id))


def _rule_prevote_timeout(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 34: a quorum of prevotes for anything, first time: schedule timeoutPrevote."""
    key = ("prevote_any", state.round)
    if state.step is not Step.PREVOTE or key in state.fired:
        return None
    if not state.validators.is_quorum(state.votes.tally(state.round, VoteKind.PREVOTE).power):
        return None
    _schedule(ctx, state, TimeoutKind.PREVOTE, out)
    return _replace(state, fired=state.fired | {key})


def _rule_lock(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 36: the proposal and a quorum of prevotes for it: lock (if prevoting) and mark valid."""
    key = ("lock", state.round)
    if key in state.fired or state.step is Step.PROPOSE:
        return None
    prevotes = state.votes.tally(state.round, VoteKind.PREVOTE)
    p = next(
        (
            q
            for q in state.proposals.get(state.round, ())
            if state.validity[q.block_id]
            and state.validators.is_quorum(prevotes.power_for(q.block_id))
        ),
        None,
    )
    if p is None:
        return None
    state = _replace(state, fired=state.fired | {key})
    if state.step is Step.PREVOTE:
        state = _replace(state, locked_value=p.value, locked_round=state.round, step=Step.PRECOMMIT)
        _vote(ctx, state, VoteKind.PRECOMMIT, p.block_id, out)
    return _replace(state, valid_value=p.value, valid_round=state.round)


def _rule_precommit_nil(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 44: a quorum of prevotes for nil: precommit nil."""
    if state.step is not Step.PREVOTE:
        return None
    prevotes = state.votes.tally(state.round, VoteKind.PREVOTE)
    if not state.validators.is_quorum(prevotes.power_for(None)):
        return None
    _vote(ctx, state, VoteKind.PRECOMMIT, None, out)
    return _replace(state, step=Step.PRECOMMIT)


def _rule_precommit_timeout(
    ctx: ConsensusContext, state: ConsensusState, out: list[Output]
) -> ConsensusState | None:
    """Line 47: a quorum of precommits for anything, first time: schedule timeoutPrecommit."""
    key = ("precommit_any", state.round)
    if key in state.fired:
        return None
    if not state.validators.is_quorum(state.votes.tally(state.round, VoteKind.PRECOMMIT).power):
        return None
    _schedule(ctx, state, TimeoutKind.PRECOMMIT, out)
    return _replace(state, fired=state.fired | {key})


_RULES: tuple[Rule, ...] = (
    _rule_decide,
    _rule_skip_round,
    _rule_prevote_fresh,
    _rule_prevote_pol,
    _rule_prevote_timeout,
    _rule_lock,
    _rule_precommit_nil,
    _rule_precommit_timeout,
)


# ---- actions ------------------------------------------------------------------------------


def _start_round(
    ctx: ConsensusContext, state: ConsensusState, round_: int, out: list[Output]
) -> ConsensusState:
    """Lines 11-21: StartRound(round).

    One deliberate difference, as in CometBFT: the proposer schedules timeoutPropose too. It
    only acts in the propose step, so it changes nothing when the proposer sees its own
    proposal; it keeps the round moving when it cannot (its signer refused after a restart, or
    its proof of lock was lost in a crash).
    """
    state = _replace(state, round=round_, step=Step.PROPOSE)
    proposer = proposer_for(state.validators, state.height, round_)
    if ctx.address is not None and proposer == ctx.address:
        if state.valid_value is not None:
            value = state.valid_value
        else:
            value = ctx.app.get_value(state.height, round_)
        proposal = Proposal(
            chain_id=ctx.chain_id,
            height=state.height,
            round=round_,
            value=value,
            block_id=ctx.app.value_id(value),
            # A restart can resume in the round of the lock: its value then goes out fresh.
            pol_round=state.valid_round if state.valid_round < round_ else -1,
            proposer=ctx.address,
        )
        out.append(BroadcastProposal(proposal))
    _schedule(ctx, state, TimeoutKind.PROPOSE, out)
    return state


def _vote(
    ctx: ConsensusContext,
    state: ConsensusState,
    kind: VoteKind,
    block_id: bytes | None,
    out: list[Output],
) -> None:
    """Ask the driver to sign and broadcast a vote, persisting the lock first."""
    if ctx.address is None or state.validators.get(ctx.address) is None:
        return
    vote = Vote(ctx.chain_id, state.height, state.round, kind, block_id, ctx.address)
    lock = LockState(state.height, state.locked_round, state.locked_value)
    out.append(BroadcastVote(vote, lock))


def _schedule(
    ctx: ConsensusContext, state: ConsensusState, kind: TimeoutKind, out: list[Output]
) -> None:
    duration = ctx.timeouts.duration_ms(kind, state.round)
    out.append(ScheduleTimeout(kind, state.height, state.round, duration))
