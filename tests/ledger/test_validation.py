"""Each way a transaction can be invalid is refused with its own error type."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.amounts import PricedInterval, settlement_amount
from ledger.apply import apply_txs
from ledger.canonical import decode
from ledger.errors import (
    AmountMismatchError,
    BalanceRangeError,
    DuplicateSettlementError,
    DuplicateTransactionError,
    GovernanceError,
    InsufficientBalanceError,
    IntervalSumError,
    InvalidEvidenceError,
    NotAggregatorError,
    ReplayError,
    SchemaError,
    SignatureError,
    TxError,
    UnauthorisedSignerError,
    UnknownSettlementError,
)
from ledger.keys import generate_key, public_bytes
from ledger.schema import INT_MAX
from ledger.signing import sign_vote
from ledger.state import State
from ledger.tx import (
    ev_account,
    evidence_tx,
    key_authorisation_body,
    operator_account,
    sign_tx,
    topup_body,
    validator_update_body,
)
from ledger.types import Tx, Vote, VoteKind
from ledger.validation import decode_tx, validate_tx
from tests.ledger.builders import CHAIN_ID, Net, make_net, settlement_body

intervals = st.lists(
    st.tuples(
        st.integers(0, 50_000),
        st.integers(0, 50_000),
        st.integers(-100_000, 900_000),
        st.integers(-100_000, 900_000),
    ),
    min_size=1,
    max_size=6,
)


def apply(state: State, *txs: Tx) -> State:
    return apply_txs(state, txs, time=state.time + 1, block_hash=bytes(32))


def net_with_s1() -> Net:
    net = make_net()
    net.seal([net.csms_tx(settlement_body("s-1", transaction_id="t-1"))])
    return net


def resign(net: Net, body: dict[str, Any]) -> Tx:
    return net.csms_tx(body)


# Each case: a name, a builder of an invalid tx from (net, valid settlement body, drawn int),
# and the one error type it must raise.
Case = tuple[Callable[[Net, dict[str, Any], int], Tx], type[TxError]]


def _schema(net: Net, body: dict[str, Any], k: int) -> Tx:
    bad = copy.deepcopy(body)
    variants: list[Callable[[dict[str, Any]], None]] = [
        lambda b: b.pop("ev"),
        lambda b: b.__setitem__("extra", 1),
        lambda b: b.__setitem__("amount", str(b["amount"])),
        lambda b: b["energy"].__setitem__("import_wh", True),
        lambda b: b["intervals"][0].__setitem__("export_wh", -1),
        lambda b: b.__setitem__("payment", "cash"),
        lambda b: b.__setitem__("intervals", []),
        lambda b: b.__setitem__("schema", 2),
    ]
    variants[k % len(variants)](bad)
    return resign(net, bad)


def _signature(net: Net, body: dict[str, Any], k: int) -> Tx:
    tx = net.csms_tx(body)
    return Tx(tx.data.replace(b'"evse_id":"DE*ABC*E1*1"', f'"evse_id":"X{k}"'.encode()))


def _unauthorised(net: Net, body: dict[str, Any], k: int) -> Tx:
    return sign_tx(body, generate_key(), CHAIN_ID)


def _wrong_chain(net: Net, body: dict[str, Any], k: int) -> Tx:
    return sign_tx(body, net.csms_key, f"other-chain-{k}")


def _interval_sum(net: Net, body: dict[str, Any], k: int) -> Tx:
    bad = copy.deepcopy(body)
    bad["energy"]["export_wh"] += k + 1
    return resign(net, bad)


def _amount(net: Net, body: dict[str, Any], k: int) -> Tx:
    bad = copy.deepcopy(body)
    bad["amount"] += k + 1 if k % 2 else -(k + 1)
    return resign(net, bad)


def _dup_settlement(net: Net, body: dict[str, Any], k: int) -> Tx:
    return resign(net, {**body, "settlement_id": "s-1"})


def _dup_transaction(net: Net, body: dict[str, Any], k: int) -> Tx:
    return resign(net, {**body, "transaction_id": "t-1"})


def _unknown_credit(net: Net, body: dict[str, Any], k: int) -> Tx:
    return resign(net, {**body, "type": "credit", "corrects": f"never-{k}"})


def _insufficient(net: Net, body: dict[str, Any], k: int) -> Tx:
    rows = [(1_000 + k, 0, 300_000, 0)]  # the driver owes, and has no balance
    return resign(net, settlement_body(body["settlement_id"], intervals=rows, payment="ledger"))


def _beyond_range(net: Net, body: dict[str, Any], k: int) -> Tx:
    # "ev:y" holds 5: a top-up that takes it past INT_MAX
    amount = INT_MAX - k % 5
    return net.aggregator_tx(topup_body(topup_id=f"big{k}", account="ev:y", amount=amount))


def _not_aggregator(net: Net, body: dict[str, Any], k: int) -> Tx:
    return net.csms_tx(topup_body(topup_id=f"t{k}", account="ev:x", amount=k + 1))


def _replay(net: Net, body: dict[str, Any], k: int) -> Tx:
    return net.aggregator_tx(topup_body(topup_id="used", account="ev:x", amount=k + 1))


def _governance(net: Net, body: dict[str, Any], k: int) -> Tx:
    victim = net.genesis.validators.validators[k % 4].public_key
    return net.aggregator_tx(validator_update_body(update_id=f"u{k}", changes=[(victim, 0)]))


def _evidence(net: Net, body: dict[str, Any], k: int) -> Tx:
    key = net.validator_keys[k % 4]
    vote = sign_vote(Vote(CHAIN_ID, 1, k % 3, VoteKind.PRECOMMIT, bytes(32), ""), key)
    return evidence_tx(vote, vote)  # the same block twice proves nothing


CASES: dict[str, Case] = {
    "schema": (_schema, SchemaError),
    "signature": (_signature, SignatureError),
    "wrong chain": (_wrong_chain, SignatureError),
    "unauthorised signer": (_unauthorised, UnauthorisedSignerError),
    "interval sum": (_interval_sum, IntervalSumError),
    "amount": (_amount, AmountMismatchError),
    "duplicate settlement id": (_dup_settlement, DuplicateSettlementError),
    "duplicate transaction": (_dup_transaction, DuplicateTransactionError),
    "credit of nothing": (_unknown_credit, UnknownSettlementError),
    "insufficient balance": (_insufficient, InsufficientBalanceError),
    "balance beyond range": (_beyond_range, BalanceRangeError),
    "top-up not by aggregator": (_not_aggregator, NotAggregatorError),
    "replayed top-up": (_replay, ReplayError),
    "governance rule": (_governance, GovernanceError),
    "invalid evidence": (_evidence, InvalidEvidenceError),
}

NET = net_with_s1()
NET.seal([NET.aggregator_tx(topup_body(topup_id="used", account="ev:y", amount=5))])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(CASES)), intervals, st.integers(0, 1000))
def test_each_invalid_kind_has_its_own_error(
    name: str, rows: list[tuple[int, int, int, int]], k: int
) -> None:
    body = settlement_body(f"s-new-{k}", transaction_id=f"t-new-{k}", intervals=rows)
    make, error = CASES[name]
    tx = make(NET, body, k)
    with pytest.raises(TxError) as info:
        validate_tx(tx, NET.state)
    assert type(info.value) is error, f"{name}: {info.value!r}"
    # and the valid original is accepted
    validate_tx(NET.csms_tx(body), NET.state)


def test_error_types_are_distinct() -> None:
    kinds = {error for _, error in CASES.values()}
    assert len(kinds) == len(CASES) - 1  # wrong chain is a signature error by design


@given(intervals)
def test_valid_settlements_are_accepted_and_settled_once(
    rows: list[tuple[int, int, int, int]],
) -> None:
    net = make_net()
    body = settlement_body("s-9", intervals=rows)
    assert body["amount"] == settlement_amount(PricedInterval(*r) for r in rows)
    state = apply(net.state, net.csms_tx(body))
    assert state.settlements["s-9"].transaction_id == "tx-s-9"
    with pytest.raises(DuplicateSettlementError):
        validate_tx(net.csms_tx(body), state)
    # two in one block: the second sees the first
    with pytest.raises(DuplicateSettlementError):
        apply(net.state, net.csms_tx(body), net.csms_tx(body))


def test_ledger_payment_moves_the_net_amount() -> None:
    net = make_net()
    ev = ev_account("ev-pseudo-1")
    op = operator_account("op-1")
    state = apply(
        net.state, net.aggregator_tx(topup_body(topup_id="t1", account=ev, amount=5_000_000))
    )
    assert state.balances[ev] == 5_000_000
    body = settlement_body("s-1", payment="ledger")  # amount 1_200_000: driver pays
    state = apply(state, net.csms_tx(body))
    assert state.balances[ev] == 5_000_000 - 1_200_000
    assert state.balances[op] == 1_200_000
    # a V2G session where the driver is paid: the operator's account pays the EV's
    paid = settlement_body("s-2", intervals=[(0, 2_000, 0, 400_000)], payment="ledger")
    state = apply(state, net.csms_tx(paid))
    assert state.balances[ev] == 5_000_000 - 1_200_000 + 800_000
    assert state.balances[op] == 1_200_000 - 800_000
    # a credit refunds through the same path
    credit = settlement_body(
        "c-1",
        transaction_id="tx-s-1",
        intervals=[(0, 1_000, 0, 300_000)],
        payment="ledger",
        kind="credit",
        corrects="s-1",
    )
    state = apply(state, net.csms_tx(credit))
    assert state.balances[op] == 1_200_000 - 800_000 - 300_000
    assert state.settlements["c-1"].kind == "credit"


def test_a_payment_cannot_take_the_payee_past_the_integer_range() -> None:
    net = make_net()
    ev, op = ev_account("ev-pseudo-1"), operator_account("op-1")
    state = apply(
        net.state,
        net.aggregator_tx(topup_body(topup_id="t1", account=ev, amount=5_000_000)),
        net.aggregator_tx(topup_body(topup_id="t2", account=op, amount=INT_MAX - 1_000_000)),
    )
    body = settlement_body("s-1", payment="ledger")  # the driver pays 1_200_000
    with pytest.raises(BalanceRangeError, match=op):
        validate_tx(net.csms_tx(body), state)
    assert state.balances[op] == INT_MAX - 1_000_000  # nothing moved
    fits = settlement_body("s-2", intervals=[(1_000, 0, 1_000_000, 0)], payment="ledger")
    state = apply(state, net.csms_tx(fits))  # exactly 1_000_000: the payee holds INT_MAX
    assert state.balances[op] == INT_MAX


def test_credit_must_match_the_original() -> None:
    net = net_with_s1()
    other_op = settlement_body(
        "c-1", operator="op-2", transaction_id="t-1", kind="credit", corrects="s-1"
    )
    with pytest.raises(UnknownSettlementError):
        validate_tx(net.csms_tx(other_op), net.state)
    ok = settlement_body("c-1", transaction_id="t-1", kind="credit", corrects="s-1")
    state = apply(net.state, net.csms_tx(ok))
    credit_of_credit = settlement_body("c-2", transaction_id="t-1", kind="credit", corrects="c-1")
    with pytest.raises(UnknownSettlementError):
        validate_tx(net.csms_tx(credit_of_credit), state)


def test_governance_takes_effect_two_heights_later() -> None:
    net = make_net()
    new_csms = generate_key()
    new_validator = generate_key()
    net.seal(
        [
            net.aggregator_tx(
                key_authorisation_body(
                    update_id="k1", public_key=public_bytes(new_csms), authorised=True
                )
            ),
            net.aggregator_tx(
                validator_update_body(update_id="v1", changes=[(public_bytes(new_validator), 10)])
            ),
        ]
    )  # committed at height 1: in force from height 3
    body = settlement_body("s-x")
    signed_by_new = sign_tx(body, new_csms, CHAIN_ID)
    with pytest.raises(UnauthorisedSignerError):
        validate_tx(signed_by_new, net.state)  # height 2: not yet
    assert len(net.state.validators.validators) == 4
    net.seal([])
    assert len(net.state.validators.validators) == 5  # signs height 3
    validate_tx(signed_by_new, net.state)  # height 3: authorised
    net.validator_keys.append(new_validator)
    net.seal([signed_by_new])
    assert "s-x" in net.state.settlements


def test_evidence_is_kept_once() -> None:
    net = make_net()
    net.seal([])
    key = net.validator_keys[0]
    a = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PRECOMMIT, bytes(32), ""), key)
    b = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PRECOMMIT, b"\x01" * 32, ""), key)
    tx = evidence_tx(a, b)
    state = apply(net.state, tx)
    assert any(i.startswith("evidence:") for i in state.used_ids)
    with pytest.raises(ReplayError):
        validate_tx(tx, state)
    forged = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PRECOMMIT, b"\x01" * 32, ""), generate_key())
    with pytest.raises(InvalidEvidenceError):
        validate_tx(evidence_tx(a, forged), net.state)


def test_non_canonical_bytes_are_a_schema_error() -> None:
    net = make_net()
    tx = net.csms_tx(settlement_body())
    with pytest.raises(SchemaError):
        validate_tx(Tx(tx.data.replace(b",", b", ", 1)), net.state)


def test_oversized_transactions_are_a_schema_error() -> None:
    net = make_net()
    body = settlement_body()
    body["evidence"]["records"] = [{"nature": "End", "sha256": "ab" * 32}] * 2000
    with pytest.raises(SchemaError, match="too large"):
        validate_tx(net.csms_tx(body), net.state)


def test_a_record_holding_a_float_is_refused_in_either_reading() -> None:
    """``1.0`` is its own encoding, so the bytes read back; the schema refuses the float
    whether the record was parsed here or by a frame reader."""
    net = make_net(4)
    tx = net.csms_tx(settlement_body("s-1"))
    record = decode(tx.data)
    assert decode_tx(tx, dict(record)) == record
    floated = Tx(tx.data.replace(b'"schema":1', b'"schema":1.0'))
    with pytest.raises(SchemaError, match="schema"):
        validate_tx(floated, net.state, parsed=json.loads(floated.data))
    with pytest.raises(SchemaError, match="schema"):
        validate_tx(floated, net.state)


def _int_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where a decoded record holds an integer (not a boolean)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _int_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _int_paths(v, (*path, i))]
    return [path] if type(value) is int else []


def _floated(tx: Tx, path: tuple[Any, ...]) -> Tx:
    record = decode(tx.data)
    holder = record
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = float(holder[path[-1]])
    return Tx(json.dumps(record, sort_keys=True, separators=(",", ":")).encode())


def _every_kind(net: Net) -> list[Tx]:
    key = net.validator_keys[0]
    a = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PRECOMMIT, bytes(32), ""), key)
    b = sign_vote(Vote(CHAIN_ID, 1, 0, VoteKind.PRECOMMIT, b"\x01" * 32, ""), key)
    victim = net.genesis.validators.validators[0].public_key
    return [
        net.csms_tx(settlement_body("s-float")),
        net.aggregator_tx(topup_body(topup_id="t-float", account="ev:x", amount=5)),
        net.aggregator_tx(validator_update_body(update_id="u-float", changes=[(victim, 7)])),
        net.aggregator_tx(
            key_authorisation_body(update_id="k-float", public_key=victim, authorised=True)
        ),
        evidence_tx(a, b),
    ]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_no_kind_takes_a_float_where_it_wants_an_integer(data: st.DataObject) -> None:
    """Transactions are decoded without a look for floats (``decode(typed=True)``): every
    number of every kind is type-checked by its schema or, for evidence, its votes."""
    net = make_net(4)
    net.seal([])  # evidence of height 1 is valid from height 2
    tx = data.draw(st.sampled_from(_every_kind(net)))
    validate_tx(tx, net.state)
    path = data.draw(st.sampled_from(_int_paths(decode(tx.data))))
    with pytest.raises(TxError):
        validate_tx(_floated(tx, path), net.state)
