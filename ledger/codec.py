"""Ledger types to and from canonical data, and the hashes defined over them.

Every parser here is strict: unknown or missing fields, wrong types and bytes of the
wrong length raise ``EncodingError``, so a corrupted record is never half-read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ledger.canonical import (
    DOMAIN_COMMIT,
    DOMAIN_VALIDATORS,
    decode,
    digest,
    encode,
    encode_decoded,
    from_hex,
    scan,
)
from ledger.errors import EncodingError
from ledger.types import (
    Block,
    Commit,
    CommitSig,
    Header,
    Tx,
    Validator,
    ValidatorSet,
    Vote,
    VoteKind,
)

HEADER_FIELDS = (
    "chain_id",
    "height",
    "time",
    "prev_hash",
    "tx_root",
    "validators_hash",
    "last_commit_hash",
    "state_hash",
    "proposer",
    "nonce",
)


def expect_fields(data: Any, fields: tuple[str, ...] | set[str], what: str) -> Mapping[str, Any]:
    """Check ``data`` is an object with exactly ``fields``."""
    if not isinstance(data, Mapping):
        raise EncodingError(f"{what}: expected an object, got {type(data).__name__}")
    keys = set(data)
    if keys != set(fields):
        missing = sorted(set(fields) - keys)
        extra = sorted(keys - set(fields))
        raise EncodingError(f"{what}: missing fields {missing}, unexpected fields {extra}")
    return data


def expect_int(
    value: Any, what: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodingError(f"{what}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise EncodingError(f"{what}: expected >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise EncodingError(f"{what}: expected <= {maximum}, got a {len(str(value))}-digit value")
    return value


def expect_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise EncodingError(f"{what}: expected a string, got {value!r}")
    return value


def header_to_dict(header: Header) -> dict[str, Any]:
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "time": header.time,
        "prev_hash": header.prev_hash.hex(),
        "tx_root": header.tx_root.hex(),
        "validators_hash": header.validators_hash.hex(),
        "last_commit_hash": header.last_commit_hash.hex(),
        "state_hash": header.state_hash.hex(),
        "proposer": header.proposer,
        "nonce": header.nonce,
    }


def header_from_dict(data: Any) -> Header:
    d = expect_fields(data, HEADER_FIELDS, "header")
    return Header(
        chain_id=expect_str(d["chain_id"], "header.chain_id"),
        height=expect_int(d["height"], "header.height", minimum=1),
        time=expect_int(d["time"], "header.time", minimum=0),
        prev_hash=from_hex(d["prev_hash"], field="header.prev_hash", length=32),
        tx_root=from_hex(d["tx_root"], field="header.tx_root", length=32),
        validators_hash=from_hex(d["validators_hash"], field="header.validators_hash", length=32),
        last_commit_hash=from_hex(
            d["last_commit_hash"], field="header.last_commit_hash", length=32
        ),
        state_hash=from_hex(d["state_hash"], field="header.state_hash", length=32),
        proposer=expect_str(d["proposer"], "header.proposer"),
        nonce=expect_int(d["nonce"], "header.nonce", minimum=0),
    )


def header_bytes(header: Header) -> bytes:
    return encode(header_to_dict(header))


def block_id(header: Header) -> bytes:
    """SHA-256 of the canonical header: the block's identity, signed by precommits."""
    return hashlib.sha256(header_bytes(header)).digest()


def commit_to_dict(commit: Commit) -> dict[str, Any]:
    return {
        "height": commit.height,
        "round": commit.round,
        "block_id": commit.block_id.hex(),
        "signatures": [
            {"validator": s.validator, "signature": s.signature.hex()} for s in commit.signatures
        ],
    }


def commit_from_dict(data: Any) -> Commit:
    d = expect_fields(data, ("height", "round", "block_id", "signatures"), "commit")
    sigs = d["signatures"]
    if not isinstance(sigs, list):
        raise EncodingError("commit.signatures: expected a list")
    parsed = []
    for i, s in enumerate(sigs):
        e = expect_fields(s, ("validator", "signature"), f"commit.signatures[{i}]")
        parsed.append(
            CommitSig(
                validator=expect_str(e["validator"], f"commit.signatures[{i}].validator"),
                signature=from_hex(
                    e["signature"], field=f"commit.signatures[{i}].signature", length=64
                ),
            )
        )
    return Commit(
        height=expect_int(d["height"], "commit.height", minimum=1),
        round=expect_int(d["round"], "commit.round", minimum=0),
        block_id=from_hex(d["block_id"], field="commit.block_id", length=32),
        signatures=tuple(parsed),
    )


def commit_bytes(commit: Commit) -> bytes:
    return encode(commit_to_dict(commit))


def commit_hash(commit: Commit | None) -> bytes:
    """The hash bound into the next header (zeros when there is no certificate)."""
    if commit is None:
        return bytes(32)
    return digest(DOMAIN_COMMIT, commit_to_dict(commit))


def validator_to_dict(v: Validator) -> dict[str, Any]:
    return {"address": v.address, "public_key": v.public_key.hex(), "power": v.power}


def validator_set_to_list(vset: ValidatorSet) -> list[dict[str, Any]]:
    return [validator_to_dict(v) for v in vset.validators]


def validators_hash(vset: ValidatorSet) -> bytes:
    return digest(DOMAIN_VALIDATORS, validator_set_to_list(vset))


def tx_record(tx: Tx) -> dict[str, Any]:
    """The decoded record of a transaction; raises ``EncodingError`` if not canonical."""
    record = decode(tx.data)
    if not isinstance(record, dict):
        raise EncodingError("transaction: expected a JSON object")
    return record


