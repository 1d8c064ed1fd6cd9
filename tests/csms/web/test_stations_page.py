"""The stations page: version, profile, tolerance, meter key, sessions; actions for operators."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.evidence import key_fingerprint, parse_public_key
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.builders import transaction_event
from tests.csms.conftest import PASSWORD, STATION, open_client
from tests.csms.web.test_pages import FORM, log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, OPERATOR, OPERATOR_PW, OTHER_STATION, World


def row_of(page: str, station_id: str) -> str:
    start = page.index(f'<tr id="station-{station_id}">')
    return page[start : page.index("</tr>", start)]


async def test_stations_page_shows_profile_tolerance_meter_key_and_sessions(
    client: httpx.AsyncClient, world: World
) -> None:
    await world.store.set_tolerance(OTHER_STATION, "tolerant")
    await world.store.set_security_profile(OTHER_STATION, 2)
    station = await world.store.get_station(OTHER_STATION)
    assert station is not None and station.meter_key is not None
    fingerprint = key_fingerprint(parse_public_key(station.meter_key))
    await log_in(client, OPERATOR, OPERATOR_PW)
    page = (await client.get("/stations")).text
    row = row_of(page, OTHER_STATION)
    assert '<td class="tolerance">tolerant</td>' in row
    assert '<td class="profile">2</td>' in row
    assert f'<code title="{fingerprint}">{fingerprint[:16]}…</code>' in row
    assert f'<a href="/sessions?station={OTHER_STATION}">1</a>' in row
    assert '<td class="ocpp">-</td>' in row  # never connected
    # a read-only view of a data dir: no actions, even for an operator
    assert "/start" not in page and "Read-only view" in page
    api = {s["station_id"]: s for s in (await client.get("/api/stations")).json()}
    assert api[OTHER_STATION]["meter_key_sha256"] == fingerprint
    assert api[OTHER_STATION]["session_count"] == 1


async def test_operators_start_stop_and_reset_from_the_page(tmp_path: Path) -> None:
    config = CsmsConfig(
        port=0,
        http_port=0,
        close_timeout=0.3,
        call_timeout=2,
        evse_discovery=False,
        security_profile=1,
    )
    app = await start_csms(tmp_path / "data", config, serve_web=True)
    try:
        assert app.web is not None
        await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
        registry = OperatorRegistry(app.store)
        await registry.add(OPERATOR, OPERATOR_PW, "operator", "t")
        await registry.add(AUDITOR, AUDITOR_PW, "auditor", "t")
        station = await open_client(app)
        boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
        await station.call("BootNotification", boot)
        now = format_timestamp(utc_now())
        await station.call("TransactionEvent", transaction_event("Started", 0, timestamp=now))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
            await log_in(http, AUDITOR, AUDITOR_PW)
            seen = (await http.get("/stations")).text
            row = row_of(seen, STATION)
            assert '<td class="ocpp">ocpp2.0.1</td>' in row
            assert '1 <span class="muted">(the CSMS\'s)</span>' in row
            assert "<th>Actions</th>" not in seen and "are for operators" in seen
            refused = await http.post(f"/stations/{STATION}/reset", content="csrf=x", headers=FORM)
            assert refused.status_code == 403

            await log_in(http, OPERATOR, OPERATOR_PW)
            page = (await http.get("/stations")).text
            assert "<th>Actions</th>" in page
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
            assert csrf is not None
            stale = await http.post(f"/stations/{STATION}/reset", content="csrf=00", headers=FORM)
            assert stale.status_code == 403

            async def answer(action: str, expected: dict[str, object], reply: str) -> None:
                frame = await station.recv_json()
                assert frame[2] == action and frame[3] == expected, frame
                await station.send_raw(f'[3,"{frame[1]}",{reply}]')

            reset = asyncio.ensure_future(
                http.post(
                    f"/stations/{STATION}/reset",
                    content=f"csrf={csrf[1]}&type=OnIdle",
                    headers=FORM,
                )
            )
            await answer("Reset", {"type": "OnIdle"}, '{"status":"Scheduled"}')
            done = await reset
            assert done.status_code == 303
            shown = (await http.get(done.headers["location"])).text
            assert f"reset {STATION}: answered Scheduled" in shown

            start = asyncio.ensure_future(
                http.post(
                    f"/stations/{STATION}/start",
                    content=f"csrf={csrf[1]}&id_token=04AABB&evse_id=1",
                    headers=FORM,
                )
            )
            frame = await station.recv_json()
            assert frame[2] == "RequestStartTransaction" and frame[3]["evseId"] == 1
            assert frame[3]["idToken"]["idToken"] == "04AABB"
            await station.send_raw(f'[3,"{frame[1]}",{{"status":"Rejected"}}]')
            shown = (await http.get((await start).headers["location"])).text
            assert f"start {STATION}: answered Rejected" in shown

            assert "<button>Stop tx-1</button>" in shown  # its open transaction
            stop = asyncio.ensure_future(
                http.post(
                    f"/stations/{STATION}/stop",
                    content=f"csrf={csrf[1]}&transaction_id=tx-1",
                    headers=FORM,
                )
            )
            await answer(
                "RequestStopTransaction", {"transactionId": "tx-1"}, '{"status":"Accepted"}'
            )
            shown = (await http.get((await stop).headers["location"])).text
            assert f"stop {STATION}: answered Accepted" in shown

            bad = await http.post(
                f"/stations/{STATION}/start",
                content=f"csrf={csrf[1]}&id_token=04AABB&evse_id=one",
                headers=FORM,
            )
            assert "EVSE: expected a whole number" in (await http.get(bad.headers["location"])).text
        await station.ws.close()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
            await log_in(http, AUDITOR, AUDITOR_PW)
            row = row_of((await http.get("/stations")).text, STATION)
            # gone: the version it last spoke, muted
            assert 'title="the version of its last connection">ocpp2.0.1</span>' in row
    finally:
        await app.stop()
