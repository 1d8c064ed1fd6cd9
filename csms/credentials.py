"""Station password checks for the handshake: remembered, bounded and the same cost for every id.

- A verified password is remembered in the station's record as ``password_mac``: an
  HMAC-SHA256, under the data directory's credential key (``DATA_DIR/keys/credentials.key``,
  a file, never a database row), of the station id, the stored scrypt hash and the password.
  A handshake whose password matches it costs one HMAC, not a scrypt, also after a restart.
  A new password (a new stored hash, with a new salt) no longer matches it, and the store
  drops it with the hash. The database alone cannot check a guess against it (the key is not
  in it), so a leaked database still costs an attacker one scrypt per guess.
- scrypt runs in a small pool of its own (``workers`` threads), so it never takes the default
  executor from the store or other work, and at most one check per station id is queued there
  at a time: a flood of guesses for one id waits in its own line, not in front of other stations.
- An unknown id is checked against a dummy hash, and a wrong password for a known one costs a
  scrypt too, so timing does not tell which ids exist.
- An imported station may have no scrypt hash yet (``v2g stations import`` without
  ``--hash-now``): its record holds a *pending* marker, ``pending$<random salt>$<key id>``, and
  the MAC of the password under it. A password matching that MAC connects (one HMAC) and is
  handed to ``csms.pending_hash`` to be hashed in the background; a wrong one costs a scrypt
  against the dummy hash, as for an unknown id. ``key id`` names the credential key the
  marker was made under (an HMAC of a fixed text, which tells nothing of the key), so a record
  that this process cannot check (key file lost or not shared) is refused with one log line
  saying so rather than taken for a wrong password.
- The pool's backlog is bounded: past ``max_queued`` checks waiting, ``busy()`` says so and the
  server answers 503 with ``Retry-After`` (``retry_after()``: how long the backlog takes) at
  once, instead of holding a handshake until it times out (a storm of stations with nothing
  remembered yet).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from csms.identity import create_key_file, load_key_file
from csms.model import StationRecord
from csms.passwords import hash_password, verify_password

log = logging.getLogger(__name__)

CREDENTIAL_KEY = Path("keys") / "credentials.key"
_DOMAIN = "v2g-station-password/1"
_KEY_ID = b"v2g-credential-key-id/1"
PENDING = "pending$"

# Stores a verified password's MAC: (station id, the hash it matched, MAC).
Remember = Callable[[str, str, str], Awaitable[None]]
# Takes a pending record's verified password to hash: (station id, its marker, password).
HashLater = Callable[[str, str, str], None]


def load_credential_key(data_dir: Path) -> bytes:
    """The data directory's credential key, created (0600) on first use."""
    path = data_dir / CREDENTIAL_KEY
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return create_key_file(path)
        except FileExistsError:  # another process made it just now
            pass
    return load_key_file(path)


def password_mac(key: bytes, station_id: str, password_hash: str, password: str) -> str:
    """What a station record keeps of a verified password (hex)."""
    message = "\x00".join((_DOMAIN, station_id, password_hash, password)).encode()
    return hmac.new(key, message, "sha256").hexdigest()


def key_id(key: bytes) -> str:
    """A short name of a credential key (hex), kept in pending markers."""
    return hmac.new(key, _KEY_ID, "sha256").hexdigest()[:16]


def pending_marker(key: bytes) -> str:
    """What an imported station's record holds instead of a hash until one is made."""
    return f"{PENDING}{os.urandom(16).hex()}${key_id(key)}"


def is_pending(password_hash: str) -> bool:
    return password_hash.startswith(PENDING)


class CredentialChecker:
    def __init__(
        self,
        key: bytes | None = None,
        remember: Remember | None = None,
        *,
        workers: int = 2,
        max_queued: int = 256,
        hash_later: HashLater | None = None,
    ) -> None:
        self._key = key if key is not None else os.urandom(32)
        self._key_id = key_id(self._key)
        self._remember = remember
        self._hash_later = hash_later
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrypt")
        self._lines: dict[str, asyncio.Lock] = {}
        self._writing: set[asyncio.Task[None]] = set()  # verified passwords being stored
        self._dummy_hash = hash_password(os.urandom(16).hex())  # unknown ids are checked on it
        self.hashes = 0  # scrypt verifications run (for tests and metrics)
        self.cache_hits = 0  # passwords matched by their remembered MAC
        self.unverifiable = 0  # pending records refused: made under another credential key
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

    def mac(self, station_id: str, password_hash: str, password: str) -> str:
        return password_mac(self._key, station_id, password_hash, password)

    def is_remembered(self, station: StationRecord | None, password: str) -> bool:
        """True if ``password`` is the one verified before for this record's hash."""
        if station is None or not station.password_mac:
            return False
        expected = self.mac(station.station_id, station.password_hash, password)
        return hmac.compare_digest(expected, station.password_mac)

    async def check(self, station_id: str, password: str, station: StationRecord | None) -> bool:
        """True if ``password`` is the station's (None: unknown id, checked against a dummy)."""
        self.checks += 1
        if self.is_remembered(station, password):
            self.cache_hits += 1
            if station is not None and is_pending(station.password_hash) and self._hash_later:
                self._hash_later(station_id, station.password_hash, password)
            return True
        stored = station.password_hash if station is not None else None
        if stored is not None and is_pending(stored):
            self._unverifiable(station_id, stored, station)
            stored = None  # no hash to check: a wrong password costs the dummy's scrypt
        line = self._lines.setdefault(station_id, asyncio.Lock())
        try:
            async with line:
                self.hashes += 1
                loop = asyncio.get_running_loop()
                target = stored if stored is not None else self._dummy_hash
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
        if self._remember is not None:  # written beside the handshake, not in its way
            task = asyncio.create_task(
                self._remembered(station_id, stored, self.mac(station_id, stored, password))
            )
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        return True

    def _unverifiable(self, station_id: str, marker: str, station: StationRecord | None) -> None:
        """Log a pending record this process cannot check the password of (a security event)."""
        made_under = marker.rsplit("$", 1)[-1]
        if station is not None and station.password_mac and made_under == self._key_id:
            return  # checkable: the password is just wrong
        self.unverifiable += 1
        if station is None or not station.password_mac:
            why, problem = "no_mac", "no MAC of it is stored to check it by"
        else:
            why = "key_differs"
            problem = (
                f"the credential key (DATA_DIR/{CREDENTIAL_KEY}, key id {self._key_id}) does not"
                f" match the one it was imported under (key id {made_under})"
            )
        log.warning(
            "security: auth_unverifiable path=ocpp station=%s why=%s: the station's password was"
            " imported without a hash (v2g stations import) and %s; restore that key file or"
            " give the station its password again (v2g stations set %s --password)",
            station_id,
            why,
            problem,
            station_id,
        )

    async def _remembered(self, station_id: str, stored: str, mac: str) -> None:
        assert self._remember is not None
        try:
            await self._remember(station_id, stored, mac)
        except Exception as exc:  # the next handshake runs a scrypt again, nothing worse
            log.warning("%s: verified password not remembered: %s", station_id, exc)

    async def drain(self) -> None:
        """Wait for the verified passwords still being written (before the store closes)."""
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    def _timed_verify(self, password: str, stored: str) -> bool:
        began = time.perf_counter()
        try:
            return verify_password(password, stored)
        finally:
            took = time.perf_counter() - began
            self.hash_seconds += (took - self.hash_seconds) * 0.1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
