"""Fixtures: a real CSMS on 127.0.0.1:0 with a SQLite file (or PostgreSQL), and a raw OCPP-J
test client."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from csms.timeutil import format_timestamp, utc_now

STATION = "CS-TEST-1"
PASSWORD = "correct horse battery"


def auth_header(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def csms_database() -> str:
    """The CSMS's database: its data directory's SQLite file. A test module that overrides
    this with the ``database`` fixture runs on both engines."""
    return ""


@pytest.fixture
async def csms(tmp_path: Path, csms_database: str) -> AsyncIterator[CsmsApp]:
    config = CsmsConfig(
        port=0,
        ping_interval=0.3,
        ping_timeout=0.3,
        close_timeout=0.3,
        call_timeout=5,
        database=csms_database if is_postgresql_url(csms_database) else "",
        # raw test stations read the CSMS's frames in order: no report request after boot
        # (tests/csms/test_evse_discovery.py turns it on)
        evse_discovery=False,
    )
    app = await start_csms(tmp_path / "data", config)
    await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    yield app
    await app.stop()


class RawClient:
    """Sends frames as given and reads the answers: for malformed-input and protocol tests."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def recv_json(self, timeout: float = 5) -> Any:
        import asyncio

        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        self._ids += 1
        message_id = f"m{self._ids}"
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        answer = await self.recv_json()
        assert answer[1] == message_id
        return answer


def url(app: CsmsApp, station_id: str = STATION, prefix: str = "/ocpp/") -> str:
    return f"ws://127.0.0.1:{app.port}{prefix}{station_id}"


async def open_client(
    app: CsmsApp,
    station_id: str = STATION,
    password: str = PASSWORD,
    subprotocols: list[str] | None = None,
) -> RawClient:
    ws = await connect(
        url(app, station_id),
        subprotocols=subprotocols or ["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(station_id, password),
        open_timeout=5,
    )
    return RawClient(ws)


BOOT = {
    "chargingStation": {"model": "TestModel", "vendorName": "TestVendor"},
    "reason": "PowerUp",
}
