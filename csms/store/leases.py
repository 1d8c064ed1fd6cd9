"""Station leases and calls between CSMS processes sharing one PostgreSQL database.

A lease says which process holds a station's live connection: taken (its ``epoch`` one
higher) by the process the station connects to, renewed in one statement per process by its
heartbeat, dropped when the connection ends. Expiry is on the database's clock, so processes
on machines whose clocks differ agree on it. A process that dies stops renewing; its leases
lapse after ``lease_seconds``.

A call row carries a CSMS-initiated operation from the process an operator asked to the lease
holder, and the holder's answer back; NOTIFY (delivered on commit) tells each side to look.
PostgreSQL only: SQLite has one CSMS process.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from csms.store.engine import Engine, PostgresEngine, SyncConnection
from csms.store.group import GroupCommit
from csms.store.sqlite import CsmsStore

T = TypeVar("T")

NOW_MS = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
STALE_CALL_MS = 600_000  # a call row older than this is gone (its origin died)


def without_waiting_for_disk(url: str) -> str:
    """The connection string of ``url`` with ``synchronous_commit = off`` for its sessions
    (kept when the engine opens the connection again after a loss)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = str(conninfo_to_dict(url).get("options") or "")
    return make_conninfo(url, options=f"{options} -c synchronous_commit=off".strip())


