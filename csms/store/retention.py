"""How much of what a station reports outside its transactions the CSMS keeps: the newest
rows per station, a documented number of each kind (README, Configuration: ``keep_*``).

Each kind is one table (and, for meter values, the rows of that table not tied to a
transaction). ``prune`` runs on the store's synchronous connection inside the unit of work that
inserted the new rows, so a message and the pruning it causes commit together. It costs the
same however many rows a station holds: ``station_retention`` counts each station's rows of
each kind (kept in the same unit of work), and only the rows past ``keep`` are read, oldest
first, through the table's ``(station_id, id)`` index. Portable SQL: SQLite and PostgreSQL.

Rows of these kinds leave only through ``prune``: code that deletes them otherwise must
lower the station's count with ``forget`` in the same unit of work. Should a count be off all
the same (rows deleted by hand), it is taken again when a station has fewer old rows than
counted and after every ``keep`` rows pruned (the same work, spread over ``keep`` inserts):
until then a station may hold fewer rows than its cap, never more, and never loses a row
just received while the cap has room for it.

Sessions, their transaction events and settlements have no cap: they are financial records
(a settlement is signed and on the ledger; its session and events are its evidence), kept as
long as the CSMS runs. A transaction's own samples and events are bounded per transaction
(``csms.sample_limits``); how many transactions a station has is not. So every read of them
per station is paged or limited instead of pruned: the review lists (``csms.store.session_list``),
a station's session count (``csms.store.tallies``), its open transactions and clock skew
(``csms.store.station_overview``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.store.engine import SyncConnection


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of station row kept up to a number per station."""

    name: str  # the metric label and config key suffix (``keep_<name>``)
    table: str
    where: str = ""  # which rows of the table count, beside the station

    def _rows(self) -> str:
        extra = f" AND {self.where}" if self.where else ""
        return f"{self.table} WHERE station_id = ?{extra}"

    def newest_sql(self) -> str:
        """Delete all but the station's newest ``?`` rows (walks that many index entries)."""
        rows = self._rows()
        return (
            f"DELETE FROM {rows} AND id <= ("
            f"SELECT id FROM {rows} ORDER BY id DESC LIMIT 1 OFFSET ?)"
        )

    def oldest_sql(self) -> str:
        """Delete the station's oldest ``?`` rows older than its newest ``?`` + 1."""
        rows = self._rows()
        first_new = f"SELECT id FROM {rows} ORDER BY id DESC LIMIT 1 OFFSET ?"
        oldest = f"SELECT id FROM {rows} AND id < ({first_new}) ORDER BY id LIMIT ?"
        return f"DELETE FROM {self.table} WHERE id IN ({oldest})"

    def count_sql(self) -> str:
        return f"SELECT COUNT(*) FROM {self._rows()}"


# The defaults of the ``keep_<kind>`` settings (csms.config).
KEEP_STATION_EVENTS = 500
KEEP_METER_VALUES = 10_000
KEEP_SECURITY_EVENTS = 1_000
KEEP_REPORTS = 1_000
KEEP_CHARGING_NEEDS = 1_000
KEEP_CONNECTION_LOG = 1_000
MAX_CONNECTORS = 64  # connectors (EVSE, connector) whose status a station keeps

STATION_EVENTS = Kind("station_events", "station_events")
METER_VALUES = Kind("meter_values", "meter_samples", "transaction_id IS NULL")
SECURITY_EVENTS = Kind("security_events", "security_events")
REPORTS = Kind("reports", "reports")
CHARGING_NEEDS = Kind("charging_needs", "ev_charging_needs")
CONNECTION_LOG = Kind("connection_log", "connections_log")

KINDS = (STATION_EVENTS, METER_VALUES, SECURITY_EVENTS, REPORTS, CHARGING_NEEDS, CONNECTION_LOG)


_HELD = (
    "INSERT INTO station_retention (station_id, kind, held, pruned) VALUES (?, ?, ?, 0)"
    " ON CONFLICT (station_id, kind) DO UPDATE SET held = station_retention.held + excluded.held"
    " RETURNING held, pruned"
)


def prune(conn: SyncConnection, kind: Kind, station_id: str, keep: int, added: int) -> int:
    """After ``added`` new rows of ``kind``, delete the station's oldest beyond its newest
    ``keep``; how many went."""
    if added <= 0:
        return 0
    held, pruned = conn.execute(_HELD, (station_id, kind.name, added)).fetchone()
    held, pruned = int(held), int(pruned)
    if held <= keep:
        return 0
    if added >= keep:  # the new rows alone fill the cap: keep only the newest of them
        removed = _rowcount(conn.execute(kind.newest_sql(), (station_id, station_id, keep)))
        held, pruned = keep, 0
    else:  # the oldest rows go, never the new ones, however far the count may be off
        excess = held - keep
        params = (station_id, station_id, added - 1, excess)
        removed = _rowcount(conn.execute(kind.oldest_sql(), params))
        held, pruned = held - removed, pruned + removed
        # fewer old rows than counted, or a count as old as the cap: count them again
        if removed < excess or pruned >= keep:
            held, pruned = count(conn, kind, station_id), 0
    conn.execute(
        "UPDATE station_retention SET held = ?, pruned = ? WHERE station_id = ? AND kind = ?",
        (held, pruned, station_id, kind.name),
    )
    return removed


def _rowcount(cursor: Any) -> int:
    return max(0, int(cursor.rowcount))


def forget(conn: SyncConnection, kind: Kind, station_id: str, removed: int) -> None:
    """``removed`` rows of the station's ``kind`` were deleted other than by ``prune``."""
    conn.execute(
        "UPDATE station_retention SET held = CASE WHEN held > ? THEN held - ? ELSE 0 END"
        " WHERE station_id = ? AND kind = ?",
        (removed, removed, station_id, kind.name),
    )


def count(conn: SyncConnection, kind: Kind, station_id: str) -> int:
    """How many rows of ``kind`` the station has."""
    row = conn.execute(kind.count_sql(), (station_id,)).fetchone()
    return int(row[0]) if row else 0
