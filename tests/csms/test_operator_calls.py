"""Operator commands through the one generic path, end to end over real sockets.

``POST /api/stations/{id}/ocpp/{action}`` and ``v2g stations call`` against the real CSMS and
its web server: a 1.6 station on the ``ocpp`` library's ChargePoint, and the project's own 2.0.1
station simulator. Payloads are schema-checked for the station's version, charging profiles
are clamped to the bounds, status notifications are stored and listed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from csms.app import CsmsApp
from csms.cli_stations import stations_group
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import SUPPORTED
from csms.operator_calls import OPERATOR_ACTIONS
from csms.operators import OperatorRegistry
from csms.store.evse_caps import EvseCapsStore
from csms.web.deps import ReviewDeps
from csms.web.server import WebServer, start_web
from tests.csms.conftest import PASSWORD, STATION
from tests.csms.library_station import library_station

OPERATOR = ("olivia", "operator-pw")
AUDITOR = ("audrey", "auditor-pw")
SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


def test_every_operator_action_has_a_request_schema_in_its_version() -> None:
    for subprotocol, actions in OPERATOR_ACTIONS.items():
        schemas = SchemaSet(SUPPORTED[subprotocol])
        assert actions and all(schemas.knows(a) for a in actions), subprotocol


@pytest.fixture
async def web(csms: CsmsApp, tmp_path: Path) -> AsyncIterator[WebServer]:
    registry = OperatorRegistry(csms.store)
    await registry.add(*OPERATOR, "operator", "2026-01-01")
    await registry.add(*AUDITOR, "auditor", "2026-01-01")
    deps = ReviewDeps(
        store=csms.store, data_dir=tmp_path, stations=csms.stations, server=csms.server
    )
    server = await start_web(deps, "127.0.0.1", 0)
    yield server
    await server.stop()


Send = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]


@pytest.fixture
async def send(web: WebServer) -> AsyncIterator[Send]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=10) as http:

        async def post(action: str, payload: dict[str, Any]) -> httpx.Response:
            return await http.post(
                f"/api/stations/{STATION}/ocpp/{action}", json=payload, auth=OPERATOR
            )

        yield post


async def events(web: WebServer, action: str) -> list[str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        got = await http.get(
            f"/api/stations/{STATION}/events", params={"action": action}, auth=AUDITOR
        )
    assert got.status_code == 200, got.text
    return [e["summary"] for e in reversed(got.json())]


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"timed out waiting for {what}")


# -- 1.6: a station on the ``ocpp`` library ------------------------------------------------


class Station16(ChargePoint16):
    """Answers every 1.6 operator message as a real charger would, and remembers them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.config = {"HeartbeatInterval": "300", "MaxChargeRate": "7.4"}
        self.list_version = 0
        self.followups: list[asyncio.Task[Any]] = []

    def _later(self, *requests: Any) -> None:
        async def send() -> None:
            await asyncio.sleep(0.05)
            for request in requests:
                await self.call(request)

        self.followups.append(asyncio.create_task(send()))

    @on("ChangeConfiguration")
    async def on_change_configuration(self, key: str, value: str) -> Any:
        self.asked.append(("ChangeConfiguration", {"key": key, "value": value}))
        if key not in self.config:
            return result16.ChangeConfiguration(status="NotSupported")
        self.config[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @on("GetConfiguration")
    async def on_get_configuration(self, key: list[str] | None = None) -> Any:
        wanted = key or list(self.config)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": k == "MaxChargeRate", "value": self.config[k]}
                for k in wanted
                if k in self.config
            ],
            unknown_key=[k for k in wanted if k not in self.config] or None,
        )

    @on("UnlockConnector")
    async def on_unlock(self, connector_id: int) -> Any:
        return result16.UnlockConnector(status="Unlocked" if connector_id == 1 else "NotSupported")

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message == "Heartbeat":
            self._later(call16.Heartbeat())
        return result16.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")
    async def on_change_availability(self, connector_id: int, type: str) -> Any:
        return result16.ChangeAvailability(status="Accepted")

    @on("SendLocalList")
    async def on_send_local_list(self, list_version: int, update_type: str, **kw: Any) -> Any:
        self.list_version = list_version
        return result16.SendLocalList(status="Accepted")

    @on("GetLocalListVersion")
    async def on_get_local_list_version(self) -> Any:
        return result16.GetLocalListVersion(list_version=self.list_version)

    @on("ReserveNow")
    async def on_reserve_now(self, **kwargs: Any) -> Any:
        self.asked.append(("ReserveNow", kwargs))
        return result16.ReserveNow(status="Accepted")

    @on("CancelReservation")
    async def on_cancel_reservation(self, reservation_id: int) -> Any:
        return result16.CancelReservation(status="Accepted")

    @on("UpdateFirmware")
    async def on_update_firmware(self, **kwargs: Any) -> Any:
        self._later(
            *(
                call16.FirmwareStatusNotification(status=s)
                for s in ("Downloading", "Downloaded", "Installing", "Installed")
            )
        )
        return result16.UpdateFirmware()

    @on("GetDiagnostics")
    async def on_get_diagnostics(self, **kwargs: Any) -> Any:
        self._later(
            *(call16.DiagnosticsStatusNotification(status=s) for s in ("Uploading", "Uploaded"))
        )
        return result16.GetDiagnostics(file_name="diag-1.log")

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, **kwargs: Any) -> Any:
        self.asked.append(("SetChargingProfile", kwargs))
        return result16.SetChargingProfile(status="Accepted")


