"""Canonical-data forms of consensus messages, for files on disk and the wire.

Bytes travel as lowercase hex (``ledger.canonical``); decoding checks every field's type, so a
corrupt file or a hostile peer yields :class:`~ledger.errors.EncodingError`, never a half-built
message.
"""

from __future__ import annotations

from typing import Any

from ledger.canonical import from_hex
from ledger.consensus.messages import DuplicateVoteEvidence, LockState, Proposal
from ledger.errors import EncodingError
from ledger.types import Vote, VoteKind


def _field(data: Any, name: str, kind: type) -> Any:
    if not isinstance(data, dict):
        raise EncodingError(f"expected an object, got {type(data).__name__}")
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EncodingError(f"{name}: expected {kind.__name__}, got {value!r:.60}")
    return value


def _opt_hex(data: dict[str, Any], name: str) -> bytes | None:
    value = data.get(name)
    return None if value is None else from_hex(value, field=name)


def vote_to_dict(vote: Vote) -> dict[str, Any]:
    return {
        "block_id": None if vote.block_id is None else vote.block_id.hex(),
        "chain_id": vote.chain_id,
        "height": vote.height,
        "kind": str(vote.kind),
        "round": vote.round,
        "signature": vote.signature.hex(),
        "validator": vote.validator,
    }


def vote_from_dict(data: Any) -> Vote:
    kind = _field(data, "kind", str)
    if kind not in (VoteKind.PREVOTE, VoteKind.PRECOMMIT):
        raise EncodingError(f"kind: expected prevote or precommit, got {kind!r:.40}")
    return Vote(
        chain_id=_field(data, "chain_id", str),
        height=_field(data, "height", int),
        round=_field(data, "round", int),
        kind=VoteKind(kind),
        block_id=_opt_hex(data, "block_id"),
        validator=_field(data, "validator", str),
        signature=from_hex(_field(data, "signature", str), field="signature"),
    )


def proposal_to_dict(p: Proposal, *, with_value: bool = True) -> dict[str, Any]:
    """``with_value=False``: all but the value (a block: hex of it is costly to make)."""
    fields = {
        "block_id": p.block_id.hex(),
        "chain_id": p.chain_id,
        "height": p.height,
        "pol_round": p.pol_round,
        "proposer": p.proposer,
        "round": p.round,
        "signature": p.signature.hex(),
    }
    if with_value:
        fields["value"] = p.value.hex()
    return fields


def proposal_from_dict(data: Any) -> Proposal:
    return Proposal(
        chain_id=_field(data, "chain_id", str),
        height=_field(data, "height", int),
        round=_field(data, "round", int),
        value=from_hex(_field(data, "value", str), field="value"),
        block_id=from_hex(_field(data, "block_id", str), field="block_id"),
        pol_round=_field(data, "pol_round", int),
        proposer=_field(data, "proposer", str),
        signature=from_hex(_field(data, "signature", str), field="signature"),
    )


def lock_to_dict(lock: LockState) -> dict[str, Any]:
    return {
        "height": lock.height,
        "locked_round": lock.locked_round,
        "locked_value": None if lock.locked_value is None else lock.locked_value.hex(),
    }


def lock_from_dict(data: Any) -> LockState:
    return LockState(
        height=_field(data, "height", int),
        locked_round=_field(data, "locked_round", int),
        locked_value=_opt_hex(data, "locked_value"),
    )


def evidence_to_dict(ev: DuplicateVoteEvidence) -> dict[str, Any]:
    return {
        "type": "duplicate_vote",
        "vote_a": vote_to_dict(ev.vote_a),
        "vote_b": vote_to_dict(ev.vote_b),
    }


def evidence_from_dict(data: Any) -> DuplicateVoteEvidence:
    if _field(data, "type", str) != "duplicate_vote":
        raise EncodingError(f"type: expected duplicate_vote, got {data.get('type')!r:.40}")
    return DuplicateVoteEvidence(vote_from_dict(data["vote_a"]), vote_from_dict(data["vote_b"]))
