"""1.6 meter values: string values, units, and SignedData landing in 2.0.1's signed shape."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import Identification, Meter, MeterInfo, OcmfRecord
from csms.blocks16.metering import parse_meter_values_16, read_signed_value
from csms.errors import PropertyConstraintViolation
from csms.evidence import check_evidence, decode_signed_meter_data
from csms.metering import parse_meter_values

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
STAMP = "2026-11-25T10:00:00.000Z"
WHO = Identification(id_token="TAG16", token_type="ISO14443")
KEY = ec.generate_private_key(ec.SECP256R1())


def records() -> list[OcmfRecord]:
    """Begin at 1000.000 kWh import / 20.000 kWh export; +5 kWh import, +2 kWh export; End."""
    meter = Meter(KEY, MeterInfo(serial="MTR-16"), import_wh=1_000_000, export_wh=20_000)
    begin = meter.sign("Begin", T0, WHO)
    meter.feed(EnergyFlow(T0, T0, 5_000 * UJ_PER_WH, 2_000 * UJ_PER_WH))
    end = meter.sign("End", T0 + timedelta(hours=1), WHO)
    return [begin, end]


def signed(value: str, measurand: str = "Energy.Active.Import.Register") -> dict[str, Any]:
    return {
        "value": value,
        "format": "SignedData",
        "measurand": measurand,
        "context": "Transaction.Begin",
    }


def test_signed_data_has_the_exact_shape_of_a_201_signed_meter_value() -> None:
    record = records()[0]
    plain = {
        "value": "1000000",
        "measurand": "Energy.Active.Import.Register",
        "context": "Transaction.Begin",
        "unit": "Wh",
    }
    (sample,) = parse_meter_values_16(
        [{"timestamp": STAMP, "sampledValue": [plain, signed(record.text)]}]
    )
    data = base64.b64encode(record.text.encode()).decode()
    (reference,) = parse_meter_values(
        [
            {
                "timestamp": STAMP,
                "sampledValue": [
                    {
                        "value": 1000000,
                        "measurand": "Energy.Active.Import.Register",
                        "context": "Transaction.Begin",
                        "signedMeterValue": {
                            "signedMeterData": data,
                            "signingMethod": "",
                            "encodingMethod": "OCMF",
                            "publicKey": "",
                        },
                    }
                ],
            }
        ]
    )
    assert sample == reference
    assert sample.signed is not None
    assert decode_signed_meter_data(json.loads(sample.signed)["signedMeterData"]) == record.text


def test_base64_and_raw_signed_values_give_the_same_sample() -> None:
    record = records()[0]
    as_base64 = base64.b64encode(record.text.encode()).decode()
    raw = parse_meter_values_16([{"timestamp": STAMP, "sampledValue": [signed(record.text)]}])
    encoded = parse_meter_values_16([{"timestamp": STAMP, "sampledValue": [signed(as_base64)]}])
    assert raw == encoded
    assert read_signed_value(as_base64).text == record.text


def test_a_lone_signed_value_reads_its_register_from_the_record() -> None:
    begin, end = records()
    samples = parse_meter_values_16(
        [
            {"timestamp": STAMP, "sampledValue": [signed(begin.text)]},
            {
                "timestamp": STAMP,
                "sampledValue": [
                    signed(end.text),
                    signed(end.text, "Energy.Active.Export.Register"),
                ],
            },
        ]
    )
    assert [(s.measurand, s.value, s.unit) for s in samples] == [
        ("Energy.Active.Import.Register", 1_000_000, "Wh"),
        ("Energy.Active.Import.Register", 1_005_000, "Wh"),
        ("Energy.Active.Export.Register", 22_000, "Wh"),
    ]
    texts = [
        decode_signed_meter_data(json.loads(s.signed or "")["signedMeterData"]) for s in samples
    ]
    check = check_evidence(texts, KEY.public_key(), expected_id="TAG16")
    assert check.ok, check.reason
    assert [(s.import_wh, s.export_wh) for s in check.snapshots] == [
        (1_000_000, 20_000),
        (1_005_000, 22_000),
    ]


@pytest.mark.parametrize(
    "value",
    ["not a record", base64.b64encode(b"EDL40|something").decode(), "", "OCMX|{}|{}"],
)
def test_signed_data_that_is_not_ocmf_is_refused(value: str) -> None:
    with pytest.raises(PropertyConstraintViolation, match="OCMF"):
        parse_meter_values_16([{"timestamp": STAMP, "sampledValue": [signed(value)]}])


def test_signed_data_without_the_register_is_refused() -> None:
    record = records()[0]
    with pytest.raises(PropertyConstraintViolation, match="register"):
        parse_meter_values_16(
            [{"timestamp": STAMP, "sampledValue": [signed(record.text, "Power.Active.Import")]}]
        )


@pytest.mark.parametrize(
    ("sampled", "expected"),
    [
        ({"value": "1234"}, ("Energy.Active.Import.Register", 1234, "Wh")),
        ({"value": "2.5", "unit": "kWh"}, ("Energy.Active.Import.Register", 2500, "Wh")),
        ({"value": "0.0005", "unit": "kWh"}, ("Energy.Active.Import.Register", 0, "Wh")),
        ({"value": "0.0015", "unit": "kWh"}, ("Energy.Active.Import.Register", 2, "Wh")),
        (
            {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
            ("Power.Active.Import", 11_000, "W"),
        ),
        ({"value": "16.4", "measurand": "Current.Import"}, ("Current.Import", 16, "A")),
        ({"value": "80", "measurand": "SoC"}, ("SoC", 80, "Percent")),
        (
            {"value": "31", "unit": "Celcius", "measurand": "Temperature"},
            ("Temperature", 31, "Celsius"),
        ),
        (
            {"value": "1.5", "unit": "kVA", "measurand": "Power.Offered"},
            ("Power.Offered", 1500, "VA"),
        ),
    ],
)
def test_string_values_and_units_are_normalised(
    sampled: dict[str, Any], expected: tuple[str, int, str]
) -> None:
    (sample,) = parse_meter_values_16([{"timestamp": STAMP, "sampledValue": [sampled]}])
    assert (sample.measurand, sample.value, sample.unit) == expected


def test_phase_and_location_are_kept() -> None:
    (sample,) = parse_meter_values_16(
        [
            {
                "timestamp": STAMP,
                "sampledValue": [{"value": "5", "phase": "L1", "location": "Outlet"}],
            }
        ]
    )
    assert (sample.phase, sample.location, sample.signed) == ("L1", "Outlet", None)


@pytest.mark.parametrize(
    ("meter_value", "match"),
    [
        ({"timestamp": "2026-11-25T10:00:00", "sampledValue": [{"value": "1"}]}, "timezone"),
        ({"timestamp": STAMP, "sampledValue": [{"value": "12,5"}]}, "not a number"),
    ],
)
def test_strict_mode_refuses_bent_values(meter_value: dict[str, Any], match: str) -> None:
    with pytest.raises(PropertyConstraintViolation, match=match):
        parse_meter_values_16([meter_value])
