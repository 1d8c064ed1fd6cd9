"""Deferred hashing: ``v2g stations import`` stores a pending marker and the password's MAC,
no scrypt; the CSMS hashes an imported password in the background after its first handshake.

Real parts: the command line (in this process, so its scrypt calls can be counted), a real
SQLite file or PostgreSQL database, a real websocket server and client.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import csms.cli_stations  # noqa: F401 - registers ``stations import``
from csms import pending_hash
from csms.app import CsmsApp, start_csms
from csms.cli import stations_group
from csms.config import CsmsConfig, load_config
from csms.credentials import CREDENTIAL_KEY, is_pending, load_credential_key, password_mac
from csms.errors import ConfigError
from csms.model import StationRecord
from csms.operators import OperatorRegistry
from csms.passwords import hash_password, verify_password
from csms.registry_watch import registry_changes
from csms.store.engine import is_postgresql_url
from csms.store.sqlite import CsmsStore
from tests.csms.conftest import open_client
from tests.csms.test_credentials import status_of


def password(n: int) -> str:
    return f"imported-password-{n:05d}"


def station(n: int) -> str:
    return f"CS-IMP-{n:05d}"


@pytest.fixture
def scrypts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every scrypt run in this process (the import's and the CSMS's)."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def data_dir_on(tmp_path: Path, database: str) -> tuple[Path, str]:
    """A data directory whose csms.yaml names ``database`` when it is PostgreSQL."""
    data = tmp_path / "data"
    on = database if is_postgresql_url(database) else ""
    if on:
        data.mkdir()
        (data / "csms.yaml").write_text(f"database: {on}\n")
    return data, on


def import_fleet(tmp_path: Path, data: Path, count: int, *extra: str) -> str:
    csv_file = tmp_path / f"fleet-{count}.csv"
    rows = "".join(f"{station(n)},{password(n)}\n" for n in range(count))
    csv_file.write_text("station_id,password\n" + rows)
    args = ["import", str(csv_file), "--data-dir", str(data), *extra]
    result = CliRunner().invoke(stations_group, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def read_registry(data: Path, database: str) -> dict[str, StationRecord]:
    store = await CsmsStore.open_data_dir(data, database or None)
    try:
        return {s.station_id: s for s in await store.list_stations()}
    finally:
        await store.close()


def registry(data: Path, database: str) -> dict[str, StationRecord]:
    return asyncio.run(read_registry(data, database))


def test_import_stores_pending_markers_and_macs_without_a_scrypt(
    tmp_path: Path, database: str, scrypts: list[int]
) -> None:
    data, on = data_dir_on(tmp_path, database)
    output = import_fleet(tmp_path, data, 40)
    assert scrypts == []  # not one password hashed
    assert "40 stations imported" in output and "prepared 40/40" in output
    stations = registry(data, on)
    assert sorted(stations) == [station(n) for n in range(40)]
    key = load_credential_key(data)
    markers = set()
    for n in range(40):
        record = stations[station(n)]
        assert is_pending(record.password_hash)
        markers.add(record.password_hash)
        expected = password_mac(key, station(n), record.password_hash, password(n))
        assert record.password_mac == expected
    assert len(markers) == 40  # a marker of its own per row: a MAC binds to that row only
    listed = CliRunner().invoke(stations_group, ["list", "--data-dir", str(data)])
    assert listed.exit_code == 0 and listed.output.count(" pending ") == 40
    exported = CliRunner().invoke(stations_group, ["export", "--data-dir", str(data)])
    assert exported.exit_code == 0 and "pending" not in exported.output
    assert exported.output.splitlines()[1] == f"{station(0)},,,strict,"
    again = CliRunner().invoke(
        stations_group, ["import", str(tmp_path / "fleet-40.csv"), "--data-dir", str(data)]
    )  # on either engine the ids already registered are found before anything is written
    assert again.exit_code == 1 and "line 2: station 'CS-IMP-00000' is already registered" in (
        again.output
    )


def test_hash_now_hashes_every_password_at_import(tmp_path: Path, scrypts: list[int]) -> None:
    data = tmp_path / "data"
    output = import_fleet(tmp_path, data, 3, "--hash-now")
    assert len(scrypts) == 3 and "hashed 3/3" in output
    stations = registry(data, "")
    assert verify_password(password(2), stations[station(2)].password_hash)
    listed = CliRunner().invoke(stations_group, ["list", "--data-dir", str(data)])
    assert listed.output.count(" hashed ") == 3


async def wait_for(condition: Callable[[], Any], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        assert time.monotonic() < deadline, f"not within {limit} s: {what}"
        await asyncio.sleep(0.05)


async def start(data: Path, on: str, per_s: float = 50.0) -> CsmsApp:
    config = CsmsConfig(port=0, close_timeout=0.3, database=on, pending_hash_per_s=per_s)
    return await start_csms(data, config)


def test_an_imported_station_connects_then_its_hash_is_made_in_the_background(
    tmp_path: Path, database: str
) -> None:
    data, on = data_dir_on(tmp_path, database)
    import_fleet(tmp_path, data, 2)

    async def run() -> None:
        app = await start(data, on)
        try:
            checker, hasher = app.server.credentials, app.server.pending_hashes
            client = await open_client(app, station(0), password(0))  # a real websocket
            await client.call("Heartbeat", {})
            assert checker.hashes == 0 and checker.cache_hits == 1  # one HMAC, no scrypt

            async def hashed() -> bool:
                record = await app.store.get_station(station(0))
                return record is not None and not is_pending(record.password_hash)

            await wait_for(hashed, 30, "the background hash stored")
            record = await app.store.get_station(station(0))
            assert record is not None and record.password_hash.startswith("scrypt$")
            assert await asyncio.to_thread(verify_password, password(0), record.password_hash)
            assert not await asyncio.to_thread(verify_password, password(1), record.password_hash)
            assert checker.is_remembered(record, password(0))  # a fresh MAC for the hash
            assert hasher.replaced == 1 and hasher.hashed == 1
            assert hasher.niced is True  # the hashing thread runs at the lowest priority
            other = await app.store.get_station(station(1))
            assert other is not None and is_pending(other.password_hash)  # never connected
            # The hash replacing the marker is no password change: a registry re-read (a
            # station added) leaves the connection open.
            await app.store.add_station("CS-NEW", hash_password("new-password"), "t")
            await asyncio.sleep(4 * app.server.registry_watch.interval)
            assert app.server.registry_watch.revoked == 0
            await client.call("Heartbeat", {})
            await client.ws.close()
            # The next handshake matches the new MAC: still no scrypt
            assert await status_of(app, station(0), password(0), "127.0.0.1") == 101
            assert checker.hashes == 0 and hasher.hashed == 1
        finally:
            await app.stop()

    asyncio.run(run())


def test_a_wrong_password_for_a_pending_station_costs_one_scrypt_like_an_unknown_id(
    tmp_path: Path, database: str
) -> None:
    data, on = data_dir_on(tmp_path, database)
    import_fleet(tmp_path, data, 1)

    async def run() -> None:
        app = await start(data, on)
        try:
            checker = app.server.credentials
            assert await status_of(app, station(0), "not-the-password", "127.0.0.2") == 401
            assert checker.hashes == 1  # against the dummy hash, as for an unknown id
            assert await status_of(app, "CS-NOBODY", "not-the-password", "127.0.0.3") == 401
            assert checker.hashes == 2
            assert checker.unverifiable == 0  # a wrong password, not a key problem
            assert app.server.pending_hashes.hashed == 0  # nothing queued for a wrong one
        finally:
            await app.stop()
        record = (await read_registry(data, on))[station(0)]
        assert is_pending(record.password_hash)

    asyncio.run(run())


def test_a_pending_station_under_another_credential_key_is_refused_with_one_log_line(
    tmp_path: Path, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, on = data_dir_on(tmp_path, database)
    import_fleet(tmp_path, data, 1)
    (data / CREDENTIAL_KEY).unlink()  # lost: the CSMS makes a new one

    async def run() -> None:
        app = await start(data, on)
        try:
            status = await status_of(app, station(0), password(0), "127.0.0.1")
            assert status == 401
            assert app.server.credentials.hashes == 1  # the same cost as any refusal
            assert app.server.credentials.unverifiable == 1
        finally:
            await app.stop()

    with caplog.at_level(logging.WARNING, logger="csms.credentials"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if "auth_unverifiable" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"security: auth_unverifiable path=ocpp station={station(0)}")
    assert "why=key_differs" in lines[0] and "imported without a hash" in lines[0]
    assert "does not match" in lines[0]


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The background hash waits until the test opens the gate."""
    opened = threading.Event()

    def gated(text: str) -> str:
        opened.wait(30)
        return hash_password(text)

    monkeypatch.setattr(pending_hash, "hash_password", gated)
    yield opened
    opened.set()