def tx_hash(tx: Tx) -> bytes:
    return hashlib.sha256(tx.data).digest()


def block_to_dict(block: Block) -> dict[str, Any]:
    """A block as canonical data (transactions embedded as their records)."""
    return {"header": header_to_dict(block.header), "txs": [tx_record(t) for t in block.txs]}


def block_bytes(block: Block) -> bytes:
    """``encode(block_to_dict(block))``, spliced from the transactions' own canonical bytes
    instead of decoding and re-encoding each of them."""
    txs = b",".join(t.data for t in block.txs)
    return b'{"header":' + header_bytes(block.header) + b',"txs":[' + txs + b"]}"


def read_block(
    text: str, pos: int = 0, *, known: Callable[[str, int], int | None] | None = None
) -> tuple[Block, int]:
    """Parse the ``block_bytes`` form that starts at ``text[pos]``; return it and its end.

    The header must be canonical; each transaction is sliced out as it stands, its canonical
    form left to transaction validation (which refuses anything else), so a block is not
    re-encoded on its way in. ``known(text, at)``: where a transaction the reader has
    already checked ends, if one starts at ``at`` (``read_known_txs``). Raises
    ``EncodingError``.
    """
    pos = expect_literal(text, pos, '{"header":')
    raw_header, end = scan(text, pos)
    if encode_decoded(raw_header) != text[pos:end].encode("utf-8"):
        raise EncodingError("block.header: not in canonical form")
    header = header_from_dict(raw_header)
    at = expect_literal(text, end, ',"txs":')
    txs, pos = read_txs(text, at) if known is None else read_known_txs(text, at, known)
    return Block(header=header, txs=txs), expect_literal(text, pos, "}")


def read_known_txs(
    text: str, pos: int, known: Callable[[str, int], int | None]
) -> tuple[tuple[Tx, ...], int]:
    """``read_txs`` for a list of transactions the reader has mostly seen before (a
    proposal whose transactions were gossiped first): ``known`` gives where one it checked
    ends (``CheckedTxs.end_of``: a whole JSON object, so that is its end), without parsing
    it; one that is not known is parsed (``scan``)."""
    pos = expect_literal(text, pos, "[")
    txs: list[Tx] = []
    if text.startswith("]", pos):
        return (), pos + 1
    while True:
        end = known(text, pos) if text.startswith("{", pos) else None
        if end is None:
            record, end = scan(text, pos)
            if not isinstance(record, dict):
                raise EncodingError("txs: expected objects")
        txs.append(Tx(text[pos:end].encode("utf-8")))
        if text.startswith("]", end):
            return tuple(txs), end + 1
        pos = expect_literal(text, end, ",")


def read_txs(text: str, pos: int) -> tuple[tuple[Tx, ...], int]:
    """Parse a JSON list of transaction records at ``text[pos]``, each sliced out as its
    bytes (their canonical form is for transaction validation to check); return the end."""
    txs, _, end = read_txs_parsed(text, pos)
    return txs, end


def read_txs_parsed(text: str, pos: int) -> tuple[tuple[Tx, ...], tuple[dict[str, Any], ...], int]:
    """``read_txs``, with the record each transaction parsed to on the way (so validation
    need not parse it again: it only checks that the record encodes back to the bytes)."""
    pos = expect_literal(text, pos, "[")
    txs: list[Tx] = []
    records: list[dict[str, Any]] = []
    if text.startswith("]", pos):
        return (), (), pos + 1
    while True:
        record, end = scan(text, pos)
        if not isinstance(record, dict):
            raise EncodingError("txs: expected objects")
        txs.append(Tx(text[pos:end].encode("utf-8")))
        records.append(record)
        if text.startswith("]", end):
            return tuple(txs), tuple(records), end + 1
        pos = expect_literal(text, end, ",")


def expect_literal(text: str, pos: int, literal: str) -> int:
    """The offset after ``literal``, which must stand at ``text[pos]`` (else ``EncodingError``)."""
    if not text.startswith(literal, pos):
        raise EncodingError(f"expected {literal!r} at offset {pos}, got {text[pos : pos + 20]!r}")
    return pos + len(literal)


def block_from_dict(data: Any) -> Block:
    d = expect_fields(data, ("header", "txs"), "block")
    if not isinstance(d["txs"], list):
        raise EncodingError("block.txs: expected a list")
    return Block(header=header_from_dict(d["header"]), txs=tuple(Tx(encode(t)) for t in d["txs"]))


def vote_to_dict(vote: Vote) -> dict[str, Any]:
    return {
        "chain_id": vote.chain_id,
        "height": vote.height,
        "round": vote.round,
        "kind": str(vote.kind),
        "block_id": None if vote.block_id is None else vote.block_id.hex(),
        "validator": vote.validator,
        "signature": vote.signature.hex(),
    }


def vote_from_dict(data: Any) -> Vote:
    fields = ("chain_id", "height", "round", "kind", "block_id", "validator", "signature")
    d = expect_fields(data, fields, "vote")
    kind = d["kind"]
    if kind not in {k.value for k in VoteKind}:
        raise EncodingError(f"vote.kind: expected prevote or precommit, got {kind!r}")
    raw_block = d["block_id"]
    return Vote(
        chain_id=expect_str(d["chain_id"], "vote.chain_id"),
        height=expect_int(d["height"], "vote.height", minimum=1),
        round=expect_int(d["round"], "vote.round", minimum=0),
        kind=VoteKind(kind),
        block_id=None
        if raw_block is None
        else from_hex(raw_block, field="vote.block_id", length=32),
        validator=expect_str(d["validator"], "vote.validator"),
        signature=from_hex(d["signature"], field="vote.signature", length=64),
    )
