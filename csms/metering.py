"""Meter values at the boundary: OCPP ``meterValue`` lists to normalised ``MeterSample``s.

Energy becomes integer Wh and power integer W, once, here (REAL_HARDWARE.md, "Units").
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from csms.errors import PropertyConstraintViolation
from csms.model import MeterSample
from csms.numbers import NumberOutOfBounds, bounded_decimal, within_wh
from csms.timeutil import parse_timestamp

# unit -> (normalised unit, factor)
_UNITS: dict[str, tuple[str, Decimal]] = {
    "Wh": ("Wh", Decimal(1)),
    "kWh": ("Wh", Decimal(1000)),
    "varh": ("varh", Decimal(1)),
    "kvarh": ("varh", Decimal(1000)),
    "W": ("W", Decimal(1)),
    "kW": ("W", Decimal(1000)),
    "Percent": ("Percent", Decimal(1)),
    "A": ("A", Decimal(1)),
    "V": ("V", Decimal(1)),
    "Celsius": ("Celsius", Decimal(1)),
    "Fahrenheit": ("Fahrenheit", Decimal(1)),
    "K": ("K", Decimal(1)),
    "VA": ("VA", Decimal(1)),
    "kVA": ("VA", Decimal(1000)),
    "var": ("var", Decimal(1)),
    "kvar": ("var", Decimal(1000)),
    "Hz": ("Hz", Decimal(1)),
    "deg": ("deg", Decimal(1)),
    "RPM": ("RPM", Decimal(1)),
    "ASU": ("ASU", Decimal(1)),
    "B": ("B", Decimal(1)),
    "dB": ("dB", Decimal(1)),
    "dBm": ("dBm", Decimal(1)),
    "s": ("s", Decimal(1)),
    "m3": ("m3", Decimal(1)),
    "kg": ("kg", Decimal(1)),
    "MWh": ("Wh", Decimal(1_000_000)),
}
_DEFAULT_UNIT = {"SoC": "Percent"}


def normalise_value(value: Any, unit: str, multiplier: int) -> tuple[int, str]:
    """Scale a reading to the base unit and round half to even to an integer."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PropertyConstraintViolation(f"sampled value {value!r} is not a number")
    try:
        amount = bounded_decimal(str(value))
    except NumberOutOfBounds as exc:
        raise PropertyConstraintViolation(f"sampled value: {exc}") from None
    except (ValueError, InvalidOperation):
        text = str(value)[:40]
        raise PropertyConstraintViolation(f"sampled value {text!r} is not a number") from None
    if unit not in _UNITS:
        raise PropertyConstraintViolation(f"unit {unit!r} is not one this CSMS can normalise")
    if not -9 <= multiplier <= 9:
        raise PropertyConstraintViolation(f"multiplier {multiplier} is outside -9..9")
    if not amount.is_finite():
        raise PropertyConstraintViolation(f"sampled value {value!r} is not a finite number")
    target, factor = _UNITS[unit]
    scaled = amount * factor * (Decimal(10) ** multiplier)
    result = int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))
    if not within_wh(result):
        raise PropertyConstraintViolation(
            f"sampled value {value!r} {unit} is outside the signed 64-bit range"
        )
    return result, target


def meter_value_timestamp(meter_value: dict[str, Any]) -> datetime:
    """A meterValue's timestamp (1.6 and 2.x alike); PropertyConstraintViolation if malformed."""
    try:
        return parse_timestamp(meter_value["timestamp"])
    except ValueError as exc:
        raise PropertyConstraintViolation(f"meterValue timestamp: {exc}") from None


def sample_from(
    timestamp: datetime,
    sampled: dict[str, Any],
    measurand: str,
    value: int,
    unit: str,
    signed: str | None,
) -> MeterSample:
    """A normalised sample, keeping the sampledValue's phase, context and location."""
    return MeterSample(
        timestamp=timestamp,
        measurand=measurand,
        value=value,
        unit=unit,
        phase=sampled.get("phase"),
        context=sampled.get("context"),
        location=sampled.get("location"),
        signed=signed,
    )


def parse_meter_values(meter_values: list[dict[str, Any]]) -> tuple[MeterSample, ...]:
    samples: list[MeterSample] = []
    for meter_value in meter_values:
        timestamp = meter_value_timestamp(meter_value)
        for sampled in meter_value.get("sampledValue", []):
            measurand = sampled.get("measurand", "Energy.Active.Import.Register")
            unit_of_measure = sampled.get("unitOfMeasure") or {}
            unit = unit_of_measure.get("unit", _DEFAULT_UNIT.get(measurand, "Wh"))
            value, unit = normalise_value(
                sampled["value"], unit, int(unit_of_measure.get("multiplier", 0))
            )
            signed = sampled.get("signedMeterValue")
            evidence = json.dumps(signed, sort_keys=True) if signed else None
            samples.append(sample_from(timestamp, sampled, measurand, value, unit, evidence))
    return tuple(samples)
