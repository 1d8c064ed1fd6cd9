"""Station-initiated reports of a V2X station are accepted and stored, bounded per station,
and shown by ``GET /api/stations/{id}/events`` and ``v2g stations events``.

The stations are the ``ocpp`` library's own v21 and v201 ChargePoints over a real websocket:
the library validates every request and answer against the official schemas.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from ocpp.v21 import ChargePoint as ChargePoint21
from ocpp.v21 import call as call21
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from csms.app import CsmsApp, start_csms
from csms.cli_stations import stations_group
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from csms.store.station_events import StationEventsStore
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION
from tests.csms.library_station import library_station

NOW = "2026-11-25T10:00:00.000Z"
PROFILE = {
    "id": 5,
    "stack_level": 0,
    "charging_profile_purpose": "TxDefaultProfile",
    "charging_profile_kind": "Absolute",
    "charging_schedule": [
        {
            "id": 1,
            "start_schedule": NOW,
            "charging_rate_unit": "W",
            "charging_schedule_period": [{"start_period": 0, "limit": 7000}],
        }
    ],
}
EVENT = {
    "event_id": 1,
    "timestamp": NOW,
    "trigger": "Delta",
    "actual_value": "true",
    "event_notification_type": "HardWiredNotification",
    "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
    "variable": {"name": "Problem"},
}
SCHEDULE = {
    "id": 1,
    "charging_rate_unit": "W",
    "charging_schedule_period": [{"start_period": 0, "limit": 11000}],
}


def common_calls(call: Any) -> list[tuple[str, Any, str]]:
    """(action, request, a part of the summary) for the messages 2.0.1 and 2.1 share."""
    return [
        (
            "NotifyEvent",
            call.NotifyEvent(generated_at=NOW, seq_no=0, event_data=[EVENT]),
            "Connector[1].Problem=true",
        ),
        (
            "NotifyChargingLimit",
            call.NotifyChargingLimit(
                charging_limit={"charging_limit_source": "EMS", "is_grid_critical": True},
                evse_id=1,
            ),
            "limit from EMS grid-critical",
        ),
        (
            "ClearedChargingLimit",
            call.ClearedChargingLimit(charging_limit_source="EMS", evse_id=1),
            "EMS cleared",
        ),
        (
            "ReportChargingProfiles",
            call.ReportChargingProfiles(
                request_id=4, charging_limit_source="CSO", evse_id=1, charging_profile=[PROFILE]
            ),
            "request 4: 1 profile(s) from CSO",
        ),
        (
            "NotifyEVChargingSchedule",
            call.NotifyEVChargingSchedule(time_base=NOW, evse_id=1, charging_schedule=SCHEDULE),
            "1 period(s)",
        ),
    ]


V21_ONLY = [
    (
        "NotifyPriorityCharging",
        call21.NotifyPriorityCharging(transaction_id="tx-9", activated=True),
        "activated for transaction tx-9",
    ),
    (
        "NotifySettlement",
        call21.NotifySettlement(
            psp_ref="psp-1", status="Settled", settlement_amount=12.5, settlement_time=NOW
        ),
        "payment psp-1 Settled: 12.5",
    ),
    (
        "NotifyDERAlarm",
        call21.NotifyDERAlarm(
            control_type="FreqDroop", timestamp=NOW, grid_event_fault="OverFrequency"
        ),
        "DER alarm FreqDroop OverFrequency",
    ),
    (
        "NotifyDERStartStop",
        call21.NotifyDERStartStop(control_id="ctl-1", started=True, timestamp=NOW),
        "DER control ctl-1 started",
    ),
    (
        "ReportDERControl",
        call21.ReportDERControl(request_id=8),
        "request 8",
    ),
]


@pytest.fixture
async def app(tmp_path: Path, database: str) -> Any:
    on = database if is_postgresql_url(database) else ""
    if on:  # the CLI finds the same database through DATA_DIR/csms.yaml
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "csms.yaml").write_text(f"database: {on}\n")
    config = CsmsConfig(port=0, http_port=0, close_timeout=0.3, call_timeout=5, database=on)
    csms = await start_csms(tmp_path / "data", config, serve_web=True)
    await csms.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    await OperatorRegistry(csms.store).add("ada", "auditor-pw", "auditor", "t")
    yield csms
    await csms.stop()


async def _send_all(cp: Any, calls: list[tuple[str, Any, str]]) -> list[Any]:
    return [await cp.call(request, suppress=False) for _, request, _ in calls]


async def test_a_21_station_reports_are_accepted_stored_and_listed(
    app: CsmsApp, tmp_path: Path
) -> None:
    calls = common_calls(call21) + V21_ONLY
    async with library_station(app, ChargePoint21, ["ocpp2.1"], "ocpp2.1") as cp:
        answers = await _send_all(cp, calls)
    schedule_answer = answers[[a for a, _, _ in calls].index("NotifyEVChargingSchedule")]
    assert schedule_answer.status == "Accepted"
    assert app.web is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
        listed = await http.get(f"/api/stations/{STATION}/events", auth=("ada", "auditor-pw"))
        assert listed.status_code == 200, listed.text
        rows = listed.json()
        assert [r["action"] for r in rows] == [a for a, _, _ in reversed(calls)]
        for row, (_, _, summary) in zip(reversed(rows), calls, strict=True):
            assert summary in row["summary"], row
        event = next(r for r in rows if r["action"] == "NotifyEvent")
        assert event["payload"]["eventData"][0]["variable"] == {"name": "Problem"}
        assert next(r for r in rows if r["action"] == "NotifyChargingLimit")["evse_id"] == 1
        only = await http.get(
            f"/api/stations/{STATION}/events",
            params={"action": "NotifyDERAlarm", "limit": 5},
            auth=("ada", "auditor-pw"),
        )
        assert [r["action"] for r in only.json()] == ["NotifyDERAlarm"]
        unknown = await http.get("/api/stations/NOPE/events", auth=("ada", "auditor-pw"))
        assert unknown.status_code == 404
        anonymous = await http.get(f"/api/stations/{STATION}/events")
        assert anonymous.status_code == 401

    data_dir = str(tmp_path / "data")

    def cli(*args: str) -> Any:  # the CLI runs its own event loop: off this one
        return asyncio.to_thread(
            CliRunner().invoke, stations_group, [*args, "--data-dir", data_dir]
        )

    shown = await cli("events", STATION)
    assert shown.exit_code == 0, shown.output
    assert "NotifyDERStartStop" in shown.output and "DER control ctl-1 started" in shown.output
    as_json = await cli("events", STATION, "--action", "NotifySettlement", "--json")
    assert as_json.exit_code == 0, as_json.output
    (line,) = as_json.output.splitlines()
    assert json.loads(line)["payload"]["pspRef"] == "psp-1"
    missing = await cli("events", "NOPE")
    assert missing.exit_code == 1 and "not registered" in missing.output


async def test_a_201_station_reports_are_accepted_and_stored(
    app: CsmsApp,
) -> None:
    calls = common_calls(call201)
    async with library_station(app, ChargePoint201, ["ocpp2.0.1"], "ocpp2.0.1") as cp:
        await _send_all(cp, calls)
    stored = await StationEventsStore(app.store).latest(STATION)
    assert [e.action for e in stored] == [a for a, _, _ in reversed(calls)]


async def test_the_events_kept_per_station_are_bounded(app: CsmsApp) -> None:
    events = StationEventsStore(app.store, keep=3)
    for n in range(7):
        await events.record(STATION, "NotifyEvent", {"n": n}, summary=f"#{n}", received_at=NOW)
    await events.record("OTHER", "NotifyEvent", {"n": 99}, summary="other", received_at=NOW)
    kept = await events.latest(STATION, limit=100)
    assert [e.payload["n"] for e in kept] == [6, 5, 4]
    assert [e.summary for e in await events.latest("OTHER")] == ["other"]
