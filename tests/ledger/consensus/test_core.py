"""Algorithm 1, rule by rule, driven by hand from one validator's point of view."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.consensus.core import step
from ledger.consensus.errors import InvalidValidatorSet
from ledger.consensus.messages import (
    BroadcastProposal,
    BroadcastVote,
    Decide,
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
from ledger.consensus.proposer import proposer_for
from ledger.consensus.state import ConsensusState, initial_state
from ledger.types import ValidatorSet, Vote, VoteKind
from tests.ledger.consensus.fakes import (
    CHAIN,
    ToyApp,
    make_ctx,
    make_set,
    signed_proposal,
    signed_vote,
)

APP = ToyApp()


class Node:
    """One core under test, with helpers to feed it other validators' messages."""

    def __init__(self, vset: ValidatorSet, address: str, height: int = 1) -> None:
        self.vset = vset
        self.ctx = make_ctx(address)
        self.state: ConsensusState = initial_state(vset)
        self.out: tuple[Output, ...] = ()
        self.feed(NewHeight(height, vset))

    def feed(self, event: Event) -> tuple[Output, ...]:
        self.state, self.out = step(self.ctx, self.state, event)
        return self.out

    def proposal(self, round_: int, value: bytes, pol_round: int = -1) -> tuple[Output, ...]:
        proposer = proposer_for(self.vset, self.state.height, round_)
        p = Proposal(
            CHAIN, self.state.height, round_, value, APP.value_id(value), pol_round, proposer
        )
        return self.feed(ReceiveProposal(signed_proposal(p)))

    def votes(
        self, kind: VoteKind, round_: int, value: bytes | None, voters: list[str]
    ) -> tuple[Output, ...]:
        out: list[Output] = []
        block_id = None if value is None else APP.value_id(value)
        for voter in voters:
            vote = Vote(CHAIN, self.state.height, round_, kind, block_id, voter)
            out.extend(self.feed(ReceiveVote(signed_vote(vote))))
        return tuple(out)


def votes_in(out: tuple[Output, ...]) -> list[Vote]:
    return [o.vote for o in out if isinstance(o, BroadcastVote)]


def non_proposer(vset: ValidatorSet, height: int = 1, round_: int = 0) -> str:
    chosen = proposer_for(vset, height, round_)
    return next(v.address for v in vset.validators if v.address != chosen)


def others(vset: ValidatorSet, me: str) -> list[str]:
    return [v.address for v in vset.validators if v.address != me]


VSET = make_set([1, 1, 1, 1])
VALUE = b"h1:block-a"
OTHER = b"h1:block-b"


def test_happy_path_prevote_precommit_decide() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    assert node.out == (ScheduleTimeout(TimeoutKind.PROPOSE, 1, 0, 100),)

    (prevote,) = votes_in(node.proposal(0, VALUE))
    assert (prevote.kind, prevote.block_id) == (VoteKind.PREVOTE, APP.value_id(VALUE))

    rest = others(VSET, me)
    assert votes_in(node.votes(VoteKind.PREVOTE, 0, VALUE, [me, rest[0]])) == []
    out = node.votes(VoteKind.PREVOTE, 0, VALUE, [rest[1]])  # 3 of 4: quorum
    (precommit,) = votes_in(out)
    assert precommit.kind is VoteKind.PRECOMMIT and precommit.block_id == APP.value_id(VALUE)
    lock = next(o.lock for o in out if isinstance(o, BroadcastVote))
    assert lock == LockState(1, 0, VALUE)

    out = node.votes(VoteKind.PRECOMMIT, 0, VALUE, [me, rest[0]])
    assert not any(isinstance(o, Decide) for o in out)
    out = node.votes(VoteKind.PRECOMMIT, 0, VALUE, [rest[2]])
    (decide,) = [o for o in out if isinstance(o, Decide)]
    assert decide.value == VALUE and decide.height == 1 and decide.round == 0
    assert sorted(v.validator for v in decide.commit) == sorted([me, rest[0], rest[2]])
    # Decided: nothing but NewHeight moves it.
    assert node.votes(VoteKind.PRECOMMIT, 0, VALUE, [rest[1]]) == ()