def test_a_password_changed_while_the_hash_is_pending_wins(
    tmp_path: Path, database: str, gate: threading.Event
) -> None:
    data, on = data_dir_on(tmp_path, database)
    import_fleet(tmp_path, data, 1)

    async def run() -> None:
        app = await start(data, on)
        try:
            hasher = app.server.pending_hashes
            assert await status_of(app, station(0), password(0), "127.0.0.1") == 101
            assert hasher.waiting == 1
            # the operator gives the station a new password while its old one is hashed
            new = hash_password("the-new-password")
            key = load_credential_key(data)
            mac = password_mac(key, station(0), new, "the-new-password")
            await app.store.update_station_secret(station(0), new, None, password_mac=mac)
            gate.set()

            async def done() -> bool:
                return hasher.waiting == 0

            await wait_for(done, 30, "the background hash handled")
            assert hasher.hashed == 1 and hasher.superseded == 1 and hasher.replaced == 0
            record = await app.store.get_station(station(0))
            assert record is not None and record.password_hash == new
            assert record.password_mac == mac
            assert await status_of(app, station(0), password(0), "127.0.0.2") == 401
            assert await status_of(app, station(0), "the-new-password", "127.0.0.3") == 101
        finally:
            await app.stop()

    asyncio.run(run())


def test_a_marker_replaced_by_its_hash_is_no_registry_change() -> None:
    before, now = {"A": "pending$1$k", "B": "scrypt$b"}, {"A": "scrypt$a", "B": "scrypt$c"}
    assert registry_changes(before, now) == {"A": "password changed", "B": "password changed"}
    same = {"A": ("pending$1$k", "scrypt$a")}
    assert registry_changes(before, now, same) == {"B": "password changed"}
    assert registry_changes(now, before, same) == {"B": "password changed"}  # either order
    assert registry_changes(before, {"A": "scrypt$x", "B": "scrypt$b"}, same) == {
        "A": "password changed"
    }


