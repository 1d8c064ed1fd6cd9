"""Counts kept as rows, so a scrape or a page reads a few rows however many settlements and
sessions the CSMS holds: settlements by status, each station's sessions, and the histogram of
commit latency (a settlement's ``created_at`` to ``committed_at``).

The first two are kept by triggers (``csms.store.migrations.TALLY_TRIGGERS``) whatever code
writes the rows; the histogram by ``add_commit``, in the unit of work that marks a settlement
committed (its latency needs timestamps parsed, which portable SQL cannot do). ``rebuild``
counts them all again from the rows: the migration that added the tallies runs it once, and
it puts them right after rows were changed by hand (``v2g``'s own code never needs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.store.engine import SyncConnection
from csms.timeutil import parse_timestamp

# The histogram's upper bounds in seconds (``v2g_settlement_commit_seconds``); one more bucket
# (+Inf) holds the rest. Changing them needs ``rebuild``.
COMMIT_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True, slots=True)
class CommitLatency:
    """The histogram as Prometheus writes it: cumulative counts per upper bound."""

    buckets: tuple[tuple[float, int], ...]  # (le, commits at most that many seconds)
    count: int
    sum_s: float

    @classmethod
    def of(cls, latencies: list[float]) -> CommitLatency:
        """From single latencies in seconds (what ``rebuild`` and the tests count)."""
        counts = [0] * (len(COMMIT_BUCKETS_S) + 1)
        for seconds in latencies:
            counts[bucket_of(seconds)] += 1
        return cls.from_counts(counts, round(sum(latencies) * 1000))

    @classmethod
    def from_counts(cls, counts: list[int], sum_ms: int) -> CommitLatency:
        running, cumulative = 0, []
        for bound, n in zip(COMMIT_BUCKETS_S, counts, strict=False):
            running += n
            cumulative.append((bound, running))
        return cls(tuple(cumulative), sum(counts), sum_ms / 1000)


def bucket_of(seconds: float) -> int:
    """The index of the first bound at or above ``seconds`` (len(bounds): +Inf)."""
    for index, bound in enumerate(COMMIT_BUCKETS_S):
        if seconds <= bound:
            return index
    return len(COMMIT_BUCKETS_S)


def latency_s(created_at: str, committed_at: str) -> float | None:
    """Seconds from writing a settlement to its commit (never negative); None if unreadable."""
    try:
        delta = parse_timestamp(committed_at) - parse_timestamp(created_at)
    except (TypeError, ValueError):
        return None
    return max(0.0, delta.total_seconds())


_ADD_COMMIT = (
    "INSERT INTO commit_latency_tally (bucket, n, sum_ms) VALUES (?, 1, ?)"
    " ON CONFLICT (bucket) DO UPDATE SET n = commit_latency_tally.n + 1,"
    " sum_ms = commit_latency_tally.sum_ms + excluded.sum_ms"
)


def add_commit(conn: SyncConnection, settlement_id: str, committed_at: str) -> None:
    """Count a settlement's commit, once: call before marking it committed, in the same unit."""
    row = conn.execute(
        "SELECT created_at, status FROM settlements WHERE settlement_id = ?", (settlement_id,)
    ).fetchone()
    if row is None or row[1] == "committed":
        return
    seconds = latency_s(row[0], committed_at)
    if seconds is not None:
        conn.execute(_ADD_COMMIT, (bucket_of(seconds), round(seconds * 1000)))


def rebuild(conn: SyncConnection) -> None:
    """Count every tally again from the rows (reads every settlement and session once)."""
    conn.execute("DELETE FROM settlement_tally")
    conn.execute(
        "INSERT INTO settlement_tally (status, n)"
        " SELECT status, COUNT(*) FROM settlements GROUP BY status"
    )
    conn.execute("DELETE FROM station_session_tally")
    conn.execute(
        "INSERT INTO station_session_tally (station_id, n)"
        " SELECT station_id, COUNT(*) FROM sessions GROUP BY station_id"
    )
    conn.execute("DELETE FROM commit_latency_tally")
    rows = conn.execute(
        "SELECT created_at, committed_at FROM settlements"
        " WHERE status = 'committed' AND committed_at IS NOT NULL"
    ).fetchall()
    counts: dict[int, tuple[int, int]] = {}
    for created_at, committed_at in rows:
        seconds = latency_s(created_at, committed_at)
        if seconds is None:
            continue
        n, total = counts.get(bucket_of(seconds), (0, 0))
        counts[bucket_of(seconds)] = (n + 1, total + round(seconds * 1000))
    for bucket, (n, total) in sorted(counts.items()):
        conn.execute(
            "INSERT INTO commit_latency_tally (bucket, n, sum_ms) VALUES (?, ?, ?)",
            (bucket, n, total),
        )


class Tallies:
    """Reads of the tallies on a store's connection (a few rows each)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def settlements(self) -> dict[str, int]:
        """How many settlements and credits there are of each status."""
        rows = await self._store.fetchall("SELECT status, n FROM settlement_tally WHERE n > 0")
        return {str(r[0]): int(r[1]) for r in rows}

    async def commit_latency(self) -> CommitLatency:
        rows = await self._store.fetchall("SELECT bucket, n, sum_ms FROM commit_latency_tally")
        counts = [0] * (len(COMMIT_BUCKETS_S) + 1)
        sum_ms = 0
        for bucket, n, total in rows:
            counts[min(int(bucket), len(counts) - 1)] += int(n)
            sum_ms += int(total)
        return CommitLatency.from_counts(counts, sum_ms)

    async def session_counts(self, station_ids: list[str]) -> dict[str, int]:
        """How many sessions each of these stations has had (any state)."""
        if not station_ids:
            return {}
        marks = ", ".join("?" * len(station_ids))
        rows = await self._store.fetchall(
            f"SELECT station_id, n FROM station_session_tally WHERE station_id IN ({marks})",
            tuple(station_ids),
        )
        return {str(r[0]): int(r[1]) for r in rows}
