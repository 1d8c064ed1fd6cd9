from __future__ import annotations

import dataclasses

import pytest

from ledger.commit import commit_from_votes, make_commit, verify_commit
from ledger.errors import CommitError
from ledger.keys import generate_key
from ledger.signing import sign_vote
from ledger.types import CommitSig, Vote, VoteKind
from tests.ledger.builders import CHAIN_ID, make_net

BLOCK = bytes(range(32))


def test_three_of_four_is_a_quorum_two_is_not() -> None:
    net = make_net(4)
    vset = net.genesis.validators
    good = make_commit(chain_id=CHAIN_ID, height=3, block_id=BLOCK, keys=net.validator_keys[:3])
    verify_commit(good, vset, CHAIN_ID)
    weak = make_commit(chain_id=CHAIN_ID, height=3, block_id=BLOCK, keys=net.validator_keys[:2])
    with pytest.raises(CommitError, match="power 20 of 40"):
        verify_commit(weak, vset, CHAIN_ID)


def test_duplicates_strangers_and_bad_signatures_are_refused() -> None:
    net = make_net(4)
    vset = net.genesis.validators
    good = make_commit(chain_id=CHAIN_ID, height=3, block_id=BLOCK, keys=net.validator_keys[:3])
    doubled = dataclasses.replace(good, signatures=(*good.signatures[:2], good.signatures[0]))
    with pytest.raises(CommitError, match="two signatures"):
        verify_commit(doubled, vset, CHAIN_ID)
    stranger = make_commit(chain_id=CHAIN_ID, height=3, block_id=BLOCK, keys=[generate_key()])
    with pytest.raises(CommitError, match="unknown validator"):
        verify_commit(dataclasses.replace(good, signatures=stranger.signatures), vset, CHAIN_ID)
    first = good.signatures[0]
    flipped = CommitSig(first.validator, bytes([first.signature[0] ^ 1]) + first.signature[1:])
    with pytest.raises(CommitError, match="bad precommit"):
        verify_commit(
            dataclasses.replace(good, signatures=(flipped, *good.signatures[1:])), vset, CHAIN_ID
        )
    # the same signatures do not certify another block, round or chain
    for other in (
        dataclasses.replace(good, block_id=bytes(32)),
        dataclasses.replace(good, round=1),
        dataclasses.replace(good, height=4),
    ):
        with pytest.raises(CommitError):
            verify_commit(other, vset, CHAIN_ID)
    with pytest.raises(CommitError):
        verify_commit(good, vset, "other-chain")


def test_commit_from_consensus_votes_verifies() -> None:
    net = make_net(4)
    template = Vote(CHAIN_ID, 2, 1, VoteKind.PRECOMMIT, BLOCK, "")
    votes = [sign_vote(template, k) for k in net.validator_keys]
    commit = commit_from_votes(votes)
    assert commit.round == 1 and len(commit.signatures) == 4
    verify_commit(commit, net.genesis.validators, CHAIN_ID)
    with pytest.raises(ValueError):
        commit_from_votes([*votes, dataclasses.replace(votes[0], round=0)])
