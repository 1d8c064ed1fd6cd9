"""Operators: registry rules, password checks, session cookies and their secret."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms.operators import (
    OperatorError,
    OperatorRegistry,
    load_session_secret,
    read_session,
    sign_session,
)
from csms.store.sqlite import CsmsStore


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[OperatorRegistry]:
    store = await CsmsStore.open(tmp_path / "csms.sqlite")
    yield OperatorRegistry(store)
    await store.close()


async def test_add_authenticate_and_remove(registry: OperatorRegistry) -> None:
    added = await registry.add("olivia", "operator-pass", "operator", "2026-01-01T00:00:00Z")
    assert added.can_act
    auditor = await registry.add("arthur", "auditor-pass", "auditor", "2026-01-01T00:00:00Z")
    assert not auditor.can_act
    assert await registry.authenticate("olivia", "operator-pass") == added
    assert await registry.authenticate("olivia", "auditor-pass") is None
    assert await registry.authenticate("nobody", "operator-pass") is None
    assert [o.name for o in await registry.list()] == ["arthur", "olivia"]
    assert await registry.remove("olivia")
    assert not await registry.remove("olivia")
    # a removed operator is not let in from the cache of verified passwords
    assert await registry.authenticate("olivia", "operator-pass") is None


async def test_removal_by_another_process_bites_on_the_next_request(
    registry: OperatorRegistry, tmp_path: Path
) -> None:
    await registry.add("carol", "carol-pass-1", "operator", "2026-01-01T00:00:00Z")
    assert await registry.authenticate("carol", "carol-pass-1") is not None  # now cached
    other = await CsmsStore.open(tmp_path / "csms.sqlite")  # the CLI, in its own process
    try:
        assert await OperatorRegistry(other).remove("carol")
    finally:
        await other.close()
    assert await registry.authenticate("carol", "carol-pass-1") is None


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("bad name", "long-enough", "operator", "must match"),
        ("a:b", "long-enough", "operator", "must match"),
        ("ok", "short", "operator", "8 characters"),
        ("ok", "long-enough", "admin", "operator or auditor"),
    ],
)
async def test_refusals(
    registry: OperatorRegistry, name: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(OperatorError, match=message):
        await registry.add(name, password, role, "2026-01-01T00:00:00Z")


async def test_duplicate_names_are_refused(registry: OperatorRegistry) -> None:
    await registry.add("olivia", "operator-pass", "operator", "t")
    with pytest.raises(OperatorError, match="already exists"):
        await registry.add("olivia", "other-pass-1", "auditor", "t")


def test_session_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_session_secret(tmp_path)
    assert len(first) == 32 and load_session_secret(tmp_path) == first
    path = tmp_path / "keys" / "web-session.key"
    assert path.stat().st_mode & 0o777 == 0o600


def test_cookies_name_who_logged_in_until_they_expire() -> None:
    secret, now = b"s" * 32, int(time.time())
    cookie = sign_session(secret, "ops.team@site", now)
    assert read_session(secret, cookie, now + 60) == "ops.team@site"
    assert read_session(secret, cookie, now + 13 * 3600) is None  # expired
    assert read_session(secret, cookie, now - 60) is None  # from the future
    assert read_session(b"t" * 32, cookie, now) is None  # another secret
    name, issued, mac = cookie.rsplit(".", 2)
    assert read_session(secret, f"{name}.{int(issued) + 1}.{mac}", now) is None
    assert read_session(secret, "no-dots", now) is None
    bound = sign_session(secret, "ops.team@site", now, "scrypt$hash-a")
    assert read_session(secret, bound, now, stamp="scrypt$hash-a") == "ops.team@site"
    assert read_session(secret, bound, now, stamp="scrypt$hash-b") is None  # a new password
