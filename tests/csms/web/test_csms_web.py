"""``start_csms(serve_web=True)``: the running CSMS serves the review app on its HTTP port."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION, open_client


async def test_the_csms_serves_live_stations_and_actions(tmp_path: Path) -> None:
    config = CsmsConfig(
        port=0, http_port=0, close_timeout=0.3, call_timeout=2, evse_discovery=False
    )
    app = await start_csms(tmp_path / "data", config, serve_web=True)
    try:
        assert app.web is not None
        await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
        await OperatorRegistry(app.store).add("olivia", "operator-pw", "operator", "t")
        station = await open_client(app)
        boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
        await station.call("BootNotification", boot)
        status = {
            "timestamp": format_timestamp(utc_now()),
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        }
        await station.call("StatusNotification", status)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
            listed = (await http.get("/api/stations", auth=("olivia", "operator-pw"))).json()
            [row] = listed
            assert row["station_id"] == STATION and row["connected"] is True
            assert row["ocpp_version"] == "ocpp2.0.1" and row["last_heartbeat"] is not None
            assert row["connectors"] == [{"evse_id": 1, "connector_id": 1, "status": "Available"}]
            # an action reaches the station: the CSMS sends Reset and waits for its answer
            request = http.post(
                f"/api/stations/{STATION}/reset", json={}, auth=("olivia", "operator-pw")
            )
            pending = asyncio.ensure_future(request)
            frame = await station.recv_json()
            assert frame[0] == 2 and frame[2] == "Reset" and frame[3] == {"type": "Immediate"}
            await station.send_raw(f'[3,"{frame[1]}",{{"status":"Accepted"}}]')
            answer = await pending
            assert answer.status_code == 200 and answer.json()["response"] == {"status": "Accepted"}
        await station.ws.close()
    finally:
        await app.stop()
