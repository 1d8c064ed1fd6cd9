"""Double-sign evidence: checking it, finding it in conflicting certificates, keeping it.

A validator that signs two votes for different block ids at one (height, round, kind) has
equivocated. The core reports such pairs as they arrive; :func:`evidence_from_commits` finds
them in two certificates for different blocks (any two quorums of one round overlap in more
than a third of the power, so a fork names at least that much). The :class:`EvidencePool`
keeps pending evidence durably until the node layer commits it in a later block.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ledger.canonical import decode, encode
from ledger.codec import tx_record, vote_from_dict
from ledger.consensus.codec import evidence_from_dict, evidence_to_dict
from ledger.consensus.core import make_evidence
from ledger.consensus.errors import EvidenceStoreError
from ledger.consensus.messages import DuplicateVoteEvidence
from ledger.consensus.signing import Verifier
from ledger.errors import EncodingError, LedgerError
from ledger.tx import EVIDENCE
from ledger.types import Block, ValidatorSet, Vote

EvidenceKey = tuple[str, int, int, str]


def evidence_key(ev: DuplicateVoteEvidence) -> EvidenceKey:
    """One piece of evidence per validator and (height, round, kind)."""
    a = ev.vote_a
    return (a.validator, a.height, a.round, str(a.kind))


def is_valid_evidence(
    ev: DuplicateVoteEvidence, validators: ValidatorSet, verifier: Verifier
) -> bool:
    """True iff the two votes are a real double sign by a member of ``validators``."""
    a, b = ev.vote_a, ev.vote_b
    same_slot = (a.chain_id, a.height, a.round, a.kind, a.validator) == (
        b.chain_id,
        b.height,
        b.round,
        b.kind,
        b.validator,
    )
    if not same_slot or a.block_id == b.block_id:
        return False
    validator = validators.get(a.validator)
    if validator is None:
        return False
    return verifier.verify_vote(a, validator) and verifier.verify_vote(b, validator)


def evidence_from_commits(
    commit_a: Iterable[Vote], commit_b: Iterable[Vote]
) -> list[DuplicateVoteEvidence]:
    """Pairs of votes, one from each certificate, that double-sign a (height, round, kind)."""
    by_slot = {(v.validator, v.height, v.round, v.kind): v for v in commit_a}
    found: list[DuplicateVoteEvidence] = []
    for vote in commit_b:
        other = by_slot.get((vote.validator, vote.height, vote.round, vote.kind))
        if other is not None and other.block_id != vote.block_id:
            found.append(make_evidence(other, vote))
    return found


def accused_power(evidence: Iterable[DuplicateVoteEvidence], validators: ValidatorSet) -> int:
    """Total power of the distinct validators named by ``evidence``."""
    return validators.power_of(ev.validator for ev in evidence)


class EvidencePool:
    """Pending evidence, deduplicated; appended to a file and synced when a path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._pending: dict[EvidenceKey, DuplicateVoteEvidence] = {}
        self._committed: set[EvidenceKey] = set()
        if path is not None and path.exists():
            self._load(path)

    def add(self, ev: DuplicateVoteEvidence) -> bool:
        """Keep ``ev`` (durably first); False if it is already known. Verify it before."""
        key = evidence_key(ev)
        if key in self._pending or key in self._committed:
            return False
        if self._path is not None:
            self._append({"op": "add", "evidence": evidence_to_dict(ev)})
        self._pending[key] = ev
        return True

    def pending(self) -> tuple[DuplicateVoteEvidence, ...]:
        """Evidence not yet committed, in a stable order (for the next block)."""
        return tuple(self._pending[k] for k in sorted(self._pending))

    def mark_committed(self, evs: Iterable[DuplicateVoteEvidence]) -> None:
        """Forget evidence that a committed block now carries."""
        for ev in evs:
            key = evidence_key(ev)
            if self._path is not None and key not in self._committed:
                self._append({"op": "committed", "evidence": evidence_to_dict(ev)})
            self._pending.pop(key, None)
            self._committed.add(key)

    def _append(self, record: dict[str, object]) -> None:
        assert self._path is not None
        with self._path.open("ab") as handle:
            handle.write(encode(record) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _load(self, path: Path) -> None:
        lines = path.read_bytes().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                record = decode(line)
                ev = evidence_from_dict(record["evidence"])
                op = record["op"]
            except (EncodingError, KeyError, TypeError) as exc:
                if number == len(lines):
                    break  # a torn last line: its write never completed, so it never counted
                raise EvidenceStoreError(f"{path}:{number}: corrupt evidence record") from exc
            key = evidence_key(ev)
            if op == "committed":
                self._pending.pop(key, None)
                self._committed.add(key)
            elif key not in self._committed:
                self._pending[key] = ev


def evidence_in(block: Block) -> list[DuplicateVoteEvidence]:
    """The double-sign evidence a block commits."""
    found = []
    for tx in block.txs:
        if b'"type":"evidence"' not in tx.data:  # canonical form: a cheap first filter
            continue
        try:
            record = tx_record(tx)
            if record.get("type") == EVIDENCE:
                a, b = vote_from_dict(record["vote_a"]), vote_from_dict(record["vote_b"])
                found.append(make_evidence(a, b))
        except (LedgerError, KeyError, TypeError):
            continue
    return found
