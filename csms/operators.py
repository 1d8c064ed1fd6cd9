"""Operators and auditors of the review API and dashboard, and how they prove who they are.

Two roles: an *auditor* reads; an *operator* also acts (remote start/stop, reset, corrections).
Passwords are stored as scrypt hashes (``csms.passwords``). Pages use a session cookie signed
with HMAC-SHA256 under a per-data-dir secret (a 0600 file), so a restart keeps people logged in
and another data dir's cookies are worthless here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from csms.errors import CsmsError
from csms.passwords import hash_password, verify_password
from csms.store.sqlite import CsmsStore

Role = Literal["operator", "auditor"]
ROLES: tuple[Role, ...] = ("operator", "auditor")
SECRET_FILE = "web-session.key"
COOKIE_NAME = "v2g_session"
COOKIE_TTL_S = 12 * 3600
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class OperatorError(CsmsError):
    """An operator cannot be added, removed or found as asked."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role
    created_at: str

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise OperatorError(f"role must be operator or auditor, not {role!r}")
    return "operator" if role == "operator" else "auditor"


class OperatorRegistry:
    """The ``operators`` table of a CSMS store, with a small cache of verified passwords.

    scrypt costs tens of milliseconds by design; HTTP Basic sends the password with every
    request, so a successful check is remembered (keyed by an HMAC of name and password,
    never the password itself) with the stored hash it matched; each request still reads the
    operator's row, so a removal or a new password takes effect on the next request.
    """

    def __init__(self, store: CsmsStore) -> None:
        self._store = store
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, str] = {}  # HMAC(name, password) -> matched hash

    async def _rows(self, sql: str, params: tuple[str, ...] = ()) -> list[Any]:
        # Reads share the store's connection; writes go through its serialised writer.
        return await self._store.fetchall(sql, params)

    async def add(self, name: str, password: str, role: str, created_at: str) -> Operator:
        if not _NAME.fullmatch(name):
            raise OperatorError(f"operator name must match {_NAME.pattern}, not {name!r}")
        if len(password) < 8:
            raise OperatorError("password must have at least 8 characters")
        checked = check_role(role)
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            await self._store.execute_write(
                "INSERT INTO operators (name, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                (name, hashed, checked, created_at),
            )
        except self._store.integrity_errors:
            raise OperatorError(f"operator {name!r} already exists") from None
        return Operator(name, checked, created_at)

    async def set_password(self, name: str, password: str) -> bool:
        """Give ``name`` a new password (False when there is no such operator)."""
        if len(password) < 8:
            raise OperatorError("password must have at least 8 characters")
        hashed = await asyncio.to_thread(hash_password, password)
        self._verified.clear()
        count = await self._store.execute_write(
            "UPDATE operators SET password_hash = ? WHERE name = ?", (hashed, name)
        )
        return count > 0

    async def remove(self, name: str) -> bool:
        self._verified.clear()
        count = await self._store.execute_write("DELETE FROM operators WHERE name = ?", (name,))
        return count > 0

    async def list(self) -> list[Operator]:
        rows = await self._rows("SELECT name, role, created_at FROM operators ORDER BY name")
        return [Operator(r["name"], check_role(r["role"]), r["created_at"]) for r in rows]

    async def get(self, name: str) -> Operator | None:
        rows = await self._rows(
            "SELECT name, role, created_at FROM operators WHERE name = ?", (name,)
        )
        return (
            Operator(rows[0]["name"], check_role(rows[0]["role"]), rows[0]["created_at"])
            if rows
            else None
        )

    async def session_stamp(self, name: str) -> str | None:
        """What a session cookie of ``name`` is bound to (its password hash); None if gone."""
        rows = await self._rows("SELECT password_hash FROM operators WHERE name = ?", (name,))
        return str(rows[0]["password_hash"]) if rows else None

    async def authenticate(self, name: str, password: str) -> Operator | None:
        """The operator if the password is right, else None (unknown names cost the same)."""
        key = hmac.new(self._cache_key, f"{name}\x00{password}".encode(), "sha256").digest()
        rows = await self._rows(
            "SELECT name, role, created_at, password_hash FROM operators WHERE name = ?", (name,)
        )
        stored = rows[0]["password_hash"] if rows else _DUMMY_HASH
        # The cache holds the stored hash a password matched: a removed operator or a new
        # password misses at once, even when another process (the CLI) changed the table.
        if not (rows and self._verified.get(key) == stored):
            ok = await asyncio.to_thread(verify_password, password, stored)
            if not ok or not rows:
                return None
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[key] = stored
        return Operator(rows[0]["name"], check_role(rows[0]["role"]), rows[0]["created_at"])


# A real hash of a random password, checked for unknown names so timing does not tell.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + base64.b64encode(bytes(32)).decode()


def load_session_secret(data_dir: Path) -> bytes:
    """The data dir's cookie-signing secret, created (mode 0600) on first use."""
    keys = data_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    path = keys / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < 32:
            raise OperatorError(f"{path}: session secret is too short") from None
        return secret
    with os.fdopen(fd, "wb") as handle:
        handle.write(os.urandom(32))
    return path.read_bytes()


def sign_session(secret: bytes, name: str, issued_at: int, stamp: str = "") -> str:
    """A cookie value ``name.issued_at.mac``: proves who logged in and when. ``stamp`` (the
    operator's password hash) is covered by the MAC but not carried: a new password, or the
    operator's removal, makes every cookie issued before it worthless."""
    payload = f"{name}.{issued_at}"
    mac = hmac.new(secret, f"{payload}\x00{stamp}".encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def session_name(value: str) -> str | None:
    """The name a cookie claims, not yet verified (to look up its stamp)."""
    parts = value.rsplit(".", 2)
    return parts[0] if len(parts) == 3 else None


def read_session(
    secret: bytes, value: str, now: int, *, ttl: int = COOKIE_TTL_S, stamp: str = ""
) -> str | None:
    """The operator name a cookie vouches for, or None if forged, malformed, expired or
    signed under another ``stamp`` (a password since changed)."""
    try:
        name, issued, mac = value.rsplit(".", 2)
        issued_at = int(issued)
    except ValueError:
        return None
    expected = hmac.new(secret, f"{name}.{issued}\x00{stamp}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, expected):
        return None
    if not 0 <= now - issued_at <= ttl:
        return None
    return name
