"""Meter values at the boundary: OCPP ``meterValue`` lists to normalised ``MeterSample``s.

Energy becomes integer Wh and power integer W, once, here (REAL_HARDWARE.md, "Units").
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from csms.errors import PropertyConstraintViolation
from csms.model import MeterSample
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
}
_DEFAULT_UNIT = {"SoC": "Percent"}


def normalise_value(value: Any, unit: str, multiplier: int) -> tuple[int, str]:
    """Scale a reading to the base unit and round half to even to an integer."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PropertyConstraintViolation(f"sampled value {value!r} is not a number") from None
    target, factor = _UNITS.get(unit, (unit, Decimal(1)))
    scaled = amount * factor * (Decimal(10) ** multiplier)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN)), target


def parse_meter_values(meter_values: list[dict[str, Any]]) -> tuple[MeterSample, ...]:
    samples: list[MeterSample] = []
    for meter_value in meter_values:
        try:
            timestamp = parse_timestamp(meter_value["timestamp"])
        except ValueError as exc:
            raise PropertyConstraintViolation(f"meterValue timestamp: {exc}") from None
        for sampled in meter_value.get("sampledValue", []):
            measurand = sampled.get("measurand", "Energy.Active.Import.Register")
            unit_of_measure = sampled.get("unitOfMeasure") or {}
            unit = unit_of_measure.get("unit", _DEFAULT_UNIT.get(measurand, "Wh"))
            value, unit = normalise_value(
                sampled["value"], unit, int(unit_of_measure.get("multiplier", 0))
            )
            signed = sampled.get("signedMeterValue")
            samples.append(
                MeterSample(
                    timestamp=timestamp,
                    measurand=measurand,
                    value=value,
                    unit=unit,
                    phase=sampled.get("phase"),
                    context=sampled.get("context"),
                    location=sampled.get("location"),
                    signed=json.dumps(signed, sort_keys=True) if signed else None,
                )
            )
    return tuple(samples)
