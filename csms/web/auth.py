"""Who is asking: HTTP Basic for the API, a signed session cookie for the pages.

Both resolve to an ``Operator``; an auditor may read, only an operator may act. Page forms
that act carry a CSRF token derived from the session cookie, so another site cannot make a
logged-in browser post one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time

from fastapi import Request

from csms.operators import (
    COOKIE_NAME,
    COOKIE_TTL_S,
    Operator,
    OperatorRegistry,
    read_session,
    session_name,
)
from csms.store.sqlite import CsmsStore
from csms.throttle import AuthThrottle
from csms.web.errors import Forbidden, TooManyAttempts, Unauthorized

log = logging.getLogger(__name__)


class Auth:
    """Checks credentials against the operator registry; owned by the app."""

    def __init__(self, registry: OperatorRegistry, secret: bytes, store: CsmsStore) -> None:
        self.registry = registry
        self.secret = secret
        self.throttle = AuthThrottle()
        # cookies logged out before they expire, kept in the store (a restart keeps them)
        self._store = store

    async def verify(self, name: str, password: str, address: str, path: str) -> Operator | None:
        """The operator, None for wrong credentials (after the backoff's delay), or
        TooManyAttempts while the address, or the name from an address that failed, is held."""
        throttle = self.throttle
        by_address, by_name = f"address:{address}", f"operator:{name}"
        wait, kind = throttle.retry_after(by_address), "address"
        if not wait and throttle.failure_count(by_address):
            wait, kind = throttle.retry_after(by_name), "operator"
        if wait:
            throttle.refused[(path, kind)] += 1
            log.warning(
                "security: auth_refused path=%s operator=%s address=%s by=%s retry_after=%d",
                path,
                name,
                address,
                kind,
                wait,
            )
            raise TooManyAttempts(wait)
        operator = await self.registry.authenticate(name, password)
        if operator is not None:
            throttle.succeeded(by_address)
            throttle.succeeded(by_name)
            return operator
        delay = max(throttle.failed(by_address), throttle.failed(by_name))
        throttle.failures[path] += 1
        log.warning(
            "security: auth_failed path=%s operator=%s address=%s failures=%d",
            path,
            name,
            address,
            throttle.failure_count(by_name),
        )
        await asyncio.sleep(delay)
        return None

    async def revoke(self, request: Request) -> None:
        """Log out: the request's session cookie is refused from now on, also after a restart.

        Only a cookie this server signed and that has not expired is recorded (by its SHA-256,
        until it would have expired), so anonymous requests cannot grow the table.
        """
        value = request.cookies.get(COOKIE_NAME)
        now = int(time.time())
        if not value or await self._vouched(value, now) is None:
            return
        issued_at = int(value.rsplit(".", 2)[1])
        await self._store.execute_write(
            "DELETE FROM revoked_web_sessions WHERE expires_at < ?", (now,)
        )
        await self._store.execute_write(
            "INSERT INTO revoked_web_sessions (digest, expires_at) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (_digest(value), issued_at + COOKIE_TTL_S),
        )

    async def _is_revoked(self, value: str) -> bool:
        row = await self._store.fetchone(
            "SELECT 1 FROM revoked_web_sessions WHERE digest = ?", (_digest(value),)
        )
        return row is not None

    async def basic(self, request: Request) -> Operator:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise Unauthorized("HTTP Basic credentials required")
        try:
            name, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        address = request.client.host if request.client else "?"
        operator = await self.verify(name, password, address, "api")
        if operator is None:
            raise Unauthorized("wrong name or password")
        return operator

    async def _vouched(self, value: str, now: int) -> str | None:
        """The operator a cookie vouches for: signed here, unexpired, under the operator's
        current password (``csms.operators.sign_session``); None otherwise."""
        claimed = session_name(value)
        stamp = None if claimed is None else await self.registry.session_stamp(claimed)
        if stamp is None:  # malformed, or the operator is gone
            return None
        return read_session(self.secret, value, now, stamp=stamp)

    async def cookie(self, request: Request) -> Operator | None:
        value = request.cookies.get(COOKIE_NAME)
        if not value:
            return None
        name = await self._vouched(value, int(time.time()))
        if name is None or await self._is_revoked(value):
            return None
        return await self.registry.get(name)

    def csrf_token(self, request: Request) -> str:
        value = request.cookies.get(COOKIE_NAME, "")
        return hmac.new(self.secret, b"csrf\x00" + value.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, token: str) -> None:
        if not hmac.compare_digest(self.csrf_token(request), token):
            raise Forbidden("the form is stale or was not sent by this dashboard; reload it")


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def require_actor(operator: Operator) -> Operator:
    if not operator.can_act:
        raise Forbidden(f"{operator.name} is an auditor: auditors read, only operators act")
    return operator
