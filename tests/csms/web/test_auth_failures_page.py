"""Failed station handshakes of a running CSMS show on the stations page and in the API."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from csms.app import start_csms
from csms.config import CsmsConfig
from csms.operators import OperatorRegistry
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import PASSWORD, STATION
from tests.csms.test_credentials import status_of


async def test_failed_logins_are_counted_per_station_on_the_page_and_in_the_api(
    tmp_path: Path,
) -> None:
    config = CsmsConfig(port=0, http_port=0, close_timeout=0.3)
    app = await start_csms(tmp_path / "data", config, serve_web=True)
    try:
        assert app.web is not None
        now = format_timestamp(utc_now())
        await app.store.add_station(STATION, hash_password(PASSWORD), now)
        await app.store.add_station("CS-CALM", hash_password("calm-pass"), now)
        await OperatorRegistry(app.store).add("olivia", "operator-pw", "operator", "t")
        app.server.throttle.base_delay = 0.01
        statuses = [await status_of(app, STATION, f"guess {i}", "127.0.0.2") for i in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429
        await status_of(app, "CS-NOBODY", "guess", "127.0.0.3")  # unknown ids are not kept
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as http:
            rows = (await http.get("/api/stations", auth=("olivia", "operator-pw"))).json()
            by_id = {r["station_id"]: r for r in rows}
            assert by_id[STATION]["auth_failures"] == 7 and by_id[STATION]["auth_held_s"] >= 1
            assert by_id["CS-CALM"]["auth_failures"] == 0
            await http.post("/login", data={"name": "olivia", "password": "operator-pw"})
            page = (await http.get("/stations")).text
        row = re.search(rf'<tr id="station-{STATION}">.*?</tr>', page, re.S)
        assert row is not None
        cell = re.search(r'<td class="num auth-failures">(.*?)</td>', row.group(0), re.S)
        assert cell is not None and ">7<" in cell.group(1) and "held" in cell.group(1)
        assert "CS-NOBODY" not in app.server.auth_failures
    finally:
        await app.stop()
