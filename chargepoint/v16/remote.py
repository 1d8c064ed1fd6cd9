"""CSMS-initiated OCPP 1.6 calls (Core, Remote Trigger, Smart Charging) on the shared station.

Each function takes the station and converted arguments and returns the 1.6 result dataclass,
plus a follow-up to run after the answer where the call has consequences. The 2.0.1 station's
functional blocks do the work where 1.6 means the same (remote start, availability, reset).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from ocpp.v16 import call, call_result

from chargepoint import availability, provisioning, remote_control, smart_charging
from chargepoint.charging_profiles import Criteria, Purpose
from chargepoint.metering import ReadingContext
from chargepoint.payloads import charging_profile_from
from chargepoint.station import FollowUp
from chargepoint.transaction import Evse, IdToken
from chargepoint.v16.configuration import Configuration
from chargepoint.v16.payloads import (
    PURPOSES,
    boot_notification_call,
    meter_values_call,
    shared_profile,
)
from chargepoint.v16.station import Station16

LOG = logging.getLogger(__name__)
VENDOR_ID = "v2g-bridge"


def remote_start(
    station: Station16, id_tag: str, connector_id: int | None
) -> tuple[call_result.RemoteStartTransaction, FollowUp | None]:
    """Start a session for ``id_tag`` on the connector (or the first idle one)."""
    token = IdToken(id_tag, "ISO14443")
    result, follow_up = remote_control.request_start(
        station, token, next(station.remote_start_ids), connector_id
    )
    return call_result.RemoteStartTransaction(status=result.status), follow_up


def remote_stop(
    station: Station16, transaction_id: int
) -> tuple[call_result.RemoteStopTransaction, FollowUp | None]:
    """Stop the transaction the CSMS numbered ``transaction_id``; Rejected if none runs here."""
    own = station.transaction_for(transaction_id)
    if own is None:
        return call_result.RemoteStopTransaction(status="Rejected"), None
    result, follow_up = remote_control.request_stop(station, own)
    return call_result.RemoteStopTransaction(status=result.status), follow_up


def configuration_of(station: Station16) -> Configuration:
    """The 1.6 key view of the station's device model."""
    return Configuration(station.device_model, connectors=len(station.evses))


def get_configuration(station: Station16, keys: list[str] | None) -> call_result.GetConfiguration:
    """GetConfiguration: known keys with values and read-only flags, and the unknown ones."""
    known, unknown = configuration_of(station).get(keys)
    return call_result.GetConfiguration(
        configuration_key=[{"key": k.key, "readonly": k.readonly, "value": k.value} for k in known],
        unknown_key=unknown or None,
    )


def change_configuration(
    station: Station16, key: str, value: str
) -> call_result.ChangeConfiguration:
    """ChangeConfiguration of one key; the new value acts at its next use."""
    return call_result.ChangeConfiguration(status=str(configuration_of(station).change(key, value)))


def set_charging_profile(
    station: Station16, connector_id: int, raw: Mapping[str, Any]
) -> call_result.SetChargingProfile:
    """Install a 1.6 profile in the shared smart-charging core (connector 0: the station).

    Rejected for a negative limit (1.6 has no discharge), a TxProfile whose transaction is
    not running here, and whatever the core refuses (e.g. ChargePointMaxProfile).
    """
    own: str | None = None
    if raw.get("transaction_id") is not None:
        own = station.transaction_for(int(raw["transaction_id"]))
        if own is None:
            return call_result.SetChargingProfile(status="Rejected")
    try:
        profile = charging_profile_from(shared_profile(raw, own))
    except (ValueError, KeyError) as exc:
        LOG.info("%s: SetChargingProfile refused: %s", station.station_id, exc)
        return call_result.SetChargingProfile(status="Rejected")
    result, _ = smart_charging.set_charging_profile(station, connector_id, profile)
    return call_result.SetChargingProfile(status=result.status)


def clear_charging_profile(
    station: Station16,
    profile_id: int | None,
    connector_id: int | None,
    purpose: str | None,
    stack_level: int | None,
) -> call_result.ClearChargingProfile:
    """Remove the matching profiles; Unknown when none matched."""
    criteria = Criteria(
        profile_ids=() if profile_id is None else (profile_id,),
        evse_id=connector_id,
        purpose=None if purpose is None else Purpose(PURPOSES[purpose]),
        stack_level=stack_level,
    )
    result, _ = smart_charging.clear_charging_profile(station, criteria)
    return call_result.ClearChargingProfile(status=result.status)


def reset(station: Station16, reset_type: str) -> tuple[call_result.Reset, FollowUp | None]:
    """Hard and Soft both end the transactions and reboot (1.6 never schedules a reset)."""
    station.reset_reason = "SoftReset" if reset_type == "Soft" else "HardReset"
    _, follow_up = provisioning.reset(station, "Immediate", None)
    LOG.info("%s: %s reset", station.station_id, reset_type)
    return call_result.Reset(status="Accepted"), follow_up


def change_availability(
    station: Station16, connector_id: int, kind: str
) -> tuple[call_result.ChangeAvailability, FollowUp | None]:
    """Connector 0 is the whole station; Scheduled while a transaction runs."""
    result, follow_up = availability.change_availability(
        station, kind == "Operative", connector_id or None, None
    )
    return call_result.ChangeAvailability(status=result.status), follow_up


def data_transfer(vendor_id: str, message_id: str | None) -> call_result.DataTransfer:
    """No vendor extensions: our own vendor id knows no message, any other is unknown."""
    if vendor_id != VENDOR_ID:
        return call_result.DataTransfer(status="UnknownVendorId")
    return call_result.DataTransfer(status="UnknownMessageId")


def trigger_message(
    station: Station16, requested: str, connector_id: int | None
) -> tuple[call_result.TriggerMessage, FollowUp | None]:
    """Send the requested message after answering (connector 0 or none: every connector)."""
    if connector_id and connector_id not in station.evses:
        return call_result.TriggerMessage(status="Rejected"), None
    evses = [station.evses[connector_id]] if connector_id else list(station.evses.values())
    follow_up: FollowUp
    if requested == "BootNotification":
        payload = boot_notification_call(
            vendor=station.config.vendor,
            model=station.config.model,
            serial=station.station_id,
        )
        follow_up = partial(remote_control.send_checked, station, payload)
    elif requested == "Heartbeat":
        follow_up = partial(remote_control.send_checked, station, call.Heartbeat())
    elif requested == "StatusNotification":
        follow_up = partial(remote_control.send_statuses, station, evses)
    elif requested == "MeterValues":
        follow_up = partial(_send_meter_values, station, evses)
    elif requested in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        message = getattr(call, requested)(status="Idle")
        follow_up = partial(remote_control.send_checked, station, message)
    else:
        return call_result.TriggerMessage(status="NotImplemented"), None
    return call_result.TriggerMessage(status="Accepted"), follow_up


async def _send_meter_values(station: Station16, evses: list[Evse]) -> None:
    for evse in evses:
        sample = station.sample(evse, ReadingContext.TRIGGER, "TxUpdatedMeasurands")
        message = meter_values_call(evse.evse_id, [sample], station.csms_id_of(evse))
        await remote_control.send_checked(station, message)
