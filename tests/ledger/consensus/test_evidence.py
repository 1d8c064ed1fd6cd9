from __future__ import annotations

from pathlib import Path

import pytest

from ledger.consensus.codec import (
    evidence_from_dict,
    evidence_to_dict,
    proposal_from_dict,
    proposal_to_dict,
    vote_from_dict,
    vote_to_dict,
)
from ledger.consensus.core import make_evidence
from ledger.consensus.errors import EvidenceStoreError
from ledger.consensus.evidence import (
    EvidencePool,
    accused_power,
    evidence_from_commits,
    is_valid_evidence,
)
from ledger.consensus.messages import Proposal
from ledger.errors import EncodingError
from ledger.types import Vote, VoteKind
from tests.ledger.consensus.fakes import CHAIN, HmacVerifier, make_set, signed_vote

A = b"\x0a" * 32
B = b"\x0b" * 32
VSET = make_set([1, 1, 1, 1])


def precommit(validator: str, block_id: bytes | None, round_: int = 0) -> Vote:
    return signed_vote(Vote(CHAIN, 3, round_, VoteKind.PRECOMMIT, block_id, validator))


def test_valid_evidence_needs_two_signed_votes_for_different_ids_in_one_slot() -> None:
    ev = make_evidence(precommit("v1", A), precommit("v1", B))
    assert is_valid_evidence(ev, VSET, HmacVerifier())
    assert make_evidence(precommit("v1", B), precommit("v1", A)) == ev  # canonical order
    nil = make_evidence(precommit("v1", A), precommit("v1", None))
    assert nil.vote_a.block_id is None and is_valid_evidence(nil, VSET, HmacVerifier())
    same = make_evidence(precommit("v1", A), precommit("v1", A))
    assert not is_valid_evidence(same, VSET, HmacVerifier())
    other_round = make_evidence(precommit("v1", A), precommit("v1", B, round_=1))
    assert not is_valid_evidence(other_round, VSET, HmacVerifier())
    two_signers = make_evidence(precommit("v1", A), precommit("v2", B))
    assert not is_valid_evidence(two_signers, VSET, HmacVerifier())
    forged = make_evidence(
        precommit("v1", A), Vote(CHAIN, 3, 0, VoteKind.PRECOMMIT, B, "v1", b"\x00" * 32)
    )
    assert not is_valid_evidence(forged, VSET, HmacVerifier())
    outsider = make_evidence(precommit("x9", A), precommit("x9", B))
    assert not is_valid_evidence(outsider, VSET, HmacVerifier())


def test_two_conflicting_certificates_name_the_overlap() -> None:
    commit_a = [precommit(v, A) for v in ("v0", "v1", "v2")]
    commit_b = [precommit(v, B) for v in ("v1", "v2", "v3")]
    found = evidence_from_commits(commit_a, commit_b)
    assert sorted(ev.validator for ev in found) == ["v1", "v2"]
    assert accused_power(found, VSET) == 2
    assert VSET.is_one_third_plus(accused_power(found, VSET))
    assert evidence_from_commits(commit_a, commit_a) == []


def test_pool_persists_pending_evidence_and_forgets_committed(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    ev1 = make_evidence(precommit("v1", A), precommit("v1", B))
    ev2 = make_evidence(precommit("v2", A), precommit("v2", None))
    pool = EvidencePool(path)
    assert pool.add(ev1) and pool.add(ev2)
    assert not pool.add(make_evidence(precommit("v1", B), precommit("v1", None)))  # same slot
    reopened = EvidencePool(path)
    assert set(reopened.pending()) == {ev1, ev2}
    reopened.mark_committed([ev1])
    again = EvidencePool(path)
    assert again.pending() == (ev2,)
    assert not again.add(ev1)  # committed evidence is never proposed twice


def test_pool_ignores_a_torn_last_line_but_not_earlier_corruption(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    pool = EvidencePool(path)
    pool.add(make_evidence(precommit("v1", A), precommit("v1", B)))
    with path.open("ab") as handle:
        handle.write(b'{"evidence":{"ty')
    assert len(EvidencePool(path).pending()) == 1
    path.write_bytes(b"garbage\n" + path.read_bytes())
    with pytest.raises(EvidenceStoreError):
        EvidencePool(path)


def test_codec_round_trips_and_rejects_bad_fields() -> None:
    v = precommit("v1", A)
    assert vote_from_dict(vote_to_dict(v)) == v
    assert vote_from_dict(vote_to_dict(precommit("v1", None))).block_id is None
    p = Proposal(CHAIN, 3, 1, b"\x00value", A, 0, "v2", b"sig")
    assert proposal_from_dict(proposal_to_dict(p)) == p
    ev = make_evidence(v, precommit("v1", B))
    assert evidence_from_dict(evidence_to_dict(ev)) == ev
    bad = vote_to_dict(v) | {"height": "3"}
    with pytest.raises(EncodingError):
        vote_from_dict(bad)
    with pytest.raises(EncodingError):
        vote_from_dict(vote_to_dict(v) | {"kind": "propose"})
    with pytest.raises(EncodingError):
        vote_from_dict(vote_to_dict(v) | {"height": True})
