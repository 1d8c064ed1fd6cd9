"""Applying transactions and blocks: a block and a state in, a new state out.

``apply_block`` validates every transaction against the state as the previous ones in
the block left it, and returns a new ``State``; the old one is untouched. A mutable
working copy lives only inside one call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.canonical import encode
from ledger.checked import CheckedTxs
from ledger.codec import block_id
from ledger.errors import SchemaError, TxError
from ledger.keys import key_id
from ledger.layered import Overlay, OverlaySet
from ledger.state import SettledRef, State, derive_map, derive_set, frozen_map
from ledger.tx import (
    CREDIT,
    EVIDENCE,
    KEY_AUTHORISATION,
    SETTLEMENT,
    TOPUP,
    VALIDATOR_UPDATE,
    ev_account,
    operator_account,
)
from ledger.types import Block, Tx, ValidatorSet
from ledger.validation import evidence_id, updated_validators, validate_checked


@dataclass(slots=True)
class WorkingState:
    """A mutable copy of the parts of a state one block can change."""

    chain_id: str
    next_validators: ValidatorSet
    csms_keys: Mapping[str, bytes]
    next_csms_keys: dict[str, bytes]
    aggregator_id: str
    aggregator_key: bytes
    balances: Overlay[str, int]
    settlements: Overlay[str, SettledRef]
    settled_transactions: OverlaySet[tuple[str, str]]
    used_ids: OverlaySet[str]
    known_validators: dict[str, bytes]
    added: list[list[str | int]]

    @classmethod
    def from_state(cls, state: State) -> WorkingState:
        return cls(
            chain_id=state.chain_id,
            next_validators=state.next_validators,
            csms_keys=state.csms_keys,
            next_csms_keys=dict(state.next_csms_keys),
            aggregator_id=state.aggregator_id,
            aggregator_key=state.aggregator_key,
            balances=Overlay(state.balances),
            settlements=Overlay(state.settlements),
            settled_transactions=OverlaySet(state.settled_transactions),
            used_ids=OverlaySet(state.used_ids),
            known_validators=dict(state.known_validators),
            added=[],
        )


def _move(work: WorkingState, record: Mapping[str, Any]) -> None:
    """The paper's crypto-payment path: the net amount moves between EV and operator."""
    if record["payment"] != "ledger":
        return
    ev, op, amount = (
        ev_account(record["ev"]),
        operator_account(record["operator"]),
        record["amount"],
    )
    work.balances[ev] = work.balances.get(ev, 0) - amount
    work.balances[op] = work.balances.get(op, 0) + amount


def apply_record(work: WorkingState, record: Mapping[str, Any], height: int) -> None:
    """Apply one already validated record to the working copy."""
    kind = record["type"]
    if kind in (SETTLEMENT, CREDIT):
        work.settlements[record["settlement_id"]] = SettledRef(
            kind, record["operator"], record["transaction_id"], height
        )
        if kind == SETTLEMENT:
            work.settled_transactions.add((record["operator"], record["transaction_id"]))
        _move(work, record)
        work.added.append([kind, record["settlement_id"]])
        return
    if kind == TOPUP:
        used = f"topup:{record['topup_id']}"
        work.balances[record["account"]] = (
            work.balances.get(record["account"], 0) + record["amount"]
        )
    elif kind == VALIDATOR_UPDATE:
        used = f"update:{record['update_id']}"
        work.next_validators = updated_validators(record, work.next_validators)
        for v in work.next_validators.validators:
            work.known_validators.setdefault(v.address, v.public_key)
    elif kind == KEY_AUTHORISATION:
        used = f"update:{record['update_id']}"
        pub = bytes.fromhex(record["public_key"])
        if record["authorised"]:
            work.next_csms_keys[key_id(pub)] = pub
        else:
            work.next_csms_keys.pop(key_id(pub), None)
    elif kind == EVIDENCE:
        used = evidence_id(record)
    else:  # pragma: no cover - validate_record refuses unknown kinds
        raise SchemaError(f"unknown transaction type {kind!r}")
    work.used_ids.add(used)
    work.added.append([kind, used])


def apply_txs(
    state: State,
    txs: tuple[Tx, ...],
    *,
    time: int,
    block_hash: bytes,
    checked: CheckedTxs | None = None,
) -> State:
    """Validate and apply ``txs`` as block ``state.height + 1``; return the new state.

    ``checked``: transactions decoded and verified before (not again), kept for later calls.
    """
    height = state.height + 1
    work = WorkingState.from_state(state)
    for index, tx in enumerate(txs):
        try:
            record = validate_checked(tx, work, height=height, cache=checked)
        except TxError as exc:
            exc.add_note(f"transaction {index}")
            raise
        apply_record(work, record, height)
    for account, balance in sorted(work.balances.changes.items()):
        work.added.append(["balance", account, balance])
    history = state.history
    if work.added:
        history = hashlib.sha256(history + encode(work.added)).digest()
    return State(
        chain_id=state.chain_id,
        height=height,
        time=time,
        last_block_id=block_hash,
        validators=state.next_validators,
        next_validators=work.next_validators,
        csms_keys=state.next_csms_keys,
        next_csms_keys=frozen_map(work.next_csms_keys),
        aggregator_id=state.aggregator_id,
        aggregator_key=state.aggregator_key,
        balances=derive_map(state.balances, work.balances.changes),
        settlements=derive_map(state.settlements, work.settlements.changes),
        settled_transactions=derive_set(
            state.settled_transactions, work.settled_transactions.added
        ),
        used_ids=derive_set(state.used_ids, work.used_ids.added),
        history=history,
        sealing=state.sealing,
        pow_bits=state.pow_bits,
        known_validators=frozen_map(work.known_validators),
    )


def select_valid(
    state: State, txs: Iterable[Tx], *, time: int, checked: CheckedTxs | None = None
) -> list[Tx]:
    """Those of ``txs`` that apply in order as block ``state.height + 1``, skipping the ones
    that do not: what a proposer takes from its pending transactions, in one pass."""
    height = state.height + 1
    work = WorkingState.from_state(state)
    kept = []
    for tx in txs:
        try:
            record = validate_checked(tx, work, height=height, cache=checked)
        except TxError:
            continue
        apply_record(work, record, height)
        kept.append(tx)
    return kept


def apply_block(state: State, block: Block) -> State:
    """The state after ``block`` (its transactions only; headers are checked in ``chain``)."""
    return apply_txs(state, block.txs, time=block.header.time, block_hash=block_id(block.header))
