"""The store's engines: SQLite (aiosqlite) or PostgreSQL (psycopg 3), behind one small surface.

The store's queries and units of work are engine-neutral: portable SQL (``csms.store.dialect``)
run by plain functions over a synchronous DB-API connection, on that connection's own thread.
An engine is what differs: how to connect, how its driver spells parameters, which errors
mean a broken constraint, and how to tell that another process changed the station registry.

- SQLite: aiosqlite's connection thread over ``sqlite3`` (WAL, one file in the data directory).
- PostgreSQL: a psycopg 3 connection on a thread of its own, so the same units of work (group
  commit, one TransactionEvent) run unchanged; autocommit, with explicit BEGIN/COMMIT as in SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

from csms.errors import CsmsError
from csms.store.dialect import POSTGRESQL, SQLITE, Dialect

T = TypeVar("T")

log = logging.getLogger(__name__)


def is_postgresql_url(database: str) -> bool:
    return database.startswith(("postgresql://", "postgres://"))


class SyncConnection(Protocol):
    """What a unit of work may use: ``execute`` (portable SQL, ``?`` params) and friends."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...

    @property
    def in_transaction(self) -> bool: ...


class Engine:
    """One connection to one database, used from the event loop (engine-neutral part)."""

    dialect: Dialect = SQLITE
    integrity_errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)

    def conn(self) -> SyncConnection:
        """The synchronous connection, for functions run on its thread (``run``)."""
        raise NotImplementedError

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the connection's own thread."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def registry_mark(self) -> Any:
        """A value that changes when another connection changes the stations table."""
        raise NotImplementedError

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement; its row count."""
        conn = self.conn()
        return await self.run(lambda: int(conn.execute(sql, params).rowcount))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        conn = self.conn()
        await self.run(lambda: conn.executemany(sql, rows))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        conn = self.conn()
        return await self.run(lambda: conn.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self.conn()
        return await self.run(lambda: list(conn.execute(sql, params).fetchall()))


class SqliteEngine(Engine):
    """aiosqlite: WAL, NORMAL sync, foreign keys on, a 5 s busy timeout."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path | str) -> SqliteEngine:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        db.row_factory = aiosqlite.Row
        # The busy timeout first: switching a new file to WAL takes a lock another process
        # opening it at the same moment may hold ("database is locked" otherwise).
        for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute("PRAGMA foreign_keys=ON")
        return cls(db)

    def conn(self) -> SyncConnection:
        return self._db._conn

    async def run(self, fn: Callable[[], T]) -> T:
        result: T = await self._db._execute(fn)
        return result

    async def close(self) -> None:
        await self._db.close()

    async def registry_mark(self) -> Any:
        row = await self.fetchone("PRAGMA data_version")
        return int(row[0]) if row else 0


class Row(tuple[Any, ...]):
    """A result row read by position, by column name, or as ``dict(row)`` (like sqlite3.Row)."""

    _names: tuple[str, ...]
    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._names


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = tuple(c.name for c in cursor.description or ())
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names = names
        row._index = index
        return row

    return make


