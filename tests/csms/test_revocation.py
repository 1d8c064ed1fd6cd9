"""Registry changes made by the CLI (another process) bite in a running CSMS within a second:
a removed station, or one given a new password, is disconnected and refused; so is an operator."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION, open_client


async def v2g(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "v2g", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture
async def running(tmp_path: Path, database: str) -> AsyncIterator[CsmsApp]:
    """A CSMS on each engine; the CLI finds the same database through DATA_DIR/csms.yaml."""
    on = database if is_postgresql_url(database) else ""
    if on:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "csms.yaml").write_text(f"database: {on}\n")
    config = CsmsConfig(port=0, http_port=0, close_timeout=0.3, call_timeout=2, database=on)
    app = await start_csms(tmp_path / "data", config, serve_web=True)
    await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    yield app
    await app.stop()


async def wait_closed(ws: object, began: float, limit: float) -> tuple[int | None, float]:
    try:
        await asyncio.wait_for(ws.wait_closed(), limit)  # type: ignore[attr-defined]
    except TimeoutError:
        return None, time.monotonic() - began
    return ws.close_code, time.monotonic() - began  # type: ignore[attr-defined]


async def refused(app: CsmsApp, password: str) -> bool:
    try:
        client = await open_client(app, password=password)
    except InvalidStatus as exc:
        return exc.response.status_code == 401
    await client.ws.close()
    return False


async def test_a_removed_station_is_disconnected_and_refused_within_a_second(
    running: CsmsApp,
) -> None:
    station = await open_client(running)
    await station.call("Heartbeat", {})
    await v2g("stations", "remove", STATION, "--data-dir", str(running.data_dir))
    code, took = await wait_closed(station.ws, time.monotonic(), 1.0)
    assert code == 1008, f"still connected {took:.2f} s after the CLI removed the station"
    assert station.ws.close_reason == "registration removed"
    with pytest.raises(ConnectionClosed):
        await station.call("Heartbeat", {})
    assert await refused(running, PASSWORD)
    assert running.server.registry_watch.revoked == 1


async def test_a_new_password_disconnects_and_only_the_new_one_connects(running: CsmsApp) -> None:
    station = await open_client(running)  # the old password is now verified and cached
    await station.call("Heartbeat", {})
    data = str(running.data_dir)
    await v2g("stations", "set", STATION, "--password", "a-brand-new-one", "--data-dir", data)
    code, took = await wait_closed(station.ws, time.monotonic(), 1.0)
    assert code == 1008 and station.ws.close_reason == "password changed", took
    assert await refused(running, PASSWORD)
    again = await open_client(running, password="a-brand-new-one")
    await again.call("Heartbeat", {})
    await again.ws.close()


async def test_other_stations_stay_connected(running: CsmsApp) -> None:
    await running.store.add_station("CS-OTHER", hash_password("other-pass"), "t")
    other = await open_client(running, "CS-OTHER", "other-pass")
    station = await open_client(running)
    await v2g("stations", "remove", STATION, "--data-dir", str(running.data_dir))
    code, _ = await wait_closed(station.ws, time.monotonic(), 1.0)
    assert code == 1008
    await asyncio.sleep(0.5)  # another look of the watch
    assert (await other.call("Heartbeat", {}))[0] == 3


async def test_a_removed_operator_is_refused_on_the_next_request(running: CsmsApp) -> None:
    data = str(running.data_dir)
    await v2g("operators", "add", "carol", "--password", "carol-pass", "--data-dir", data)
    assert running.web is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.web.port}") as http:
        assert (await http.get("/api/stations", auth=("carol", "carol-pass"))).status_code == 200
        login = await http.post("/login", data={"name": "carol", "password": "carol-pass"})
        assert login.status_code in (200, 303) and http.cookies
        assert (await http.get("/api/stations", auth=("carol", "carol-pass"))).status_code == 200
        await v2g("operators", "remove", "carol", "--data-dir", data)
        assert (await http.get("/api/stations", auth=("carol", "carol-pass"))).status_code == 401
        page = await http.get("/stations")  # the session cookie of a removed operator
        assert page.status_code in (303, 401) and "carol" not in page.text


async def test_a_new_operator_password_ends_the_old_dashboard_sessions(running: CsmsApp) -> None:
    data = str(running.data_dir)
    await v2g("operators", "add", "dave", "--password", "dave-pass-1", "--data-dir", data)
    assert running.web is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.web.port}") as http:
        login = await http.post("/login", data={"name": "dave", "password": "dave-pass-1"})
        assert login.status_code == 303
        assert (await http.get("/stations")).status_code == 200
        await v2g("operators", "passwd", "dave", "--password", "dave-pass-2", "--data-dir", data)
        assert (await http.get("/stations")).status_code == 401  # the old session is over
        assert (await http.get("/api/stations", auth=("dave", "dave-pass-1"))).status_code == 401
        assert (await http.get("/api/stations", auth=("dave", "dave-pass-2"))).status_code == 200
        again = await http.post("/login", data={"name": "dave", "password": "dave-pass-2"})
        assert again.status_code == 303 and (await http.get("/stations")).status_code == 200
