"""Credit records: the amount rule holds, a full credit reverses, a partial one is exact."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.corrections import CorrectionError, check_room, credit_body
from csms.model import SettlementRecord
from ledger.amounts import PricedInterval, settlement_amount
from ledger.schema import check_record
from ledger.tx import CREDIT

HEX = "ab" * 32

intervals = st.lists(
    st.tuples(
        st.integers(0, 200_000),
        st.integers(0, 200_000),
        st.integers(0, 2_000_000),
        st.integers(0, 2_000_000),
    ),
    min_size=1,
    max_size=4,
)


def original(rows: list[tuple[int, int, int, int]]) -> dict[str, object]:
    priced = [PricedInterval(*row) for row in rows]
    return {
        "type": "settlement",
        "schema": 1,
        "settlement_id": "stl-1",
        "transaction_id": "tx-1",
        "operator": "OP",
        "evse_id": "CS*1",
        "ev": "v1:ev",
        "start": "2026-11-25T16:30:00.000Z",
        "end": "2026-11-25T17:45:00.000Z",
        "energy": {"import_wh": sum(r[0] for r in rows), "export_wh": sum(r[1] for r in rows)},
        "tariff": {"id": "t", "sha256": HEX, "currency": "EUR"},
        "intervals": [
            {
                "start": f"2026-11-25T1{6 + i % 3}:00:00.000Z",
                "import_wh": r[0],
                "export_wh": r[1],
                "import_price": r[2],
                "export_price": r[3],
            }
            for i, r in enumerate(rows)
        ],
        "amount": settlement_amount(priced),
        "payment": "invoice",
        "evidence": {"meter_key_sha256": HEX, "records": [{"nature": "Begin", "sha256": HEX}]},
    }


def signed(body: dict[str, object]) -> dict[str, object]:
    return {**body, "signer": "k", "sig": "00" * 64}


@given(intervals)
def test_a_full_credit_reverses_the_amount_by_the_rule(rows: list[tuple[int, ...]]) -> None:
    before = original(rows)  # type: ignore[arg-type]
    credit = credit_body(before, credit_id="crd-1")
    assert credit["type"] == CREDIT and credit["corrects"] == "stl-1"
    assert credit["amount"] == -before["amount"]  # type: ignore[operator]
    assert credit["energy"] == before["energy"]
    assert check_record(signed(credit)) == CREDIT  # the ledger's schema accepts it
    assert before["type"] == "settlement" and before["settlement_id"] == "stl-1"  # untouched


@given(intervals, st.integers(1, 10**9))
def test_a_partial_credit_moves_exactly_the_amount(
    rows: list[tuple[int, ...]], amount: int
) -> None:
    credit = credit_body(original(rows), credit_id="crd-2", amount=amount)  # type: ignore[arg-type]
    assert credit["amount"] == -amount
    rule = settlement_amount(
        PricedInterval(i["import_wh"], i["export_wh"], i["import_price"], i["export_price"])
        for i in credit["intervals"]
    )
    assert rule == credit["amount"]
    check_record(signed(credit))


def test_only_settlements_can_be_credited() -> None:
    credit = credit_body(original([(1000, 0, 300_000, 0)]), credit_id="crd-3")
    with pytest.raises(CorrectionError, match="only a settlement"):
        credit_body(credit, credit_id="crd-4")
    with pytest.raises(CorrectionError, match="positive"):
        credit_body(original([(1000, 0, 300_000, 0)]), credit_id="crd-5", amount=0)


def record(sid: str, kind: str, amount: int, status: str = "committed") -> SettlementRecord:
    return SettlementRecord(
        sid, "st", "tx", kind, status, None, "stl-1" if kind == "credit" else None, "v1:ev",
        0, 0, amount, "EUR", "{}", b"", "t", None, None, None, None, None,
    )  # fmt: skip


def test_credits_never_give_back_more_than_was_paid() -> None:
    paid = record("stl-1", "settlement", 10_000)
    check_room(paid, [], None)
    check_room(paid, [], 10_000)
    first = record("crd-1", "credit", -6_000)
    check_room(paid, [first], 4_000)
    with pytest.raises(CorrectionError, match="exceed what was paid"):
        check_room(paid, [first], 4_001)
    with pytest.raises(CorrectionError, match="full reversal"):
        check_room(paid, [first], None)
    rejected = record("crd-2", "credit", -10_000, status="rejected")
    check_room(paid, [rejected], None)  # a credit the ledger refused does not count
    driver_was_paid = record("stl-1", "settlement", -5_000)
    check_room(driver_was_paid, [record("crd-3", "credit", -100)], 1_000)  # goodwill
