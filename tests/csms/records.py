"""Store-level records for CSMS store tests: events as the handler would have stored them."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.model import MeterSample, TransactionEventRecord


def numbered_event(
    station: str, seq_no: int, kind: str = "Updated", wh_per_seq: int = 100
) -> TransactionEventRecord:
    """Event ``seq_no`` of transaction "tx", its import register at ``wh_per_seq * seq_no``."""
    at = datetime(2026, 11, 25, 10, seq_no, tzinfo=UTC)
    return TransactionEventRecord(
        station_id=station,
        transaction_id="tx",
        seq_no=seq_no,
        event_type=kind,
        trigger_reason="MeterValuePeriodic",
        offline=False,
        timestamp=at,
        evse_id=1,
        connector_id=1,
        id_token=None,
        id_token_type=None,
        stopped_reason=None,
        charging_state=None,
        raw="{}",
        samples=(MeterSample(at, "Energy.Active.Import.Register", wh_per_seq * seq_no, "Wh"),),
    )