class _PgConnection:
    """A psycopg connection that takes the store's portable SQL (``?`` placeholders).

    It knows whether the store opened a transaction on it (BEGIN without COMMIT/ROLLBACK
    yet). When the connection is replaced after a loss (``PostgresEngine``) in the middle of
    such a transaction, the transaction is gone with the old connection: every statement of
    it fails (the COMMIT too) until the store's ROLLBACK ends it, so no part of a unit of
    work is ever written outside its transaction on the new connection.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._open = False  # a transaction begun by the store is open
        self._lost = False  # ... and the connection it was open on was lost

    def replace(self, conn: Any) -> None:
        self._conn = conn
        self._lost, self._open = self._open, False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        head = sql.lstrip()[:9].upper()
        if self._lost:
            if head == "ROLLBACK":
                self._lost = False
                return self._conn.execute("SELECT 1")
            if head.startswith("COMMIT"):
                self._lost = False
            raise LostConnection("the database connection was lost inside this transaction")
        if head == "ROLLBACK" or head.startswith("COMMIT"):
            self._open = False  # over, whether or not the statement gets through
        cursor = self._conn.execute(POSTGRESQL.sql(sql), tuple(params))
        if head.startswith("BEGIN"):
            self._open = True
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        if self._lost:
            raise LostConnection("the database connection was lost inside this transaction")
        with self._conn.cursor() as cursor:
            cursor.executemany(POSTGRESQL.sql(sql), rows)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self._conn.info.transaction_status != TransactionStatus.IDLE)


class LostConnection(CsmsError):
    """The PostgreSQL connection was lost (server restart, terminated backend); the work that
    was on it failed. The next call opens a new one."""


class PostgresEngine(Engine):
    """psycopg 3 on a thread of its own; autocommit, explicit transactions.

    A lost connection (the server restarted, the backend was terminated) fails the call that
    was using it; the next call opens a new one. While the server cannot be reached, calls
    fail at once with LostConnection, and a new connection is tried again after a wait that
    doubles from ``retry_base`` up to ``retry_max`` seconds: a CSMS rides out a database
    restart without a restart of its own, and does not hammer a server that is down.
    """

    dialect = POSTGRESQL

    def __init__(
        self,
        url: str,
        conn: Any,
        executor: ThreadPoolExecutor,
        *,
        retry_base: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        import psycopg

        self._url = url
        self._raw = conn
        self._conn = _PgConnection(conn)
        self._executor = executor
        self.integrity_errors = (psycopg.IntegrityError,)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._failures = 0  # connection attempts failed in a row
        self._next_attempt = 0.0  # monotonic time before which no new attempt is made
        self.reconnects = 0  # connections opened again after a loss

    @staticmethod
    def _connect(url: str) -> Any:
        import psycopg

        return psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=5)

    @classmethod
    async def open(cls, url: str) -> PostgresEngine:
        import psycopg

        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgresql")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, cls._connect, url)
        except psycopg.Error as exc:
            executor.shutdown(wait=False)
            raise CsmsError(f"cannot open the PostgreSQL database: {_first_line(exc)}") from None
        return cls(url, conn, executor)

    def conn(self) -> SyncConnection:
        return self._conn

    def _reopen(self) -> None:
        """On the connection's thread: a new connection for a lost one, or LostConnection."""
        import psycopg

        now = time.monotonic()
        if now < self._next_attempt:
            raise LostConnection("the PostgreSQL database is unreachable; retrying")
        try:
            conn = self._connect(self._url)
        except psycopg.Error as exc:
            delay = min(self.retry_max, self.retry_base * 2**self._failures)
            self._failures += 1
            self._next_attempt = time.monotonic() + delay
            log.warning("PostgreSQL: cannot reconnect (%s); next try in %.1f s", exc, delay)
            raise LostConnection(
                f"the PostgreSQL database is unreachable: {_first_line(exc)}"
            ) from None
        self._failures = 0
        self._raw = conn
        self._conn.replace(conn)
        self.reconnects += 1
        log.warning("PostgreSQL: connection lost and opened again")

    def _call(self, fn: Callable[[], T]) -> T:
        if self._raw.closed:
            self._reopen()
        open_before = self._conn._open
        try:
            return fn()
        except BaseException:
            if self._raw.closed and not open_before:
                # a transaction begun and lost within this call (a group commit batch):
                # its caller has the error; nothing of it remains to be ended
                self._conn._open = False
            raise

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(self._call, fn)
        )

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._raw.close)
        self._executor.shutdown(wait=True)

    async def registry_mark(self) -> Any:
        # one row, kept by triggers on the stations table (REGISTRY_TRIGGERS)
        row = await self.fetchone("SELECT version FROM registry_changes WHERE id = 1")
        return int(row[0]) if row else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