def test_proposer_proposes_get_value_and_waits_for_its_own_proposal() -> None:
    me = proposer_for(VSET, 1, 0)
    node = Node(VSET, me)
    bp, timeout = node.out
    assert isinstance(bp, BroadcastProposal)
    assert timeout == ScheduleTimeout(TimeoutKind.PROPOSE, 1, 0, 100)
    assert bp.proposal.value == node.ctx.app.get_value(1, 0) and bp.proposal.pol_round == -1
    assert bp.proposal.block_id == APP.value_id(bp.proposal.value)
    assert node.state.step is Step.PROPOSE


def test_timeouts_grow_per_round_and_propose_timeout_prevotes_nil() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    (vote,) = votes_in(node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 0)))
    assert vote.kind is VoteKind.PREVOTE and vote.block_id is None
    # A stale timeout of another round does nothing.
    assert node.feed(TimeoutFired(TimeoutKind.PREVOTE, 1, 5)) == ()
    out = node.votes(VoteKind.PREVOTE, 0, None, [me])
    out += node.votes(VoteKind.PREVOTE, 0, OTHER, others(VSET, me)[:1])
    assert not any(isinstance(o, ScheduleTimeout) for o in out)  # 2 of 4: no quorum yet
    out += node.votes(VoteKind.PREVOTE, 0, VALUE, others(VSET, me)[1:2])
    assert ScheduleTimeout(TimeoutKind.PREVOTE, 1, 0, 100) in out  # quorum of "anything"
    (pc,) = votes_in(node.feed(TimeoutFired(TimeoutKind.PREVOTE, 1, 0)))
    assert pc.kind is VoteKind.PRECOMMIT and pc.block_id is None
    out = node.votes(VoteKind.PRECOMMIT, 0, None, [me, *others(VSET, me)[:2]])
    assert ScheduleTimeout(TimeoutKind.PRECOMMIT, 1, 0, 100) in out
    out = node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert node.state.round == 1
    if proposer_for(VSET, 1, 1) != me:
        assert ScheduleTimeout(TimeoutKind.PROPOSE, 1, 1, 150) in out


def test_quorum_of_nil_prevotes_precommits_nil() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    (pc,) = votes_in(node.votes(VoteKind.PREVOTE, 0, None, [me, *others(VSET, me)[:2]]))
    assert pc.kind is VoteKind.PRECOMMIT and pc.block_id is None


def test_invalid_value_gets_a_nil_prevote() -> None:
    node = Node(VSET, non_proposer(VSET))
    (vote,) = votes_in(node.proposal(0, b"bad value"))
    assert vote.block_id is None


def lock_on(node: Node, value: bytes, round_: int = 0) -> None:
    """Bring ``node`` to a lock on ``value`` in ``round_`` and then into ``round_ + 1``."""
    me = node.ctx.address
    assert me is not None
    node.proposal(round_, value)
    node.votes(VoteKind.PREVOTE, round_, value, [me, *others(node.vset, me)])
    assert node.state.locked_round == round_ and node.state.locked_value == value
    node.votes(VoteKind.PRECOMMIT, round_, None, others(node.vset, me))
    node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, node.state.height, round_))
    assert node.state.round == round_ + 1


def test_locked_validator_prevotes_nil_for_a_different_fresh_value() -> None:
    me = next(
        v.address
        for v in VSET.validators
        if v.address not in (proposer_for(VSET, 1, 0), proposer_for(VSET, 1, 1))
    )
    node = Node(VSET, me)
    lock_on(node, VALUE)
    (vote,) = votes_in(node.proposal(1, OTHER))
    assert vote.block_id is None


def test_locked_validator_accepts_a_proof_of_lock_from_a_later_round() -> None:
    vset = make_set([1, 1, 1, 1])
    me = next(
        v.address
        for v in vset.validators
        if v.address not in {proposer_for(vset, 1, r) for r in range(3)}
    )
    node = Node(vset, me)
    lock_on(node, VALUE, 0)  # locked on VALUE at round 0, now in round 1
    # Round 1: the others saw a quorum of prevotes for OTHER (we missed the proposal).
    node.votes(VoteKind.PREVOTE, 1, OTHER, others(vset, me))
    node.votes(VoteKind.PRECOMMIT, 1, None, others(vset, me))
    node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 1))
    node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 1))
    assert node.state.round == 2 and node.state.locked_round == 0
    # Round 2 re-proposes OTHER with pol_round 1 >= locked_round 0: accepted (line 28).
    (vote,) = votes_in(node.proposal(2, OTHER, pol_round=1))
    assert vote.block_id == APP.value_id(OTHER)


