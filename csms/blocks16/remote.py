"""OCPP 1.6 CSMS-initiated requests as plain camelCase payloads (pure; sending is the service's).

The service API speaks 2.0.1's vocabulary (``evse_id``, reset ``Immediate``/``OnIdle``,
string transaction ids); these builders say the same in 1.6's: ``connectorId``, ``Hard``/
``Soft``, the integer transactionId the CSMS assigned.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from csms.dispatch import Decision
from csms.timeutil import format_timestamp

# 2.0.1 ResetEnumType -> 1.6 ResetType; 1.6 names pass through.
RESET_TYPES = {"Immediate": "Hard", "OnIdle": "Soft", "Hard": "Hard", "Soft": "Soft"}
TRIGGERS = {
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
}


def transaction_id_16(transaction_id: str | int) -> int:
    """A session's transaction id as 1.6's integer (the CSMS assigned it, so it must be one)."""
    try:
        return int(transaction_id)
    except ValueError:
        raise ValueError(f"{transaction_id!r} is not an OCPP 1.6 transactionId") from None


def remote_start_request(
    id_tag: str, *, connector_id: int | None = None, charging_profile: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"idTag": id_tag}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    if charging_profile is not None:
        payload["chargingProfile"] = charging_profile
    return payload


def remote_stop_request(transaction_id: str | int) -> dict[str, Any]:
    return {"transactionId": transaction_id_16(transaction_id)}


def reset_request(reset_type: str) -> dict[str, Any]:
    if reset_type not in RESET_TYPES:
        raise ValueError(f"no OCPP 1.6 reset type for {reset_type!r}")
    return {"type": RESET_TYPES[reset_type]}


def trigger_message_request(
    requested_message: str, *, connector_id: int | None = None
) -> dict[str, Any]:
    if requested_message not in TRIGGERS:
        raise ValueError(f"OCPP 1.6 cannot trigger {requested_message!r}")
    payload: dict[str, Any] = {"requestedMessage": requested_message}
    if connector_id is not None:
        payload["connectorId"] = connector_id
    return payload


def change_configuration_request(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": value}


def get_configuration_request(keys: Iterable[str] = ()) -> dict[str, Any]:
    wanted = list(keys)
    return {"key": wanted} if wanted else {}


def set_charging_profile_request_16(
    decision: Decision,
    *,
    connector_id: int,
    transaction_id: str | int,
    profile_id: int,
    start: datetime,
    stack_level: int = 0,
) -> dict[str, Any]:
    """A 1.6 TxProfile limiting charging power (W). 1.6 has no discharge: that is refused."""
    if decision.mode == "discharge" or decision.limit_w < 0:
        raise ValueError("OCPP 1.6 has no discharge: send a charging limit only")
    if connector_id <= 0:
        raise ValueError("a TxProfile targets one connector: connector_id must be positive")
    return {
        "connectorId": connector_id,
        "csChargingProfiles": {
            "chargingProfileId": profile_id,
            "transactionId": transaction_id_16(transaction_id),
            "stackLevel": stack_level,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": format_timestamp(start),
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": decision.limit_w}],
            },
        },
    }
