"""OCPP 1.6 transaction messages as the session model's ``TransactionEventRecord``s (pure).

The mapping that lets a 1.6 session settle exactly like a 2.0.1 one:

- StartTransaction -> ``Started``, seqNo 0, with ``meterStart`` as the Transaction.Begin
  import register reading;
- MeterValues with a ``transactionId`` -> ``Updated``, the next seqNo;
- StopTransaction -> ``Ended``, the next (and so highest) seqNo, with ``transactionData`` and
  ``meterStop`` as the Transaction.End import register reading unless transactionData already
  carries one.

A 1.6 connector ``n`` is the session model's EVSE ``n`` with connector 1 (1.6 has one connector
per EVSE). ``raw`` keeps the 1.6 message as received, tagged with its action.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from csms.blocks16.metering import DEFAULT_MEASURAND, parse_meter_values_16
from csms.errors import PropertyConstraintViolation
from csms.model import MeterSample, TransactionEventRecord
from csms.timeutil import parse_timestamp

# 1.6 StopTransaction reason -> (2.0.1 stoppedReason, 2.0.1 triggerReason)
STOP_REASONS: dict[str, tuple[str, str]] = {
    "Local": ("Local", "StopAuthorized"),
    "Remote": ("Remote", "RemoteStop"),
    "EVDisconnected": ("EVDisconnected", "EVDeparted"),
    "DeAuthorized": ("DeAuthorized", "Deauthorized"),
    "EmergencyStop": ("EmergencyStop", "AbnormalCondition"),
    "PowerLoss": ("PowerLoss", "AbnormalCondition"),
    "Reboot": ("Reboot", "AbnormalCondition"),
    "HardReset": ("ImmediateReset", "ResetCommand"),
    "SoftReset": ("ImmediateReset", "ResetCommand"),
    "UnlockCommand": ("Other", "UnlockCommand"),
    "Other": ("Other", "AbnormalCondition"),
}


def _timestamp(text: str, what: str) -> datetime:
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise PropertyConstraintViolation(f"{what}: {exc}") from None


def _raw(action: str, transaction_id: int, payload: dict[str, Any]) -> str:
    message = {"ocpp": "1.6", "action": action, "transactionId": transaction_id, **payload}
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _register(moment: datetime, wh: int, context: str) -> MeterSample:
    return MeterSample(
        timestamp=moment, measurand=DEFAULT_MEASURAND, value=wh, unit="Wh", context=context
    )


def started_record(
    station_id: str,
    transaction_id: int,
    payload: dict[str, Any],
    *,
    id_token_type: str,
) -> TransactionEventRecord:
    """A StartTransactionRequest as the session's ``Started`` event (seqNo 0)."""
    moment = _timestamp(payload["timestamp"], "timestamp")
    return TransactionEventRecord(
        station_id=station_id,
        transaction_id=str(transaction_id),
        seq_no=0,
        event_type="Started",
        trigger_reason="Authorized",
        offline=False,
        timestamp=moment,
        evse_id=payload["connectorId"],
        connector_id=1,
        id_token=payload["idTag"],
        id_token_type=id_token_type,
        stopped_reason=None,
        charging_state="Charging",
        raw=_raw("StartTransaction", transaction_id, payload),
        samples=(_register(moment, payload["meterStart"], "Transaction.Begin"),),
    )


def updated_record(
    station_id: str, transaction_id: int, seq_no: int, payload: dict[str, Any]
) -> TransactionEventRecord:
    """A MeterValuesRequest naming a transaction as an ``Updated`` event."""
    samples = parse_meter_values_16(payload["meterValue"])
    connector = payload["connectorId"]
    return TransactionEventRecord(
        station_id=station_id,
        transaction_id=str(transaction_id),
        seq_no=seq_no,
        event_type="Updated",
        trigger_reason="MeterValuePeriodic",
        offline=False,
        timestamp=max(sample.timestamp for sample in samples)
        if samples
        else _timestamp(payload["meterValue"][0]["timestamp"], "meterValue timestamp"),
        evse_id=connector if connector > 0 else None,
        connector_id=1 if connector > 0 else None,
        id_token=None,
        id_token_type=None,
        stopped_reason=None,
        charging_state=None,
        raw=_raw("MeterValues", transaction_id, payload),
        samples=samples,
    )


def ended_record(
    station_id: str,
    transaction_id: int,
    seq_no: int,
    payload: dict[str, Any],
    *,
    connector_id: int | None,
    id_token_type: str | None,
) -> TransactionEventRecord:
    """A StopTransactionRequest as the session's ``Ended`` event."""
    moment = _timestamp(payload["timestamp"], "timestamp")
    samples = parse_meter_values_16(payload.get("transactionData", []))
    has_end_register = any(
        s.measurand == DEFAULT_MEASURAND and s.phase is None and s.context == "Transaction.End"
        for s in samples
    )
    if not has_end_register:
        samples = (*samples, _register(moment, payload["meterStop"], "Transaction.End"))
    stopped_reason, trigger = STOP_REASONS[payload.get("reason", "Local")]
    id_tag = payload.get("idTag")
    return TransactionEventRecord(
        station_id=station_id,
        transaction_id=str(transaction_id),
        seq_no=seq_no,
        event_type="Ended",
        trigger_reason=trigger,
        offline=False,
        timestamp=moment,
        evse_id=connector_id,
        connector_id=None if connector_id is None else 1,
        id_token=id_tag,
        id_token_type=id_token_type if id_tag is not None else None,
        stopped_reason=stopped_reason,
        charging_state="Idle",
        raw=_raw("StopTransaction", transaction_id, payload),
        samples=samples,
    )
