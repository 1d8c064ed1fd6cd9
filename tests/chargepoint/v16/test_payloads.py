"""1.6 conversions: strings with units, SignedData beside its reading, Start/Stop shapes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, validate_payload

from chargepoint.charging_profiles import Purpose
from chargepoint.metering import ReadingContext, SignedMeterValue
from chargepoint.payloads import charging_profile_from
from chargepoint.transaction import (
    ConnectorStatus,
    EventType,
    IdToken,
    MeterSample,
    SampledValue,
    StoppedReason,
    TriggerReason,
    TxEvent,
)
from chargepoint.v16.payloads import (
    Begun,
    connector_status,
    meter_values_call,
    sampled_values,
    shared_profile,
    start_transaction_call,
    stop_transaction_call,
)
from tests.chargepoint.fakes import T0

IMPORT, EXPORT = "Energy.Active.Import.Register", "Energy.Active.Export.Register"
SIGNED = SignedMeterValue("T0NNRnx7fXx7fQ==", "", "OCMF", "cGs=")


def sample(
    context: ReadingContext, imported: int, *, signed: bool = False, minutes: int = 0
) -> MeterSample:
    return MeterSample(
        T0 + timedelta(minutes=minutes),
        (
            SampledValue(imported, IMPORT, context, "Wh", SIGNED if signed else None),
            SampledValue(20, EXPORT, context, "Wh"),
            SampledValue(7400, "Power.Active.Import", context, "W"),
        ),
    )


async def body16(payload: Any) -> dict[str, Any]:
    """The camelCase body the library sends, after checking it against the 1.6 schema."""
    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
    await validate_payload(Call("1", type(payload).__name__, body), "1.6")
    assert isinstance(body, dict)
    return body


def event(kind: EventType, *meter: MeterSample, **extra: Any) -> TxEvent:
    return TxEvent(
        event_type=kind,
        timestamp=meter[-1].timestamp,
        trigger_reason=TriggerReason.AUTHORIZED,
        seq_no=0,
        transaction_id="tx-1",
        evse_id=2,
        connector_id=1,
        meter=meter,
        **extra,
    )


def test_values_are_strings_with_units_and_signed_data_sits_beside_its_reading() -> None:
    values = sampled_values(sample(ReadingContext.TRANSACTION_BEGIN, 1234, signed=True))
    assert [v["value"] for v in values] == ["1234", SIGNED.signed_meter_data, "20", "7400"]
    plain, signed = values[0], values[1]
    assert signed["format"] == "SignedData" and plain["format"] == "Raw"
    # the CSMS pairs them by measurand and context
    for key in ("measurand", "context", "unit"):
        assert plain[key] == signed[key]
    assert [v["unit"] for v in values] == ["Wh", "Wh", "Wh", "W"]


async def test_start_uses_the_connector_number_and_the_begin_import_register() -> None:
    started = event(
        EventType.STARTED,
        sample(ReadingContext.TRANSACTION_BEGIN, 1500, signed=True),
        id_token=IdToken("TAG1"),
    )
    body = await body16(start_transaction_call(started))
    assert body == {
        "connectorId": 2,
        "idTag": "TAG1",
        "meterStart": 1500,
        "timestamp": "2026-01-01T12:00:00.000Z",
    }


async def test_stop_carries_begin_held_and_end_readings_in_order() -> None:
    begin = sample(ReadingContext.TRANSACTION_BEGIN, 1000, signed=True)
    held = sample(ReadingContext.SAMPLE_PERIODIC, 3000, signed=True, minutes=15)
    end = sample(ReadingContext.TRANSACTION_END, 4000, signed=True, minutes=30)
    ended = event(EventType.ENDED, held, end, stopped_reason=StoppedReason.IMMEDIATE_RESET)
    body = await body16(stop_transaction_call(ended, 42, Begun("TAG1", begin)))
    assert body["transactionId"] == 42 and body["meterStop"] == 4000
    assert body["reason"] == "HardReset" and body["idTag"] == "TAG1"
    contexts = [m["sampledValue"][0]["context"] for m in body["transactionData"]]
    assert contexts == ["Transaction.Begin", "Sample.Periodic", "Transaction.End"]
    imports = [m["sampledValue"][0]["value"] for m in body["transactionData"]]
    assert imports == ["1000", "3000", "4000"]


async def test_a_soft_reset_is_named_as_such() -> None:
    end = sample(ReadingContext.TRANSACTION_END, 4000)
    ended = event(EventType.ENDED, end, stopped_reason=StoppedReason.IMMEDIATE_RESET)
    body = await body16(stop_transaction_call(ended, 42, None, reset="SoftReset"))
    assert body["reason"] == "SoftReset"
    remote = event(EventType.ENDED, end, stopped_reason=StoppedReason.REMOTE)
    assert (await body16(stop_transaction_call(remote, 42, None, reset="SoftReset")))[
        "reason"
    ] == "Remote"


async def test_stop_without_a_known_start_still_reports_the_end() -> None:
    ended = event(EventType.ENDED, sample(ReadingContext.TRANSACTION_END, 4000))
    body = await body16(stop_transaction_call(ended, 7, None))
    assert "idTag" not in body and len(body["transactionData"]) == 1


async def test_meter_values_name_the_csms_transaction() -> None:
    samples = [sample(ReadingContext.SAMPLE_PERIODIC, 2000)]
    body = await body16(meter_values_call(2, samples, 42))
    assert body["connectorId"] == 2 and body["transactionId"] == 42
    outside = await body16(meter_values_call(2, samples))
    assert "transactionId" not in outside


def test_connector_status_follows_the_transaction() -> None:
    assert connector_status(ConnectorStatus.OCCUPIED, charging=True) == "Charging"
    assert connector_status(ConnectorStatus.OCCUPIED, charging=False) == "Preparing"
    assert connector_status(ConnectorStatus.AVAILABLE, charging=False) == "Available"
    assert connector_status(ConnectorStatus.UNAVAILABLE, charging=False) == "Unavailable"


def profile(*limits: float, unit: str = "W", purpose: str = "TxDefaultProfile") -> dict[str, Any]:
    """A 1.6 csChargingProfiles as the library hands it in (snake case)."""
    periods = [{"start_period": 600 * n, "limit": limit} for n, limit in enumerate(limits)]
    return {
        "charging_profile_id": 3,
        "stack_level": 1,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Absolute",
        "charging_schedule": {"charging_rate_unit": unit, "charging_schedule_period": periods},
    }


def test_a_16_profile_becomes_one_of_the_shared_core() -> None:
    shared = charging_profile_from(shared_profile(profile(3700.0, 16.0, unit="W"), None))
    assert (shared.id, shared.stack_level, shared.purpose) == (3, 1, Purpose.TX_DEFAULT)
    assert [p.limit for p in shared.schedule.periods] == [3700.0, 16.0]
    tx = shared_profile(profile(16.0, unit="A", purpose="TxProfile"), "tx-1")
    assert charging_profile_from(tx).transaction_id == "tx-1"
    station_max = shared_profile(profile(1.0, purpose="ChargePointMaxProfile"), None)
    assert station_max["charging_profile_purpose"] == "ChargingStationMaxProfile"


def test_a_negative_limit_or_no_period_is_refused_because_16_cannot_discharge() -> None:
    with pytest.raises(ValueError, match="no discharge"):
        shared_profile(profile(3700.0, -3700.0), None)
    with pytest.raises(ValueError, match="at least one period"):
        shared_profile(profile(), None)
