from __future__ import annotations

import pytest

from csms.errors import PropertyConstraintViolation
from csms.metering import normalise_value, parse_meter_values


@pytest.mark.parametrize(
    ("value", "unit", "multiplier", "expected"),
    [
        (1234, "Wh", 0, (1234, "Wh")),
        (1.5, "kWh", 0, (1500, "Wh")),
        ("12.3455", "kWh", 0, (12346, "Wh")),  # 12345.5 Wh rounds half to even -> 12346
        (12, "Wh", 3, (12000, "Wh")),
        (7.4, "kW", 0, (7400, "W")),
        (2500, "W", -1, (250, "W")),
        (0.5, "Wh", 0, (0, "Wh")),
        (1.5, "Wh", 0, (2, "Wh")),
    ],
)
def test_normalise_to_integer_base_units(
    value: object, unit: str, multiplier: int, expected: tuple[int, str]
) -> None:
    assert normalise_value(value, unit, multiplier) == expected


def test_defaults_measurand_and_unit_and_keeps_phase() -> None:
    samples = parse_meter_values(
        [
            {
                "timestamp": "2026-11-25T10:00:00+01:00",
                "sampledValue": [
                    {"value": 10},
                    {"value": 3, "measurand": "Energy.Active.Import.Register", "phase": "L1"},
                    {"value": 55, "measurand": "SoC"},
                ],
            }
        ]
    )
    assert [(s.measurand, s.value, s.unit, s.phase) for s in samples] == [
        ("Energy.Active.Import.Register", 10, "Wh", None),
        ("Energy.Active.Import.Register", 3, "Wh", "L1"),
        ("SoC", 55, "Percent", None),
    ]
    assert samples[0].timestamp.utcoffset() is not None


def test_timestamp_without_timezone_is_a_property_violation() -> None:
    with pytest.raises(PropertyConstraintViolation, match="no timezone"):
        parse_meter_values([{"timestamp": "2026-11-25T10:00:00", "sampledValue": [{"value": 1}]}])


def test_unknown_unit_and_out_of_range_multiplier_are_refused() -> None:
    with pytest.raises(PropertyConstraintViolation, match="unit 'furlongs'"):
        normalise_value(1, "furlongs", 0)
    with pytest.raises(PropertyConstraintViolation, match="multiplier"):
        normalise_value(1, "Wh", 10**9)
    assert normalise_value("0.002", "MWh", 0) == (2000, "Wh")


@pytest.mark.parametrize("value", ["1E+999990", "1" * 5000, 1e300, "9223372036854775808"])
def test_absurd_meter_values_are_a_property_constraint_violation(value: object) -> None:
    with pytest.raises(PropertyConstraintViolation):
        normalise_value(value, "Wh", 0)
