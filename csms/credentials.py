"""Station password checks for the handshake: cached, bounded and the same cost for every id.

- A verified password is remembered per station as an HMAC of the presented password under a
  per-process secret, together with the stored hash it matched; a new stored hash (password
  changed) makes the entry useless, so a reconnect costs one HMAC, not a scrypt.
- scrypt runs in a small pool of its own (``workers`` threads), so it never takes the default
  executor from the store or other work, and at most one check per station id is queued there
  at a time: a flood of guesses for one id waits in its own line, not in front of other stations.
- An unknown id is checked against a dummy hash, so timing does not tell which ids exist.
- The pool's backlog is bounded: past ``max_queued`` checks waiting, ``busy()`` says so and the
  server answers 503 with ``Retry-After`` (``retry_after()``: how long the backlog takes) at
  once, instead of holding a handshake until it times out (a reconnect storm after a restart,
  when nothing is cached yet).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

from csms.passwords import hash_password, verify_password

_DUMMY_HASH = hash_password(os.urandom(16).hex())


class CredentialChecker:
    def __init__(
        self, *, workers: int = 2, max_cached: int = 100_000, max_queued: int = 256
    ) -> None:
        self._secret = os.urandom(32)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrypt")
        self._verified: dict[str, tuple[bytes, str]] = {}  # id -> (hmac, stored hash)
        self._lines: dict[str, asyncio.Lock] = {}
        self._max_cached = max_cached
        self.hashes = 0  # scrypt verifications run (for tests and metrics)
        self.cache_hits = 0
        self.checks = 0  # checks asked for, hashed or not
        self.max_queued = max_queued
        self.queued = 0  # hashes waiting for or running in the pool
        self.hash_seconds = 0.05  # running average of one verification
        self._workers = workers

    def busy(self) -> bool:
        """True when the pool's backlog is full: a new check would wait too long."""
        return self.queued >= self.max_queued

    def retry_after(self) -> int:
        """Whole seconds the current backlog takes to clear (at least 1)."""
        return max(1, math.ceil(self.queued * self.hash_seconds / self._workers))

    def _mac(self, station_id: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{station_id}\x00{password}".encode(), "sha256").digest()

    def is_cached(self, station_id: str, password: str, stored: str | None) -> bool:
        hit = self._verified.get(station_id)
        if hit is None or stored is None or hit[1] != stored:
            return False
        return hmac.compare_digest(hit[0], self._mac(station_id, password))

    def forget(self, station_id: str) -> None:
        self._verified.pop(station_id, None)

    async def check(self, station_id: str, password: str, stored: str | None) -> bool:
        """True if ``password`` matches ``stored`` (None: unknown id, checked against a dummy)."""
        self.checks += 1
        if self.is_cached(station_id, password, stored):
            self.cache_hits += 1
            return True
        line = self._lines.setdefault(station_id, asyncio.Lock())
        try:
            async with line:
                self.hashes += 1
                loop = asyncio.get_running_loop()
                target = stored if stored is not None else _DUMMY_HASH
                self.queued += 1
                try:
                    ok = await loop.run_in_executor(
                        self._pool, self._timed_verify, password, target
                    )
                finally:
                    self.queued -= 1
        finally:
            if not line.locked() and self._lines.get(station_id) is line:
                del self._lines[station_id]
        if not ok or stored is None:
            return False
        if len(self._verified) >= self._max_cached:
            self._verified.clear()
        self._verified[station_id] = (self._mac(station_id, password), stored)
        return True

    def _timed_verify(self, password: str, stored: str) -> bool:
        began = time.perf_counter()
        try:
            return verify_password(password, stored)
        finally:
            took = time.perf_counter() - began
            self.hash_seconds += (took - self.hash_seconds) * 0.1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