@pytest.fixture
async def station16(csms: CsmsApp) -> AsyncIterator[Station16]:
    async with library_station(csms, Station16, ["ocpp1.6"], "ocpp1.6") as cp:
        yield cp
        for task in cp.followups:
            task.cancel()


def max_profile_16(limit: float, unit: str = "W") -> dict[str, Any]:
    return {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": 9,
            "stackLevel": 0,
            "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": unit,
                "startSchedule": "2026-11-25T10:00:00Z",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": limit},
                    {"startPeriod": 3600, "limit": -3000},
                ],
            },
        },
    }


async def test_16_operator_messages_reach_the_station_and_come_back(
    csms: CsmsApp, web: WebServer, send: Send, station16: Station16
) -> None:
    async def ok(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        got = await send(action, payload)
        assert got.status_code == 200, (action, got.text)
        answer: dict[str, Any] = got.json()
        assert answer["action"] == action
        return answer["response"]

    assert await ok("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}) == {
        "status": "Accepted"
    }
    assert station16.config["HeartbeatInterval"] == "60"
    got = await ok("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})
    assert got["configurationKey"] == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "60"}
    ]
    assert got["unknownKey"] == ["Nope"]
    assert await ok("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert await ok("TriggerMessage", {"requestedMessage": "Heartbeat"}) == {"status": "Accepted"}
    assert await ok("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) == {
        "status": "Accepted"
    }
    local_list = {
        "listVersion": 4,
        "updateType": "Full",
        "localAuthorizationList": [{"idTag": "AA01", "idTagInfo": {"status": "Accepted"}}],
    }
    assert await ok("SendLocalList", local_list) == {"status": "Accepted"}
    assert await ok("GetLocalListVersion", {}) == {"listVersion": 4}
    reserve = {"connectorId": 1, "expiryDate": SOON, "idTag": "AA01", "reservationId": 5}
    assert await ok("ReserveNow", reserve) == {"status": "Accepted"}
    assert await ok("CancelReservation", {"reservationId": 5}) == {"status": "Accepted"}
    firmware = {"location": "https://firmware.example.com/fw-2.bin", "retrieveDate": SOON}
    assert await ok("UpdateFirmware", firmware) == {}
    assert await ok("GetDiagnostics", {"location": "ftp://logs.example.com/"}) == {
        "fileName": "diag-1.log"
    }

    # the notifications that follow are stored and listed, in order
    async def reported() -> bool:
        return (
            len(await events(web, "FirmwareStatusNotification")) == 4
            and len(await events(web, "DiagnosticsStatusNotification")) == 2
        )

    await eventually(reported, "firmware and diagnostics status notifications")
    assert await events(web, "FirmwareStatusNotification") == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert await events(web, "DiagnosticsStatusNotification") == ["Uploading", "Uploaded"]


async def test_16_profiles_are_clamped_to_the_configured_power_rating(
    csms: CsmsApp, send: Send, station16: Station16
) -> None:
    await csms.store.set_station_caps(STATION, power_key="MaxChargeRate:kW")
    got = await send("GetConfiguration", {})
    assert got.status_code == 200, got.text
    assert (await EvseCapsStore(csms.store).caps(STATION, 1)).max_power_w == 7_400

    got = await send("SetChargingProfile", max_profile_16(50_000))
    assert got.status_code == 200, got.text
    answer = got.json()
    assert answer["response"] == {"status": "Accepted"}
    assert answer["clamped"] == ["period 0: limit 50000 -> 7400 W", "period 1: limit -3000 -> 0 W"]
    (sent,) = [kw for action, kw in station16.asked if action == "SetChargingProfile"]
    periods = sent["cs_charging_profiles"]["charging_schedule"]["charging_schedule_period"]
    assert [p["limit"] for p in periods] == [7400, 0]

    # in amperes at 230 V on 3 phases: 7400 W is 10.7 A
    got = await send("SetChargingProfile", max_profile_16(32, unit="A"))
    assert (
        got.json()["request"]["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][
            0
        ]["limit"]
        == 10.7
    )

    # a TxProfile for connector 1 under an operator cap
    await csms.store.set_station_caps(STATION, max_charge_w=3_000)
    tx = max_profile_16(11_000)
    tx["connectorId"] = 1
    tx["csChargingProfiles"].update(chargingProfilePurpose="TxProfile", transactionId=7)
    got = await send("SetChargingProfile", tx)
    assert [
        p["limit"]
        for p in got.json()["request"]["csChargingProfiles"]["chargingSchedule"][
            "chargingSchedulePeriod"
        ]
    ] == [3000, 0]


async def test_bad_operator_messages_get_a_clear_error_and_nothing_is_sent(
    csms: CsmsApp, web: WebServer, send: Send, station16: Station16
) -> None:
    got = await send("GetVariables", {"getVariableData": []})
    assert got.status_code == 400
    assert "'GetVariables' is not a message an operator can send on ocpp1.6" in got.json()["detail"]
    assert "UnlockConnector" in got.json()["detail"]
    got = await send("UnlockConnector", {"connectorId": "one"})
    assert got.status_code == 400 and got.json()["detail"].startswith("UnlockConnector: ")
    got = await send("ChangeConfiguration", {"key": "HeartbeatInterval"})
    assert got.status_code == 400 and "value" in got.json()["detail"]
    assert station16.asked == []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        path = f"/api/stations/{STATION}/ocpp/UnlockConnector"
        assert (await http.post(path, json={"connectorId": 1}, auth=AUDITOR)).status_code == 403
        assert (await http.post(path, json=[1], auth=OPERATOR)).status_code == 422
        gone = "/api/stations/NOT-CONNECTED/ocpp/UnlockConnector"
        assert (await http.post(gone, json={"connectorId": 1}, auth=OPERATOR)).status_code == 409


async def test_the_cli_sends_through_the_running_csms(
    csms: CsmsApp, web: WebServer, station16: Station16
) -> None:
    runner = CliRunner()
    api = [
        "--api",
        f"http://127.0.0.1:{web.port}",
        "--user",
        OPERATOR[0],
        "--password",
        OPERATOR[1],
    ]

    def run(*args: str) -> Any:
        return runner.invoke(stations_group, ["call", *args, *api])

    done = await asyncio.to_thread(run, STATION, "UnlockConnector", '{"connectorId": 1}')
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["response"] == {"status": "Unlocked"}
    done = await asyncio.to_thread(run, STATION, "GetVariables", "{}")
    assert done.exit_code == 1 and "is not a message an operator can send on ocpp1.6" in done.output
    done = await asyncio.to_thread(run, STATION, "UnlockConnector", "{connectorId: 1}")
    assert done.exit_code == 2 and "not JSON" in done.output
    assert "Traceback" not in done.output
    closed = ["--api", "http://127.0.0.1:1", "--user", "x", "--password", "y"]
    done = await asyncio.to_thread(
        runner.invoke, stations_group, ["call", STATION, "UnlockConnector", "{}", *closed]
    )
    assert done.exit_code == 1 and "the CSMS does not answer" in done.output


# -- 2.0.1: the project's station simulator ------------------------------------------------


@pytest.fixture
async def simulator(csms: CsmsApp) -> AsyncIterator[StationRunner]:
    runner = StationRunner(
        StationConfig(
            url=f"ws://127.0.0.1:{csms.port}/ocpp",
            station_id=STATION,
            password=PASSWORD,
            sessions=0,
            exit_when_done=False,
            speed=600,
            connect_timeout=5,
            response_timeout=5,
            backoff=Backoff(wait_minimum=0.05, random_range=0.05, repeat_times=1),
        )
    )
    run = asyncio.create_task(runner.run())
    for _ in range(200):
        if STATION in csms.server.connections:
            break
        await asyncio.sleep(0.025)
    yield runner
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


async def test_201_operator_messages_against_the_station_simulator(
    csms: CsmsApp, web: WebServer, send: Send, simulator: StationRunner
) -> None:
    async def ok(action: str, payload: dict[str, Any]) -> dict[str, Any]:
        got = await send(action, payload)
        assert got.status_code == 200, (action, got.text)
        response: dict[str, Any] = got.json()["response"]
        return response

    interval = {
        "component": {"name": "SampledDataCtrlr"},
        "variable": {"name": "TxUpdatedInterval"},
    }
    got = await ok("SetVariables", {"setVariableData": [{**interval, "attributeValue": "30"}]})
    assert got["setVariableResult"][0]["attributeStatus"] == "Accepted"
    got = await ok("GetVariables", {"getVariableData": [interval]})
    assert got["getVariableResult"][0]["attributeValue"] == "30"
    got = await ok("GetTransactionStatus", {})
    assert got["messagesInQueue"] is False
    assert (await ok("UnlockConnector", {"evseId": 1, "connectorId": 1}))["status"] in (
        "Unlocked",
        "UnlockFailed",
        "OngoingAuthorizedTransaction",
        "UnknownConnector",
    )
    assert (await ok("TriggerMessage", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
    assert (await ok("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 1}}))[
        "status"
    ] in ("Accepted", "Scheduled")
    log = {"remoteLocation": "https://logs.example.com/upload"}
    got = await ok("GetLog", {"log": log, "logType": "DiagnosticsLog", "requestId": 11})
    assert got["status"] == "Accepted"
    retrieve = (simulator.station.clock.now() + timedelta(seconds=30)).isoformat()
    firmware = {
        "location": "https://firmware.example.com/sim-0.2.0.bin",
        "retrieveDateTime": retrieve,
        "signature": "c2lnbmF0dXJl",
    }
    assert (await ok("UpdateFirmware", {"requestId": 21, "firmware": firmware}))[
        "status"
    ] == "Accepted"

    async def reported() -> bool:
        return "Installed (request 21)" in await events(web, "FirmwareStatusNotification") and (
            "Uploaded (request 11)" in await events(web, "LogStatusNotification")
        )

    await eventually(reported, "firmware and log status notifications")
    assert await events(web, "LogStatusNotification") == [
        "Uploading (request 11)",
        "Uploaded (request 11)",
    ]
    assert (await events(web, "FirmwareStatusNotification"))[-1] == "Installed (request 21)"
