"""Group commit: the units of work of many stations in one database transaction.

Each unit is a plain function over the store's synchronous connection (SQLite or PostgreSQL).
Units submitted while a batch is being written wait and form the next batch, so a busy CSMS
pays one BEGIN/COMMIT and one hop to the database thread per batch instead of per event, while
an idle one writes a lone unit at once (no timer). A caller is answered only after its batch
commits.

Guarantees (tested in ``tests/csms/store/test_group.py``):
- units run in submission order, so one station's events keep their order;
- each unit runs inside a SAVEPOINT: a unit that raises is rolled back alone and its caller
  gets the exception, the others in the batch commit (on PostgreSQL, whose writer pipelines
  statements, a unit's statements are all answered before the next unit begins, so a
  statement whose result the unit never read still fails that unit and no other);
- if the COMMIT itself fails, every caller of that batch gets the error (nothing is durable);
- a batch's callers resume ``WAKE_SLICE`` per pass of the event loop, so a batch of 1,000
  (a fleet's BootNotifications after a restart) does not hold the loop for all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from csms.store.engine import SyncConnection, settle

Unit = Callable[[SyncConnection], Any]
# Runs a synchronous function on the one writer connection's thread (and returns its result).
BatchRunner = Callable[[Callable[[], list["Outcome"]]], Awaitable[list["Outcome"]]]
# Callers of one batch resumed per pass of the event loop. Each resumed caller answers its
# station (~0.1-0.15 ms), so a batch of 1,000 woken at once held the loop for 100-160 ms.
WAKE_SLICE = 100


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one unit returned, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


def write_batch(
    conn: SyncConnection, units: list[Unit], begin: str = "BEGIN IMMEDIATE"
) -> list[Outcome]:
    """BEGIN, each unit in its own SAVEPOINT, COMMIT (ROLLBACK if that fails)."""
    outcomes: list[Outcome] = []
    conn.execute(begin)
    try:
        for unit in units:
            conn.execute("SAVEPOINT unit")
            try:
                value = unit(conn)
                settle(conn)  # a pipelined statement of this unit that failed fails it here
            except Exception as exc:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                outcomes.append(Outcome(error=exc))
                continue
            # sent with the next unit's first statements (PostgreSQL): releasing a savepoint
            # that exists fails only with the connection, and then so does the whole batch
            conn.execute("RELEASE unit")
            outcomes.append(Outcome(value=value))
        conn.execute("COMMIT")
        settle(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


class GroupCommit:
    """Collects units from concurrent coroutines and writes them in batches, in order."""

    def __init__(
        self,
        conn: Callable[[], SyncConnection],
        run: BatchRunner,
        lock: asyncio.Lock,
        *,
        max_batch: int = 1000,
        begin: str = "BEGIN IMMEDIATE",
    ) -> None:
        self._begin = begin
        self._conn = conn
        self._run = run
        self._lock = lock  # the store's write lock: batches never interleave with other work
        self._max_batch = max_batch
        self._pending: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # batches written (for tests and metrics)

    async def submit(self, unit: Unit) -> Any:
        """Run ``unit`` in the next batch; return its value once the batch has committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((unit, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            units = [unit for unit, _ in batch]
            conn = self._conn()
            try:
                async with self._lock:
                    outcomes = await self._run(partial(write_batch, conn, units, self._begin))
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            await self._wake(batch, outcomes)

    async def _wake(
        self, batch: list[tuple[Unit, asyncio.Future[Any]]], outcomes: list[Outcome]
    ) -> None:
        """Answer a committed batch's callers, ``WAKE_SLICE`` per pass of the event loop."""
        answers = list(zip(batch, outcomes, strict=True))
        for start in range(0, len(answers), WAKE_SLICE):
            if start:
                try:
                    await asyncio.sleep(0)  # the slice woken so far runs in this pass
                except asyncio.CancelledError:
                    for (_, future), _outcome in answers[start:]:
                        future.cancel()
                    raise
            for (_, future), outcome in answers[start : start + WAKE_SLICE]:
                if future.done():  # the caller went away (its station hung up)
                    continue
                if outcome.error is not None:
                    future.set_exception(outcome.error)
                else:
                    future.set_result(outcome.value)
