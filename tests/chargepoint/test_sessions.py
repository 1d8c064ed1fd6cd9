"""A 4-hour session on the accelerated (fixed) clock: Updated events at every aligned instant,
each with the meter's signed Intermediate record taken at that exact instant."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.config import StationConfig
from chargepoint.device_model import (
    ComponentKey,
    DeviceModel,
    SetRequest,
    VariableKey,
    default_variables,
)
from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf
from chargepoint.provisioning import set_variables
from chargepoint.sessions import run_session
from chargepoint.station import Station
from chargepoint.transaction import IdToken
from tests.chargepoint.fakes import FakeLink, FixedClock

START = datetime(2026, 11, 25, 12, 7, 30, tzinfo=UTC)
TOKEN = IdToken("04AA", "ISO14443")
KEY = ec.generate_private_key(ec.SECP256R1())


def make_station(*, aligned: int = 900, periodic: int = 600) -> Station:
    spec = EvSpec(100_000, 20, 11_000, 7_000, START + timedelta(hours=8), 80)
    meter = EvMeter(
        Ev(spec, soc_pct=10, at=START),
        Meter(KEY, MeterInfo(serial="M1")),
        public_key=public_key_ocmf(KEY),
        token_type="ISO14443",
    )
    meter.set_limit(11_000, START)
    variables = default_variables(
        station_id="CP1", evse_count=1, tx_updated_interval=periodic, aligned_interval=aligned
    )
    return Station(
        StationConfig(url="ws://h/ocpp", station_id="CP1"),
        clock=FixedClock(START),
        device_model=DeviceModel(variables),
        meters={1: meter},
        new_transaction_id=lambda: "tx-1",
        on_error=lambda error: None,
    )


def record_of(value: dict[str, Any]) -> dict[str, Any]:
    """The verified payload of a signed sampled value (snake_case, as the library gets it)."""
    signed = value["signed_meter_value"]
    text = base64.b64decode(signed["signed_meter_data"]).decode()
    body, signature = text[len("OCMF|") :].rsplit("|", 1)
    der = bytes.fromhex(json.loads(signature)["SD"])
    KEY.public_key().verify(der, body.encode(), ec.ECDSA(hashes.SHA256()))
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def by_measurand(meter_value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["measurand"]: v for v in meter_value["sampled_value"]}


async def test_four_hour_session_has_a_signed_reading_at_each_aligned_instant() -> None:
    station = make_station()
    link = FakeLink()
    await station.go_online(link)
    assert await run_session(station, station.evses[1], TOKEN, seconds=4 * 3600) is True
    events = [p for p in link.sent if type(p).__name__ == "TransactionEvent"]
    clock = [e for e in events if e.trigger_reason == "MeterValueClock"]
    # 12:15, 12:30, ..., 16:00: 16 aligned instants inside 12:07:30 .. 16:07:30
    assert [e.timestamp for e in clock] == [
        (datetime(2026, 11, 25, 12, 15, tzinfo=UTC) + timedelta(minutes=15 * n)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        for n in range(16)
    ]
    hours = [e for e in clock if e.timestamp[14:16] == "00"]
    assert [e.timestamp[11:13] for e in hours] == ["13", "14", "15", "16"]
    for event in clock:
        (meter_value,) = event.meter_value
        assert meter_value["timestamp"] == event.timestamp
        values = by_measurand(meter_value)
        assert set(values) == {
            "Energy.Active.Import.Register",
            "Energy.Active.Export.Register",
            "Power.Active.Import",
            "Power.Active.Export",
            "SoC",
        }
        assert {v["context"] for v in values.values()} == {"Sample.Clock"}
        record = record_of(values["Energy.Active.Import.Register"])
        assert record["RD"][0]["TX"] == "C"
        assert record["RD"][0]["TM"] == meter_value["timestamp"].replace(".", ",")[:-1] + "+0000 S"
        # independent: 11 kW since 12:07:30, whole Wh; the register sample says the same
        at = datetime.strptime(event.timestamp, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        expected = 11_000 * int((at - START).total_seconds()) // 3600
        assert values["Energy.Active.Import.Register"]["value"] == expected
        assert round(float(record["RD"][0]["RV"]) * 1000) == expected
    natures = []
    for event in events:
        for meter_value in event.meter_value or []:
            for value in meter_value["sampled_value"]:
                if "signed_meter_value" in value:
                    natures.append(record_of(value)["RD"][0]["TX"])
    assert natures == ["B"] + ["C"] * 16 + ["E"]  # every record sent exactly once, in order
    periodic = [e for e in events if e.trigger_reason == "MeterValuePeriodic"]
    assert len(periodic) == 23  # every 600 s from the start, none at the end


async def test_aligned_interval_set_to_zero_sends_no_clock_samples() -> None:
    station = make_station(aligned=0)
    link = FakeLink()
    await station.go_online(link)
    assert await run_session(station, station.evses[1], TOKEN, seconds=3600) is True
    events = [p for p in link.sent if type(p).__name__ == "TransactionEvent"]
    assert not [e for e in events if e.trigger_reason == "MeterValueClock"]
    assert [e.event_type for e in events][-1] == "Ended"


async def test_set_variables_changes_the_aligned_interval_of_a_running_session() -> None:
    station = make_station(aligned=900)
    link = FakeLink()
    await station.go_online(link)
    request = SetRequest(ComponentKey("AlignedDataCtrlr"), VariableKey("Interval"), "3600")
    set_variables(station, [request])
    assert station.aligned_interval() == 3600
    assert await run_session(station, station.evses[1], TOKEN, seconds=3 * 3600) is True
    events = [p for p in link.sent if type(p).__name__ == "TransactionEvent"]
    clock = [e.timestamp[11:19] for e in events if e.trigger_reason == "MeterValueClock"]
    assert clock == ["13:00:00", "14:00:00", "15:00:00"]  # whole hours only