def channel_for(process: str) -> str:
    """The NOTIFY channel of one process: a fixed-length name whatever the process is called."""
    return "v2g_csms_" + hashlib.sha256(process.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Lease:
    station_id: str
    process: str
    epoch: int
    subprotocol: str
    connected_at: str


@dataclass(frozen=True, slots=True)
class TakenLease:
    """A lease just taken, and the live holder it was taken from (None: none, or this one)."""

    epoch: int
    previous: str | None


@dataclass(frozen=True, slots=True)
class CallRow:
    call_id: int
    station_id: str
    origin: str
    method: str
    arguments: str


class LeaseStore:
    """The lease and call tables, for one process, on a connection of their own.

    Not the store's writer connection: a wave of stations connecting, or calls between
    processes, never wait behind the stations' events (nor they behind these). Writes are
    group-committed (``csms.store.group``: the leases of a wave of connections share one
    transaction) without waiting for the disk (``synchronous_commit = off``): a lease or call
    lost in a database crash is taken again by the station's next connection, or answered as
    no answer in time.
    """

    def __init__(self, engine: Engine, process: str, *, lease_seconds: float) -> None:
        self._engine = engine
        self.process = process
        self._lease_ms = round(lease_seconds * 1000)
        # writes of many stations (a wave of connections) share one transaction
        self._group = GroupCommit(engine.conn, engine.run, asyncio.Lock(), begin="BEGIN")

    @classmethod
    async def open(cls, url: str, process: str, *, lease_seconds: float) -> LeaseStore:
        engine = await PostgresEngine.open(without_waiting_for_disk(url))
        return cls(engine, process, lease_seconds=lease_seconds)

    async def close(self) -> None:
        await self._engine.close()

    async def _write(self, fn: Callable[[SyncConnection], T]) -> T:
        value: T = await self._group.submit(fn)
        return value

    async def take(self, station_id: str, subprotocol: str, connected_at: str) -> TakenLease:
        """Take the station's lease (a new connection wins); tell a live holder elsewhere."""

        def take(conn: SyncConnection) -> TakenLease:
            old = conn.execute(
                f"SELECT process, expires_ms > {NOW_MS} FROM station_leases"
                " WHERE station_id = ? FOR UPDATE",
                (station_id,),
            ).fetchone()
            row = conn.execute(
                "INSERT INTO station_leases"
                " (station_id, process, epoch, subprotocol, connected_at, expires_ms)"
                f" VALUES (?, ?, 1, ?, ?, {NOW_MS} + ?)"
                " ON CONFLICT (station_id) DO UPDATE SET process = excluded.process,"
                " epoch = station_leases.epoch + 1, subprotocol = excluded.subprotocol,"
                " connected_at = excluded.connected_at, expires_ms = excluded.expires_ms"
                " RETURNING epoch",
                (station_id, self.process, subprotocol, connected_at, self._lease_ms),
            ).fetchone()
            epoch = int(row[0])
            previous = str(old[0]) if old is not None and old[1] else None
            if previous == self.process:
                previous = None
            if previous is not None:
                conn.execute(
                    "SELECT pg_notify(?, ?)",
                    (channel_for(previous), f"release {epoch} {station_id}"),
                )
            return TakenLease(epoch, previous)

        return await self._write(take)

    async def release(self, station_id: str, epoch: int) -> None:
        """Drop the lease of a connection that ended, unless it was taken since."""
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM station_leases WHERE station_id = ? AND process = ? AND epoch = ?",
                (station_id, self.process, epoch),
            )
        )

    async def release_all(self) -> None:
        """Drop every lease of this process (at start: a former run's; at stop: its own)."""
        await self._write(
            lambda conn: conn.execute(
                "DELETE FROM station_leases WHERE process = ?", (self.process,)
            )
        )

    async def renew(self) -> dict[str, int]:
        """Extend this process's leases; station id -> epoch of each lease it still holds."""

        def renew(conn: SyncConnection) -> dict[str, int]:
            rows = conn.execute(
                f"UPDATE station_leases SET expires_ms = {NOW_MS} + ?"
                " WHERE process = ? RETURNING station_id, epoch",
                (self._lease_ms, self.process),
            ).fetchall()
            conn.execute(
                f"DELETE FROM station_calls WHERE created_ms < {NOW_MS} - ?", (STALE_CALL_MS,)
            )
            return {str(r[0]): int(r[1]) for r in rows}

        return await self._write(renew)

    async def holder(self, station_id: str) -> Lease | None:
        """The live lease of a station, if any process holds one."""
        row = await self._engine.fetchone(
            "SELECT station_id, process, epoch, subprotocol, connected_at FROM station_leases"
            f" WHERE station_id = ? AND expires_ms > {NOW_MS}",
            (station_id,),
        )
        return None if row is None else _lease(row)

    # -- calls between processes ----------------------------------------------------------

    async def send_call(self, station_id: str, target: str, method: str, arguments: str) -> int:
        """Store a call for the lease holder ``target`` and tell it; the call's id."""

        def send(conn: SyncConnection) -> int:
            row = conn.execute(
                "INSERT INTO station_calls"
                " (station_id, origin, target, method, arguments, created_ms)"
                f" VALUES (?, ?, ?, ?, ?, {NOW_MS}) RETURNING id",
                (station_id, self.process, target, method, arguments),
            ).fetchone()
            call_id = int(row[0])
            conn.execute("SELECT pg_notify(?, ?)", (channel_for(target), f"call {call_id}"))
            return call_id

        return await self._write(send)

    async def claim_call(self, call_id: int) -> CallRow | None:
        """The call ``call_id`` to serve, once: None if another look claimed it or it is gone."""
        row = await self._write(
            lambda conn: conn.execute(
                "UPDATE station_calls SET state = 'serving'"
                " WHERE id = ? AND target = ? AND state = 'pending'"
                " RETURNING id, station_id, origin, method, arguments",
                (call_id, self.process),
            ).fetchone()
        )
        return None if row is None else CallRow(int(row[0]), *(str(v) for v in row[1:]))

    async def pending_calls(self) -> list[int]:
        """Calls for this process not yet claimed (sent while it was not listening)."""
        rows = await self._engine.fetchall(
            "SELECT id FROM station_calls WHERE target = ? AND state = 'pending' ORDER BY id",
            (self.process,),
        )
        return [int(r[0]) for r in rows]

    async def answer_call(self, call: CallRow, answer: str) -> None:
        """Store the answer and tell the origin (nothing if it gave up and removed the call)."""

        def store(conn: SyncConnection) -> None:
            changed = conn.execute(
                "UPDATE station_calls SET state = 'answered', answer = ? WHERE id = ?",
                (answer, call.call_id),
            ).rowcount
            if changed:
                conn.execute(
                    "SELECT pg_notify(?, ?)", (channel_for(call.origin), f"answer {call.call_id}")
                )

        await self._write(store)

    async def take_answer(self, call_id: int) -> str | None:
        """The answer to a call this process sent, removing the call; None if not answered."""
        row = await self._write(
            lambda conn: conn.execute(
                "DELETE FROM station_calls WHERE id = ? AND origin = ? AND state = 'answered'"
                " RETURNING answer",
                (call_id, self.process),
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def drop_call(self, call_id: int) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM station_calls WHERE id = ?", (call_id,))
        )


def _lease(row: Any) -> Lease:
    return Lease(str(row[0]), str(row[1]), int(row[2]), str(row[3]), str(row[4]))


async def live_leases(
    store: CsmsStore, station_ids: Sequence[str] | None = None
) -> dict[str, Lease]:
    """Station id -> its live lease, across every process (empty on SQLite); only those of
    ``station_ids`` when given."""
    if store.dialect.name != "postgresql" or (station_ids is not None and not station_ids):
        return {}
    only, params = "", tuple[str, ...]()
    if station_ids is not None:
        only = f" AND station_id IN ({', '.join('?' * len(station_ids))})"
        params = tuple(station_ids)
    rows = await store.fetchall(
        "SELECT station_id, process, epoch, subprotocol, connected_at FROM station_leases"
        f" WHERE expires_ms > {NOW_MS}{only}",
        params,
    )
    return {str(r[0]): _lease(r) for r in rows}
