from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger.canonical import encode
from ledger.errors import EncodingError, SchemaError
from ledger.schema import (
    CREDIT_FIELDS,
    SETTLEMENT_FIELDS,
    _check_settlement_like,
    _settlement_passes,
    check_record,
    settlement_bytes_pass,
)
from ledger.tx import CanonicalRecord, key_authorisation_body, topup_body, validator_update_body
from tests.ledger.builders import settlement_body

SIGNED = {"signer": "k", "sig": "00" * 64}


def signed(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, **SIGNED}


def test_valid_records_pass() -> None:
    assert check_record(signed(settlement_body())) == "settlement"
    assert check_record(signed(settlement_body(kind="credit", corrects="s-0"))) == "credit"
    assert check_record(signed(topup_body(topup_id="t", account="a", amount=1))) == "topup"
    body = validator_update_body(update_id="u", changes=[(b"\x01" * 32, 0)])
    assert check_record(signed(body)) == "validator_update"
    body = key_authorisation_body(update_id="u", public_key=b"\x01" * 32, authorised=False)
    assert check_record(signed(body)) == "key_authorisation"


@given(st.sampled_from(SETTLEMENT_FIELDS))
def test_any_missing_field_is_a_schema_error(name: str) -> None:
    record = signed(settlement_body())
    del record[name]
    with pytest.raises(SchemaError):
        check_record(record)


def _int_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _int_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _int_paths(v, (*path, i))]
    return []


INT_PATHS = _int_paths(signed(settlement_body()))


@given(st.sampled_from(INT_PATHS), st.sampled_from(["1", 1.0, True, None, [1]]))
def test_every_integer_must_be_an_integer(path: tuple[Any, ...], bad: Any) -> None:
    record = copy.deepcopy(signed(settlement_body()))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(SchemaError):
        check_record(record)


def test_unknown_type_and_credit_without_corrects() -> None:
    with pytest.raises(SchemaError, match="unknown"):
        check_record({"type": "mint"})
    credit = signed(settlement_body(kind="credit"))
    with pytest.raises(SchemaError):
        check_record(credit)


_ODD_VALUES: list[Any] = [
    *(True, False, 0, -1, 7, 1.5, "", "x", None, [], {}, "a" * 64, "EUR"),
    *(2**63, -(2**63) - 1, 10**40),
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replaced(record: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    copied = copy.deepcopy(record)
    target: Any = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


@pytest.mark.parametrize("kind", ["settlement", "credit"])
def test_the_fast_path_accepts_nothing_the_full_check_refuses(kind: str) -> None:
    """``check_record`` first tries a check that builds no messages; every record it lets
    through must pass the full check too (each field swapped for odd values)."""
    base = settlement_body("s-1")
    base.update(signer="k", sig="ab" * 64)
    fields: tuple[str, ...] = SETTLEMENT_FIELDS
    if kind == "credit":
        base.update(type="credit", corrects="s-0")
        fields = CREDIT_FIELDS
    keys = frozenset(fields)
    assert _settlement_passes(base, keys)
    variants = [_replaced(base, p, v) for p in _paths(base)[1:] for v in _ODD_VALUES]
    variants += [{k: v for k, v in base.items() if k != name} for name in base]
    variants += [{**base, "extra": 1}]
    passed = 0
    for record in variants:
        if _settlement_passes(record, keys):
            passed += 1
            _check_settlement_like(record, kind, fields)  # must not raise
    assert 0 < passed < len(variants)


@pytest.mark.parametrize("amount", [2**63, -(2**63) - 1, 220 * 10**30])
def test_amounts_outside_the_64_bit_range_are_refused(amount: int) -> None:
    record = settlement_body("s-1")
    record.update(signer="k", sig="ab" * 64, amount=amount)
    with pytest.raises(SchemaError, match="64-bit"):
        _check_settlement_like(record, "settlement", SETTLEMENT_FIELDS)


def _canonical(record: dict[str, Any]) -> CanonicalRecord | None:
    """The record as a validator holds it after decoding: with its canonical bytes (None
    when it has none: a float, a foreign type)."""
    try:
        return CanonicalRecord(record, encode(record))
    except EncodingError:
        return None


def test_the_bytes_check_accepts_nothing_the_full_check_refuses() -> None:
    """A settlement kept with its canonical bytes is first matched as bytes; every record
    the match lets through must pass the full check, and a valid one must match."""
    base = settlement_body("s-1")
    base.update(signer="k", sig="ab" * 64)
    assert settlement_bytes_pass(encode(base))
    variants = [_replaced(base, p, v) for p in _paths(base)[1:] for v in _ODD_VALUES]
    variants += [{k: v for k, v in base.items() if k != name} for name in base]
    variants += [{**base, "extra": 1}, {**base, "type": "credit", "corrects": "s-0"}]
    variants += [_replaced(base, ("amount",), 10**18), _replaced(base, ("amount",), -(10**17))]
    matched = 0
    for record in variants:
        held = _canonical(record)
        if held is not None and settlement_bytes_pass(held.raw):
            matched += 1
            _check_settlement_like(record, "settlement", SETTLEMENT_FIELDS)  # must not raise
        if held is not None:  # the dict checks still decide what the bytes do not pass
            with contextlib.suppress(SchemaError):
                check_record(held)
                _check_settlement_like(record, "settlement", SETTLEMENT_FIELDS)
    assert 0 < matched < len(variants)


@given(st.text(max_size=12))
def test_the_bytes_check_reads_any_text_field_as_the_full_check_does(text: str) -> None:
    """Quotes, backslashes, control characters and any other character inside a string:
    the match passes exactly the non-empty ones; and a hex field only lowercase hex."""
    record = settlement_body("s-1")
    record.update(signer="k", sig="ab" * 64, transaction_id=text)
    held = _canonical(record)
    assume(held is not None)
    assert held is not None
    assert settlement_bytes_pass(held.raw) == (text != "")
    hexed = {**record, "transaction_id": "t", "sig": (text * 128)[:128]}
    held = _canonical(hexed)
    assume(held is not None)
    assert held is not None
    valid = len(hexed["sig"]) == 128 and set(hexed["sig"]) <= set("0123456789abcdef")
    assert settlement_bytes_pass(held.raw) == valid
