"""Builders for OCPP 2.0.1 payloads used across CSMS tests."""

from __future__ import annotations

from typing import Any


def energy_sample(
    timestamp: str, import_wh: float, export_wh: float = 0, context: str = "Sample.Periodic"
) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "sampledValue": [
            {
                "value": import_wh,
                "measurand": "Energy.Active.Import.Register",
                "context": context,
                "unitOfMeasure": {"unit": "Wh"},
            },
            {
                "value": export_wh,
                "measurand": "Energy.Active.Export.Register",
                "context": context,
                "unitOfMeasure": {"unit": "Wh"},
            },
        ],
    }


def transaction_event(
    event_type: str,
    seq_no: int,
    transaction_id: str = "tx-1",
    *,
    timestamp: str = "2026-11-25T10:00:00.000Z",
    import_wh: float | None = None,
    export_wh: float = 0,
    offline: bool = False,
    id_token: str | None = None,
) -> dict[str, Any]:
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "StopAuthorized"}
    context = {
        "Started": "Transaction.Begin",
        "Updated": "Sample.Periodic",
        "Ended": "Transaction.End",
    }
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger[event_type],
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id},
        "evse": {"id": 1, "connectorId": 1},
    }
    if event_type == "Ended":
        payload["transactionInfo"]["stoppedReason"] = "Local"
    if offline:
        payload["offline"] = True
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if import_wh is not None:
        payload["meterValue"] = [
            energy_sample(timestamp, import_wh, export_wh, context[event_type])
        ]
    return payload
