"""Conversion at the OCPP 1.6 boundary (pure): the station's events and readings as 1.6 calls.

1.6 has no TransactionEvent: a Started event becomes StartTransaction (the CSMS answers with
the integer transactionId), an Updated one MeterValues with that id, an Ended one
StopTransaction whose ``transactionData`` carries the Transaction.Begin and Transaction.End
readings. Values are strings with units; a signed OCMF record travels as its own sampled value
with ``format: SignedData`` beside the plain reading it certifies (same measurand and context).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocpp.v16 import call

from chargepoint.clock import format_timestamp
from chargepoint.transaction import ConnectorStatus, MeterSample, StoppedReason, TxEvent

Json = dict[str, Any]

# the station's ReasonEnumType -> 1.6 Reason
STOP_REASONS: dict[StoppedReason, str] = {
    StoppedReason.LOCAL: "Local",
    StoppedReason.REMOTE: "Remote",
    StoppedReason.EV_DISCONNECTED: "EVDisconnected",
    StoppedReason.IMMEDIATE_RESET: "HardReset",
    StoppedReason.REBOOT: "Reboot",
    StoppedReason.OTHER: "Other",
    StoppedReason.DE_AUTHORIZED: "DeAuthorized",
}


def connector_status(status: ConnectorStatus, *, charging: bool) -> str:
    """1.6 ChargePointStatus: an occupied connector is Charging in a transaction, else Preparing."""
    if status is ConnectorStatus.OCCUPIED:
        return "Charging" if charging else "Preparing"
    return str(status)  # Available and Unavailable are spelled the same


def sampled_values(sample: MeterSample) -> list[Json]:
    """A reading's SampledValue list: strings with units, signed records as SignedData."""
    values: list[Json] = []
    for item in sample.values:
        plain: Json = {
            "value": str(item.value),
            "context": str(item.context),
            "format": "Raw",
            "measurand": item.measurand,
            "unit": item.unit,
        }
        values.append(plain)
        if item.signed is not None:
            values.append({**plain, "value": item.signed.signed_meter_data, "format": "SignedData"})
    return values


def meter_value_payload(sample: MeterSample) -> Json:
    """One MeterValue (snake_case, the library camel-cases it)."""
    return {
        "timestamp": format_timestamp(sample.timestamp),
        "sampled_value": sampled_values(sample),
    }


def import_register_wh(sample: MeterSample) -> int:
    """The import register of a reading (meterStart / meterStop are integer Wh)."""
    for item in sample.values:
        if item.measurand == "Energy.Active.Import.Register":
            return item.value
    raise ValueError("a transaction reading needs Energy.Active.Import.Register")


def boot_notification_call(*, vendor: str, model: str, serial: str) -> call.BootNotification:
    """BootNotification with the station's identity (1.6 has no boot reason)."""
    return call.BootNotification(
        charge_point_vendor=vendor[:20],
        charge_point_model=model[:20],
        charge_point_serial_number=serial[:25],
        firmware_version="0.1.0",
    )


def status_notification_call(
    *, now: datetime, connector_id: int, status: str
) -> call.StatusNotification:
    """StatusNotification for one connector (errorCode NoError: the simulator never faults)."""
    return call.StatusNotification(
        connector_id=connector_id,
        error_code="NoError",
        status=status,
        timestamp=format_timestamp(now),
    )


@dataclass(frozen=True)
class Begun:
    """What the station keeps of a Started event until its StopTransaction is built."""

    id_tag: str
    begin: MeterSample | None


def start_transaction_call(event: TxEvent) -> call.StartTransaction:
    """StartTransaction for a Started event (the Begin reading's import register as meterStart)."""
    if event.id_token is None or not event.meter:
        raise ValueError("a Started event carries the idToken and the Transaction.Begin reading")
    return call.StartTransaction(
        connector_id=event.evse_id,  # 1.6 numbers connectors across the station
        id_tag=event.id_token.id_token,
        meter_start=import_register_wh(event.meter[-1]),
        timestamp=format_timestamp(event.timestamp),
    )


def meter_values_call(
    connector_id: int, samples: Sequence[MeterSample], transaction_id: int | None = None
) -> call.MeterValues:
    """MeterValues for one connector, inside a transaction if ``transaction_id`` is given."""
    return call.MeterValues(
        connector_id=connector_id,
        meter_value=[meter_value_payload(s) for s in samples if s.values],
        transaction_id=transaction_id,
    )


def stop_transaction_call(
    event: TxEvent, transaction_id: int, begun: Begun | None, *, reset: str = "HardReset"
) -> Any:
    """StopTransaction for an Ended event: meterStop, reason, idTag and the readings.

    ``transactionData`` holds the Transaction.Begin reading, any signed readings held until
    the end, and the Transaction.End reading (the event's last sample), in time order. A
    transaction ended by a reset names the reset's kind (``reset``).
    """
    if not event.meter:
        raise ValueError("an Ended event carries the Transaction.End reading")
    end = event.meter[-1]
    readings = [begun.begin] if begun is not None and begun.begin is not None else []
    readings.extend(event.meter)
    reason = STOP_REASONS.get(event.stopped_reason or StoppedReason.LOCAL, "Other")
    if event.stopped_reason is StoppedReason.IMMEDIATE_RESET:
        reason = reset  # HardReset or SoftReset, as the CSMS asked
    return call.StopTransaction(
        meter_stop=import_register_wh(end),
        timestamp=format_timestamp(event.timestamp),
        transaction_id=transaction_id,
        reason=reason,
        id_tag=None if begun is None else begun.id_tag,
        transaction_data=[meter_value_payload(s) for s in readings if s.values],
    )


# 1.6 ChargingProfilePurposeType -> the shared core's purpose (2.0.1 names)
PURPOSES = {
    "ChargePointMaxProfile": "ChargingStationMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}


def shared_profile(raw: Mapping[str, Any], transaction_id: str | None) -> dict[str, Any]:
    """A 1.6 ``csChargingProfiles`` (snake case) in the shape of the shared smart-charging core.

    ``transaction_id`` is the station's own id of the CSMS's integer one. Raises ValueError
    for a negative limit (1.6 has no discharge) or an empty schedule.
    """
    schedule = dict(raw["charging_schedule"])
    periods = schedule["charging_schedule_period"]
    if not periods:
        raise ValueError("a charging schedule needs at least one period")
    if any(float(p["limit"]) < 0 for p in periods):
        raise ValueError("OCPP 1.6 has no discharge: a limit must not be negative")
    schedule["id"] = 0
    shared = {
        "id": raw["charging_profile_id"],
        "stack_level": raw["stack_level"],
        "charging_profile_purpose": PURPOSES[raw["charging_profile_purpose"]],
        "charging_profile_kind": raw["charging_profile_kind"],
        "charging_schedule": [schedule],
        "transaction_id": transaction_id,
    }
    for key in ("recurrency_kind", "valid_from", "valid_to"):
        if raw.get(key) is not None:
            shared[key] = raw[key]
    return shared