@pytest.mark.parametrize("value", ["0", "-1", "1000", "fast"])
def test_pending_hash_per_s_is_checked(tmp_path: Path, value: str) -> None:
    config = tmp_path / "csms.yaml"
    config.write_text(f"pending_hash_per_s: {value}\n")
    with pytest.raises(ConfigError, match="'pending_hash_per_s'"):
        load_config(config)
    config.write_text("pending_hash_per_s: 0.5\n")
    assert load_config(config).pending_hash_per_s == 0.5


def test_the_stations_page_and_api_show_a_pending_hash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_fleet(tmp_path, data, 1)

    async def run() -> None:
        config = CsmsConfig(port=0, http_port=0, close_timeout=0.3)
        app = await start_csms(data, config, serve_web=True)
        try:
            assert app.web is not None
            await app.store.add_station("CS-HASHED", hash_password("hashed-pass"), "t")
            await OperatorRegistry(app.store).add("olivia", "operator-pw", "operator", "t")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
                rows = (await http.get("/api/stations", auth=("olivia", "operator-pw"))).json()
                by_id = {r["station_id"]: r for r in rows}
                assert by_id[station(0)]["password_pending"] is True
                assert by_id["CS-HASHED"]["password_pending"] is False
                metrics = (await http.get("/metrics", auth=("olivia", "operator-pw"))).text
                assert 'v2g_password_hashes_total{why="handshake"} 0' in metrics
                assert 'v2g_password_hashes_total{why="imported"} 0' in metrics
                assert "v2g_imported_passwords_waiting 0" in metrics
                await http.post("/login", data={"name": "olivia", "password": "operator-pw"})
                page = (await http.get("/stations")).text
            pending = re.search(rf'<tr id="station-{station(0)}">.*?</tr>', page, re.S)
            hashed = re.search(r'<tr id="station-CS-HASHED">.*?</tr>', page, re.S)
            assert pending is not None and "hash pending" in pending.group(0)
            assert hashed is not None and "hash pending" not in hashed.group(0)
        finally:
            await app.stop()

    asyncio.run(run())
