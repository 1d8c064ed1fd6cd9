"""Our station simulator answers our CSMS's operator calls over real sockets: the local list
with its version, the composite schedule, a log upload and a firmware update whose status
notifications the CSMS keeps as station events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from csms.app import start_csms
from csms.config import CsmsConfig
from csms.passwords import hash_password
from csms.store.station_events import StationEventsStore
from csms.timeutil import format_timestamp, utc_now

STATION, PASSWORD = "CS-OPS-E2E", "station-password-ops"


async def test_operator_calls_reach_the_simulated_station(tmp_path: Path) -> None:
    config = CsmsConfig(port=0, ping_interval=5, ping_timeout=5, close_timeout=1, call_timeout=5)
    app = await start_csms(tmp_path / "data", config)
    await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
    station = StationConfig(
        url=f"ws://127.0.0.1:{app.port}/ocpp",
        station_id=STATION,
        password=PASSWORD,
        speed=600,
        connect_timeout=10,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.05, random_range=0.05, repeat_times=1),
    )
    runner = StationRunner(station)
    run = asyncio.create_task(runner.run())
    events = StationEventsStore(app.store)

    async def statuses(action: str, last: str) -> list[str]:
        for _ in range(500):
            found = [e.payload["status"] for e in reversed(await events.latest(STATION))]
            kept = [
                e.payload["status"] for e in reversed(await events.latest(STATION, action=action))
            ]
            if last in kept:
                return kept
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {action} {last}; events: {found}")

    try:
        for _ in range(500):
            if STATION in app.server.connections and runner.station.online.is_set():
                break
            await asyncio.sleep(0.02)
        assert app.stations is not None
        call = app.stations.operator_call
        entries = [
            {
                "idToken": {"idToken": "AA01", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted"},
            }
        ]
        sent = await call(
            STATION,
            "SendLocalList",
            {"versionNumber": 7, "updateType": "Full", "localAuthorizationList": entries},
        )
        assert sent.response == {"status": "Accepted"}
        assert (await call(STATION, "GetLocalListVersion", {})).response == {"versionNumber": 7}
        composite = await call(STATION, "GetCompositeSchedule", {"duration": 600, "evseId": 1})
        assert composite.response["status"] == "Accepted"
        log = {"remoteLocation": "https://logs.example.com/"}
        got = await call(
            STATION, "GetLog", {"log": log, "logType": "DiagnosticsLog", "requestId": 3}
        )
        assert got.response["status"] == "Accepted"
        assert await statuses("LogStatusNotification", "Uploaded") == ["Uploading", "Uploaded"]
        firmware = {
            "location": "https://fw.example.com/f.bin",
            "retrieveDateTime": format_timestamp(utc_now()),
        }
        got = await call(STATION, "UpdateFirmware", {"requestId": 4, "firmware": firmware})
        assert got.response["status"] == "Accepted"
        assert await statuses("FirmwareStatusNotification", "Installed") == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        trigger = {"requestedMessage": "FirmwareStatusNotification"}
        assert (await call(STATION, "TriggerMessage", trigger)).response["status"] == "Accepted"
        assert (await statuses("FirmwareStatusNotification", "Idle"))[-1] == "Idle"
        assert runner.errors == []
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await app.stop()
