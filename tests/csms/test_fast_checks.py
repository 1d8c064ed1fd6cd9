"""The hot-path shortcuts of the Dispatcher agree with the full checks they stand in for."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csms.errors import PropertyConstraintViolation
from csms.ocpp.rpc import MAX_INTEGER, MAX_NUMBER, check_magnitudes
from csms.ocpp.tolerance import RequestSchemas, may_hold_odd_unit, tolerate
from csms.ocpp.versions import OCPP201

SCHEMAS_201 = RequestSchemas(OCPP201)
UNITS = st.sampled_from(["Wh", "kWh", "kwh", "WH", "W", "kw", "Percent", "%", "volts", "A"])


def sampled_value(value: int, unit: Any) -> dict[str, Any]:
    return {
        "value": value,
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": unit},
    }


def event(units: list[Any]) -> dict[str, Any]:
    return {
        "eventType": "Updated",
        "timestamp": "2026-11-25T10:00:00Z",
        "triggerReason": "MeterValuePeriodic",
        "seqNo": 1,
        "transactionInfo": {"transactionId": "tx-1"},
        "meterValue": [
            {
                "timestamp": "2026-11-25T10:00:00Z",
                "sampledValue": [sampled_value(1000 + i, u) for i, u in enumerate(units)],
            }
        ],
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(UNITS, st.integers(0, 9)), min_size=1, max_size=4))
def test_no_candidate_means_no_unit_deviation(units: list[Any]) -> None:
    payload = event(units)
    schema = SCHEMAS_201.get("TransactionEvent")
    assert schema is not None
    _, deviations = tolerate(payload, schema)
    has_unit_deviation = any(d.kind == "unit" for d in deviations)
    if not may_hold_odd_unit(payload):
        assert not has_unit_deviation
    assert has_unit_deviation == any(u in ("kwh", "WH", "kw", "%") for u in units)


def test_exact_units_skip_and_odd_ones_do_not() -> None:
    assert not may_hold_odd_unit(event(["Wh", "W"]))
    assert may_hold_odd_unit(event(["Wh", "kwh"]))
    assert may_hold_odd_unit({"customData": {"unit": ["wh"]}})  # a superset is allowed


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def in_range(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -MAX_INTEGER - 1 <= value <= MAX_INTEGER
    if isinstance(value, float):
        return -MAX_NUMBER <= value <= MAX_NUMBER
    items = value.values() if isinstance(value, dict) else value
    return all(in_range(item) for item in items)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_magnitude_check_refuses_exactly_the_out_of_range(value: Any) -> None:
    if in_range(value):
        check_magnitudes(value)
    else:
        with pytest.raises(PropertyConstraintViolation):
            check_magnitudes(value)


def test_magnitude_error_names_the_path() -> None:
    with pytest.raises(PropertyConstraintViolation, match="meterValue/0/value"):
        check_magnitudes({"meterValue": [{"value": 2**64}]})
