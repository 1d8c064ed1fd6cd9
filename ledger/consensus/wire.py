"""Messages between validators (and from clients) on a websocket: one JSON object a frame.

``{"type": ..., ...}`` with canonical data for every field; parsing checks the shape and
raises :class:`~ledger.errors.EncodingError`, so a bad frame is dropped, never half-read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.canonical import encode, encode_decoded, scan
from ledger.codec import (
    block_bytes,
    block_from_dict,
    block_to_dict,
    commit_bytes,
    commit_from_dict,
    commit_to_dict,
    expect_literal,
    read_block,
    read_txs_parsed,
    tx_record,
)
from ledger.consensus.codec import (
    proposal_from_dict,
    proposal_to_dict,
    vote_from_dict,
    vote_to_dict,
)
from ledger.consensus.handshake import Auth, Hello, Role
from ledger.consensus.messages import Proposal
from ledger.errors import EncodingError
from ledger.tx import CanonicalRecord
from ledger.types import Block, Commit, Tx, Vote


@dataclass(frozen=True, slots=True)
class Status:
    """A validator's committed height, sent periodically (peers ahead answer with blocks)."""

    address: str
    height: int


@dataclass(frozen=True, slots=True)
class GetStatus:
    """A client asks for the validator's ``Status``."""


@dataclass(frozen=True, slots=True)
class GetBlocks:
    from_height: int


@dataclass(frozen=True, slots=True)
class BlockMsg:
    """A stored block and its certificate (for the sender's top block, the quorum of
    precommits it decided on; below it, the canonical one its successor binds).

    ``last_commit``: the sender's certificate of the block below, sent with the first block
    of a run, so the receiver can bind the canonical one in place of its own.
    """

    block: Block
    commit: Commit
    last_commit: Commit | None = None


@dataclass(frozen=True, slots=True)
class TxMsg:
    """A transaction gossiped to peers (``submit`` False) or submitted by a client."""

    tx: Tx
    submit: bool = False


