"""Receipts: a settlement with the evidence that the chain committed it, checkable offline.

A receipt holds the settlement transaction, its Merkle path to the header's ``tx_root``,
the header, and the commit certificate of that block. ``verify_receipt`` needs nothing
but the genesis document: the certificate must be a quorum of the genesis validator set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.amounts import PricedInterval, settlement_amount
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
)
from ledger.errors import (
    EncodingError,
    LedgerError,
    ProofError,
    ReceiptError,
    StoreError,
)
from ledger.genesis import Genesis
from ledger.keys import verify
from ledger.merkle import inclusion_proof, verify_inclusion
from ledger.pow import leading_zero_bits
from ledger.schema import check_record
from ledger.store import BlockStore
from ledger.tx import CREDIT, SETTLEMENT, tx_signing_bytes
from ledger.types import Commit, Header, Tx
from ledger.validator_history import (
    ValidatorChange,
    change_from_dict,
    change_to_dict,
    check_certified,
    collect_changes,
    verify_set_at,
)

RECEIPT_TYPE = "v2g-receipt"
RECEIPT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Receipt:
    settlement: Tx
    tx_index: int
    tx_count: int
    merkle_path: tuple[bytes, ...]
    header: Header
    commit: Commit | None
    validator_changes: tuple[ValidatorChange, ...] = ()


def receipt_to_dict(r: Receipt) -> dict[str, Any]:
    return {
        "type": RECEIPT_TYPE,
        "version": RECEIPT_VERSION,
        "settlement": tx_record(r.settlement),
        "tx_index": r.tx_index,
        "tx_count": r.tx_count,
        "merkle_path": [p.hex() for p in r.merkle_path],
        "header": header_to_dict(r.header),
        "block_id": block_id(r.header).hex(),
        "commit": None if r.commit is None else commit_to_dict(r.commit),
        "validator_changes": [change_to_dict(c) for c in r.validator_changes],
    }


def receipt_from_dict(data: Any) -> Receipt:
    """Parse a receipt; raise ``ReceiptError`` naming what is malformed."""
    fields = (
        "type",
        "version",
        "settlement",
        "tx_index",
        "tx_count",
        "merkle_path",
        "header",
        "block_id",
        "commit",
        "validator_changes",
    )
    try:
        d = expect_fields(data, fields, "receipt")
        if d["type"] != RECEIPT_TYPE or d["version"] != RECEIPT_VERSION:
            raise ReceiptError(f"not a {RECEIPT_TYPE} version {RECEIPT_VERSION}")
        if not isinstance(d["merkle_path"], list) or not isinstance(d["validator_changes"], list):
            raise ReceiptError("merkle_path: expected a list")
        header = header_from_dict(d["header"])
        if from_hex(d["block_id"], field="block_id", length=32) != block_id(header):
            raise ReceiptError("block_id does not match the header")
        return Receipt(
            settlement=Tx(encode(d["settlement"])),
            tx_index=expect_int(d["tx_index"], "tx_index", minimum=0),
            tx_count=expect_int(d["tx_count"], "tx_count", minimum=1),
            merkle_path=tuple(
                from_hex(p, field="merkle_path", length=32) for p in d["merkle_path"]
            ),
            header=header,
            commit=None if d["commit"] is None else commit_from_dict(d["commit"]),
            validator_changes=tuple(change_from_dict(c) for c in d["validator_changes"]),
        )
    except EncodingError as exc:
        raise ReceiptError(f"malformed receipt: {exc}") from exc


async def build_receipt(store: BlockStore, settlement_id: str) -> Receipt:
    """The receipt of a committed settlement; ``StoreError`` if the store does not hold it."""
    where = await store.find_settlement(settlement_id)
    if where is None:
        raise StoreError(f"settlement {settlement_id} is not in the store")
    height, index = where
    stored = await store.get(height)
    if stored is None or index >= len(stored.block.txs):
        raise StoreError(f"settlement {settlement_id}: index points past block {height}")
    leaves = [t.data for t in stored.block.txs]
    return Receipt(
        settlement=stored.block.txs[index],
        tx_index=index,
        tx_count=len(leaves),
        merkle_path=tuple(inclusion_proof(leaves, index)),
        header=stored.block.header,
        commit=stored.commit,
        validator_changes=await collect_changes(store, height - 2),
    )


def _check_settlement(record: dict[str, Any], genesis: Genesis) -> None:
    kind = check_record(record)
    if kind not in (SETTLEMENT, CREDIT):
        raise ReceiptError(f"receipt holds a {kind}, not a settlement")
    for name in ("import_wh", "export_wh"):
        if sum(i[name] for i in record["intervals"]) != record["energy"][name]:
            raise ReceiptError(f"intervals' {name} do not sum to the energy total")
    rule = settlement_amount(
        PricedInterval(i["import_wh"], i["export_wh"], i["import_price"], i["export_price"])
        for i in record["intervals"]
    )
    if rule != record["amount"]:
        raise ReceiptError(
            f"amount: expected {rule} by the rounding rule, received {record['amount']}"
        )
    key = genesis.csms_keys.get(record["signer"])
    sig = bytes.fromhex(record["sig"])
    if key is not None and not verify(key, tx_signing_bytes(record, genesis.chain_id), sig):
        raise ReceiptError(f"settlement signature does not verify under {record['signer']}")


def verify_receipt(receipt: Receipt, genesis: Genesis) -> None:
    """Raise ``ReceiptError`` unless the receipt proves its settlement was committed.

    Checks the settlement's schema, amount rule and (when the signer is a genesis key)
    its signature; its Merkle path to the header's tx root; and the block's commit
    certificate against the genesis validator set, changed by the validator changes the
    receipt carries (or the PoW target).
    """
    header = receipt.header
    if header.chain_id != genesis.chain_id:
        raise ReceiptError(f"chain_id: expected {genesis.chain_id}, received {header.chain_id}")
    try:
        record = tx_record(receipt.settlement)
        _check_settlement(record, genesis)
        verify_inclusion(
            receipt.settlement.data,
            receipt.tx_index,
            receipt.tx_count,
            receipt.merkle_path,
            header.tx_root,
        )
    except ProofError as exc:
        raise ReceiptError(f"settlement is not in the block: {exc}") from exc
    except ReceiptError:
        raise
    except LedgerError as exc:
        raise ReceiptError(f"settlement: {exc}") from exc
    bid = block_id(header)
    if genesis.sealing == "pow":
        if leading_zero_bits(bid) < genesis.pow_bits:
            raise ReceiptError(f"block id does not meet the {genesis.pow_bits}-bit PoW target")
        return
    vset = verify_set_at(
        genesis.validators,
        receipt.validator_changes,
        chain_id=genesis.chain_id,
        header=header,
    )
    check_certified(vset, header, receipt.commit, genesis.chain_id)