def test_proof_of_lock_older_than_the_lock_is_refused() -> None:
    vset = make_set([1, 1, 1, 1])
    me = next(
        v.address
        for v in vset.validators
        if v.address not in {proposer_for(vset, 1, r) for r in range(3)}
    )
    node = Node(vset, me)
    node.votes(VoteKind.PREVOTE, 0, OTHER, others(vset, me))  # quorum for OTHER at round 0
    node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    node.votes(VoteKind.PRECOMMIT, 0, None, others(vset, me))
    node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    lock_on(node, VALUE, 1)  # locked on VALUE at round 1, now in round 2
    (vote,) = votes_in(node.proposal(2, OTHER, pol_round=0))
    assert vote.block_id is None  # locked_round 1 > pol_round 0 and the value differs


def test_re_proposal_needs_the_proof_of_lock_prevotes() -> None:
    vset = make_set([1, 1, 1, 1])
    me = next(
        v.address
        for v in vset.validators
        if v.address not in {proposer_for(vset, 1, r) for r in range(2)}
    )
    node = Node(vset, me)
    node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    node.votes(VoteKind.PRECOMMIT, 0, None, others(vset, me))
    node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    assert votes_in(node.proposal(1, OTHER, pol_round=0)) == []  # no quorum at round 0 yet
    assert votes_in(node.votes(VoteKind.PREVOTE, 0, OTHER, others(vset, me)[:2])) == []
    (vote,) = votes_in(node.votes(VoteKind.PREVOTE, 0, OTHER, others(vset, me)[2:]))
    assert vote.round == 1 and vote.block_id == APP.value_id(OTHER)


def test_valid_value_is_recorded_after_precommitting_and_re_proposed() -> None:
    vset = make_set([1, 1, 1, 1])
    me = proposer_for(vset, 1, 1)
    assert me != proposer_for(vset, 1, 0)
    node = Node(vset, me)
    node.feed(TimeoutFired(TimeoutKind.PROPOSE, 1, 0))
    node.votes(VoteKind.PREVOTE, 0, None, [me])
    node.votes(VoteKind.PREVOTE, 0, VALUE, others(vset, me)[:2])
    node.feed(TimeoutFired(TimeoutKind.PREVOTE, 1, 0))  # precommits nil
    assert node.state.step is Step.PRECOMMIT
    out = node.proposal(0, VALUE)
    out += node.votes(VoteKind.PREVOTE, 0, VALUE, others(vset, me)[2:])
    assert votes_in(out) == []  # already precommitted: line 36 only records the valid value
    assert (node.state.valid_round, node.state.valid_value) == (0, VALUE)
    assert node.state.locked_round == -1
    node.votes(VoteKind.PRECOMMIT, 0, None, others(vset, me))
    out = node.feed(TimeoutFired(TimeoutKind.PRECOMMIT, 1, 0))
    (bp,) = [o for o in out if isinstance(o, BroadcastProposal)]
    assert bp.proposal.value == VALUE and bp.proposal.pol_round == 0


def test_round_skip_needs_more_than_a_third_of_power() -> None:
    vset = make_set([3, 3, 3, 4])  # total 13: skipping needs power >= 5
    me = "v0"
    node = Node(vset, me)
    node.votes(VoteKind.PREVOTE, 5, None, ["v3"])  # 4 of 13
    assert node.state.round == 0
    node.votes(VoteKind.PRECOMMIT, 5, None, ["v1"])  # 7 of 13 heard at round 5
    assert node.state.round == 5 and node.state.step is Step.PROPOSE


def test_decides_on_a_quorum_of_precommits_from_an_earlier_round() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    node.votes(VoteKind.PREVOTE, 3, None, others(VSET, me)[:2])  # skip to round 3
    assert node.state.round == 3
    node.proposal(0, VALUE)
    out = node.votes(VoteKind.PRECOMMIT, 0, VALUE, others(VSET, me))
    (decide,) = [o for o in out if isinstance(o, Decide)]
    assert decide.round == 0 and decide.value == VALUE


