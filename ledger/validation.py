"""Transaction validation: pure checks of one record against the ledger as it stands.

``validate_record`` raises the ``TxError`` subclass that names the broken rule, with
what was expected and what was received; it never mutates anything. The order of the
checks is fixed: schema, signer, signature, then the rules of the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from ledger.amounts import interval_totals
from ledger.canonical import decode, is_canonical
from ledger.checked import Checked, CheckedTxs
from ledger.codec import vote_from_dict
from ledger.errors import (
    AmountMismatchError,
    BalanceRangeError,
    DuplicateSettlementError,
    DuplicateTransactionError,
    EncodingError,
    GenesisError,
    GovernanceError,
    InsufficientBalanceError,
    IntervalSumError,
    InvalidEvidenceError,
    NotAggregatorError,
    ReplayError,
    SchemaError,
    SignatureError,
    UnauthorisedSignerError,
    UnknownSettlementError,
)
from ledger.genesis import check_power_distribution
from ledger.keys import key_id, verify
from ledger.schema import INT_MAX, check_record
from ledger.signing import verify_vote
from ledger.state import SettledRef, State
from ledger.tx import (
    CREDIT,
    EVIDENCE,
    KEY_AUTHORISATION,
    SETTLEMENT,
    TOPUP,
    VALIDATOR_UPDATE,
    CanonicalRecord,
    ev_account,
    operator_account,
    tx_signing_bytes,
)
from ledger.types import Tx, Validator, ValidatorSet

MAX_TX_BYTES = 64 * 1024  # a settlement is ~1 KiB; this bounds what one tx can cost


class LedgerView(Protocol):
    """The parts of the state validation reads (``State`` and the block builder's copy)."""

    @property
    def chain_id(self) -> str: ...
    @property
    def next_validators(self) -> ValidatorSet: ...
    @property
    def csms_keys(self) -> Mapping[str, bytes]: ...
    @property
    def next_csms_keys(self) -> Mapping[str, bytes]: ...
    @property
    def aggregator_id(self) -> str: ...
    @property
    def aggregator_key(self) -> bytes: ...
    @property
    def balances(self) -> Mapping[str, int]: ...
    @property
    def settlements(self) -> Mapping[str, SettledRef]: ...
    @property
    def settled_transactions(self) -> AbstractSet[tuple[str, str]]: ...
    @property
    def used_ids(self) -> AbstractSet[str]: ...
    @property
    def known_validators(self) -> Mapping[str, bytes]: ...


def check_signature(
    record: Mapping[str, Any],
    public_key: bytes,
    chain_id: str,
    *,
    verified_key: bytes | None = None,
) -> None:
    """Raise ``SignatureError`` unless the record's signature verifies under ``public_key``.

    ``verified_key``: the key this very transaction already verified under (``checked``);
    when it is ``public_key`` the check is not repeated.
    """
    if verified_key is not None and verified_key == public_key:
        return
    # decoded=True: the schema check already proved every field a str, int, bool, list or dict
    message = tx_signing_bytes(record, chain_id, decoded=True)
    if not verify(public_key, message, bytes.fromhex(record["sig"])):
        raise SignatureError(
            f"{record['type']}: signature does not verify under key {record['signer']}"
        )


def check_aggregator_signed(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    if record["signer"] != view.aggregator_id:
        raise NotAggregatorError(
            f"{record['type']} must be signed by the aggregator",
            expected=view.aggregator_id,
            received=record["signer"],
        )
    check_signature(record, view.aggregator_key, view.chain_id, verified_key=verified_key)


def _check_settlement_like(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None
) -> None:
    kind = record["type"]
    key = view.csms_keys.get(record["signer"])
    if key is None:
        raise UnauthorisedSignerError(
            f"{kind}: signer is not an authorised CSMS key at this height",
            expected=sorted(view.csms_keys),
            received=record["signer"],
        )
    check_signature(record, key, view.chain_id, verified_key=verified_key)
    if verified_key is None:  # a transaction checked before passed these stateless rules
        _check_amounts(record)
    if record["settlement_id"] in view.settlements:
        raise DuplicateSettlementError(
            f"{kind}: settlement_id {record['settlement_id']} already settled at height "
            f"{view.settlements[record['settlement_id']].height}"
        )


def _check_amounts(record: Mapping[str, Any]) -> None:
    """Intervals sum to the energy totals; the amount follows the rounding rule."""
    kind = record["type"]
    totals = interval_totals(record["intervals"])
    for name, total in zip(("import_wh", "export_wh"), totals, strict=False):
        if total != record["energy"][name]:
            raise IntervalSumError(
                f"{kind} {record['settlement_id']}: intervals' {name} do not sum to energy.{name}",
                expected=record["energy"][name],
                received=total,
            )
    rule = totals[2]
    if record["amount"] != rule:
        raise AmountMismatchError(
            f"{kind} {record['settlement_id']}: amount differs from the rounding rule",
            expected=rule,
            received=record["amount"],
        )


def _check_receivable(view: LedgerView, account: str, amount: int, what: str) -> None:
    """Balances stay within 0..INT_MAX: ``account`` may receive ``amount`` only if it fits."""
    balance = view.balances.get(account, 0)
    if balance > INT_MAX - amount:
        raise BalanceRangeError(
            f"{what}: account {account} would hold more than {INT_MAX}",
            expected=f"<= {INT_MAX - balance}",
            received=amount,
        )


def _check_ledger_payment(record: Mapping[str, Any], view: LedgerView) -> None:
    if record["payment"] != "ledger" or record["amount"] == 0:
        return
    amount = record["amount"]
    ev, op = ev_account(record["ev"]), operator_account(record["operator"])
    payer, payee = (ev, op) if amount > 0 else (op, ev)
    what = f"{record['type']} {record['settlement_id']}"
    balance = view.balances.get(payer, 0)
    if balance < abs(amount):
        raise InsufficientBalanceError(
            f"{what}: account {payer} cannot pay",
            expected=f">= {abs(amount)}",
            received=balance,
        )
    _check_receivable(view, payee, abs(amount), what)


def validate_settlement(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    _check_settlement_like(record, view, verified_key)
    pair = (record["operator"], record["transaction_id"])
    if pair in view.settled_transactions:
        raise DuplicateTransactionError(
            f"settlement {record['settlement_id']}: transaction {pair[1]} of operator "
            f"{pair[0]} already settled"
        )
    _check_ledger_payment(record, view)


def validate_credit(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    _check_settlement_like(record, view, verified_key)
    original = view.settlements.get(record["corrects"])
    if original is None or original.kind != SETTLEMENT:
        raise UnknownSettlementError(
            f"credit {record['settlement_id']}: corrects no committed settlement",
            expected="a committed settlement id",
            received=record["corrects"],
        )
    if (original.operator, original.transaction_id) != (
        record["operator"],
        record["transaction_id"],
    ):
        raise UnknownSettlementError(
            f"credit {record['settlement_id']}: operator/transaction differ from the original",
            expected=[original.operator, original.transaction_id],
            received=[record["operator"], record["transaction_id"]],
        )
    _check_ledger_payment(record, view)


def _check_fresh_id(view: LedgerView, used_id: str) -> None:
    if used_id in view.used_ids:
        raise ReplayError(f"{used_id} was committed before")


def validate_topup(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    check_aggregator_signed(record, view, verified_key)
    _check_fresh_id(view, f"topup:{record['topup_id']}")
    _check_receivable(view, record["account"], record["amount"], f"topup {record['topup_id']}")


def updated_validators(record: Mapping[str, Any], current: ValidatorSet) -> ValidatorSet:
    """The set after a ``validator_update`` (power 0 removes a validator)."""
    members = {v.address: v for v in current.validators}
    for entry in record["validators"]:
        pub = bytes.fromhex(entry["public_key"])
        address = key_id(pub)
        if entry["power"] == 0:
            if address not in members:
                raise GovernanceError(
                    "validator_update removes a validator that is not in the set",
                    expected=sorted(members),
                    received=address,
                )
            del members[address]
        else:
            members[address] = Validator(address, pub, entry["power"])
    result = ValidatorSet(tuple(members.values()))
    try:
        check_power_distribution(result)
    except GenesisError as exc:
        raise GovernanceError(f"validator_update: {exc}") from exc
    return result


def validate_validator_update(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    check_aggregator_signed(record, view, verified_key)
    _check_fresh_id(view, f"update:{record['update_id']}")
    updated_validators(record, view.next_validators)


def validate_key_authorisation(
    record: Mapping[str, Any], view: LedgerView, verified_key: bytes | None = None
) -> None:
    check_aggregator_signed(record, view, verified_key)
    _check_fresh_id(view, f"update:{record['update_id']}")
    kid = key_id(bytes.fromhex(record["public_key"]))
    if not record["authorised"] and kid not in view.next_csms_keys:
        raise GovernanceError(
            "key_authorisation revokes a key that is not authorised",
            expected=sorted(view.next_csms_keys),
            received=kid,
        )


def evidence_id(record: Mapping[str, Any]) -> str:
    a = record["vote_a"]
    return f"evidence:{a['validator']}:{a['height']}:{a['round']}:{a['kind']}"


def validate_evidence(record: Mapping[str, Any], view: LedgerView, height: int) -> None:
    try:
        a = vote_from_dict(record["vote_a"])
        b = vote_from_dict(record["vote_b"])
    except EncodingError as exc:
        raise InvalidEvidenceError(f"evidence: malformed vote: {exc}") from exc
    if (a.chain_id, a.validator, a.height, a.round, a.kind) != (
        b.chain_id,
        b.validator,
        b.height,
        b.round,
        b.kind,
    ):
        raise InvalidEvidenceError("evidence: the votes are not by one validator at one step")
    if a.chain_id != view.chain_id:
        raise InvalidEvidenceError(
            "evidence: votes of another chain", expected=view.chain_id, received=a.chain_id
        )
    if a.block_id == b.block_id:
        raise InvalidEvidenceError("evidence: both votes are for the same block")
    if a.height >= height:
        raise InvalidEvidenceError(
            "evidence: votes from the future", expected=f"< {height}", received=a.height
        )
    key = view.known_validators.get(a.validator)
    if key is None:
        raise InvalidEvidenceError("evidence: unknown validator", received=a.validator)
    if not (verify_vote(a, key) and verify_vote(b, key)):
        raise InvalidEvidenceError(
            f"evidence: a vote's signature does not verify under {a.validator}"
        )
    _check_fresh_id(view, evidence_id(record))


def validate_record(
    record: Mapping[str, Any], view: LedgerView, *, height: int, checked: Checked | None = None
) -> str:
    """Check one decoded record for inclusion at ``height``; return its type.

    ``checked``: what an earlier check of this very transaction established (its record
    passed the schema; its signature verified under ``checked.signer_key``), not repeated.
    """
    verified_key = None
    if checked is None:
        kind = check_record(record)
    else:
        kind, verified_key = record["type"], checked.signer_key
    if kind == SETTLEMENT:
        validate_settlement(record, view, verified_key)
    elif kind == CREDIT:
        validate_credit(record, view, verified_key)
    elif kind == TOPUP:
        validate_topup(record, view, verified_key)
    elif kind == VALIDATOR_UPDATE:
        validate_validator_update(record, view, verified_key)
    elif kind == KEY_AUTHORISATION:
        validate_key_authorisation(record, view, verified_key)
    elif kind == EVIDENCE:
        validate_evidence(record, view, height)
    return kind


def signer_key(record: Mapping[str, Any], view: LedgerView) -> bytes | None:
    """The key a valid record's signature verified under (None for evidence)."""
    kind = record["type"]
    if kind in (SETTLEMENT, CREDIT):
        return view.csms_keys.get(record["signer"])
    if kind in (TOPUP, VALIDATOR_UPDATE, KEY_AUTHORISATION):
        return view.aggregator_key
    return None


def validate_checked(
    tx: Tx,
    view: LedgerView,
    *,
    height: int,
    cache: CheckedTxs | None,
    parsed: dict[str, Any] | None = None,
) -> Mapping[str, Any]:
    """``validate_record`` of ``tx``'s record, decoding and verifying it only if ``cache``
    holds no earlier check of it (and keeping this one); return the record. A record that
    ``cache`` holds as waiting is not parsed again.

    ``parsed``: the record already parsed from ``tx.data`` (by a frame reader), only checked
    to encode back to exactly those bytes rather than parsed again.
    """
    hit = cache.get(tx.data) if cache is not None else None
    if hit is not None:
        validate_record(hit.record, view, height=height, checked=hit)
        return hit.record
    if parsed is None and cache is not None:
        parsed = cache.waiting(tx.data)  # a frame reader parsed it; its check has not come
    record = decode_tx(tx, parsed)
    validate_record(record, view, height=height)
    if cache is not None:
        cache.put(tx.data, Checked(record, signer_key(record, view)))
    return record


def decode_tx(tx: Tx, parsed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A transaction's record; oversized or non-canonical bytes are a ``SchemaError``.

    The record keeps its bytes (``CanonicalRecord``) for the signature check. With
    ``parsed`` (the record a reader parsed from these bytes), the bytes are not parsed
    again: the record must encode back to them exactly.
    """
    if len(tx.data) > MAX_TX_BYTES:
        raise SchemaError(
            "transaction too large", expected=f"<= {MAX_TX_BYTES} bytes", received=len(tx.data)
        )
    # typed: the schema (then, for evidence, the votes' own checks) wants every number an
    # integer, so a float is refused there, not looked for here
    if parsed is not None:
        if isinstance(parsed, CanonicalRecord) and parsed.raw == tx.data:
            return parsed  # read from a frame found to be the canonical encoding of it
        if not is_canonical(parsed, tx.data, typed=True):
            raise SchemaError("transaction: bytes are valid JSON but not in canonical form")
        return CanonicalRecord(parsed, tx.data)
    try:
        record = decode(tx.data, typed=True)
    except EncodingError as exc:
        raise SchemaError(f"transaction: {exc}") from exc
    if not isinstance(record, dict):
        raise SchemaError("transaction: expected a JSON object")
    return CanonicalRecord(record, tx.data)


def validate_tx(
    tx: Tx,
    state: State,
    *,
    cache: CheckedTxs | None = None,
    parsed: dict[str, Any] | None = None,
) -> Mapping[str, Any]:
    """Check a transaction for inclusion in the next block after ``state``; return its record.

    With ``cache``, a transaction checked before is not decoded or verified again.
    """
    return validate_checked(tx, state, height=state.height + 1, cache=cache, parsed=parsed)
