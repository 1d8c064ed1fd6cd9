"""Store-level records for CSMS store tests: events as the handler would have stored them."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.model import MeterSample, TransactionEventRecord


def event_record(
    station: str,
    transaction_id: str,
    seq_no: int,
    kind: str,
    at: datetime,
    samples: tuple[MeterSample, ...],
    *,
    token: str | None = None,
    stopped_reason: str | None = None,
) -> TransactionEventRecord:
    """A periodic-meter TransactionEvent on EVSE 1, connector 1 (an ISO14443 ``token``)."""
    return TransactionEventRecord(
        station_id=station,
        transaction_id=transaction_id,
        seq_no=seq_no,
        event_type=kind,
        trigger_reason="MeterValuePeriodic",
        offline=False,
        timestamp=at,
        evse_id=1,
        connector_id=1,
        id_token=token,
        id_token_type=None if token is None else "ISO14443",
        stopped_reason=stopped_reason,
        charging_state=None,
        raw="{}",
        samples=samples,
    )


def numbered_event(
    station: str, seq_no: int, kind: str = "Updated", wh_per_seq: int = 100
) -> TransactionEventRecord:
    """Event ``seq_no`` of transaction "tx", its import register at ``wh_per_seq * seq_no``."""
    at = datetime(2026, 11, 25, 10, seq_no, tzinfo=UTC)
    sample = MeterSample(at, "Energy.Active.Import.Register", wh_per_seq * seq_no, "Wh")
    return event_record(station, "tx", seq_no, kind, at, (sample,))
