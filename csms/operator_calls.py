"""The CSMS-initiated messages an operator may send, per OCPP version (pure data).

One generic path serves them all (``StationService.operator_call``, ``POST
/api/stations/{id}/ocpp/{action}``, ``v2g stations call``): the payload is the message as the
specification writes it (camelCase JSON), checked against the schema the ``ocpp`` library ships
for the station's negotiated version before anything is sent. A charging profile inside it is
first clamped to the dispatch bounds (``csms.profile_bounds``).

The 2.1 messages that set power outside a charging profile (UpdateDynamicSchedule,
SetDERControl, AFRRSignal) are bounded or refused by ``csms.power_bounds``.

Left out on purpose: answers to a station's own request (CertificateSigned) and what the CSMS
sends itself (CostUpdated, the dispatcher's profiles).
"""

from __future__ import annotations

OPERATOR_ACTIONS_16 = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        # the 1.6 security extension
        "ExtendedTriggerMessage",
        "GetLog",
        "SignedUpdateFirmware",
    }
)

OPERATOR_ACTIONS_201 = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CustomerInformation",
        "DataTransfer",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)

OPERATOR_ACTIONS_21 = OPERATOR_ACTIONS_201 | {
    "AFRRSignal",
    "ClearDERControl",
    "GetDERControl",
    "NotifyAllowedEnergyTransfer",
    "SetDERControl",
    "UpdateDynamicSchedule",
}

OPERATOR_ACTIONS = {
    "ocpp1.6": OPERATOR_ACTIONS_16,
    "ocpp2.0.1": OPERATOR_ACTIONS_201,
    "ocpp2.1": OPERATOR_ACTIONS_21,
}


def check_operator_action(subprotocol: str, action: str) -> None:
    """ValueError naming the allowed actions unless an operator may send ``action``."""
    allowed = OPERATOR_ACTIONS.get(subprotocol, frozenset())
    if action not in allowed:
        raise ValueError(
            f"{action!r} is not a message an operator can send on {subprotocol}; one of:"
            f" {', '.join(sorted(allowed))}"
        )
