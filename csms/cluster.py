"""Several CSMS processes on one PostgreSQL database: one live connection per station, and
CSMS-initiated calls that reach a station wherever it is connected.

Each process has a name (``process_name``; default ``HOST:PID``) and a NOTIFY channel of its
own (``csms.store.leases``), on which it LISTENs over a connection of its own.

- **Leases.** A station that connects takes its lease (``LeaseStore.take``); when another live
  process held it, that process is told (``release EPOCH STATION``) and closes its older
  connection. Every ``lease_seconds / 3`` the heartbeat renews this process's leases in one
  statement and closes any local connection whose lease another process took meanwhile (a
  NOTIFY missed while the listener reconnected). A process that dies stops renewing: its
  leases lapse after ``lease_seconds`` and its stations count as not connected.
- **Calls.** An operation on a station connected elsewhere (``StationService``, via
  ``forward``) becomes a call row for the lease holder plus ``call ID``; the holder runs it
  as a local call and answers (``answer ID``). The asker waits ``call_timeout`` plus a
  margin, then answers CallTimeout as for a station that did not answer. At most
  ``max_remote_calls`` wait at once (more: RemoteCallsBusy); as many are served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from csms.errors import CallTimeout, ConfigError, CsmsError, StationNotConnected
from csms.remote_calls import (
    RemoteCallsBusy,
    decode_outcome,
    decode_request,
    encode_error,
    encode_request,
    encode_value,
)
from csms.store.leases import CallRow, LeaseStore, channel_for

if TYPE_CHECKING:
    from csms.connection import StationConnection
    from csms.server import CsmsServer

log = logging.getLogger(__name__)

ANSWER_MARGIN_S = 3.0  # the asker waits this much longer than the holder waits for the station
LISTEN_RETRY_S = 1.0
NAME_LOCK = 7420152  # advisory lock class of process names (7420151: migrations)
EARLY_ANSWERS = 1024

# Set while this process runs an operation another process asked for: never forwarded again.
SERVING_REMOTE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "serving_remote", default=False
)

Operation = Callable[..., Awaitable[Any]]


def default_process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Cluster:
    """This process's part in a set of CSMS processes sharing one PostgreSQL database."""

    def __init__(
        self,
        server: CsmsServer,
        url: str,
        process: str,
        *,
        lease_seconds: float,
        max_remote_calls: int,
        call_timeout: float,
    ) -> None:
        self._server = server
        self._url = url
        self.process = process
        self._leases: LeaseStore | None = None  # opened by start
        self.lease_seconds = lease_seconds
        self.max_remote_calls = max_remote_calls
        self.call_timeout = call_timeout
        self.operations: dict[str, Operation] = {}  # method name -> the local operation
        self._waiting: dict[int, asyncio.Future[str]] = {}  # calls sent, by id
        # answers heard before their asker learnt its call's id (newest last, bounded)
        self._early: dict[int, None] = {}
        self._reserved = 0  # forwards in progress (sending, waiting or reading the answer)
        self._serving: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: Any = None
        # counters (metrics and tests)
        self.released = 0  # local connections closed: the station connected elsewhere
        self.lost = 0  # local connections closed: the lease was found taken at renewal
        self.forwarded = 0  # operations sent to another process
        self.served = 0  # operations run for another process
        self.refused_busy = 0  # operations refused: max_remote_calls already waiting

    @property
    def channel(self) -> str:
        return channel_for(self.process)

    @property
    def waiting(self) -> int:
        """Calls to stations on other processes in progress."""
        return self._reserved

    @property
    def leases(self) -> LeaseStore:
        assert self._leases is not None, "cluster not started"
        return self._leases

    async def start(self) -> None:
        """Claim the name, drop a former run's leases, listen: before any station is served.

        ConfigError when another running process has the same name (each holds its name,
        as a PostgreSQL advisory lock, for as long as its listening connection lives)."""
        conn = await self._listen_connection()
        try:
            if not await self._claim_name(conn):
                raise ConfigError(
                    f"process_name {self.process!r} is in use by another running CSMS on this"
                    " database: give each process its own (--process-name)"
                )
            self._leases = await LeaseStore.open(
                self._url, self.process, lease_seconds=self.lease_seconds
            )
            await self.leases.release_all()
        except BaseException:
            await conn.close()
            await self.stop()
            raise
        self._listener = conn
        self._tasks.append(asyncio.create_task(self._listen(conn), name="cluster-listen"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"))

    async def _listen_connection(self) -> Any:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            await conn.execute(f'LISTEN "{self.channel}"')
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CsmsError(f"cannot listen on the PostgreSQL database: {first}") from None
        return conn

    async def _claim_name(self, conn: Any) -> bool:
        key = int.from_bytes(hashlib.sha256(self.process.encode()).digest()[:4], "big", signed=True)
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAME_LOCK, key))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._serving, *self._closing]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:  # ends the name's claim too
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        self._tasks.clear()
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        if self._leases is not None:
            with contextlib.suppress(Exception):
                await self._leases.release_all()
            await self._leases.close()
            self._leases = None

    # -- leases ---------------------------------------------------------------------------

    async def take(self, station_id: str, subprotocol: str) -> int:
        """Take the station's lease for a new local connection; its epoch.

        Tried twice: two processes taking leases of the same stations at once may deadlock,
        and PostgreSQL then fails one of the takes."""
        at = self._server.services.now_text()
        try:
            taken = await self.leases.take(station_id, subprotocol, at)
        except Exception as exc:
            log.info("%s: taking its lease failed (%s); once more", station_id, exc)
            taken = await self.leases.take(station_id, subprotocol, at)
        if taken.previous is not None:
            log.info("%s: taken over from CSMS process %s", station_id, taken.previous)
        return taken.epoch

    async def release(self, station_id: str, epoch: int) -> None:
        await self.leases.release(station_id, epoch)

    def _close_older(self, station_id: str, epoch: int, why: str) -> bool:
        connection = self._server.connections.get(station_id)
        if connection is None or connection.lease_epoch is None or connection.lease_epoch >= epoch:
            return False
        log.info("%s: %s; closing this process's connection", station_id, why)
        self._close(connection, why)
        return True

    def _close(self, connection: StationConnection, why: str) -> None:
        connection.lease_epoch = None  # not released by it: the lease is another's now
        task = asyncio.create_task(connection.close(why))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            await self.renew()

    async def renew(self) -> None:
        """Renew this process's leases; close the local connections whose lease was taken."""
        # Only leases taken before the renewal began can be judged by what it returns.
        before = [(c, c.lease_epoch) for c in self._server.connections.values() if c.lease_epoch]
        try:
            held = await self.leases.renew()
        except Exception as exc:  # the database is away: try again next beat
            log.warning("cluster: cannot renew leases: %s", exc)
            return
        for connection, epoch in before:
            if connection.lease_epoch == epoch and held.get(connection.station_id) != epoch:
                self.lost += 1
                log.info("%s: lease taken by another CSMS process", connection.station_id)
                self._close(connection, "connected to another CSMS process")

    # -- LISTEN ---------------------------------------------------------------------------

    async def _listen(self, conn: Any) -> None:
        """Serve notifications; on a lost connection, listen again (and claim the name)."""
        while True:
            try:
                async with conn:
                    self._listener = conn
                    for call_id in await self.leases.pending_calls():  # sent while away
                        self._serve(call_id)
                    async for notify in conn.notifies():
                        self._on_notify(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cluster: listening on %s failed: %s", self.channel, exc)
            self._listener = None
            while True:
                await asyncio.sleep(LISTEN_RETRY_S)
                try:
                    conn = await self._listen_connection()
                except CsmsError as exc:
                    log.warning("cluster: %s", exc)
                    continue
                self._listener = conn
                if not await self._claim_name(conn):
                    log.error("cluster: another running CSMS took process_name %r", self.process)
                break

    def _on_notify(self, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        if kind == "release":
            epoch, _, station_id = rest.partition(" ")
            if self._close_older(station_id, int(epoch), "connected to another CSMS process"):
                self.released += 1
        elif kind == "call":
            self._serve(int(rest))
        elif kind == "answer":
            future = self._waiting.get(int(rest))
            if future is None:  # its asker has not resumed since the call was stored
                self._early[int(rest)] = None
                while len(self._early) > EARLY_ANSWERS:
                    del self._early[next(iter(self._early))]
            elif not future.done():
                future.set_result(rest)
        else:
            log.warning("cluster: unknown notification %r", payload)

    # -- calls ----------------------------------------------------------------------------

    async def forward(
        self, station_id: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run ``method`` on the process holding the station; its value, or its error."""
        if self._reserved >= self.max_remote_calls:
            self.refused_busy += 1
            raise RemoteCallsBusy(
                f"{station_id}: {self._reserved} calls already wait on other CSMS processes"
            )
        self._reserved += 1
        try:
            return await self._forward(station_id, method, args, kwargs)
        finally:
            self._reserved -= 1

    async def _forward(
        self, station_id: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        lease = await self.leases.holder(station_id)
        if lease is None or lease.process == self.process:
            raise StationNotConnected(f"station {station_id!r} is not connected")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        call_id = await self.leases.send_call(
            station_id, lease.process, method, encode_request(method, args, kwargs)
        )
        self._waiting[call_id] = future
        if call_id in self._early:
            del self._early[call_id]
            future.set_result(str(call_id))
        self.forwarded += 1
        log.info(
            "%s: %s sent to CSMS process %s (call %d)", station_id, method, lease.process, call_id
        )
        try:
            try:
                await asyncio.wait_for(future, self.call_timeout + ANSWER_MARGIN_S)
            except TimeoutError:
                answer = await self.leases.take_answer(call_id)  # a NOTIFY lost: look once
                if answer is None:
                    raise CallTimeout(
                        f"{station_id}: {method}: no answer from CSMS process {lease.process}"
                    ) from None
            else:
                answer = await self.leases.take_answer(call_id)
                if answer is None:
                    raise CallTimeout(f"{station_id}: {method}: the answer was lost")
        except BaseException:
            with contextlib.suppress(Exception):  # gave up: the holder's answer goes nowhere
                await self.leases.drop_call(call_id)
            raise
        finally:
            self._waiting.pop(call_id, None)
        return decode_outcome(answer, station_id)

    def _serve(self, call_id: int) -> None:
        if len(self._serving) >= self.max_remote_calls:
            self.refused_busy += 1
            log.warning("cluster: call %d refused: %d being served", call_id, len(self._serving))
            task = asyncio.create_task(self._refuse(call_id))
        else:
            task = asyncio.create_task(self._run_call(call_id))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _refuse(self, call_id: int) -> None:
        call = await self.leases.claim_call(call_id)
        if call is not None:
            busy = RemoteCallsBusy(f"{call.station_id}: its CSMS process is busy: try again")
            await self.leases.answer_call(call, encode_error(busy, call.station_id))

    async def _run_call(self, call_id: int) -> None:
        try:
            call = await self.leases.claim_call(call_id)
        except Exception as exc:
            log.warning("cluster: call %d could not be read: %s", call_id, exc)
            return
        if call is None:
            return
        answer = await self._outcome(call)
        try:
            await self.leases.answer_call(call, answer)
        except Exception as exc:
            log.warning("cluster: the answer to call %d could not be stored: %s", call_id, exc)

    async def _outcome(self, call: CallRow) -> str:
        SERVING_REMOTE.set(True)  # this task's context only
        self.served += 1
        try:
            args, kwargs = decode_request(call.method, call.arguments)
            operation = self.operations.get(call.method)
            if operation is None:
                raise StationNotConnected(f"station {call.station_id!r} is not connected")
            value = await operation(call.station_id, *args, **kwargs)
        except (CsmsError, ValueError) as exc:  # answered as the same error over there
            return encode_error(exc, call.station_id)
        except Exception as exc:
            log.exception("%s: %s for %s failed", call.station_id, call.method, call.origin)
            return encode_error(exc, call.station_id)
        return encode_value(value)


def render_cluster(cluster: Cluster | None) -> list[str]:
    """Prometheus lines of this process's part in the set (none without PostgreSQL)."""
    if cluster is None:
        return []
    return [
        "# HELP v2g_cluster_closed_total Local connections closed because the station's lease"
        " went to another CSMS process (taken_over: told at once; lease_lost: found at renewal).",
        "# TYPE v2g_cluster_closed_total counter",
        f'v2g_cluster_closed_total{{why="taken_over"}} {cluster.released}',
        f'v2g_cluster_closed_total{{why="lease_lost"}} {cluster.lost}',
        "# HELP v2g_cluster_calls_total Operator calls to stations on other CSMS processes"
        " (forwarded), run here for other processes (served), refused as too many (refused).",
        "# TYPE v2g_cluster_calls_total counter",
        f'v2g_cluster_calls_total{{kind="forwarded"}} {cluster.forwarded}',
        f'v2g_cluster_calls_total{{kind="served"}} {cluster.served}',
        f'v2g_cluster_calls_total{{kind="refused"}} {cluster.refused_busy}',
        "# HELP v2g_cluster_calls_waiting Calls to stations on other processes waiting now.",
        "# TYPE v2g_cluster_calls_waiting gauge",
        f"v2g_cluster_calls_waiting {cluster.waiting}",
    ]
