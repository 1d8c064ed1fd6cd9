"""The CSMS learns a station's EVSE limits by itself after boot, and bounds profiles by them.

Real sockets against a real CSMS: the project's own 2.0.1 station simulator reporting an
EVSE rating in its device model, the ``ocpp`` library's 1.6 ChargePoint answering
GetConfiguration, and raw stations that send too many report parts or never answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from csms.app import CsmsApp, start_csms
from csms.blocks16.remote import set_charging_profile_request_16
from csms.config import CsmsConfig
from csms.dispatch import Decision
from csms.passwords import hash_password
from csms.store.evse_caps import EvseCapsStore
from csms.timeutil import format_timestamp, utc_now
from tests.chargepoint.test_v2g_against_csms import profile
from tests.csms.conftest import BOOT, PASSWORD, STATION, open_client
from tests.csms.library_station import library_station

OPERATOR_CAP_W = 11_000


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    """A real CSMS with its default of asking each station for its limits after boot."""
    config = CsmsConfig(port=0, ping_interval=5, ping_timeout=5, close_timeout=1, call_timeout=5)
    assert config.evse_discovery
    app = await start_csms(tmp_path / "data", config)
    await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    yield app
    await app.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_the_simulators_evse_rating_is_learned_and_bounds_a_profile(csms: CsmsApp) -> None:
    await csms.store.set_station_caps(STATION, max_charge_w=OPERATOR_CAP_W)
    config = StationConfig(
        url=f"ws://127.0.0.1:{csms.port}/ocpp",
        station_id=STATION,
        password=PASSWORD,
        evse_power_w=5_000,  # below the operator's cap
        connect_timeout=10,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.1, random_range=0.1, repeat_times=1),
    )
    runner = StationRunner(config)
    run = asyncio.create_task(runner.run())
    caps = EvseCapsStore(csms.store)
    try:

        async def learned() -> bool:
            return (await caps.caps(STATION, 1)).max_power_w == 5_000

        await eventually(learned, "the EVSE rating to be learned from the boot-time report")
        assert (await caps.caps(STATION, 1)).power_source == "EVSE 1 Power maxLimit (NotifyReport)"
        assert csms.server.services.discovery["answered"] == 1
        sent = await csms.stations.operator_call(
            STATION, "SetChargingProfile", profile("tx-1", OPERATOR_CAP_W, utc_now(), 1)
        )
        periods = sent.request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
        assert periods[0]["limit"] == 5_000, sent
        assert sent.clamped == ("period 0: limit 11000 -> 5000 W",)
        assert sent.response["status"] == "Rejected"  # no such transaction: sent all the same
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


class Station16(ChargePoint16):
    """A 1.6 charger keeping its rating in a vendor key, in kW."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[list[str] | None] = []
        self.limits: list[float] = []

    @on("GetConfiguration")
    async def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        self.asked.append(key)
        known = {"Vendor.MaxPower": "3.7", "HeartbeatInterval": "300"}
        keys = key or list(known)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": True, "value": known[k]} for k in keys if k in known
            ],
            unknown_key=[k for k in keys if k not in known],
        )

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        schedule = cs_charging_profiles["charging_schedule"]
        self.limits += [p["limit"] for p in schedule["charging_schedule_period"]]
        return result16.SetChargingProfile(status="Accepted")


async def test_a_16_stations_rating_is_read_from_its_power_key_after_boot(csms: CsmsApp) -> None:
    await csms.store.set_station_caps(
        STATION, max_charge_w=OPERATOR_CAP_W, power_key="Vendor.MaxPower:kW"
    )
    async with library_station(csms, Station16, ["ocpp1.6"], "ocpp1.6") as cp:
        boot = await cp.call(
            call16.BootNotification(charge_point_model="M16", charge_point_vendor="V16")
        )
        assert boot.status == "Accepted"
        caps = EvseCapsStore(csms.store)

        async def learned() -> bool:
            return (await caps.caps(STATION, 1)).max_power_w == 3_700

        await eventually(learned, "the 1.6 power key to be read after boot")
        assert cp.asked == [["Vendor.MaxPower"]]
        request = set_charging_profile_request_16(
            Decision("charge", OPERATOR_CAP_W),
            connector_id=1,
            transaction_id=7,
            profile_id=1,
            start=utc_now(),
        )
        await csms.stations.operator_call(STATION, "SetChargingProfile", request)
        assert cp.limits == [3_700]


def power_item(evse_id: int, max_limit: int) -> dict[str, Any]:
    return {
        "component": {"name": "EVSE", "evse": {"id": evse_id}},
        "variable": {"name": "Power"},
        "variableAttribute": [{"type": "Actual", "value": "0", "mutability": "ReadOnly"}],
        "variableCharacteristics": {
            "dataType": "decimal",
            "supportsMonitoring": False,
            "unit": "W",
            "maxLimit": max_limit,
        },
    }


async def test_report_parts_past_the_limit_are_acknowledged_not_kept(tmp_path: Path) -> None:
    config = CsmsConfig(port=0, ping_interval=5, ping_timeout=5, close_timeout=1, call_timeout=5)
    app = await start_csms(tmp_path / "data", config.with_overrides(max_report_parts=3))
    try:
        now = format_timestamp(utc_now())
        await app.store.add_station(STATION, hash_password(PASSWORD), now)
        client = await open_client(app)
        answer = await client.call("BootNotification", BOOT)
        assert answer[2]["status"] == "Accepted"
        asked = await client.recv_json()
        assert asked[2] == "GetBaseReport" and asked[3]["reportBase"] == "FullInventory"
        request_id = asked[3]["requestId"]
        await client.send_raw(json.dumps([3, asked[1], {"status": "Accepted"}]))
        # five parts; the last two (past max_report_parts) would lower the rating to 1 kW
        for seq, watts in enumerate((7_400, 7_400, 7_400, 1_000, 1_000)):
            part = {
                "requestId": request_id,
                "generatedAt": now,
                "seqNo": seq,
                "tbc": seq < 4,
                "reportData": [power_item(1, watts)],
            }
            assert (await client.call("NotifyReport", part))[0] == 3  # every part is answered
        caps = await EvseCapsStore(app.store).caps(STATION, 1)
        assert caps.max_power_w == 7_400
        assert await app.store.count("reports") == 3
        assert app.server.services.discovery["report_parts_dropped"] == 2
        await client.ws.close()
    finally:
        await app.stop()


async def test_a_station_that_never_answers_the_report_request_is_still_served(
    csms: CsmsApp,
) -> None:
    client = await open_client(csms)
    assert (await client.call("BootNotification", BOOT))[2]["status"] == "Accepted"
    asked = await client.recv_json()
    assert asked[2] == "GetBaseReport"  # left unanswered
    heartbeat = await client.call("Heartbeat", {})
    assert heartbeat[0] == 3 and "currentTime" in heartbeat[2]
    await client.ws.close()
