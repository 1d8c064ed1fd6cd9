"""Writing one TransactionEvent: the event row, the session fold and the meter samples.

A plain function over the store's synchronous connection (SQLite or PostgreSQL), run on its
thread inside a unit of work (alone, or batched by ``csms.store.group``). Idempotent on (station,
transactionId, seqNo): a duplicate inserts nothing. The transaction's progress
(``csms.store.progress``) is advanced by the event's own samples in the same unit, and the
samples are held to the per-transaction limit (``csms.sample_limits``), and so are the events
(an Ended event is always stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.errors import OccurrenceConstraintViolation
from csms.model import MeterSample, TransactionEventRecord
from csms.sample_limits import SampleLimit, check_event_count, keep_samples
from csms.store.engine import SyncConnection
from csms.store.progress import SELECT_PROGRESS, StoredProgress, progress_from, save_progress
from csms.tariffs import Tariff
from csms.timeutil import format_timestamp

INSERT_EVENT = (
    "INSERT INTO transaction_events (station_id, transaction_id, seq_no,"
    " event_type, trigger_reason, offline, timestamp, received_at, raw)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)

# Portable SQL (csms.store.dialect): CASE rather than the two-argument MAX/MIN.
UPSERT_SESSION = """
    INSERT INTO sessions (station_id, transaction_id, state, started_seen, started_at,
        ended_at, evse_id, connector_id, id_token, id_token_type, stopped_reason,
        last_seq_no, event_count, offline_events, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
    ON CONFLICT (station_id, transaction_id) DO UPDATE SET
        state = CASE WHEN excluded.state = 'ended' THEN 'ended' ELSE sessions.state END,
        started_seen = CASE WHEN excluded.started_seen > sessions.started_seen
            THEN excluded.started_seen ELSE sessions.started_seen END,
        started_at = CASE
            WHEN excluded.started_seen = 1 THEN excluded.started_at
            WHEN sessions.started_seen = 1 THEN sessions.started_at
            WHEN excluded.started_at < sessions.started_at THEN excluded.started_at
            ELSE sessions.started_at END,
        ended_at = COALESCE(excluded.ended_at, sessions.ended_at),
        evse_id = COALESCE(sessions.evse_id, excluded.evse_id),
        connector_id = COALESCE(sessions.connector_id, excluded.connector_id),
        id_token = COALESCE(sessions.id_token, excluded.id_token),
        id_token_type = COALESCE(sessions.id_token_type, excluded.id_token_type),
        stopped_reason = COALESCE(excluded.stopped_reason, sessions.stopped_reason),
        last_seq_no = CASE WHEN excluded.last_seq_no > sessions.last_seq_no
            THEN excluded.last_seq_no ELSE sessions.last_seq_no END,
        event_count = sessions.event_count + 1,
        offline_events = sessions.offline_events + excluded.offline_events,
        updated_at = excluded.updated_at
"""

INSERT_SAMPLE = (
    "INSERT INTO meter_samples (station_id, transaction_id, evse_id, seq_no, timestamp,"
    " measurand, phase, context, location, value, unit, signed)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def event_params(event: TransactionEventRecord, received_at: str) -> tuple[Any, ...]:
    return (
        event.station_id,
        event.transaction_id,
        event.seq_no,
        event.event_type,
        event.trigger_reason,
        int(event.offline),
        format_timestamp(event.timestamp),
        received_at,
        event.raw,
    )


def session_params(event: TransactionEventRecord, received_at: str) -> tuple[Any, ...]:
    timestamp = format_timestamp(event.timestamp)
    ended = event.event_type == "Ended"
    return (
        event.station_id,
        event.transaction_id,
        "ended" if ended else "active",
        int(event.event_type == "Started"),
        timestamp,
        timestamp if ended else None,
        event.evse_id,
        event.connector_id,
        event.id_token,
        event.id_token_type,
        event.stopped_reason,
        event.seq_no,
        int(event.offline),
        received_at,
    )


def sample_rows(
    station_id: str,
    transaction_id: str | None,
    evse_id: int,
    seq_no: int | None,
    samples: tuple[MeterSample, ...],
) -> list[tuple[Any, ...]]:
    return [
        (
            station_id,
            transaction_id,
            evse_id,
            seq_no,
            format_timestamp(s.timestamp),
            s.measurand,
            s.phase,
            s.context,
            s.location,
            s.value,
            s.unit,
            s.signed,
        )
        for s in samples
    ]


@dataclass(frozen=True, slots=True)
class EventWrite:
    """What storing one event did: False for a duplicate; samples dropped past the limit."""

    is_new: bool
    dropped: int = 0
    skipped: bool = False  # a tolerant station's event past max_events_per_transaction


EVENT_COUNT = "SELECT event_count FROM sessions WHERE station_id = ? AND transaction_id = ?"
EVENT_STORED = (
    "SELECT 1 FROM transaction_events WHERE station_id = ? AND transaction_id = ? AND seq_no = ?"
)


def write_event(
    conn: SyncConnection,
    event: TransactionEventRecord,
    received_at: str,
    *,
    tariff: Tariff | None = None,
    limit: SampleLimit | None = None,
) -> EventWrite:
    """Store the event, fold it into its session and advance its progress, once.

    Raises OccurrenceConstraintViolation (the unit is rolled back) when ``limit`` refuses it.
    """
    key = (event.station_id, event.transaction_id)
    # Both reads are sent before either is read: one wait for the server, not two (PostgreSQL
    # pipelines the writer's statements).
    counted = None
    if limit is not None and limit.max_events is not None and event.event_type != "Ended":
        counted = conn.execute(EVENT_COUNT, key)
    progress_row = conn.execute(SELECT_PROGRESS, key)
    if counted is not None:
        assert limit is not None and limit.max_events is not None
        row = counted.fetchone()
        held = int(row[0]) if row else 0
        if held >= limit.max_events:
            if conn.execute(EVENT_STORED, (*key, event.seq_no)).fetchone() is not None:
                return EventWrite(False)  # a resend: answered as before, never refused
            if not check_event_count(limit, held, event.transaction_id):
                return EventWrite(False, skipped=True)
    stored = progress_from(
        conn, progress_row.fetchone(), event.station_id, event.transaction_id, tariff
    )
    samples, dropped = event.samples, 0
    if limit is not None:
        try:
            samples, dropped = keep_samples(
                limit,
                stored.progress.samples,
                samples,
                ended=event.event_type == "Ended",
                transaction_id=event.transaction_id,
            )
        except OccurrenceConstraintViolation:
            if conn.execute(EVENT_STORED, (*key, event.seq_no)).fetchone() is not None:
                return EventWrite(False)  # a resend: answered as before, never refused
            raise
    # Everything written at once, and kept only if the event is new (not a resend): one wait
    # for the server, for the INSERT's row count, instead of one per statement.
    conn.execute("SAVEPOINT event_write")
    inserted = conn.execute(INSERT_EVENT, event_params(event, received_at))
    conn.execute(UPSERT_SESSION, session_params(event, received_at))
    if samples:
        rows = sample_rows(
            event.station_id, event.transaction_id, event.evse_id or 0, event.seq_no, samples
        )
        conn.executemany(INSERT_SAMPLE, rows)
    if samples or dropped:
        advanced = StoredProgress(
            stored.progress.advance(samples, tariff), stored.dropped + dropped
        )
        save_progress(conn, event.station_id, event.transaction_id, advanced)
    if inserted.rowcount == 0:  # stored before: nothing of it stays
        conn.execute("ROLLBACK TO event_write")
        conn.execute("RELEASE event_write")
        return EventWrite(False)
    conn.execute("RELEASE event_write")
    return EventWrite(True, dropped)
