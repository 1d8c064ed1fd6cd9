"""The CSMS database: engine-neutral queries over one writer connection (``csms.store.engine``:
SQLite or PostgreSQL), one transaction per unit of work, group commit for many stations."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from csms.errors import RegistryError
from csms.model import (
    DISCHARGE_MODES,
    MeterSample,
    RegisterReading,
    SessionRecord,
    SettlementRecord,
    StationCaps,
    StationRecord,
    TokenRecord,
    TransactionEventRecord,
)
from csms.running import TransactionProgress
from csms.sample_limits import SampleLimit
from csms.settling import SettlementOutcome
from csms.station_import import station_id_problem
from csms.store import retention, tallies
from csms.store.engine import (
    Engine,
    PostgresEngine,
    SqliteEngine,
    SyncConnection,
    is_postgresql_url,
    run_inline,
)
from csms.store.events import INSERT_SAMPLE, EventWrite, sample_rows, write_event
from csms.store.group import GroupCommit
from csms.store.migrations import BACKFILLS, MIGRATIONS, REGISTRY_TRIGGERS, TALLY_TRIGGERS
from csms.store.progress import load_progress
from csms.tariffs import Tariff
from csms.timeutil import format_timestamp, median_skew, parse_timestamp

log = logging.getLogger(__name__)

DB_NAME = "csms.sqlite"


class Keep(enum.Enum):
    """A setting left as it is."""

    KEEP = 0


KEEP = Keep.KEEP

# Oldest first; a settlement before the credits that correct it (portable: no rowid).
SETTLEMENT_ORDER = (
    "ORDER BY created_at, CASE WHEN kind = 'settlement' THEN 0 ELSE 1 END, settlement_id"
)


# A session with its register-delta energy from its stored progress (``transaction_progress p``).
SESSION_COLUMNS = (
    "s.*, p.samples AS progress_samples,"
    " COALESCE(p.import_wh - p.import_low, 0) AS import_wh,"
    " COALESCE(p.export_wh - p.export_low, 0) AS export_wh"
)


# Turns an ended session into a settlement (or a flag), inside the closing DB transaction.
SessionCloser = Callable[
    [SessionRecord, list[MeterSample], StationRecord | None, TokenRecord | None],
    SettlementOutcome,
]


@dataclass(frozen=True, slots=True)
class Handoff:
    """Who delivers the settlements that sessions' closes write here: each outbox entry is
    written already claimed by ``claimer`` for ``lease_s`` seconds, and once the closing
    transaction is durable the settlement is handed to ``deliver`` (the outbox worker of this
    process) in memory. The row stays the durable record: should the process die before the
    commit reaches the ledger, the claim runs out and a worker takes the entry over."""

    claimer: str
    lease_s: float
    deliver: Callable[[SettlementRecord], None]


def _check_station_id(station_id: str) -> None:
    problem = station_id_problem(station_id)
    if problem is not None:
        raise RegistryError(problem)


def _execute_rowcount(sql: str, params: tuple[Any, ...], conn: SyncConnection) -> int:
    return int(conn.execute(sql, params).rowcount)


class CsmsStore:
    """Everything the CSMS keeps. Open with ``await CsmsStore.open(path)``; close when done.

    When ``session_closer`` is set, the first Ended event of a session is settled in the same
    database transaction that stores it: the settlement row and its outbox entry are durable
    together with the session's close, or not at all.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.dialect = engine.dialect
        self.integrity_errors = engine.integrity_errors
        self.session_closer: SessionCloser | None = None
        self.handoff: Handoff | None = None  # see Handoff (None: the outbox polls for entries)
        self.clock_tolerance_s = 300.0  # see audit_reason
        self.registry_version = 0  # stations added, removed or given a new password here
        # One writer connection shared by every coroutine: units of work must not interleave.
        self.write_lock = asyncio.Lock()
        self.group = GroupCommit(
            engine.conn, engine.run, self.write_lock, begin=engine.dialect.begin
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Engine]:
        """One unit of work: BEGIN ... COMMIT (ROLLBACK on error), serialised."""
        async with self.write_lock:
            with self._engine.writing():  # reads inside see the unit's own rows
                await self._engine.execute(self.dialect.begin)
                try:
                    yield self._engine
                except BaseException:
                    await self._engine.execute("ROLLBACK")
                    raise
                await self._engine.execute("COMMIT")

    async def execute_write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """A single-statement write, a unit of work of its own; returns the row count.

        Group-committed with the writes of other stations (heartbeats, status, connection
        log): answered once durable, and a failing statement fails only its caller.
        """
        rowcount: int = await self.group.submit(partial(_execute_rowcount, sql, params))
        return rowcount

    @classmethod
    async def open(cls, path: Path | str) -> CsmsStore:
        """Open (creating and migrating) the database: a SQLite file, ":memory:", or a
        ``postgresql://`` URL."""
        engine: Engine
        if is_postgresql_url(str(path)):
            engine = await PostgresEngine.open(str(path))
        else:
            engine = await SqliteEngine.open(path)
        store = cls(engine)
        try:
            await store._migrate()
        except BaseException:
            await engine.close()
            raise
        return store

    @classmethod
    async def open_data_dir(cls, data_dir: Path | str, database: str | None = None) -> CsmsStore:
        """The data directory's SQLite file, or the PostgreSQL database at ``database``."""
        return await cls.open(database or Path(data_dir) / DB_NAME)

    async def close(self) -> None:
        await self._engine.close()

    async def registry_mark(self) -> tuple[Any, int]:
        """Changes when the stations table changes here or in another process."""
        return (await self._engine.registry_mark(), self.registry_version)

    async def _migrate(self) -> None:
        postgresql = self.dialect.name == "postgresql"
        if postgresql:  # processes starting together migrate one at a time
            await self._engine.execute("SELECT pg_advisory_lock(7420151)")
        try:
            await self._engine.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)"
            )
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= await self.schema_version():
                    continue
                statements = [s.strip() for s in script.split(";") if s.strip()]
                async with self.transaction():
                    # Read again under the write lock: another process may have just applied it.
                    if version <= await self.schema_version():
                        continue
                    for statement in statements:
                        await self._engine.execute(self.dialect.ddl(statement))
                    if version in BACKFILLS:
                        conn = self._engine.conn()
                        await self._in_writer_thread(partial(BACKFILLS[version], conn))
                    await self._engine.execute("INSERT INTO schema_version VALUES (?)", (version,))
            async with self.transaction():
                for statement in (
                    *REGISTRY_TRIGGERS[self.dialect.name],
                    *TALLY_TRIGGERS[self.dialect.name],
                ):
                    await self._engine.execute(statement)
        finally:
            if postgresql:
                await self._engine.execute("SELECT pg_advisory_unlock(7420151)")

    async def schema_version(self) -> int:
        row = await self._engine.fetchone("SELECT MAX(version) FROM schema_version")
        return int(row[0]) if row and row[0] is not None else 0

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """One row of a read on the store's connection (reads need no writer lock): by
        position, by column name, or ``dict(row)``."""
        return await self._engine.fetchone(sql, params)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of a read on the store's connection."""
        return await self._engine.fetchall(sql, params)

    # -- stations -------------------------------------------------------------------------

    async def add_station(
        self,
        station_id: str,
        password_hash: str,
        created_at: str,
        meter_key: str | None = None,
        *,
        password_mac: str | None = None,
    ) -> None:
        """Register a station (``password_mac``: its password already verified, see
        ``csms.credentials``); RegistryError for an id outside OCPP's identifierString
        characters (without ':') or one already registered."""
        _check_station_id(station_id)
        try:
            await self.execute_write(
                "INSERT INTO stations (station_id, password_hash, meter_key, created_at,"
                " password_mac) VALUES (?, ?, ?, ?, ?)",
                (station_id, password_hash, meter_key, created_at, password_mac),
            )
        except self.integrity_errors:
            raise RegistryError(f"station {station_id!r} is already registered") from None
        finally:
            self.registry_version += 1  # after the write: the registry watch reads it then

    async def add_stations(
        self,
        stations: list[tuple[str, str, str | None, str | None, int | None]],
        created_at: str,
        *,
        password_macs: Mapping[str, str] | None = None,
    ) -> None:
        """Register many stations ``(id, password hash, meter key, tolerance, profile)`` in one
        transaction: all of them, or none (RegistryError naming a station already there).
        ``password_macs``: station id -> its password's MAC (``csms.credentials``)."""
        for station in stations:
            _check_station_id(station[0])
        settings = [(s[0], s[3] or "strict", s[4]) for s in stations if s[3] or s[4]]
        try:
            async with self.transaction() as db:
                macs = password_macs or {}
                await db.executemany(
                    "INSERT INTO stations (station_id, password_hash, meter_key, created_at,"
                    " password_mac) VALUES (?, ?, ?, ?, ?)",
                    [(s[0], s[1], s[2], created_at, macs.get(s[0])) for s in stations],
                )
                await db.executemany(
                    "INSERT INTO station_settings (station_id, tolerance, security_profile)"
                    " VALUES (?, ?, ?)",
                    settings,
                )
        except self.integrity_errors:
            taken = {s.station_id for s in await self.list_stations()}
            first = next((s[0] for s in stations if s[0] in taken), "?")
            raise RegistryError(f"station {first!r} is already registered") from None
        finally:
            self.registry_version += 1

    async def update_station_secret(
        self,
        station_id: str,
        password_hash: str,
        meter_key: str | None,
        *,
        password_mac: str | None = None,
    ) -> None:
        """A new password hash; the old password's MAC goes with the old hash."""
        await self.execute_write(
            "UPDATE stations SET password_hash = ?, meter_key = COALESCE(?, meter_key),"
            " password_mac = ? WHERE station_id = ?",
            (password_hash, meter_key, password_mac, station_id),
        )
        self.registry_version += 1

    async def remember_password(self, station_id: str, password_hash: str, mac: str) -> None:
        """Keep a verified password's MAC, unless the hash it matched has changed since."""
        await self.execute_write(
            "UPDATE stations SET password_mac = ? WHERE station_id = ? AND password_hash = ?",
            (mac, station_id, password_hash),
        )

    async def replace_pending_hash(
        self, station_id: str, marker: str, password_hash: str, password_mac: str
    ) -> bool:
        """Store an imported password's hash and MAC in place of its pending marker, unless
        the record holds something else by now (a new password wins); whether it was stored."""
        rowcount = await self.execute_write(
            "UPDATE stations SET password_hash = ?, password_mac = ?"
            " WHERE station_id = ? AND password_hash = ?",
            (password_hash, password_mac, station_id, marker),
        )
        return rowcount > 0

    async def set_meter_key(self, station_id: str, meter_key: str) -> None:
        """Replace a station's registered meter public key (PEM)."""
        await self.execute_write(
            "UPDATE stations SET meter_key = ? WHERE station_id = ?", (meter_key, station_id)
        )

    async def remove_station(self, station_id: str) -> bool:
        rowcount = await self.execute_write(
            "DELETE FROM stations WHERE station_id = ?", (station_id,)
        )
        self.registry_version += 1
        return rowcount > 0

    _STATIONS = (
        "SELECT s.*, st.max_power_w, st.security_profile,"
        " COALESCE(st.tolerance, 'strict') AS tolerance FROM stations s"
        " LEFT JOIN station_settings st ON st.station_id = s.station_id"
    )

    async def get_station(self, station_id: str) -> StationRecord | None:
        row = await self.fetchone(f"{self._STATIONS} WHERE s.station_id = ?", (station_id,))
        return StationRecord(**dict(row)) if row else None

    async def station_page(self, *, after: str | None, limit: int) -> list[StationRecord]:
        """At most ``limit`` stations by id, those after ``after`` (None: from the first)."""
        rows = await self.fetchall(
            f"{self._STATIONS} WHERE s.station_id > ? ORDER BY s.station_id LIMIT ?",
            (after or "", limit),
        )
        return [StationRecord(**dict(row)) for row in rows]

    async def list_stations(self) -> list[StationRecord]:
        rows = await self.fetchall(f"{self._STATIONS} ORDER BY s.station_id")
        return [StationRecord(**dict(row)) for row in rows]

    async def reported_power(self, station_id: str, evse_id: int | None) -> int | None:
        """The power rating the station reported (device model or 1.6 key): the tightest of
        its own (EVSE 0) and the EVSE's, in W; None if it reported none."""
        row = await self.fetchone(
            "SELECT MIN(value) FROM evse_capabilities WHERE station_id = ? AND kind = 'power'"
            " AND evse_id IN (0, ?)",
            (station_id, 0 if evse_id is None else evse_id),
        )
        return None if row is None or row[0] is None else int(row[0])

    async def set_max_power(self, station_id: str, max_power_w: int | None) -> None:
        """A registered station's rated power in W (None: the CSMS's max_station_power_w)."""
        if max_power_w is not None and max_power_w <= 0:
            raise RegistryError(f"max_power_w must be a power in W > 0, not {max_power_w}")
        if await self.get_station(station_id) is None:
            raise RegistryError(f"station {station_id!r} is not registered")
        await self.execute_write(
            "INSERT INTO station_settings (station_id, max_power_w) VALUES (?, ?)"
            " ON CONFLICT (station_id) DO UPDATE SET max_power_w = excluded.max_power_w",
            (station_id, max_power_w),
        )

    async def record_boot(
        self,
        station_id: str,
        *,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware: str | None,
        at: str,
    ) -> None:
        await self.execute_write(
            "UPDATE stations SET vendor = ?, model = ?, serial_number = ?, firmware = ?,"
            " last_boot_at = ?, last_seen_at = ? WHERE station_id = ?",
            (vendor, model, serial_number, firmware, at, at, station_id),
        )

    async def touch_station(self, station_id: str, at: str) -> None:
        await self.execute_write(
            "UPDATE stations SET last_seen_at = ? WHERE station_id = ?", (at, station_id)
        )

    async def log_connection(
        self,
        station_id: str,
        event: str,
        at: str,
        detail: str | None = None,
        *,
        keep: int = retention.KEEP_CONNECTION_LOG,
    ) -> int:
        """One entry of the station's connection log, keeping its newest ``keep``
        (``keep_connection_log``); returns how many older ones went."""
        return await self.insert_and_prune(
            "INSERT INTO connections_log (station_id, event, at, detail) VALUES (?, ?, ?, ?)",
            (station_id, event, at, detail),
            retention.CONNECTION_LOG,
            keep,
        )

    async def insert_and_prune(
        self, sql: str, params: tuple[Any, ...], kind: retention.Kind, keep: int
    ) -> int:
        """One insert (its first parameter the station id) and the pruning of that station's
        rows of ``kind`` past ``keep``, in one unit of work (group-committed); how many rows
        the pruning removed."""
        station_id = params[0]

        def unit(conn: SyncConnection) -> int:
            added = int(conn.execute(sql, params).rowcount)
            return retention.prune(conn, kind, station_id, keep, added)

        removed: int = await self.group.submit(unit)
        return removed

    async def connection_log(self, station_id: str) -> list[tuple[str, str | None]]:
        rows = await self.fetchall(
            "SELECT event, detail FROM connections_log WHERE station_id = ? ORDER BY id",
            (station_id,),
        )
        return [(row["event"], row["detail"]) for row in rows]

    async def set_connector_status(
        self,
        station_id: str,
        evse_id: int,
        connector_id: int,
        status: str,
        at: str,
        *,
        most: int = retention.MAX_CONNECTORS,
    ) -> bool:
        """The connector's latest status. A station keeps at most ``most`` connectors
        (``max_connectors_per_station``): the status of one more is not stored (False)."""
        key = (station_id, evse_id, connector_id)

        def unit(conn: SyncConnection) -> bool:
            updated = conn.execute(
                "UPDATE connector_status SET status = ?, at = ?"
                " WHERE station_id = ? AND evse_id = ? AND connector_id = ?",
                (status, at, *key),
            ).rowcount
            if updated:
                return True
            held = conn.execute(
                "SELECT COUNT(*) FROM connector_status WHERE station_id = ?", (station_id,)
            ).fetchone()[0]
            if int(held) >= most:
                return False
            conn.execute(
                "INSERT INTO connector_status (station_id, evse_id, connector_id, status, at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (station_id, evse_id, connector_id)"
                " DO UPDATE SET status = excluded.status, at = excluded.at",
                (*key, status, at),
            )
            return True

        stored: bool = await self.group.submit(unit)
        return stored

    async def connector_statuses(self, station_id: str) -> dict[tuple[int, int], str]:
        rows = await self.fetchall(
            "SELECT evse_id, connector_id, status FROM connector_status WHERE station_id = ?",
            (station_id,),
        )
        return {(row["evse_id"], row["connector_id"]): row["status"] for row in rows}

    async def get_tolerance(self, station_id: str) -> str:
        """The station's tolerance mode: ``strict`` unless set to ``tolerant``."""
        row = await self.fetchone(
            "SELECT tolerance FROM station_settings WHERE station_id = ?", (station_id,)
        )
        return str(row["tolerance"]) if row else "strict"

    async def set_tolerance(self, station_id: str, tolerance: str) -> None:
        """Set ``strict`` or ``tolerant`` for a registered station (RegistryError otherwise)."""
        if tolerance not in ("strict", "tolerant"):
            raise RegistryError(f"tolerance must be strict or tolerant, not {tolerance!r}")
        if await self.get_station(station_id) is None:
            raise RegistryError(f"station {station_id!r} is not registered")
        await self.execute_write(
            "INSERT INTO station_settings (station_id, tolerance) VALUES (?, ?)"
            " ON CONFLICT (station_id) DO UPDATE SET tolerance = excluded.tolerance",
            (station_id, tolerance),
        )

    async def get_security_profile(self, station_id: str) -> int | None:
        """The station's own security profile, or None to use the CSMS's."""
        row = await self.fetchone(
            "SELECT security_profile FROM station_settings WHERE station_id = ?", (station_id,)
        )
        return None if row is None or row[0] is None else int(row[0])

    async def set_security_profile(self, station_id: str, profile: int | None) -> None:
        """Set 1, 2 or 3 for a registered station, or None for the CSMS's own profile."""
        if profile not in (None, 1, 2, 3):
            raise RegistryError(f"security profile must be 1, 2 or 3, not {profile!r}")
        if await self.get_station(station_id) is None:
            raise RegistryError(f"station {station_id!r} is not registered")
        await self.execute_write(
            "INSERT INTO station_settings (station_id, security_profile) VALUES (?, ?)"
            " ON CONFLICT (station_id) DO UPDATE SET security_profile = excluded.security_profile",
            (station_id, profile),
        )

    async def get_station_caps(self, station_id: str) -> StationCaps:
        """The operator's dispatch caps for a station (no caps, charge-only 2.0.1 by default)."""
        row = await self.fetchone(
            "SELECT max_charge_w, max_discharge_w, discharge, power_key FROM station_settings"
            " WHERE station_id = ?",
            (station_id,),
        )
        if row is None:
            return StationCaps()
        return StationCaps(row[0], row[1], str(row[2]), row[3])

    async def set_station_caps(
        self,
        station_id: str,
        *,
        max_charge_w: int | Keep | None = KEEP,
        max_discharge_w: int | Keep | None = KEEP,
        discharge: str | Keep = KEEP,
        power_key: str | Keep | None = KEEP,
    ) -> None:
        """Change some of a registered station's dispatch caps (RegistryError otherwise)."""
        if discharge is not KEEP and discharge not in DISCHARGE_MODES:
            raise RegistryError(
                f"discharge must be one of {', '.join(DISCHARGE_MODES)}, not {discharge!r}"
            )
        for name, value in (("max_charge_w", max_charge_w), ("max_discharge_w", max_discharge_w)):
            if isinstance(value, int) and value < 0:
                raise RegistryError(f"{name} must be a power in W >= 0, not {value}")
        if await self.get_station(station_id) is None:
            raise RegistryError(f"station {station_id!r} is not registered")
        changes = {
            name: value
            for name, value in (
                ("max_charge_w", max_charge_w),
                ("max_discharge_w", max_discharge_w),
                ("discharge", discharge),
                ("power_key", power_key),
            )
            if value is not KEEP
        }
        if not changes:
            return
        columns = ", ".join(changes)
        updates = ", ".join(f"{name} = excluded.{name}" for name in changes)
        placeholders = ", ".join("?" for _ in changes)
        await self.execute_write(
            f"INSERT INTO station_settings (station_id, {columns}) VALUES (?, {placeholders})"
            f" ON CONFLICT (station_id) DO UPDATE SET {updates}",
            (station_id, *changes.values()),
        )

    # -- identity tokens ------------------------------------------------------------------

    async def add_token(self, token: TokenRecord) -> None:
        try:
            await self.execute_write(
                "INSERT INTO id_tokens (id_token, type, status, payment, expires_at, created_at,"
                " pseudonym, personal) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token.id_token,
                    token.type,
                    token.status,
                    token.payment,
                    token.expires_at,
                    token.created_at,
                    token.pseudonym,
                    token.personal,
                ),
            )
        except self.integrity_errors:
            raise RegistryError(
                f"token {token.id_token!r} of type {token.type} is already registered"
            ) from None

    async def get_token(self, id_token: str, token_type: str) -> TokenRecord | None:
        row = await self.fetchone(
            "SELECT * FROM id_tokens WHERE id_token = ? AND type = ?", (id_token, token_type)
        )
        return TokenRecord(**dict(row)) if row else None

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self.fetchall("SELECT * FROM id_tokens ORDER BY id_token, type")
        return [TokenRecord(**dict(row)) for row in rows]

    async def remove_token(self, id_token: str, token_type: str | None = None) -> int:
        if token_type is None:
            rowcount = await self.execute_write(
                "DELETE FROM id_tokens WHERE id_token = ?", (id_token,)
            )
        else:
            rowcount = await self.execute_write(
                "DELETE FROM id_tokens WHERE id_token = ? AND type = ?", (id_token, token_type)
            )
        return rowcount

    # -- transactions ---------------------------------------------------------------------

    async def record_transaction_event(
        self, event: TransactionEventRecord, received_at: str
    ) -> bool:
        """Store an event and fold it into its session, once: False for a duplicate seqNo."""
        return (await self.store_transaction_event(event, received_at)).is_new

    async def store_transaction_event(
        self,
        event: TransactionEventRecord,
        received_at: str,
        *,
        tariff: Tariff | None = None,
        limit: SampleLimit | None = None,
    ) -> EventWrite:
        """Store an event, fold it into its session and advance its progress, once.

        ``tariff`` prices the running cost kept with the progress; ``limit`` holds the samples
        to the per-transaction limit (``csms.sample_limits``). Events of many stations are
        group-committed (``csms.store.group``): the caller is answered once its batch is
        durable. An Ended event that settles its session is a unit of work of its own, so the
        settlement commits with the session's close.
        """
        write = partial(
            write_event, event=event, received_at=received_at, tariff=tariff, limit=limit
        )
        if event.event_type == "Ended" and self.session_closer is not None:
            return await self._record_closing_event(event, received_at, write)
        result: EventWrite = await self.group.submit(write)
        return result

    async def _record_closing_event(
        self,
        event: TransactionEventRecord,
        received_at: str,
        write: Callable[[SyncConnection], EventWrite],
    ) -> EventWrite:
        handoff = self.handoff

        def unit(conn: SyncConnection) -> tuple[EventWrite, SettlementRecord | None]:
            # the event, the session's reads, its judging and signing, the settlement: all on
            # the writer's thread in one go, one hop (not one per statement, each holding the
            # write lock across a turn of the event loop)
            result = write(conn)
            if not result.is_new:
                return result, None
            closing = self._close_session(
                event.station_id, event.transaction_id, received_at, handoff
            )
            return result, run_inline(closing)

        result, claimed = await self.group.submit(unit)
        if claimed is not None and handoff is not None:
            handoff.deliver(claimed)  # committed above: durable before it is submitted
        return result

    async def transaction_progress(
        self, station_id: str, transaction_id: str, tariff: Tariff | None = None
    ) -> TransactionProgress:
        """Where a transaction stands (``csms.running``): its stored progress, one row."""
        conn = self._engine.conn()
        stored = await self._in_writer_thread(
            partial(load_progress, conn, station_id, transaction_id, tariff)
        )
        progress: TransactionProgress = stored.progress
        return progress

    async def _in_writer_thread(self, fn: Callable[[], Any]) -> Any:
        """Run a synchronous function on the writer connection's own thread."""
        return await self._engine.run(fn)

    async def _judge_session(
        self, station_id: str, transaction_id: str
    ) -> tuple[SessionRecord, SettlementOutcome]:
        """An ended session and what its evidence and the registry make of it today."""
        assert self.session_closer is not None
        session = await self.get_session(station_id, transaction_id)
        assert session is not None
        samples = await self.meter_samples(station_id, transaction_id)
        station = await self.get_station(station_id)
        if station is not None:
            reported = await self.reported_power(station_id, session.evse_id)
            station = replace(station, reported_power_w=reported)
        token = None
        if session.id_token is not None and session.id_token_type is not None:
            token = await self.get_token(session.id_token, session.id_token_type)
        return session, self.session_closer(session, samples, station, token)

    async def _close_session(
        self, station_id: str, transaction_id: str, at: str, handoff: Handoff | None = None
    ) -> SettlementRecord | None:
        """Settle (or flag) the ended session; the pending settlement when its outbox entry
        was written claimed for ``handoff``, else None."""
        if await self.settlement_for_session(station_id, transaction_id) is not None:
            return None
        session, outcome = await self._judge_session(station_id, transaction_id)
        doubt = await self.audit_reason(session, at)
        if doubt is not None and outcome.status == "pending":
            outcome = SettlementOutcome(
                outcome.settlement_id, "flagged", doubt, outcome.ev, None, None
            )
        claim = None
        if handoff is not None and outcome.status == "pending":
            until = parse_timestamp(at) + timedelta(seconds=handoff.lease_s)
            claim = (handoff.claimer, format_timestamp(until))
        record = await self._insert_settlement(station_id, transaction_id, outcome, at, claim)
        if outcome.status == "flagged":
            log.info("%s:%s settlement flagged: %s", station_id, transaction_id, outcome.reason)
        return record if claim is not None else None

    async def audit_reason(self, session: SessionRecord, received_at: str) -> str | None:
        """Why an auditor would distrust a session's times, or None.

        ``clock_ahead``: it ends (station time) more than ``clock_tolerance_s`` after the CSMS
        received its end. ``overlapping``: another session of the same EVSE overlaps it.
        """
        if session.ended_at is None or session.started_at is None:
            return None
        try:
            ended, received = parse_timestamp(session.ended_at), parse_timestamp(received_at)
        except ValueError:
            return None
        ahead = (ended - received).total_seconds()
        if ahead > self.clock_tolerance_s:
            return (
                f"clock_ahead: the session ends {ahead:.0f} s after the CSMS received its end"
                f" (tolerance {self.clock_tolerance_s:.0f} s)"
            )
        if session.evse_id is None:
            return None
        row = await self.fetchone(
            "SELECT transaction_id, started_at, ended_at FROM sessions WHERE station_id = ?"
            " AND evse_id = ? AND transaction_id != ? AND started_at < ?"
            " AND COALESCE(ended_at, ?) > ? LIMIT 1",
            (
                session.station_id,
                session.evse_id,
                session.transaction_id,
                session.ended_at,
                session.ended_at,
                session.started_at,
            ),
        )
        if row is not None:
            return (
                f"overlapping: EVSE {session.evse_id} also ran {row['transaction_id']}"
                f" from {row['started_at']} to {row['ended_at'] or 'still running'}"
            )
        return None

    async def clock_skew(self, station_id: str, recent: int = 20) -> float | None:
        """Seconds the station's clock runs ahead of the CSMS's (negative: behind): the median
        of station time minus receive time over its last ``recent`` live transaction events."""
        rows = await self.fetchall(
            "SELECT timestamp, received_at FROM transaction_events WHERE station_id = ?"
            " AND offline = 0 ORDER BY received_at DESC LIMIT ?",
            (station_id, recent),
        )
        return median_skew([(row["timestamp"], row["received_at"]) for row in rows])

    async def _insert_settlement(
        self,
        station_id: str,
        transaction_id: str,
        outcome: SettlementOutcome,
        at: str,
        claim: tuple[str, str] | None = None,
    ) -> SettlementRecord:
        """Write the settlement (and, when pending, its outbox entry: claimed by ``claim``'s
        claimer until its time when given); return the row as written."""
        body = outcome.body
        record = SettlementRecord(
            settlement_id=outcome.settlement_id,
            station_id=station_id,
            transaction_id=transaction_id,
            kind=body["type"] if body else "settlement",
            status=outcome.status,
            reason=outcome.reason,
            corrects=body.get("corrects") if body else None,
            ev=outcome.ev,
            import_wh=body["energy"]["import_wh"] if body else None,
            export_wh=body["energy"]["export_wh"] if body else None,
            amount=body["amount"] if body else None,
            currency=body["tariff"]["currency"] if body else None,
            body=json.dumps(body, sort_keys=True, separators=(",", ":")) if body else None,
            tx=outcome.tx,
            created_at=at,
            committed_at=None,
            block_height=None,
            block_hash=None,
            tx_index=None,
            receipt=None,
        )
        await self._engine.execute(
            "INSERT INTO settlements (settlement_id, station_id, transaction_id, kind, status,"
            " reason, corrects, ev, import_wh, export_wh, amount, currency, body, tx, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.settlement_id,
                record.station_id,
                record.transaction_id,
                record.kind,
                record.status,
                record.reason,
                record.corrects,
                record.ev,
                record.import_wh,
                record.export_wh,
                record.amount,
                record.currency,
                record.body,
                record.tx,
                record.created_at,
            ),
        )
        if outcome.status == "pending":
            claimer, until = claim if claim is not None else (None, None)
            await self._engine.execute(
                "INSERT INTO outbox (settlement_id, next_attempt_at, claimed_by, claimed_until)"
                " VALUES (?, ?, ?, ?)",
                (outcome.settlement_id, at, claimer, until),
            )
        return record

    # -- settlements and their outbox -------------------------------------------------------

    async def resettle(
        self, station_id: str, transaction_id: str, *, by: str, at: str
    ) -> SettlementOutcome:
        """Settle a flagged session again with today's registry (e.g. a corrected meter key).

        When the evidence now holds, the flagged row becomes the pending settlement (same
        id) and enters the outbox; otherwise it stays flagged with today's reason. Either
        way the attempt is logged with ``by``. Raises RegistryError unless it is flagged.
        """
        if self.session_closer is None:
            raise RegistryError("settlement is not set up for this data directory")
        async with self.transaction() as db:
            current = await self.settlement_for_session(station_id, transaction_id)
            if current is None or current.status != "flagged":
                state = "has no settlement" if current is None else f"is {current.status}"
                raise RegistryError(
                    f"session {station_id}:{transaction_id} {state}; only a flagged one can"
                    " be re-settled"
                )
            _, outcome = await self._judge_session(station_id, transaction_id)
            if outcome.status == "pending":
                await db.execute(
                    "DELETE FROM settlements WHERE settlement_id = ?", (current.settlement_id,)
                )
                await self._insert_settlement(station_id, transaction_id, outcome, at)
            else:
                await db.execute(
                    "UPDATE settlements SET reason = ? WHERE settlement_id = ?",
                    (outcome.reason, current.settlement_id),
                )
            await db.execute(
                "INSERT INTO resettlements (settlement_id, by_name, at, outcome, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                (current.settlement_id, by, at, outcome.status, outcome.reason),
            )
        return outcome

    async def resettlements(self, settlement_id: str) -> list[tuple[str, str, str, str | None]]:
        """Who re-settled ``settlement_id``, when, with what outcome and reason; oldest first."""
        rows = await self.fetchall(
            "SELECT by_name, at, outcome, reason FROM resettlements WHERE settlement_id = ?"
            " ORDER BY id",
            (settlement_id,),
        )
        return [(r["by_name"], r["at"], r["outcome"], r["reason"]) for r in rows]

    async def settlement_for_session(
        self, station_id: str, transaction_id: str
    ) -> SettlementRecord | None:
        row = await self.fetchone(
            "SELECT * FROM settlements WHERE station_id = ? AND transaction_id = ?"
            " AND kind = 'settlement'",
            (station_id, transaction_id),
        )
        return SettlementRecord(**dict(row)) if row else None

    async def get_settlement(self, settlement_id: str) -> SettlementRecord | None:
        row = await self.fetchone(
            "SELECT * FROM settlements WHERE settlement_id = ?", (settlement_id,)
        )
        return SettlementRecord(**dict(row)) if row else None

    async def list_settlements(self, status: str | None = None) -> list[SettlementRecord]:
        if status is None:
            rows = await self.fetchall(f"SELECT * FROM settlements {SETTLEMENT_ORDER}")
        else:
            rows = await self.fetchall(
                f"SELECT * FROM settlements WHERE status = ? {SETTLEMENT_ORDER}", (status,)
            )
        return [SettlementRecord(**dict(row)) for row in rows]

    async def settlements_after(
        self, after: str | None, limit: int, *, settled_only: bool = False
    ) -> list[SettlementRecord]:
        """At most ``limit`` settlements and credits whose id sorts after ``after`` (None: from
        the first), in id order: a keyset page on the primary key, so reading them all a page
        at a time costs each page, not the table (exports). ``settled_only``: those with a
        body (not flagged)."""
        where = "WHERE settlement_id > ?" if after is not None else "WHERE 1 = 1"
        if settled_only:
            where += " AND body IS NOT NULL"
        params: tuple[Any, ...] = (after, limit) if after is not None else (limit,)
        rows = await self.fetchall(
            f"SELECT * FROM settlements {where} ORDER BY settlement_id LIMIT ?", params
        )
        return [SettlementRecord(**dict(row)) for row in rows]

    async def settlements_of_session(
        self, station_id: str, transaction_id: str
    ) -> list[SettlementRecord]:
        """One session's settlement and the credits that correct it (oldest first)."""
        rows = await self.fetchall(
            "SELECT * FROM settlements WHERE station_id = ? AND transaction_id = ?"
            f" {SETTLEMENT_ORDER}",
            (station_id, transaction_id),
        )
        return [SettlementRecord(**dict(row)) for row in rows]

    async def settlement_counts(self) -> dict[str, int]:
        """How many settlements and credits there are of each status (a tally: a few rows)."""
        return await tallies.Tallies(self).settlements()

    async def settlement_blocks(self, limit: int) -> tuple[list[int], int]:
        """The newest ``limit`` block heights holding settlements, newest first, and how many
        blocks hold any."""
        rows = await self.fetchall(
            "SELECT DISTINCT block_height FROM settlements WHERE block_height IS NOT NULL"
            " ORDER BY block_height DESC LIMIT ?",
            (limit,),
        )
        total = await self.fetchone(
            "SELECT COUNT(DISTINCT block_height) FROM settlements WHERE block_height IS NOT NULL"
        )
        return [int(r[0]) for r in rows], int(total[0]) if total else 0

    async def settlements_in_blocks(self, heights: Sequence[int]) -> list[SettlementRecord]:
        """The settlements held by these blocks."""
        if not heights:
            return []
        marks = ", ".join("?" * len(heights))
        rows = await self.fetchall(
            f"SELECT * FROM settlements WHERE block_height IN ({marks}) {SETTLEMENT_ORDER}",
            tuple(heights),
        )
        return [SettlementRecord(**dict(row)) for row in rows]

    async def add_credit(
        self, station_id: str, transaction_id: str, outcome: SettlementOutcome, at: str
    ) -> None:
        """A correction (credit record) referencing a settlement, queued like any settlement."""
        async with self.transaction():
            await self._insert_settlement(station_id, transaction_id, outcome, at)

    async def outbox_due(self, now: str, limit: int = 100) -> list[SettlementRecord]:
        rows = await self.fetchall(
            "SELECT s.* FROM outbox o JOIN settlements s USING (settlement_id)"
            " WHERE o.next_attempt_at <= ? ORDER BY o.next_attempt_at, s.created_at LIMIT ?",
            (now, limit),
        )
        return [SettlementRecord(**dict(row)) for row in rows]

    async def claim_due(
        self, claimer: str, *, now: str, until: str, renew_before: str, limit: int = 100
    ) -> list[SettlementRecord]:
        """Take the due outbox entries nobody holds (or whose holder's lease ran out) for
        ``claimer`` until ``until``; its own claims ending before ``renew_before`` are renewed
        and returned again. Several CSMS processes on one database each get other entries:
        PostgreSQL passes over rows another claim is taking (``FOR UPDATE SKIP LOCKED``)."""
        claim = (
            "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE settlement_id IN ("
            " SELECT settlement_id FROM outbox WHERE next_attempt_at <= ? AND ("
            " claimed_by IS NULL OR claimed_until <= ?"
            " OR (claimed_by = ? AND claimed_until <= ?))"
            f" ORDER BY next_attempt_at LIMIT ?{self.dialect.skip_locked})"
            " RETURNING settlement_id"
        )
        params = (claimer, until, now, now, claimer, renew_before, limit)

        def unit(conn: SyncConnection) -> list[Any]:
            ids = [row[0] for row in conn.execute(claim, params).fetchall()]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            return list(
                conn.execute(
                    "SELECT s.* FROM outbox o JOIN settlements s USING (settlement_id)"
                    f" WHERE o.settlement_id IN ({marks}) ORDER BY o.next_attempt_at, s.created_at",
                    ids,
                ).fetchall()
            )

        rows: list[Any] = await self.group.submit(unit)
        return [SettlementRecord(**dict(row)) for row in rows]

    async def outbox_size(self) -> int:
        row = await self.fetchone("SELECT COUNT(*) FROM outbox")
        return int(row[0]) if row else 0

    async def mark_committed(
        self,
        settlement_id: str,
        *,
        at: str,
        block_height: int,
        block_hash: str,
        tx_index: int,
        receipt: str | None,
    ) -> None:
        """Record where the ledger committed it (and its receipt, when given) and take it off
        the outbox, atomically: one unit of the group commit, one hop to the writer."""

        def unit(conn: SyncConnection) -> None:
            tallies.add_commit(conn, settlement_id, at)
            conn.execute(
                "UPDATE settlements SET status = 'committed', committed_at = ?, block_height = ?,"
                " block_hash = ?, tx_index = ?, receipt = ? WHERE settlement_id = ?",
                (at, block_height, block_hash, tx_index, receipt, settlement_id),
            )
            conn.execute("DELETE FROM outbox WHERE settlement_id = ?", (settlement_id,))

        await self.group.submit(unit)

    async def settlements_without_receipt(self, limit: int = 100) -> list[str]:
        rows = await self.fetchall(
            "SELECT settlement_id FROM settlements WHERE status = 'committed'"
            " AND receipt IS NULL ORDER BY committed_at LIMIT ?",
            (limit,),
        )
        return [row[0] for row in rows]

    async def set_receipt(self, settlement_id: str, receipt: str) -> None:
        await self.execute_write(
            "UPDATE settlements SET receipt = ? WHERE settlement_id = ?", (receipt, settlement_id)
        )

    async def mark_rejected(self, settlement_id: str, reason: str) -> None:
        """The ledger refused the transaction for good: off the outbox, reason kept for review."""
        async with self.transaction():
            await self._engine.execute(
                "UPDATE settlements SET status = 'rejected', reason = ? WHERE settlement_id = ?",
                (reason, settlement_id),
            )
            await self._engine.execute(
                "DELETE FROM outbox WHERE settlement_id = ?", (settlement_id,)
            )

    async def outbox_attempts(self, settlement_id: str) -> int:
        row = await self.fetchone(
            "SELECT attempts FROM outbox WHERE settlement_id = ?", (settlement_id,)
        )
        return int(row[0]) if row else 0

    async def retry_later(self, settlement_id: str, error: str, next_attempt_at: str) -> None:
        await self.execute_write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
            " claimed_by = NULL, claimed_until = NULL WHERE settlement_id = ?",
            (error, next_attempt_at, settlement_id),
        )

    async def record_meter_values(
        self,
        station_id: str,
        evse_id: int,
        samples: tuple[MeterSample, ...],
        *,
        keep: int = retention.KEEP_METER_VALUES,
    ) -> int:
        """MeterValues outside a transaction (or not tied to one): kept for the station, its
        newest ``keep`` samples of them (``keep_meter_values``). One unit of work: the
        samples and the removal of the station's oldest past ``keep``. Returns how many went."""
        if not samples:
            return 0
        rows = sample_rows(station_id, None, evse_id, None, samples)

        def insert_and_prune(conn: SyncConnection) -> int:
            conn.executemany(INSERT_SAMPLE, rows)
            return retention.prune(conn, retention.METER_VALUES, station_id, keep, len(rows))

        removed: int = await self.group.submit(insert_and_prune)
        return removed

    async def get_session(self, station_id: str, transaction_id: str) -> SessionRecord | None:
        row = await self.fetchone(
            "SELECT * FROM sessions WHERE station_id = ? AND transaction_id = ?",
            (station_id, transaction_id),
        )
        if row is None:
            return None
        return await self._session_from_row(row)

    async def list_sessions(self, station_id: str | None = None) -> list[SessionRecord]:
        """Sessions with their register-delta energy from their stored progress (one query)."""
        where, params = (
            ("", ()) if station_id is None else ("WHERE s.station_id = ?", (station_id,))
        )
        rows = await self.fetchall(
            f"SELECT {SESSION_COLUMNS} FROM sessions s"
            " LEFT JOIN transaction_progress p USING (station_id, transaction_id)"
            f" {where} ORDER BY s.updated_at",
            params,
        )
        return await self.session_records(rows)

    async def session_records(self, rows: Sequence[Any]) -> list[SessionRecord]:
        """Sessions from rows selected with ``SESSION_COLUMNS`` (progress joined as ``p``)."""
        sessions = []
        for row in rows:
            data = dict(row)
            if data.pop("progress_samples") is None:  # stored before progress was kept
                energy = await self.session_energy(data["station_id"], data["transaction_id"])
                data["import_wh"], data["export_wh"] = energy
            sessions.append(self._session_record(data))
        return sessions

    @staticmethod
    def _session_record(data: dict[str, Any]) -> SessionRecord:
        data.pop("updated_at")
        data["started_seen"] = bool(data["started_seen"])
        return SessionRecord(**data)

    async def _session_from_row(self, row: Any) -> SessionRecord:
        data = dict(row)
        energy = await self.session_energy(data["station_id"], data["transaction_id"])
        return self._session_record({**data, "import_wh": energy[0], "export_wh": energy[1]})

    async def session_energy(self, station_id: str, transaction_id: str) -> tuple[int, int]:
        """Import and export Wh from register deltas (registers only grow; order-independent)."""
        return (await self.transaction_progress(station_id, transaction_id)).energy_wh

    async def register_samples(self, station_id: str, transaction_id: str) -> list[RegisterReading]:
        """Import/export register pairs by time and event (two events may share a timestamp)."""
        rows = await self.fetchall(
            "SELECT timestamp,"
            " MAX(CASE WHEN measurand = 'Energy.Active.Import.Register' THEN value END) AS imp,"
            " MAX(CASE WHEN measurand = 'Energy.Active.Export.Register' THEN value END) AS exp"
            " FROM meter_samples WHERE station_id = ? AND transaction_id = ? AND phase IS NULL"
            " GROUP BY timestamp, seq_no ORDER BY timestamp, seq_no",
            (station_id, transaction_id),
        )
        return [
            RegisterReading(parse_timestamp(r["timestamp"]), r["imp"] or 0, r["exp"] or 0)
            for r in rows
            if r["imp"] is not None or r["exp"] is not None
        ]

    async def register_reading_at(
        self, station_id: str, transaction_id: str, at: datetime
    ) -> RegisterReading | None:
        """The last register reading at or before ``at`` (by time, then event), or None."""
        row = await self.fetchone(
            "SELECT timestamp,"
            " MAX(CASE WHEN measurand = 'Energy.Active.Import.Register' THEN value END) AS imp,"
            " MAX(CASE WHEN measurand = 'Energy.Active.Export.Register' THEN value END) AS exp"
            " FROM meter_samples WHERE station_id = ? AND transaction_id = ? AND phase IS NULL"
            " AND measurand IN ('Energy.Active.Import.Register',"
            " 'Energy.Active.Export.Register') AND timestamp <= ?"
            " GROUP BY timestamp, seq_no ORDER BY timestamp DESC, seq_no DESC LIMIT 1",
            (station_id, transaction_id, format_timestamp(at)),
        )
        if row is None:
            return None
        return RegisterReading(parse_timestamp(row["timestamp"]), row["imp"] or 0, row["exp"] or 0)

    async def active_sessions(self) -> list[SessionRecord]:
        rows = await self.fetchall(
            "SELECT * FROM sessions WHERE state = 'active' ORDER BY updated_at"
        )
        return [await self._session_from_row(row) for row in rows]

    async def latest_state(
        self, station_id: str, transaction_id: str
    ) -> tuple[datetime, int | None] | None:
        """The newest sample time of a session and the SoC reported then (if any)."""
        progress = await self.transaction_progress(station_id, transaction_id)
        if progress.latest_at is None:
            return None
        return progress.latest_at, progress.soc

    async def transaction_events(
        self, station_id: str, transaction_id: str
    ) -> list[dict[str, Any]]:
        rows = await self.fetchall(
            "SELECT seq_no, event_type, offline, raw FROM transaction_events"
            " WHERE station_id = ? AND transaction_id = ? ORDER BY seq_no",
            (station_id, transaction_id),
        )
        return [
            {
                "seq_no": r["seq_no"],
                "event_type": r["event_type"],
                "offline": bool(r["offline"]),
                "raw": json.loads(r["raw"]),
            }
            for r in rows
        ]

    async def meter_samples(self, station_id: str, transaction_id: str) -> list[MeterSample]:
        """Every sample of a transaction in time order (settling reads them once, at its end)."""
        return await self._samples(station_id, transaction_id)

    async def meter_samples_page(
        self, station_id: str, transaction_id: str, *, offset: int, limit: int
    ) -> list[MeterSample]:
        """At most ``limit`` samples of a transaction from ``offset``, in time order."""
        return await self._samples(
            station_id, transaction_id, "", " LIMIT ? OFFSET ?", limit, offset
        )

    async def sample_counts(self, station_id: str, transaction_id: str) -> tuple[int, int]:
        """Samples stored for a transaction, and those dropped past its limit."""
        row = await self.fetchone(
            "SELECT samples, dropped FROM transaction_progress"
            " WHERE station_id = ? AND transaction_id = ?",
            (station_id, transaction_id),
        )
        if row is not None:
            return int(row[0]), int(row[1])
        counted = await self.fetchone(  # stored before progress was kept
            "SELECT COUNT(*) FROM meter_samples WHERE station_id = ? AND transaction_id = ?",
            (station_id, transaction_id),
        )
        return (int(counted[0]) if counted else 0), 0

    async def signed_samples(self, station_id: str, transaction_id: str) -> list[MeterSample]:
        """The samples of a transaction that carry a signed meter value, in time order."""
        return await self._samples(station_id, transaction_id, " AND signed IS NOT NULL")

    async def chart_samples(
        self, station_id: str, transaction_id: str, measurands: tuple[str, ...], points: int
    ) -> list[MeterSample]:
        """Whole-meter samples of ``measurands``, at most about ``points`` of each: every n-th
        in time order, with the first and the last (the database does the picking)."""
        marks = ", ".join("?" for _ in measurands)
        rows = await self.fetchall(
            "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY measurand"
            " ORDER BY timestamp, id) AS n, COUNT(*) OVER (PARTITION BY measurand) AS total"
            " FROM meter_samples WHERE station_id = ? AND transaction_id = ?"
            f" AND phase IS NULL AND measurand IN ({marks})) picked"
            " WHERE total <= ? OR (n - 1) % ((total + ? - 1) / ?) = 0 OR n = total"
            " ORDER BY timestamp, id",
            (station_id, transaction_id, *measurands, points, points, points),
        )
        return [self._sample(r) for r in rows]

    async def _samples(
        self, station_id: str, transaction_id: str, where: str = "", tail: str = "", *extra: Any
    ) -> list[MeterSample]:
        rows = await self.fetchall(
            "SELECT * FROM meter_samples WHERE station_id = ? AND transaction_id = ?"
            f"{where} ORDER BY timestamp, id{tail}",
            (station_id, transaction_id, *extra),
        )
        return [self._sample(r) for r in rows]

    @staticmethod
    def _sample(row: Any) -> MeterSample:
        return MeterSample(
            timestamp=parse_timestamp(row["timestamp"]),
            measurand=row["measurand"],
            value=row["value"],
            unit=row["unit"],
            phase=row["phase"],
            context=row["context"],
            location=row["location"],
            signed=row["signed"],
        )

    # -- reports and security events ------------------------------------------------------

    async def record_report(
        self,
        station_id: str,
        request_id: int,
        seq_no: int,
        generated_at: str,
        raw: str,
        *,
        keep: int = retention.KEEP_REPORTS,
    ) -> int:
        """One NotifyReport message (once per request and seqNo), keeping the station's newest
        ``keep`` (``keep_reports``); returns how many older ones went."""
        return await self.insert_and_prune(
            "INSERT INTO reports (station_id, request_id, seq_no, generated_at, raw)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (station_id, request_id, seq_no, generated_at, raw),
            retention.REPORTS,
            keep,
        )

    async def record_security_event(
        self,
        station_id: str,
        event_type: str,
        timestamp: str,
        tech_info: str | None,
        *,
        keep: int = retention.KEEP_SECURITY_EVENTS,
    ) -> int:
        """One SecurityEventNotification, keeping the station's newest ``keep``
        (``keep_security_events``); returns how many older ones went."""
        return await self.insert_and_prune(
            "INSERT INTO security_events (station_id, type, timestamp, tech_info)"
            " VALUES (?, ?, ?, ?)",
            (station_id, event_type, timestamp, tech_info),
            retention.SECURITY_EVENTS,
            keep,
        )

    async def count(self, table: str) -> int:
        allowed = {"reports", "security_events", "transaction_events", "sessions", "meter_samples"}
        if table not in allowed:
            raise ValueError(table)
        row = await self.fetchone(f"SELECT COUNT(*) FROM {table}")
        return int(row[0]) if row else 0
