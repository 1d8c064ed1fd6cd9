"""Connection handling over real sockets: auth, subprotocols, replacement, dead peers."""

from __future__ import annotations

import asyncio
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CsmsApp
from tests.csms.conftest import BOOT, PASSWORD, STATION, auth_header, open_client, url


async def status_of_refused(coro: object) -> int:
    with pytest.raises(InvalidStatus) as info:
        await coro  # type: ignore[misc]
    return int(info.value.response.status_code)


async def test_boot_notification_is_accepted_with_millisecond_utc_time(csms: CsmsApp) -> None:
    client = await open_client(csms)
    answer = await client.call("BootNotification", BOOT)
    assert answer[0] == 3
    result = answer[2]
    assert result["status"] == "Accepted"
    assert result["interval"] == csms.server.services.config.heartbeat_interval
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result["currentTime"])
    station = await csms.store.get_station(STATION)
    assert station is not None and station.vendor == "TestVendor"
    await client.ws.close()


async def test_bare_station_path_is_accepted(csms: CsmsApp) -> None:
    async with connect(
        url(csms, prefix="/"),
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"


@pytest.mark.parametrize(
    ("station_id", "password", "expected"),
    [
        (STATION, "wrong password", 401),
        ("CS-UNKNOWN", PASSWORD, 401),
    ],
)
async def test_bad_credentials_are_refused_before_anything_is_stored(
    csms: CsmsApp, station_id: str, password: str, expected: int
) -> None:
    status = await status_of_refused(
        connect(
            url(csms, station_id),
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(station_id, password),
        )
    )
    assert status == expected
    assert await csms.store.connection_log(station_id) == []
    assert await csms.store.get_station("CS-UNKNOWN") is None


async def test_missing_credentials_are_refused(csms: CsmsApp) -> None:
    status = await status_of_refused(
        connect(url(csms), subprotocols=["ocpp2.0.1"])  # type: ignore[list-item]
    )
    assert status == 401


async def test_no_supported_subprotocol_is_refused(csms: CsmsApp) -> None:
    status = await status_of_refused(
        connect(
            url(csms),
            subprotocols=["ocpp9.9"],  # type: ignore[list-item]
            additional_headers=auth_header(STATION, PASSWORD),
        )
    )
    assert status == 400
    assert await csms.store.connection_log(STATION) == []


async def test_wrong_path_is_not_found(csms: CsmsApp) -> None:
    status = await status_of_refused(
        connect(
            f"ws://127.0.0.1:{csms.port}/a/b/c",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(STATION, PASSWORD),
        )
    )
    assert status == 404


async def test_reconnect_replaces_the_old_connection(csms: CsmsApp) -> None:
    first = await open_client(csms)
    await first.call("Heartbeat", {})
    old = csms.server.connections[STATION]
    second = await open_client(csms)
    await second.call("Heartbeat", {})
    assert csms.server.connections[STATION] is not old
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(first.ws.recv(), 5)
    # the new connection keeps working after the old one has gone
    answer = await second.call("Heartbeat", {})
    assert answer[0] == 3
    events = [event for event, _ in await csms.store.connection_log(STATION)]
    assert events.count("connected") == 2 and "replaced" in events
    await second.ws.close()


async def test_dead_connection_is_detected_and_freed(csms: CsmsApp) -> None:
    """A peer that stops answering pings (a half-open socket) is dropped from the registry."""
    reader, writer = await asyncio.open_connection("127.0.0.1", csms.port)
    headers = auth_header(STATION, PASSWORD)
    request = (
        f"GET /ocpp/{STATION} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n"
        f"Authorization: {headers['Authorization']}\r\n\r\n"
    )
    writer.write(request.encode())
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert b"101" in status_line
    for _ in range(50):
        if STATION in csms.server.connections:
            break
        await asyncio.sleep(0.05)
    assert STATION in csms.server.connections
    # never read, never pong: the server's keepalive gives up after ping_interval + ping_timeout
    for _ in range(100):
        if STATION not in csms.server.connections:
            break
        await asyncio.sleep(0.05)
    assert STATION not in csms.server.connections
    writer.close()


async def test_last_heard_is_the_last_message_of_any_kind_and_links_are_logged(
    csms: CsmsApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="csms")
    client = await open_client(csms)
    assert (await client.call("BootNotification", BOOT))[2]["status"] == "Accepted"
    await asyncio.sleep(0.05)
    status = {
        "timestamp": "2026-11-25T10:00:00.000Z",
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    }
    assert (await client.call("StatusNotification", status))[0] == 3
    await client.ws.close()
    for _ in range(50):  # the server notices the close
        if STATION not in csms.server.connections:
            break
        await asyncio.sleep(0.02)
    station = await csms.store.get_station(STATION)
    assert station is not None and station.last_boot_at and station.last_seen_at
    assert station.last_seen_at > station.last_boot_at  # the later StatusNotification counts
    lines = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert any(line.startswith(f"{STATION}: connected (ocpp2.0.1)") for line in lines), lines
    assert any(line.startswith(f"{STATION}: disconnected") for line in lines), lines
