"""The validator-set changes a receipt carries, so it verifies offline from genesis alone.

A receipt for a block signed by a set other than genesis's also carries every block that
changed the set up to it: its header, its certificate, and its ``validator_update``
transactions with Merkle paths. The verifier starts from the genesis set and walks the
changes (each takes effect two heights after its block), checking each block with the
set then in force. Omitting a change cannot forge anything: the set the verifier computes
would no longer match the ``validators_hash`` the certified headers carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.canonical import encode, from_hex
from ledger.codec import (
    block_id,
    commit_from_dict,
    commit_to_dict,
    expect_fields,
    expect_int,
    header_from_dict,
    header_to_dict,
    tx_record,
    validators_hash,
)
from ledger.commit import verify_commit
from ledger.errors import EncodingError, LedgerError, ReceiptError
from ledger.merkle import inclusion_proof, verify_inclusion
from ledger.schema import check_record
from ledger.store import BlockStore
from ledger.tx import VALIDATOR_UPDATE
from ledger.types import Commit, Header, Tx, ValidatorSet
from ledger.validation import updated_validators


@dataclass(frozen=True, slots=True)
class IncludedTx:
    """A transaction with its index and Merkle path in its block."""

    tx: Tx
    index: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ValidatorChange:
    """A certified block that changed the validator set, and the changing transactions."""

    header: Header
    commit: Commit
    tx_count: int
    updates: tuple[IncludedTx, ...]


def change_to_dict(c: ValidatorChange) -> dict[str, Any]:
    return {
        "header": header_to_dict(c.header),
        "commit": commit_to_dict(c.commit),
        "tx_count": c.tx_count,
        "updates": [
            {"tx": tx_record(u.tx), "index": u.index, "path": [p.hex() for p in u.path]}
            for u in c.updates
        ],
    }


def change_from_dict(data: Any) -> ValidatorChange:
    """Parse one change; raises ``EncodingError`` when malformed."""
    d = expect_fields(data, ("header", "commit", "tx_count", "updates"), "validator_change")
    if not isinstance(d["updates"], list):
        raise EncodingError("validator_change.updates: expected a list")
    updates = []
    for u in d["updates"]:
        e = expect_fields(u, ("tx", "index", "path"), "validator_change.updates[]")
        if not isinstance(e["path"], list):
            raise EncodingError("validator_change.updates[].path: expected a list")
        updates.append(
            IncludedTx(
                tx=Tx(encode(e["tx"])),
                index=expect_int(e["index"], "index", minimum=0),
                path=tuple(from_hex(p, field="path", length=32) for p in e["path"]),
            )
        )
    return ValidatorChange(
        header=header_from_dict(d["header"]),
        commit=commit_from_dict(d["commit"]),
        tx_count=expect_int(d["tx_count"], "tx_count", minimum=1),
        updates=tuple(updates),
    )


async def collect_changes(store: BlockStore, up_to: int) -> tuple[ValidatorChange, ...]:
    """Every block at or below ``up_to`` holding a validator update, with proofs."""
    changes = []
    for height in await store.change_heights(up_to):  # kept by the store: no scan
        stored = await store.get(height)
        if stored is None or stored.commit is None:
            break
        txs = stored.block.txs
        indexes = [i for i, t in enumerate(txs) if tx_record(t).get("type") == VALIDATOR_UPDATE]
        if not indexes:
            continue
        leaves = [t.data for t in txs]
        updates = tuple(IncludedTx(txs[i], i, tuple(inclusion_proof(leaves, i))) for i in indexes)
        changes.append(ValidatorChange(stored.block.header, stored.commit, len(txs), updates))
    return tuple(changes)


def validator_set_at(
    genesis_set: ValidatorSet, changes: tuple[ValidatorChange, ...], height: int
) -> ValidatorSet:
    """The set in force at ``height``: genesis's, changed by updates committed at <= height-2."""
    vset = genesis_set
    for change in changes:
        if change.header.height > height - 2:
            break
        for update in sorted(change.updates, key=lambda u: u.index):
            try:
                vset = updated_validators(tx_record(update.tx), vset)
            except LedgerError as exc:
                raise ReceiptError(
                    f"validator change at height {change.header.height}: {exc}"
                ) from exc
    return vset


def verify_set_at(
    genesis_set: ValidatorSet,
    changes: tuple[ValidatorChange, ...],
    *,
    chain_id: str,
    header: Header,
) -> ValidatorSet:
    """Check every change, then return the set that must have certified ``header``."""
    last = 0
    for change in changes:
        h = change.header.height
        if h <= last or h >= header.height:
            raise ReceiptError(f"validator change at height {h} is out of order")
        last = h
        if change.header.chain_id != chain_id:
            raise ReceiptError(f"validator change at height {h}: chain_id {change.header.chain_id}")
        check_certified(
            validator_set_at(genesis_set, changes, h), change.header, change.commit, chain_id
        )
        for update in change.updates:
            try:
                if check_record(tx_record(update.tx)) != VALIDATOR_UPDATE:
                    raise ReceiptError(f"validator change at height {h}: not a validator update")
                verify_inclusion(
                    update.tx.data,
                    update.index,
                    change.tx_count,
                    update.path,
                    change.header.tx_root,
                )
            except ReceiptError:
                raise
            except LedgerError as exc:
                raise ReceiptError(f"validator change at height {h}: {exc}") from exc
    return validator_set_at(genesis_set, changes, header.height)


def check_certified(
    vset: ValidatorSet, header: Header, commit: Commit | None, chain_id: str
) -> None:
    """``header`` names ``vset`` and ``commit`` is a quorum of ``vset`` for it."""
    h = header.height
    if header.validators_hash != validators_hash(vset):
        raise ReceiptError(
            f"height {h}: the header names a validator set other than the one computed from "
            f"genesis and the receipt's validator changes"
        )
    if commit is None:
        raise ReceiptError(f"height {h}: no commit certificate")
    if commit.height != h or commit.block_id != block_id(header):
        raise ReceiptError(f"height {h}: the commit certificate is for another block")
    try:
        verify_commit(commit, vset, chain_id)
    except LedgerError as exc:
        raise ReceiptError(f"commit certificate: {exc}") from exc