@dataclass(frozen=True, slots=True)
class TxBatch:
    """Transactions gossiped to peers together (one frame instead of one each).

    ``records``: as read from a frame, each transaction's parsed record, so that admitting
    it does not parse it again (a ``CanonicalRecord`` when the frame was read in one parse
    and found canonical: its bytes are then not checked again); None when sent."""

    txs: tuple[Tx, ...]
    records: tuple[dict[str, Any], ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A submitted transaction is committed at (height, index) of block ``block_id``.

    ``tx_hash`` names the transaction, so a client may have many submissions in flight on
    one connection (empty from older validators).
    """

    height: int
    index: int
    block_id: bytes
    tx_hash: bytes = b""


@dataclass(frozen=True, slots=True)
class SubmitBatch:
    """Submissions in one frame (a submitter whose validator declared ``batches``): each
    transaction is answered as a ``TxMsg`` submission would be."""

    txs: tuple[Tx, ...]
    records: tuple[dict[str, Any], ...] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Receipts:
    """Receipts in one frame (to a client that declared ``batches``): those of one
    connection's submissions that one block committed, or that were answered together."""

    receipts: tuple[Receipt, ...]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A submitted transaction is invalid (``tx_hash`` names it, as for ``Receipt``)."""

    reason: str
    tx_hash: bytes = b""


@dataclass(frozen=True, slots=True)
class Busy:
    """A submission refused for now: its connection (or the validator) has too many
    waiting. Nothing was admitted; the client may retry later or elsewhere."""

    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class GetReceipt:
    """Ask for the self-contained receipt of a settlement, waiting up to ``wait_ms`` for its
    block to be decided (a block is stored the moment it is decided)."""

    settlement_id: str
    wait_ms: int = 0


@dataclass(frozen=True, slots=True)
class ReceiptDoc:
    """The answer to ``GetReceipt``: ``receipt_to_dict`` of the receipt, or None if the
    validator's store does not hold the settlement (yet)."""

    settlement_id: str
    document: dict[str, Any] | None


Message = (
    Proposal
    | Vote
    | Status
    | GetBlocks
    | BlockMsg
    | TxMsg
    | TxBatch
    | SubmitBatch
    | Receipt
    | Receipts
    | Rejected
    | Busy
    | GetReceipt
    | ReceiptDoc
    | GetStatus
    | Hello
    | Auth
)


def dump(msg: Message) -> str:
    """One frame's text: the canonical encoding of the message's object form.

    Transactions are spliced in as their canonical bytes (no decoding, no re-encoding).
    """
    if isinstance(msg, TxMsg):
        kind = "submit" if msg.submit else "tx"
        return '{"tx":' + msg.tx.data.decode("utf-8") + ',"type":"' + kind + '"}'
    if isinstance(msg, TxBatch | SubmitBatch):
        kind = "txs" if isinstance(msg, TxBatch) else SUBMIT_BATCH
        txs = b",".join(t.data for t in msg.txs).decode("utf-8")
        return '{"txs":[' + txs + '],"type":"' + kind + '"}'
    if isinstance(msg, Proposal):
        return _dump_proposal(msg)
    if isinstance(msg, BlockMsg):
        block, commit = block_bytes(msg.block), commit_bytes(msg.commit)
        last = b"null" if msg.last_commit is None else commit_bytes(msg.last_commit)
        tail = b',"last_commit":' + last + b',"type":"block"}'
        return (b'{"block":' + block + b',"commit":' + commit + tail).decode("utf-8")
    return encode(_to_dict(msg)).decode()


def _to_dict(msg: Message) -> dict[str, Any]:
    if isinstance(msg, Proposal):
        return {"type": "proposal", "proposal": proposal_to_dict(msg)}
    if isinstance(msg, Vote):
        return {"type": "vote", "vote": vote_to_dict(msg)}
    if isinstance(msg, Status):
        return {"type": "status", "address": msg.address, "height": msg.height}
    if isinstance(msg, GetBlocks):
        return {"type": "get_blocks", "from_height": msg.from_height}
    if isinstance(msg, BlockMsg):
        return {
            "type": "block",
            "block": block_to_dict(msg.block),
            "commit": commit_to_dict(msg.commit),
            "last_commit": None if msg.last_commit is None else commit_to_dict(msg.last_commit),
        }
    if isinstance(msg, TxMsg):
        return {"type": "submit" if msg.submit else "tx", "tx": tx_record(msg.tx)}
    if isinstance(msg, TxBatch | SubmitBatch):
        kind = "txs" if isinstance(msg, TxBatch) else SUBMIT_BATCH
        return {"type": kind, "txs": [tx_record(t) for t in msg.txs]}
    if isinstance(msg, Receipt):
        return {"type": "receipt", **_receipt_fields(msg)}
    if isinstance(msg, Receipts):
        return {"type": "receipts", "receipts": [_receipt_fields(r) for r in msg.receipts]}
    if isinstance(msg, GetReceipt):
        return {"type": "get_receipt", "settlement_id": msg.settlement_id, "wait_ms": msg.wait_ms}
    if isinstance(msg, ReceiptDoc):
        return {"type": "receipt_doc", "settlement_id": msg.settlement_id, "doc": msg.document}
    if isinstance(msg, GetStatus):
        return {"type": "get_status"}
    if isinstance(msg, Busy):
        return {"type": "busy", "tx_hash": msg.tx_hash.hex()}
    if isinstance(msg, Hello):
        hello: dict[str, Any] = {
            "type": "hello",
            "chain_id": msg.chain_id,
            "nonce": msg.nonce.hex(),
            "role": str(msg.role),
        }
        if msg.features:
            hello["features"] = list(msg.features)
        return hello
    if isinstance(msg, Auth):
        return {"type": "auth", "address": msg.address, "sig": msg.signature.hex()}
    return {"type": "rejected", "reason": msg.reason, "tx_hash": msg.tx_hash.hex()}


def _receipt_fields(msg: Receipt) -> dict[str, Any]:
    return {
        "height": msg.height,
        "index": msg.index,
        "block_id": msg.block_id.hex(),
        "tx_hash": msg.tx_hash.hex(),
    }


def _receipt(data: Any) -> Receipt:
    if not isinstance(data, dict):
        raise EncodingError("receipt: expected an object")
    return Receipt(
        _int(data["height"]),
        _int(data["index"]),
        bytes.fromhex(_str(data["block_id"])),
        bytes.fromhex(_str(data.get("tx_hash", ""))),
    )


SUBMIT_BATCH = "submit_txs"
MAX_FEATURES = 16


def load(text: str | bytes) -> Message:
    """Parse one frame; raise ``EncodingError`` on anything malformed.

    A transaction is taken as the bytes it has in the frame; transaction validation refuses
    any that are not canonical.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"frame is not UTF-8: {exc}") from exc
    for suffix, submit in ((',"type":"tx"}', False), (',"type":"submit"}', True)):
        if text.startswith('{"tx":{') and text.endswith(suffix):
            return TxMsg(Tx(text[6 : -len(suffix)].encode("utf-8")), submit=submit)
    if text.startswith('{"proposal":{') and not text.endswith('"type":"proposal"}'):
        return _load_proposal(text)
    if text.startswith('{"block":{"header":'):
        return _load_block(text)
    if text.startswith('{"txs":['):
        batched = SUBMIT_BATCH if text.endswith(f',"type":"{SUBMIT_BATCH}"}}') else "txs"
        batch = _read_canonical_batch(text, batched)
        if batch is None:
            txs, records, end = read_txs_parsed(text, 7)
            if text[end:] != f',"type":"{batched}"}}':
                raise EncodingError(f"{batched} frame: trailing data")
            batch = TxBatch(txs, records)
        return batch if batched == "txs" else SubmitBatch(batch.txs, batch.records)
    try:
        data = orjson.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EncodingError(f"frame is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EncodingError("frame: expected an object")
    kind = data.get("type")
    try:
        if kind == "proposal":
            return proposal_from_dict(data["proposal"])
        if kind == "vote":
            return vote_from_dict(data["vote"])
        if kind == "status":
            return Status(_str(data["address"]), _int(data["height"]))
        if kind == "get_blocks":
            return GetBlocks(_int(data["from_height"]))
        if kind == "block":
            last = data["last_commit"]
            return BlockMsg(
                block_from_dict(data["block"]),
                commit_from_dict(data["commit"]),
                None if last is None else commit_from_dict(last),
            )
        if kind in ("tx", "submit"):
            return TxMsg(Tx(encode(data["tx"])), submit=kind == "submit")
        if kind == "receipt":
            return _receipt(data)
        if kind == "receipts":
            receipts = data["receipts"]
            if not isinstance(receipts, list):
                raise EncodingError("receipts: expected a list")
            return Receipts(tuple(_receipt(r) for r in receipts))
        if kind == "rejected":
            return Rejected(_str(data["reason"]), bytes.fromhex(_str(data.get("tx_hash", ""))))
        if kind == "get_receipt":
            return GetReceipt(_str(data["settlement_id"]), _int(data["wait_ms"]))
        if kind == "receipt_doc":
            doc = data["doc"]
            if doc is not None and not isinstance(doc, dict):
                raise EncodingError("receipt_doc: doc must be an object or null")
            return ReceiptDoc(_str(data["settlement_id"]), doc)
        if kind == "get_status":
            return GetStatus()
        if kind == "busy":
            return Busy(bytes.fromhex(_str(data["tx_hash"])))
        if kind == "hello":
            role = _str(data["role"])
            if role not in tuple(Role):
                raise EncodingError(f"hello: role must be one of {[str(r) for r in Role]}")
            nonce = bytes.fromhex(_str(data["nonce"]))
            features = data.get("features", [])
            if not isinstance(features, list) or len(features) > MAX_FEATURES:
                raise EncodingError(f"hello: features must be a list of at most {MAX_FEATURES}")
            named = tuple(_str(f) for f in features)
            return Hello(_str(data["chain_id"]), nonce, Role(role), named)
        if kind == "auth":
            return Auth(_str(data["address"]), bytes.fromhex(_str(data["sig"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise EncodingError(f"{kind} frame: {exc}") from exc
    raise EncodingError(f"unknown frame type {kind!r:.40}")


def _read_canonical_batch(text: str, kind: str = "txs") -> TxBatch | None:
    """A ``txs`` frame read in one parse, when it is exactly the canonical encoding of what
    it holds (as a validator sends it): each transaction's bytes are then the canonical
    encoding of its record. None otherwise: the frame is read a transaction at a time,
    each taken as the bytes it has, for validation to judge."""
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(frame) is not dict or frame.keys() != {"txs", "type"} or frame["type"] != kind:
        return None
    records = frame["txs"]
    if type(records) is not list or not all(type(r) is dict for r in records):
        return None
    try:
        datas = [encode_decoded(r) for r in records]
    except (UnicodeError, RecursionError, ValueError):
        return None
    tail = b'],"type":"' + kind.encode() + b'"}'
    if b'{"txs":[' + b",".join(datas) + tail != text.encode("utf-8"):
        return None
    return TxBatch(
        tuple(Tx(d) for d in datas),
        tuple(CanonicalRecord(r, d) for r, d in zip(records, datas, strict=True)),
    )


def _dump_proposal(p: Proposal) -> str:
    """A proposal whose value (a block: canonical JSON) travels as itself, not as hex:
    ``{"proposal": {fields but value}, "type": "proposal", "value": <value>}``. A value that
    is not UTF-8 text goes in the plain hex form."""
    try:
        value = p.value.decode("utf-8")
    except UnicodeDecodeError:
        return encode(_to_dict(p)).decode()
    fields = proposal_to_dict(p, with_value=False)
    return '{"proposal":' + encode(fields).decode() + ',"type":"proposal","value":' + value + "}"


def _load_proposal(text: str) -> Proposal:
    """Read ``_dump_proposal``'s form: the value is the text up to the closing brace (taken
    as it stands: whether it is a valid block is for consensus to decide)."""
    fields, end = scan(text, len('{"proposal":'))
    pos = expect_literal(text, end, ',"type":"proposal","value":')
    if not isinstance(fields, dict) or not text.endswith("}"):
        raise EncodingError("proposal frame: malformed")
    try:
        shell = proposal_from_dict({**fields, "value": ""})
    except (KeyError, TypeError, ValueError) as exc:
        raise EncodingError(f"proposal frame: {exc}") from exc
    return dataclasses.replace(shell, value=text[pos:-1].encode("utf-8"))


def _load_block(text: str) -> BlockMsg:
    """A block frame, its transactions sliced out as they stand (``read_block``)."""
    block, pos = read_block(text, len('{"block":'))
    raw, end = scan(text, expect_literal(text, pos, ',"commit":'))
    try:
        commit = commit_from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise EncodingError(f"block frame: {exc}") from exc
    raw_last, end = scan(text, expect_literal(text, end, ',"last_commit":'))
    if text[end:] != ',"type":"block"}':
        raise EncodingError("block frame: expected last_commit and type after the commit")
    try:
        last = None if raw_last is None else commit_from_dict(raw_last)
    except (KeyError, TypeError, ValueError) as exc:
        raise EncodingError(f"block frame: {exc}") from exc
    return BlockMsg(block, commit, last)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"expected an integer, got {value!r:.40}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise EncodingError(f"expected a string, got {value!r:.40}")
    return value
