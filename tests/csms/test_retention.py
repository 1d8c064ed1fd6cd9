"""What a station reports outside its transactions is kept up to a number per station
(``keep_<kind>``): past it the oldest go in the same unit of work, counted in
``v2g_store_pruned_total{kind}`` and logged once per station and hour.

A real CSMS (SQLite file, or PostgreSQL) and stations over real websockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from csms.store.retention import (
    CHARGING_NEEDS,
    CONNECTION_LOG,
    METER_VALUES,
    REPORTS,
    SECURITY_EVENTS,
    STATION_EVENTS,
    Kind,
)
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import BOOT, PASSWORD, STATION, open_client

OTHER = "CS-TEST-2"
KEEP = 5


@pytest.fixture
async def app(tmp_path: Path, database: str) -> AsyncIterator[CsmsApp]:
    on = database if is_postgresql_url(database) else ""
    config = CsmsConfig(
        port=0,
        http_port=0,
        close_timeout=0.3,
        call_timeout=5,
        database=on,
        keep_station_events=KEEP,
        keep_meter_values=KEEP,
        keep_security_events=KEEP,
        keep_reports=KEEP,
        keep_charging_needs=KEEP,
        keep_connection_log=KEEP,
        max_connectors_per_station=KEEP,
    )
    csms = await start_csms(tmp_path / "data", config, serve_web=True)
    for station in (STATION, OTHER):
        await csms.store.add_station(station, hash_password(PASSWORD), format_timestamp(utc_now()))
    await OperatorRegistry(csms.store).add("ada", "auditor-pw", "auditor", "t")
    yield csms
    await csms.stop()


async def stored(app: CsmsApp, kind: Kind, station: str = STATION) -> int:
    row = await app.store.fetchone(kind.count_sql(), (station,))
    return int(row[0])


async def pruned_metric(app: CsmsApp, kind: Kind | str) -> int:
    assert app.web is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
        text = (await http.get("/metrics", auth=("ada", "auditor-pw"))).text
    name = kind if isinstance(kind, str) else kind.name
    prefix = f'v2g_store_pruned_total{{kind="{name}"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return int(line.removeprefix(prefix))


def pruning_logs(caplog: pytest.LogCaptureFixture, station: str, kind: Kind) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "csms.pruning" and r.getMessage().startswith(f"{station}: {kind.name} ")
    ]


def notify_event(n: int) -> dict[str, object]:
    return {
        "generatedAt": "2026-11-25T10:00:00.000Z",
        "seqNo": 0,
        "eventData": [
            {
                "eventId": n,
                "timestamp": "2026-11-25T10:00:00.000Z",
                "trigger": "Delta",
                "actualValue": str(n),
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector"},
                "variable": {"name": "Problem"},
            }
        ],
    }


async def test_station_events_past_the_cap_leave_exactly_the_newest(
    app: CsmsApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="csms.pruning")
    client = await open_client(app)
    other = await open_client(app, OTHER)
    try:
        assert (await other.call("NotifyEvent", notify_event(99)))[0] == 3
        for n in range(KEEP + 7):
            answer = await client.call("NotifyEvent", notify_event(n))
            assert answer[0] == 3, answer
    finally:
        await client.ws.close()
        await other.ws.close()
    assert await stored(app, STATION_EVENTS) == KEEP
    rows = await app.store.fetchall(
        "SELECT summary FROM station_events WHERE station_id = ? ORDER BY id", (STATION,)
    )
    assert [r[0].rsplit("=", 1)[1] for r in rows] == [str(n) for n in range(7, KEEP + 7)]
    assert await stored(app, STATION_EVENTS, OTHER) == 1  # another station's rows stay
    assert await pruned_metric(app, STATION_EVENTS) == 7
    assert len(pruning_logs(caplog, STATION, STATION_EVENTS)) == 1  # once, not seven times


def meter_values_201(n: int) -> dict[str, object]:
    return {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": f"2026-11-25T10:{n:02d}:00.000Z",
                "sampledValue": [
                    {"value": 1000 + n, "measurand": "Energy.Active.Import.Register"},
                    {"value": 7000, "measurand": "Power.Active.Import"},
                ],
            }
        ],
    }


def meter_values_16(n: int) -> dict[str, object]:
    return {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": f"2026-11-25T10:{n:02d}:00Z",
                "sampledValue": [
                    {"value": str(1000 + n), "measurand": "Energy.Active.Import.Register"},
                    {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    }


@pytest.mark.parametrize("version", ["ocpp2.0.1", "ocpp2.1", "ocpp1.6"])
async def test_meter_values_outside_transactions_past_the_cap_leave_exactly_the_newest(
    app: CsmsApp, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    caplog.set_level(logging.WARNING, logger="csms.pruning")
    payload = meter_values_16 if version == "ocpp1.6" else meter_values_201
    client = await open_client(app, subprotocols=[version])
    try:
        for n in range(8):  # 16 samples, two per message
            answer = await client.call("MeterValues", payload(n))
            assert answer[0] == 3, answer
    finally:
        await client.ws.close()
    assert await stored(app, METER_VALUES) == KEEP
    rows = await app.store.fetchall(
        "SELECT value FROM meter_samples WHERE station_id = ? AND transaction_id IS NULL"
        " AND measurand = 'Energy.Active.Import.Register' ORDER BY id",
        (STATION,),
    )
    assert [r[0] for r in rows] == [1006, 1007]  # the newest five: 5's power, 6's and 7's pairs
    assert await pruned_metric(app, METER_VALUES) == 16 - KEEP
    assert len(pruning_logs(caplog, STATION, METER_VALUES)) == 1


async def test_a_transaction_s_samples_are_not_counted_against_the_cap(app: CsmsApp) -> None:
    # samples of a transaction are bounded by max_samples_per_transaction instead
    await app.store.execute_write(
        "INSERT INTO meter_samples (station_id, transaction_id, evse_id, timestamp, measurand,"
        " value, unit) VALUES (?, 'tx-1', 1, '2026-11-25T09:00:00Z', 'Power.Active.Import',"
        " 1, 'W')",
        (STATION,),
    )
    client = await open_client(app)
    try:
        for n in range(6):
            await client.call("MeterValues", meter_values_201(n))
    finally:
        await client.ws.close()
    assert await stored(app, METER_VALUES) == KEEP
    row = await app.store.fetchone(
        "SELECT COUNT(*) FROM meter_samples WHERE transaction_id = 'tx-1'"
    )
    assert row[0] == 1


async def test_boot_still_answers_after_pruning(app: CsmsApp) -> None:
    client = await open_client(app)
    try:
        for n in range(KEEP + 1):
            await client.call("NotifyEvent", notify_event(n))
        answer = await client.call("BootNotification", BOOT)
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
    finally:
        await client.ws.close()


NOW = "2026-11-25T10:00:00.000Z"
Payload = Callable[[int], dict[str, object]]
REPORTED: list[tuple[Kind, str, Payload]] = [
    (
        SECURITY_EVENTS,
        "SecurityEventNotification",
        lambda n: {"type": f"Tamper{n}", "timestamp": NOW},
    ),
    (
        REPORTS,
        "NotifyReport",
        lambda n: {"requestId": n, "generatedAt": NOW, "seqNo": 0, "tbc": False},
    ),
    (
        CHARGING_NEEDS,
        "NotifyEVChargingNeeds",
        lambda n: {"evseId": 1, "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}},
    ),
]


@pytest.mark.parametrize(
    ("kind", "action", "payload"), REPORTED, ids=[k.name for k, _, _ in REPORTED]
)
async def test_reports_past_the_cap_leave_exactly_the_newest(
    app: CsmsApp, caplog: pytest.LogCaptureFixture, kind: Kind, action: str, payload: Payload
) -> None:
    caplog.set_level(logging.WARNING, logger="csms.pruning")
    client = await open_client(app)
    other = await open_client(app, OTHER)
    try:
        assert (await other.call(action, payload(99)))[0] == 3
        for n in range(KEEP + 4):
            answer = await client.call(action, payload(n))
            assert answer[0] == 3, answer
    finally:
        await client.ws.close()
        await other.ws.close()
    assert await stored(app, kind) == KEEP
    assert await stored(app, kind, OTHER) == 1
    assert await pruned_metric(app, kind) == 4
    assert len(pruning_logs(caplog, STATION, kind)) == 1


async def test_the_connection_log_keeps_the_newest_entries(app: CsmsApp) -> None:
    for _ in range(4):  # connected + disconnected each: 8 entries
        client = await open_client(app)
        for _ in range(200):  # registered just after the handshake
            if STATION in app.server.connections:
                break
            await asyncio.sleep(0.01)
        await client.ws.close()
        for _ in range(200):
            if STATION not in app.server.connections:
                break
            await asyncio.sleep(0.01)
    for _ in range(200):  # the last "disconnected" is written just after the close
        if await pruned_metric(app, CONNECTION_LOG) == 3:
            break
        await asyncio.sleep(0.02)
    assert await stored(app, CONNECTION_LOG) == KEEP
    assert await pruned_metric(app, CONNECTION_LOG) == 3
    last = await app.store.fetchone(
        "SELECT event FROM connections_log WHERE station_id = ? ORDER BY id DESC LIMIT 1",
        (STATION,),
    )
    assert last[0] == "disconnected"


def status_201(n: int) -> dict[str, object]:
    return {"timestamp": NOW, "connectorStatus": "Available", "evseId": n, "connectorId": 1}


def status_16(n: int) -> dict[str, object]:
    return {"connectorId": n, "errorCode": "NoError", "status": "Available"}


@pytest.mark.parametrize("version", ["ocpp2.0.1", "ocpp1.6"])
async def test_connectors_past_the_cap_are_not_stored(
    app: CsmsApp, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    caplog.set_level(logging.WARNING, logger="csms.pruning")
    payload = status_16 if version == "ocpp1.6" else status_201
    client = await open_client(app, subprotocols=[version])
    try:
        for n in range(1, KEEP + 4):  # three connectors too many
            answer = await client.call("StatusNotification", payload(n))
            assert answer[0] == 3, answer
        # a connector already kept still gets its new status
        await client.call(
            "StatusNotification",
            {**payload(1), "status": "Charging"}
            if version == "ocpp1.6"
            else {**payload(1), "connectorStatus": "Occupied"},
        )
        statuses = await app.store.connector_statuses(STATION)
    finally:
        await client.ws.close()
    assert sorted(e for e, _ in statuses) == list(range(1, KEEP + 1))
    assert statuses[(1, 1)] in ("Charging", "Occupied")
    assert await pruned_metric(app, "connector_status") == 3
    logs = [
        r.getMessage() for r in caplog.records if "max_connectors_per_station" in r.getMessage()
    ]
    assert len(logs) == 1 and logs[0].startswith(f"{STATION}: connector_status past"), logs
