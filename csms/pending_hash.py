"""Scrypt hashes for imported stations, made in the background after their first handshake.

``v2g stations import`` (without ``--hash-now``) stores a *pending* marker and the password's
MAC instead of a scrypt hash (``csms.credentials``). When such a station connects, its
verified password comes here: one thread of its own, at the lowest CPU priority (Linux: nice
19 for that thread only) and at most ``per_s`` hashes a second, hashes it at the production
cost and stores the hash with a fresh MAC, only if the record still holds the same marker (a
password changed meanwhile wins). The handshake never waits for it, and the handshakes' scrypt
pool is not this one. Until the hash is stored, the station connects by its MAC as before.

A station waits here at most once; the passwords waiting are held in memory (at most
``max_waiting``; past that a station is hashed after a later handshake). Stopping drops
what is still waiting: those stations stay pending and are hashed after a later handshake.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable

from csms.credentials import password_mac
from csms.passwords import hash_password

log = logging.getLogger(__name__)

# Stores a made hash: (station id, the marker it replaces, hash, MAC) -> stored or not.
StoreHash = Callable[[str, str, str, str], Awaitable[bool]]
# Told of each hash stored: (station id, the marker it replaced, hash).
Stored = Callable[[str, str, str], None]

MAX_WAITING = 100_000


def lower_priority() -> bool:
    """Give the calling thread the lowest CPU priority (Linux; elsewhere: False)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        return False
    return True


class PendingHasher:
    def __init__(
        self,
        key: bytes,
        store_hash: StoreHash,
        *,
        per_s: float,
        stored: Stored | None = None,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        if per_s <= 0:
            raise ValueError("per_s must be positive")
        self._key = key
        self._store_hash = store_hash
        self._stored = stored
        self.interval = 1.0 / per_s
        self.max_waiting = max_waiting
        self._jobs: queue.SimpleQueue[tuple[str, str, str] | None] = queue.SimpleQueue()
        self._waiting: set[str] = set()  # station ids queued, being hashed or being stored
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing: set[asyncio.Task[None]] = set()
        self.hashed = 0  # hashes made
        self.replaced = 0  # pending markers replaced by a hash
        self.superseded = 0  # hashes not stored: the record changed meanwhile
        self.niced: bool | None = None  # whether the thread got the lowest priority

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, station_id: str, marker: str, password: str) -> None:
        """Hash ``password`` for the station whose record holds ``marker`` (on the loop)."""
        if self._stop.is_set() or station_id in self._waiting:
            return
        if len(self._waiting) >= self.max_waiting:
            return  # a later handshake brings it again
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="pending-hash", daemon=True)
            self._thread.start()
        self._waiting.add(station_id)
        self._jobs.put((station_id, marker, password))

    def _run(self) -> None:
        self.niced = lower_priority()
        next_at = time.monotonic()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            pause = next_at - time.monotonic()
            if pause > 0 and self._stop.wait(pause):
                return
            if self._stop.is_set():
                return
            began = time.monotonic()
            next_at = began + self.interval
            station_id, marker, password = job
            try:
                hashed = hash_password(password)
                mac = password_mac(self._key, station_id, hashed, password)
            except Exception as exc:  # never: scrypt of a str; keep the thread alive anyway
                log.warning("%s: password not hashed: %s", station_id, exc)
                self._post(self._waiting.discard, station_id)
                continue
            self.hashed += 1
            self._post(self._write, station_id, marker, hashed, mac)

    def _post(self, fn: Callable[..., None], *args: object) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has closed: the station stays pending
            pass

    def _write(self, station_id: str, marker: str, hashed: str, mac: str) -> None:
        task = asyncio.create_task(self._store(station_id, marker, hashed, mac))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _store(self, station_id: str, marker: str, hashed: str, mac: str) -> None:
        try:
            done = await self._store_hash(station_id, marker, hashed, mac)
        except Exception as exc:  # stays pending: hashed again after a later handshake
            log.warning("%s: imported password's hash not stored: %s", station_id, exc)
            return
        finally:
            self._waiting.discard(station_id)
        if not done:
            self.superseded += 1
            log.info("%s: imported password's hash dropped: record changed meanwhile", station_id)
            return
        self.replaced += 1
        if self._stored is not None:
            self._stored(station_id, marker, hashed)
        log.info("%s: imported password hashed (scrypt) and stored", station_id)

    async def close(self) -> None:
        """Stop hashing (what still waits is dropped) and wait for the hashes being stored."""
        self._stop.set()
        self._jobs.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
