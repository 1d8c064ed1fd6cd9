"""The session page: chart marks, the evidence as a table per record, re-settle for operators."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

import csms.review
from csms.store.charging_needs import ChargingNeedsStore, EvChargingNeeds
from csms.timeutil import format_timestamp, utc_now
from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from csms.web.service import ReviewService
from tests.csms.signed_session import BOUNDARY, T0
from tests.csms.web.test_pages import log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, OPERATOR, OPERATOR_PW, STATION, World


async def test_chart_shows_ticks_and_the_tariff_boundary(
    client: httpx.AsyncClient, world: World
) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get(f"/sessions/{world.settlement_id}")).text
    assert re.findall(r'data-boundary="([^"]+)"', page) == [f"{BOUNDARY:%Y-%m-%dT%H:%M:%S}Z"]
    assert len(re.findall(r'data-tick="', page)) >= 4
    assert "data-level=" not in page  # no needs, no dispatcher: no target, no reserve
    assert '<td class="nowrap">2026-11-25 16:30</td>' in page  # the first interval, compact


async def test_chart_marks_the_evs_target_and_the_dispatchers_reserve(world: World) -> None:
    await ChargingNeedsStore(world.store).record(
        EvChargingNeeds(
            station_id=STATION,
            evse_id=1,
            # received now, stated in the station's (here: simulated, days earlier) time
            received_at=format_timestamp(utc_now()),
            timestamp=format_timestamp(T0 + timedelta(seconds=2)),
            requested_transfer="DC_BPT",
            departure_time=format_timestamp(T0 + timedelta(minutes=70)),
            target_energy_wh=12_000,
            target_soc=80,
        ),
        keep=10,
    )
    deps = ReviewDeps(store=world.store, data_dir=world.data_dir, reserve_soc_pct=25)
    web = await start_web(deps, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
            await log_in(http, AUDITOR, AUDITOR_PW)
            page = (await http.get(f"/sessions/{world.settlement_id}")).text
            other = (await http.get(f"/sessions/{world.flagged_id}")).text
    finally:
        await web.stop()
    assert 'data-level="target" data-value="80"' in page
    assert 'data-level="reserve" data-value="25"' in page
    assert 'data-departure="2026-11-25T17:40:00Z"' in page
    assert (
        '<p id="needs">The EV asked for 12.000 kWh more (target SoC 80 %) by 2026-11-25 17:40'
        " UTC; the dispatcher keeps it above 25 %.</p>"
    ) in page
    assert "The EV stated no charging needs; the dispatcher keeps it above 25 %" in other
    assert 'data-level="target"' not in other  # another station's EV said nothing
    await ChargingNeedsStore(world.store).record(  # a later session's EV on the same EVSE
        EvChargingNeeds(
            station_id=STATION,
            evse_id=1,
            received_at=format_timestamp(utc_now()),
            requested_transfer="DC_BPT",
            timestamp=format_timestamp(T0 + timedelta(hours=3)),
            target_soc=60,
        ),
        keep=10,
    )
    detail = await ReviewService(deps).session(world.settlement_id)
    assert (await ReviewService(deps).soc_marks(detail)).target_pct == 80


async def test_evidence_is_a_table_of_records_with_hashes_folded(
    client: httpx.AsyncClient, world: World
) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get(f"/sessions/{world.settlement_id}")).text
    table = page[
        page.index('id="evidence-records"') : page.index(
            "</table>", page.index('id="evidence-records"')
        )
    ]
    rows = re.findall(
        r"<tr><td class=\"num\">(\d+)</td><td>(\w+)</td>\s*<td class=\"nowrap\">([^<]+)</td>\s*"
        r"<td class=\"num\">([\d.]+)</td><td class=\"num\">([\d.]+)</td>",
        table,
    )
    assert [(kind, at, imp, exp) for _, kind, at, imp, exp in rows] == [
        ("Begin", "2026-11-25 16:30:00", "50.000", "7.000"),  # the meter's registers
        ("Intermediate", "2026-11-25 17:00:00", "54.000", "7.000"),
        ("End", "2026-11-25 17:45:00", "54.500", "10.000"),
    ]
    assert table.count("signature verifies") == 3
    assert table.count("<details><summary>") == 3 and table.count("Signature ") == 3
    bad = (await client.get(f"/sessions/{world.flagged_id}")).text
    assert bad.count("signature does not verify") == 3  # its registered key is another meter's


async def test_re_settle_button_is_for_operators_on_flagged_sessions(
    client: httpx.AsyncClient, world: World
) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    assert "/resettle" not in (await client.get(f"/sessions/{world.flagged_id}")).text
    await log_in(client, OPERATOR, OPERATOR_PW)
    assert "/resettle" not in (await client.get(f"/sessions/{world.settlement_id}")).text
    page = (await client.get(f"/sessions/{world.flagged_id}")).text
    token = re.search(
        r'action="/sessions/([^"]+)/resettle".*?name="csrf" value="([0-9a-f]+)"', page, re.S
    )
    assert token is not None and token[1] == world.flagged_id
    forged = await client.post(
        f"/sessions/{world.flagged_id}/resettle",
        content="csrf=00",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert forged.status_code == 403
    done = await client.post(
        f"/sessions/{world.flagged_id}/resettle",
        content=f"csrf={token[2]}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 303 and "re-settle" in done.headers["location"]
    shown = (await client.get(done.headers["location"])).text
    assert "re-settle: " in shown and "flagged" in shown  # still the wrong key: still flagged


async def test_a_long_evidence_table_shows_its_first_and_last_records(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csms.review, "EVIDENCE_ROWS", 2)
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get(f"/sessions/{world.settlement_id}")).text
    assert page.count("signature verifies") == 2 and "Intermediate" not in page
    assert "The first and last 1 of 3 records are shown one by one" in page
