"""The store's engines: SQLite (aiosqlite) or PostgreSQL (psycopg 3), behind one small surface.

The store's queries and units of work are engine-neutral: portable SQL (``csms.store.dialect``)
run by plain functions over a synchronous DB-API connection, on that connection's own thread.
An engine is what differs: how to connect, how its driver spells parameters, which errors
mean a broken constraint, and how to tell that another process changed the station registry.

- SQLite: aiosqlite's connection thread over ``sqlite3`` (WAL, one file in the data directory).
- PostgreSQL: psycopg 3 connections, each on a thread of its own, so the same units of work
  (group commit, one TransactionEvent) run unchanged; autocommit, with explicit BEGIN/COMMIT as
  in SQLite. One writer, pipelined (a statement's result is waited for only when read), and a
  small pool of read connections for reads made outside the store's units of work.
"""

from __future__ import annotations

import asyncio
import logging
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

from csms.errors import CsmsError
from csms.store.dialect import POSTGRESQL, SQLITE, Dialect

T = TypeVar("T")

log = logging.getLogger(__name__)

# Set inside the store's own units of work (``Engine.writing``): reads there go to the writer
# connection, so they see the unit's rows not yet committed.
_WRITING: ContextVar[bool] = ContextVar("store_writing", default=False)


# Set while a store coroutine is driven to its end on the writer's own thread, inside a unit of
# work (``run_inline``): its ``run`` and ``read`` call the connection directly, with no hop.
_INLINE: ContextVar[bool] = ContextVar("store_inline", default=False)


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Drive ``coro`` (store methods whose every wait is a ``run`` or ``read``) to its end on
    this thread, the writer's, within a unit of work: each statement runs at once on the
    writer connection instead of a hop from the event loop and back per statement. A wait on
    anything else (a lock, a timer) has no loop to wait on here: the unit fails."""
    token = _INLINE.set(True)
    try:
        try:
            coro.send(None)
        except StopIteration as done:
            value: T = done.value
            return value
        coro.close()
        raise RuntimeError("a unit of work run inline waited on the event loop")
    finally:
        _INLINE.reset(token)


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
        """Run ``fn`` on the writer connection's own thread."""
        raise NotImplementedError

    async def read(self, fn: Callable[[SyncConnection], T]) -> T:
        """Run a read ``fn(conn)`` on a connection that may not be the writer's (PostgreSQL:
        a pooled read connection, seeing what is committed), except inside ``writing``."""
        conn = self.conn()
        if _INLINE.get():
            return fn(conn)
        return await self.run(lambda: fn(conn))

    @staticmethod
    @contextmanager
    def writing() -> Iterator[None]:
        """Within: this task's reads go to the writer connection (inside a unit of work)."""
        token = _WRITING.set(True)
        try:
            yield
        finally:
            _WRITING.reset(token)

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
        return await self.read(lambda conn: conn.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return await self.read(lambda conn: list(conn.execute(sql, params).fetchall()))


async def _pragma_when_unlocked(db: aiosqlite.Connection, pragma: str, *, within: float) -> None:
    """Run ``PRAGMA pragma``, again after a short pause while the file is locked."""
    deadline = time.monotonic() + within
    while True:
        try:
            await db.execute(f"PRAGMA {pragma}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.02)


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
        # opening it at the same moment may hold ("database is locked" otherwise). SQLite
        # answers some of those waits (a new file's WAL switch) at once, without its busy
        # handler, so they are tried again here for as long as the busy timeout.
        try:
            for pragma in ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL"):
                await _pragma_when_unlocked(db, pragma, within=5.0)
            await db.execute("PRAGMA foreign_keys=ON")
        except BaseException as exc:
            await db.close()  # its thread would keep the process from exiting
            if isinstance(exc, sqlite3.DatabaseError):
                raise CsmsError(f"{path}: cannot open the database: {exc}") from None
            raise
        return cls(db)

    def conn(self) -> SyncConnection:
        return self._db._conn

    async def run(self, fn: Callable[[], T]) -> T:
        if _INLINE.get():
            return fn()
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


class _Pending:
    """A statement sent in the writer's pipeline: its result is waited for when first read.

    Statements whose results nobody reads (an upsert, a RELEASE) go out with the next one
    whose result is read, in one wait for the server instead of one each.
    """

    __slots__ = ("_cursor", "_owner")

    def __init__(self, cursor: Any, owner: _PgConnection) -> None:
        self._cursor = cursor
        self._owner = owner

    def _ready(self) -> Any:
        if self._cursor.pgresult is None:
            self._owner.sync()
        return self._cursor

    @property
    def rowcount(self) -> int:
        return int(self._ready().rowcount)

    def fetchone(self) -> Any:
        return self._ready().fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._ready().fetchall())


class _PgConnection:
    """A psycopg connection that takes the store's portable SQL (``?`` placeholders).

    It knows whether the store opened a transaction on it (BEGIN without COMMIT/ROLLBACK
    yet). When the connection is replaced after a loss (``PostgresEngine``) in the middle of
    such a transaction, the transaction is gone with the old connection: every statement of
    it fails (the COMMIT too) until the store's ROLLBACK ends it, so no part of a unit of
    work is ever written outside its transaction on the new connection.

    ``pipelined`` (the writer): the connection stays in psycopg's pipeline mode. A statement
    is sent at once and its result waited for only when read (``_Pending``); ``sync`` waits
    for everything sent so far and raises the first error. The engine syncs at the end of
    every call on the connection's thread, and group commit at the end of every unit, so an
    error is always raised to the unit of work whose statement caused it.
    """

    def __init__(self, conn: Any, *, pipelined: bool = False) -> None:
        self._pipelined = pipelined
        self._open = False  # a transaction begun by the store is open
        self._lost = False  # ... and the connection it was open on was lost
        self.waits = 0  # waits for the server's answers (round trips)
        self._attach(conn)

    def _attach(self, conn: Any) -> None:
        self._conn = conn
        self._unsynced = False
        self._trailing = False
        self._pipeline_cm: Any = None
        self._pipeline: Any = None
        if self._pipelined:
            self._pipeline_cm = conn.pipeline()
            self._pipeline = self._pipeline_cm.__enter__()

    def detach(self) -> None:
        """Leave pipeline mode (before the connection is closed, or after it was lost)."""
        cm, self._pipeline_cm, self._pipeline = self._pipeline_cm, None, None
        if cm is not None:
            with suppress(Exception):
                cm.__exit__(None, None, None)

    def replace(self, conn: Any) -> None:
        self.detach()
        self._attach(conn)
        self._lost, self._open = self._open, False

    def flush(self) -> None:
        """``sync``, and wait for a trailing RELEASE too (the end of a call)."""
        if self._trailing:
            self._unsynced = True
        self.sync()

    def sync(self) -> None:
        """Wait for the results of every statement sent; raise the first error among them."""
        if not self._unsynced:
            return
        self._unsynced = self._trailing = False
        self.waits += 1
        try:
            self._pipeline.sync()
        except Exception:
            self._recover()
            raise

    def _recover(self) -> None:
        """After an error in the pipeline: a Sync, so the statements sent after the failed one
        are answered (as aborted) and the connection takes new ones."""
        self._unsynced = self._trailing = False
        for _ in range(3):
            if self._pipeline is None or self._conn.closed:
                return
            try:
                self._pipeline.sync()
            except Exception:  # the statements aborted behind the first error
                continue
            if not self._pipeline.result_queue:
                return

    def _send(self, sql: str, params: Sequence[Any]) -> Any:
        if self._pipeline is None:
            self.waits += 1
            return self._conn.execute(sql, params)
        self._unsynced = True
        try:
            cursor = self._conn.execute(sql, params)
        except Exception:
            self._recover()
            raise
        return _Pending(cursor, self)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        head = sql.lstrip()[:9].upper()
        if self._lost:
            if head == "ROLLBACK":
                self._lost = False
                return self._send("SELECT 1", ())
            if head.startswith("COMMIT"):
                self._lost = False
            raise LostConnection("the database connection was lost inside this transaction")
        if head == "ROLLBACK" or head.startswith("COMMIT"):
            self._open = False  # over, whether or not the statement gets through
        settled = not self._unsynced
        cursor = self._send(POSTGRESQL.sql(sql), tuple(params))
        if settled and self._pipeline is not None and head.startswith("RELEASE"):
            # releasing a savepoint fails only with the connection: it need not be waited
            # for by ``settle``; it goes out with the next statement that is (or ``flush``)
            self._unsynced, self._trailing = False, True
        if head.startswith("BEGIN"):
            self._open = True
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        if self._lost:
            raise LostConnection("the database connection was lost inside this transaction")
        cursor = self._conn.cursor()
        if self._pipeline is None:
            self.waits += 1
        self._unsynced = self._pipeline is not None
        try:
            cursor.executemany(POSTGRESQL.sql(sql), rows)
        except Exception:
            if self._pipeline is not None:
                self._recover()
            raise

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        if self._unsynced or self._trailing:
            with suppress(Exception):
                self.flush()
        return bool(self._conn.info.transaction_status != TransactionStatus.IDLE)


def settle(conn: SyncConnection) -> None:
    """Wait until every statement sent on ``conn`` has been answered; raise the first error.

    A no-op on SQLite (each statement runs when executed); on the PostgreSQL writer, whose
    statements are pipelined, the point where a unit of work's errors are known.
    """
    sync = getattr(conn, "sync", None)
    if sync is not None:
        sync()


def _alive(raw: Any) -> bool:
    """False when the server has closed (or is closing) an idle connection: a restart, a
    terminated backend. Found without a round trip: an idle connection hears from the server
    only when it goes away (a FATAL message, then the end of the connection)."""
    if raw.closed:
        return False
    # poll, not select: a CSMS holding thousands of stations has descriptors past select's 1024
    poller = select.poll()
    try:
        poller.register(raw.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        ready = poller.poll(0)
    except (OSError, ValueError):
        return False
    return not ready


class LostConnection(CsmsError):
    """The PostgreSQL connection was lost (server restart, terminated backend); the work that
    was on it failed. The next call opens a new one."""


class _Link:
    """One PostgreSQL connection and the one thread it is used from."""

    def __init__(self, name: str, *, pipelined: bool) -> None:
        self.name = name
        self.pipelined = pipelined
        self.raw: Any = None  # opened on first use, on its own thread
        self.conn: _PgConnection | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


class PostgresEngine(Engine):
    """psycopg 3, each connection on a thread of its own; autocommit, explicit transactions.

    - The writer: every write and every unit of work (group commit, transactions), and the
      reads made inside the store's own transactions (``writing``). Pipelined (``_PgConnection``):
      a TransactionEvent waits for the server three times, not once per statement.
    - Up to ``readers`` read connections, opened when reads overlap: a read does not queue
      behind a group-commit batch or another read. They see what is committed, as any other
      process would.

    A lost connection (the server restarted, the backend was terminated) fails the call that
    was using it; an idle one the server closed is found closed before it is used and opened
    again. While the server cannot be reached, calls fail at once with LostConnection, and a
    new connection is tried again after a wait that doubles from ``retry_base`` up to
    ``retry_max`` seconds (one back-off for all the engine's connections): a CSMS rides out a
    database restart without a restart of its own, and does not hammer a server that is down.
    """

    dialect = POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        readers: int = 2,
        retry_base: float = 0.1,
        retry_max: float = 5.0,
    ) -> None:
        import psycopg

        self._url = url
        self._writer = _Link("postgresql", pipelined=True)
        self._readers_max = readers
        self._readers: list[_Link] = []
        self._idle: asyncio.LifoQueue[_Link] = asyncio.LifoQueue()
        self.integrity_errors = (psycopg.IntegrityError,)
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._retry_lock = threading.Lock()
        self._failures = 0  # connection attempts failed in a row
        self._next_attempt = 0.0  # monotonic time before which no new attempt is made
        self.reconnects = 0  # connections opened again after a loss

    @staticmethod
    def _connect(url: str) -> Any:
        import psycopg

        return psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=5)

    @classmethod
    async def open(cls, url: str, *, readers: int = 2) -> PostgresEngine:
        import psycopg

        engine = cls(url, readers=readers)
        link = engine._writer
        loop = asyncio.get_running_loop()
        try:
            link.raw = await loop.run_in_executor(link.executor, cls._connect, url)
        except psycopg.Error as exc:
            link.executor.shutdown(wait=False)
            raise CsmsError(f"cannot open the PostgreSQL database: {_first_line(exc)}") from None
        link.conn = _PgConnection(link.raw, pipelined=True)
        return engine

    @property
    def connections(self) -> int:
        """Connections opened so far: the writer and the readers."""
        return 1 + len(self._readers)

    @property
    def waits(self) -> int:
        """Waits for the server's answers on the writer connection (round trips)."""
        return self._writer.conn.waits if self._writer.conn is not None else 0

    def conn(self) -> SyncConnection:
        assert self._writer.conn is not None
        return self._writer.conn

    def _reopen(self, link: _Link) -> None:
        """On the link's thread: a (new) connection for it, or LostConnection."""
        import psycopg

        with self._retry_lock:
            if time.monotonic() < self._next_attempt:
                raise LostConnection("the PostgreSQL database is unreachable; retrying")
            try:
                raw = self._connect(self._url)
            except psycopg.Error as exc:
                delay = min(self.retry_max, self.retry_base * 2**self._failures)
                self._failures += 1
                self._next_attempt = time.monotonic() + delay
                log.warning("PostgreSQL: cannot connect (%s); next try in %.1f s", exc, delay)
                raise LostConnection(
                    f"the PostgreSQL database is unreachable: {_first_line(exc)}"
                ) from None
            self._failures = 0
            lost = link.raw is not None
            if lost:
                self.reconnects += 1
        if link.raw is not None:
            with suppress(Exception):
                link.raw.close()
        link.raw = raw
        if link.conn is None:
            link.conn = _PgConnection(raw, pipelined=link.pipelined)
        else:
            link.conn.replace(raw)
        if lost:
            log.warning("PostgreSQL: connection %s lost and opened again", link.name)

    def _call(self, link: _Link, fn: Callable[[_PgConnection], T]) -> T:
        if link.raw is None or not _alive(link.raw):
            self._reopen(link)
        conn = link.conn
        assert conn is not None
        open_before = conn._open
        try:
            value = fn(conn)
            conn.flush()  # nothing sent in this call is left unanswered after it
            return value
        except BaseException:
            if link.raw.closed and not open_before:
                # a transaction begun and lost within this call (a group commit batch):
                # its caller has the error; nothing of it remains to be ended
                conn._open = False
            raise

    async def _on(self, link: _Link, fn: Callable[[_PgConnection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            link.executor, partial(self._call, link, fn)
        )

    async def run(self, fn: Callable[[], T]) -> T:
        if _INLINE.get():
            return fn()
        return await self._on(self._writer, lambda _conn: fn())

    async def read(self, fn: Callable[[SyncConnection], T]) -> T:
        if _INLINE.get():
            return fn(self.conn())
        if self._readers_max == 0 or _WRITING.get():
            return await self._on(self._writer, fn)
        if self._idle.empty() and len(self._readers) < self._readers_max:
            link = _Link(f"postgresql-read{len(self._readers)}", pipelined=False)
            self._readers.append(link)
        else:
            link = await self._idle.get()
        try:
            return await self._on(link, fn)
        finally:
            self._idle.put_nowait(link)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        for link in (self._writer, *self._readers):
            await loop.run_in_executor(link.executor, _close_link, link)
            link.executor.shutdown(wait=True)

    async def registry_mark(self) -> Any:
        # one row, kept by triggers on the stations table (REGISTRY_TRIGGERS)
        row = await self.fetchone("SELECT version FROM registry_changes WHERE id = 1")
        return int(row[0]) if row else None


def _close_link(link: _Link) -> None:
    if link.conn is not None:
        link.conn.detach()
    if link.raw is not None:
        link.raw.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