def test_conflicting_vote_is_evidence_and_counted_once_for_any() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    bad = others(VSET, me)[0]
    node.votes(VoteKind.PREVOTE, 0, VALUE, [bad])
    out = node.votes(VoteKind.PREVOTE, 0, OTHER, [bad])
    (ev,) = [o.evidence for o in out if isinstance(o, EvidenceFound)]
    assert ev.validator == bad
    assert {ev.vote_a.block_id, ev.vote_b.block_id} == {APP.value_id(VALUE), APP.value_id(OTHER)}
    tally = node.state.votes.tally(0, VoteKind.PREVOTE)
    # Counted for each id it signed (the paper counts messages), once for "anything".
    assert tally.power_for(APP.value_id(OTHER)) == 1 and tally.power_for(APP.value_id(VALUE)) == 1
    assert tally.power == 1
    assert node.votes(VoteKind.PREVOTE, 0, None, [bad]) == ()  # a third id: ignored, reported once
    assert tally.power_for(None) == node.state.votes.tally(0, VoteKind.PREVOTE).power_for(None) == 0


def test_equivocating_proposer_and_voters_cannot_hide_the_decided_value() -> None:
    """A laggard that logged the byzantine proposer's other value still decides the real one."""
    vset = make_set([1, 1, 1, 1])
    proposer = proposer_for(vset, 1, 0)
    me = non_proposer(vset)
    node = Node(vset, me)
    node.proposal(0, OTHER)  # the equivocating proposer's value for our side
    node.votes(VoteKind.PRECOMMIT, 0, OTHER, [proposer])
    honest = [a for a in others(vset, me) if a != proposer]
    out = node.votes(VoteKind.PRECOMMIT, 0, VALUE, [proposer, *honest])
    out += node.proposal(0, VALUE)
    (decide,) = [o for o in out if isinstance(o, Decide)]
    assert decide.value == VALUE
    assert {v.validator for v in decide.commit} == {proposer, *honest}


def test_forged_messages_are_ignored() -> None:
    me = non_proposer(VSET)
    node = Node(VSET, me)
    vote = Vote(CHAIN, 1, 0, VoteKind.PREVOTE, None, others(VSET, me)[0], b"forged")
    assert node.feed(ReceiveVote(vote)) == ()
    assert node.state.votes.tally(0, VoteKind.PREVOTE).power == 0
    wrong = next(a for a in others(VSET, me) if a != proposer_for(VSET, 1, 0))
    p = Proposal(CHAIN, 1, 0, VALUE, APP.value_id(VALUE), -1, wrong)
    assert node.feed(ReceiveProposal(signed_proposal(p))) == ()
    right = dataclasses.replace(p, proposer=proposer_for(VSET, 1, 0), block_id=b"\x00" * 32)
    assert node.feed(ReceiveProposal(signed_proposal(right))) == ()
    other_chain = Vote("other", 1, 0, VoteKind.PREVOTE, None, others(VSET, me)[0])
    assert node.feed(ReceiveVote(signed_vote(other_chain))) == ()
    assert node.state.proposals == {}


def test_new_height_refuses_a_dominant_validator() -> None:
    with pytest.raises(InvalidValidatorSet):
        Node(make_set([1, 1, 2]), "v0")


def test_restart_restores_round_and_lock() -> None:
    me = non_proposer(VSET, 1, 2)
    node = Node(VSET, me)
    node.feed(NewHeight(1, VSET, round=2, lock=LockState(1, 1, VALUE)))
    assert (node.state.round, node.state.locked_round, node.state.valid_value) == (2, 1, VALUE)
    (vote,) = votes_in(node.proposal(2, OTHER))
    assert vote.block_id is None  # still locked on VALUE


def test_observer_follows_without_voting() -> None:
    node = Node(VSET, "nobody")
    assert votes_in(node.proposal(0, VALUE)) == []
    node.votes(VoteKind.PRECOMMIT, 0, VALUE, [v.address for v in VSET.validators][:3])
    assert node.state.decided
