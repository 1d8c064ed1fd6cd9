"""Registry changes reach a running CSMS within a second, wherever they were made.

``v2g stations remove`` and ``v2g stations set --password`` run in another process and write
the database. Every ``interval`` seconds the watch asks the store whether another connection
changed it (``CsmsStore.registry_mark``: SQLite's ``PRAGMA data_version``; on PostgreSQL the
one-row counter kept by triggers on the stations table: either way one tiny read) or whether
this process changed the station registry (``CsmsStore.registry_version``); only then does it
read the stations' ids and password hashes and compare them with what it saw last. A station
that is gone, or whose password hash changed, has its connection closed (1008) when connected,
so it must authenticate again with what is registered now (its remembered password went with
the old hash, ``csms.credentials``). An imported station's pending marker replaced by the hash
of the same password (``csms.pending_hash``, told through ``rehashed``) is no change.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from csms.connection import StationConnection
from csms.store.sqlite import CsmsStore

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008


def registry_changes(
    before: dict[str, str],
    now: dict[str, str],
    same: dict[str, tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Station id -> why its past authentication no longer holds (removed, password changed).
    ``same``: station id -> two stored values of one password (a pending marker, its hash)."""
    changed: dict[str, str] = {}
    same = same or {}
    for station_id, hashed in before.items():
        current = now.get(station_id)
        if current is None:
            changed[station_id] = "registration removed"
        elif current != hashed:
            pair = same.get(station_id)
            if pair is None or {hashed, current} != set(pair):
                changed[station_id] = "password changed"
    return changed


class RegistryWatch:
    def __init__(
        self,
        store: CsmsStore,
        connections: dict[str, StationConnection],
        *,
        interval: float = 0.25,
    ) -> None:
        self._store = store
        self._connections = connections
        self.interval = interval
        self._seen: dict[str, str] = {}
        self._marks: tuple[Any, int] = (None, -1)
        self.revoked = 0  # connections closed because their registration changed
        # station id -> (pending marker, the hash this process stored in its place)
        self._rehashed: dict[str, tuple[str, str]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def _marks_now(self) -> tuple[int, int]:
        return await self._store.registry_mark()

    async def _hashes(self) -> dict[str, str]:
        rows = await self._store.fetchall("SELECT station_id, password_hash FROM stations")
        return {str(r[0]): str(r[1]) for r in rows}

    def rehashed(self, station_id: str, marker: str, hashed: str) -> None:
        """An imported station's marker was replaced by its password's hash: not a change."""
        self._rehashed[station_id] = (marker, hashed)
        if self._seen.get(station_id) == marker:
            self._seen[station_id] = hashed

    async def start(self) -> None:
        """The first look: what is registered when the CSMS starts."""
        self._marks = await self._marks_now()
        self._seen = await self._hashes()

    async def check(self) -> None:
        """One look: disconnect the stations whose registration changed."""
        marks = await self._marks_now()
        if marks == self._marks:
            return
        self._marks = marks
        now = await self._hashes()
        changed = registry_changes(self._seen, now, self._rehashed)
        self._seen = now
        for station_id, pair in list(self._rehashed.items()):
            if now.get(station_id) not in pair:
                del self._rehashed[station_id]
        for station_id, why in changed.items():
            connection = self._connections.get(station_id)
            if connection is None:
                continue
            log.warning("security: station_revoked station=%s why=%s", station_id, why)
            self.revoked += 1
            task = asyncio.create_task(connection.websocket.close(POLICY_VIOLATION, why))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception as exc:  # a busy database: look again next time
                log.warning("registry watch: %s", exc)
