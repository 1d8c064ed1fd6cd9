"""OCPP 1.6 meter values at the boundary: ``meterValue`` lists to normalised ``MeterSample``s.

1.6 differs from 2.0.1 in three ways handled here, once: values are strings; the unit is a
plain ``unit`` field (``kWh`` scales to Wh, the spec's own ``Celcius`` is read as Celsius);
and a signed reading is a separate sampled value with ``format: SignedData`` whose value is
the signed record itself, as raw ``OCMF|...`` text or Base64 of it.

A signed value ends up in ``MeterSample.signed`` in exactly the shape 2.0.1's
``signedMeterValue`` takes, so evidence checks and settlement need not know the version. It
is attached to the plain reading of the same measurand in the same ``meterValue`` when the
station sent one; otherwise the reading is taken from the record's own register.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from csms.errors import PropertyConstraintViolation
from csms.evidence import REGISTER_EXPORT, REGISTER_IMPORT
from csms.metering import meter_value_timestamp, normalise_value, sample_from
from csms.model import MeterSample

DEFAULT_MEASURAND = "Energy.Active.Import.Register"

# 1.6 units the shared table does not know: unit -> (unit passed on, extra power of ten)
_UNITS_16: dict[str, tuple[str, int]] = {
    "Celcius": ("Celsius", 0),  # the 1.6 schema's own spelling
    "kVA": ("VA", 3),
    "kvar": ("var", 3),
}
_DEFAULT_UNITS = {
    "SoC": "Percent",
    "Voltage": "V",
    "Frequency": "Hertz",
    "Temperature": "Celsius",
    "Power.Factor": "",
    "RPM": "",
}
_DEFAULT_UNIT_PREFIXES = {"Power.": "W", "Current.": "A"}
_REGISTERS = {
    "Energy.Active.Import.Register": REGISTER_IMPORT,
    "Energy.Active.Export.Register": REGISTER_EXPORT,
}
_OCMF_UNITS = {"kWh": 3, "Wh": 0}


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """One OCMF record as the station sent it: the verbatim text and its Base64."""

    text: str
    base64: str

    def signed_meter_value(self) -> str:
        """The record in 2.0.1's ``signedMeterValue`` shape, as ``MeterSample.signed`` holds it."""
        value = {
            "encodingMethod": "OCMF",
            "publicKey": "",  # 1.6 carries no key with the value: the registered one applies
            "signedMeterData": self.base64,
            "signingMethod": "",
        }
        return json.dumps(value, sort_keys=True)


def read_signed_value(value: str) -> SignedRecord:
    """Accept raw ``OCMF|...`` text or Base64 of it; keep the record's bytes as they came."""
    if value.startswith("OCMF|"):
        return SignedRecord(value, base64.b64encode(value.encode("utf-8")).decode("ascii"))
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("OCMF|"):
        raise PropertyConstraintViolation(
            "SignedData value is neither an OCMF record nor Base64 of one"
        )
    return SignedRecord(text, value)


def register_value(record: SignedRecord, measurand: str) -> int:
    """The Wh reading of ``measurand``'s register inside an OCMF record."""
    register = _REGISTERS.get(measurand)
    if register is None:
        raise PropertyConstraintViolation(f"SignedData for {measurand} has no register to read")
    body = record.text[len("OCMF|") :]
    try:
        payload = json.loads(body[: body.rfind("|")], parse_float=Decimal)
        readings = payload["RD"]
        for reading in readings:
            if reading.get("RI") == register:
                wh, _ = normalise_value(reading["RV"], "Wh", _OCMF_UNITS[reading["RU"]])
                return wh
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    raise PropertyConstraintViolation(f"SignedData for {measurand} lacks register {register}")


def _unit_of(sampled: dict[str, Any], measurand: str) -> tuple[str, int]:
    unit = sampled.get("unit")
    if unit is None:
        unit = _DEFAULT_UNITS.get(measurand)
        if unit is None:
            prefixes = _DEFAULT_UNIT_PREFIXES.items()
            unit = next((u for p, u in prefixes if measurand.startswith(p)), "Wh")
    return _UNITS_16.get(unit, (unit, 0))


def _key(sampled: dict[str, Any]) -> tuple[Any, ...]:
    return (
        sampled.get("measurand", DEFAULT_MEASURAND),
        sampled.get("phase"),
        sampled.get("context"),
        sampled.get("location"),
    )


def parse_meter_values_16(meter_values: list[dict[str, Any]]) -> tuple[MeterSample, ...]:
    """Normalise a 1.6 ``meterValue`` (or ``transactionData``) list."""
    samples: list[MeterSample] = []
    for meter_value in meter_values:
        timestamp = meter_value_timestamp(meter_value)
        sampled_values = meter_value.get("sampledValue", [])
        plain = [s for s in sampled_values if s.get("format", "Raw") != "SignedData"]
        signed: dict[tuple[Any, ...], SignedRecord] = {}
        unpaired: list[tuple[dict[str, Any], SignedRecord]] = []
        plain_keys = {_key(s) for s in plain}
        for sampled in sampled_values:
            if sampled.get("format") != "SignedData":
                continue
            record = read_signed_value(sampled["value"])
            if _key(sampled) in plain_keys and _key(sampled) not in signed:
                signed[_key(sampled)] = record
            else:
                unpaired.append((sampled, record))
        for sampled in plain:
            measurand = sampled.get("measurand", DEFAULT_MEASURAND)
            unit, power = _unit_of(sampled, measurand)
            value, unit = normalise_value(sampled["value"], unit, power)
            paired = signed.pop(_key(sampled), None)
            samples.append(_sample(timestamp, sampled, measurand, value, unit, paired))
        for sampled, lone in unpaired:
            measurand = sampled.get("measurand", DEFAULT_MEASURAND)
            value = register_value(lone, measurand)
            samples.append(_sample(timestamp, sampled, measurand, value, "Wh", lone))
    return tuple(samples)


def _sample(
    timestamp: datetime,
    sampled: dict[str, Any],
    measurand: str,
    value: int,
    unit: str,
    record: SignedRecord | None,
) -> MeterSample:
    signed = None if record is None else record.signed_meter_value()
    return sample_from(timestamp, sampled, measurand, value, unit, signed)
