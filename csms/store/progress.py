"""A transaction's stored progress (``csms.running``): one row, read and written with each event.

Plain functions over the store's synchronous connection (either engine), run inside the unit of
work that stores the event (``csms.store.events``), so the progress is durable with the samples
it describes. A transaction stored before progress was kept has no row: its first new event
builds it once from the stored samples, event by event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.model import MeterSample, RegisterReading
from csms.running import TransactionProgress
from csms.settlement import RunningCost
from csms.store.engine import SyncConnection
from csms.tariffs import Tariff
from csms.timeutil import format_timestamp, parse_timestamp

COLUMNS = (
    "samples, dropped, reading_at, import_wh, export_wh, milli, previous_at,"
    " first_at, first_import_wh, first_export_wh, import_low, export_low,"
    " latest_at, soc, soc_at"
)

SELECT_PROGRESS = (
    f"SELECT {COLUMNS} FROM transaction_progress WHERE station_id = ? AND transaction_id = ?"
)

UPSERT_PROGRESS = (
    f"INSERT INTO transaction_progress (station_id, transaction_id, {COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (station_id, transaction_id) DO UPDATE SET"
    + ",".join(f" {c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(","))
)


@dataclass(frozen=True, slots=True)
class StoredProgress:
    """A transaction's progress and the samples dropped past its limit so far."""

    progress: TransactionProgress
    dropped: int = 0


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_timestamp(text)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def from_row(row: Any) -> StoredProgress:
    """A ``SELECT_PROGRESS`` row (tuple or mapping in column order) as ``StoredProgress``."""
    (samples, dropped, reading_at, import_wh, export_wh, milli, previous_at, first_at) = row[:8]
    (first_import, first_export, import_low, export_low, latest_at, soc, soc_at) = row[8:]
    first = None
    if first_at is not None:
        first = RegisterReading(parse_timestamp(first_at), first_import, first_export)
    progress = TransactionProgress(
        samples=samples,
        cost=RunningCost(_time(reading_at), import_wh, export_wh, int(milli)),
        previous_at=_time(previous_at),
        first=first,
        import_low=import_low,
        export_low=export_low,
        latest_at=_time(latest_at),
        soc=soc,
        soc_at=_time(soc_at),
    )
    return StoredProgress(progress, dropped)


def to_params(station_id: str, transaction_id: str, stored: StoredProgress) -> tuple[Any, ...]:
    p = stored.progress
    first = p.first
    return (
        station_id,
        transaction_id,
        p.samples,
        stored.dropped,
        _text(p.cost.at),
        p.cost.import_wh,
        p.cost.export_wh,
        str(p.cost.milli),  # text: a product of a register and a price may pass 64 bits
        _text(p.previous_at),
        None if first is None else _text(first.at),
        None if first is None else first.import_wh,
        None if first is None else first.export_wh,
        p.import_low,
        p.export_low,
        _text(p.latest_at),
        p.soc,
        _text(p.soc_at),
    )


def load_progress(
    conn: SyncConnection, station_id: str, transaction_id: str, tariff: Tariff | None
) -> StoredProgress:
    """The stored progress; for a transaction without a row, built from its stored samples."""
    row = conn.execute(SELECT_PROGRESS, (station_id, transaction_id)).fetchone()
    return progress_from(conn, row, station_id, transaction_id, tariff)


def progress_from(
    conn: SyncConnection, row: Any, station_id: str, transaction_id: str, tariff: Tariff | None
) -> StoredProgress:
    """The progress in a ``SELECT_PROGRESS`` row (read already, with other reads), or built
    from the stored samples when the transaction has no row."""
    if row is not None:
        return from_row(tuple(row))
    return StoredProgress(_rebuild(conn, station_id, transaction_id, tariff))


def save_progress(
    conn: SyncConnection, station_id: str, transaction_id: str, stored: StoredProgress
) -> None:
    conn.execute(UPSERT_PROGRESS, to_params(station_id, transaction_id, stored))


def _rebuild(
    conn: SyncConnection, station_id: str, transaction_id: str, tariff: Tariff | None
) -> TransactionProgress:
    """Once, for a transaction stored before progress was kept: its samples event by event."""
    progress = TransactionProgress()
    if (
        conn.execute(
            "SELECT 1 FROM meter_samples WHERE station_id = ? AND transaction_id = ? LIMIT 1",
            (station_id, transaction_id),
        ).fetchone()
        is None
    ):
        return progress
    rows = conn.execute(
        "SELECT seq_no, timestamp, measurand, phase, value, unit FROM meter_samples"
        " WHERE station_id = ? AND transaction_id = ? ORDER BY seq_no, id",
        (station_id, transaction_id),
    ).fetchall()
    event: list[MeterSample] = []
    seq_no = None
    for row in rows:
        if row[0] != seq_no and event:
            progress = progress.advance(event, tariff)
            event = []
        seq_no = row[0]
        event.append(MeterSample(parse_timestamp(row[1]), row[2], row[4], row[5], phase=row[3]))
    return progress.advance(event, tariff)
