"""The dashboard pages: login and cookie, listing, session page with chart, credit form."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx

from csms.model import MeterSample
from csms.operators import (
    COOKIE_NAME,
    OperatorRegistry,
    load_session_secret,
    read_session,
    sign_session,
)
from csms.review import chart_series
from csms.web.chart import session_chart
from csms.web.formats import short_time
from tests.csms.web.world import (
    AUDITOR,
    AUDITOR_PW,
    OPERATOR,
    OPERATOR_PW,
    OTHER_STATION,
    STATION,
    World,
)

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def log_in(client: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await client.post(
        "/login", content=f"name={name}&password={password}&next=/chain", headers=FORM
    )


async def test_pages_ask_anonymous_visitors_to_log_in(client: httpx.AsyncClient) -> None:
    for path in ("/sessions", "/chain", "/stations", "/sessions/whatever"):
        answer = await client.get(path)
        assert answer.status_code == 401, path
        assert 'name="password"' in answer.text and f'value="{path}"' in answer.text
    wrong = await log_in(client, OPERATOR, "wrong-password")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    assert COOKIE_NAME not in wrong.cookies


async def test_login_sets_a_signed_cookie_that_opens_the_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await log_in(client, AUDITOR, AUDITOR_PW)
    assert answer.status_code == 303 and answer.headers["location"] == "/chain"
    cookie = answer.cookies[COOKIE_NAME]
    secret = load_session_secret(world.data_dir)
    stamp = await OperatorRegistry(world.store).session_stamp(AUDITOR)
    assert stamp is not None and stamp not in cookie  # bound to the password hash, not carrying it
    assert read_session(secret, cookie, int(time.time()), stamp=stamp) == AUDITOR
    assert read_session(secret, cookie, int(time.time())) is None
    assert ((world.data_dir / "keys" / "web-session.key").stat().st_mode & 0o777) == 0o600
    chain = await client.get("/chain")
    assert chain.status_code == 200 and '<td id="height">1</td>' in chain.text
    stations = await client.get("/stations")
    assert STATION in stations.text and OTHER_STATION in stations.text
    # reads of the API work with the cookie too, actions do not
    assert (await client.get("/api/sessions")).status_code == 200
    post = await client.post(f"/api/sessions/{world.settlement_id}/credit", json={"reason": "x"})
    assert post.status_code == 401
    await client.post("/logout")
    assert (await client.get("/sessions")).status_code == 401


async def test_forged_and_expired_cookies_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    secret = load_session_secret(world.data_dir)
    now = int(time.time())
    forged = sign_session(b"another data dir's secret" * 2, OPERATOR, now)
    expired = sign_session(secret, OPERATOR, now - 13 * 3600)
    tampered = sign_session(secret, AUDITOR, now).replace(AUDITOR, OPERATOR, 1)
    for value in (forged, expired, tampered, "garbage"):
        client.cookies.set(COOKIE_NAME, value)
        assert (await client.get("/sessions")).status_code == 401, value
    unbound = sign_session(secret, OPERATOR, now)  # not bound to the operator's password
    client.cookies.set(COOKIE_NAME, unbound)
    assert (await client.get("/sessions")).status_code == 401
    stamp = await OperatorRegistry(world.store).session_stamp(OPERATOR)
    assert stamp is not None
    client.cookies.set(COOKIE_NAME, sign_session(secret, OPERATOR, now, stamp))
    assert (await client.get("/sessions")).status_code == 200


async def test_sessions_page_lists_and_filters(client: httpx.AsyncClient, world: World) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get("/sessions")).text
    assert world.settlement_id in page and world.flagged_id in page
    assert "4.500" in page and "3.000" in page and "-0.10 EUR" in page
    flagged = (await client.get("/sessions", params={"bad_evidence": "true"})).text
    assert world.flagged_id in flagged and world.settlement_id not in flagged
    one = (await client.get("/sessions", params={"station": STATION, "since": "2026-11-25"})).text
    assert world.settlement_id in one and world.flagged_id not in one


async def test_session_page_shows_chart_intervals_evidence_and_block(
    client: httpx.AsyncClient, world: World
) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get(f"/sessions/{world.settlement_id}")).text
    assert f'id="settlement-id">{world.settlement_id}<' in page
    assert '<svg id="session-chart"' in page
    assert len(re.findall(r"<polyline ", page)) == 4
    assert page.count('<tr><td class="nowrap">2026-11-25 1') == 2  # two tariff intervals
    assert "Signatures and readings check out" in page
    assert f'Height <strong><a href="/chain/blocks/1#{world.settlement_id}">1</a></strong>' in page
    assert 'name="csrf"' not in page  # an auditor gets no credit form
    bad = (await client.get(f"/sessions/{world.flagged_id}")).text
    assert "wrong_meter_key" in bad and "Not on the ledger yet" in bad
    missing = await client.get("/sessions/stl-none")
    assert missing.status_code == 404 and "no session" in missing.text


async def test_credit_form_needs_an_operator_and_the_form_token(
    client: httpx.AsyncClient, world: World
) -> None:
    sid = world.settlement_id
    await log_in(client, AUDITOR, AUDITOR_PW)
    refused = await client.post(f"/sessions/{sid}/credit", content="reason=x", headers=FORM)
    assert refused.status_code == 403
    await log_in(client, OPERATOR, OPERATOR_PW)
    page = (await client.get(f"/sessions/{sid}")).text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert token is not None
    stale = await client.post(
        f"/sessions/{sid}/credit", content="csrf=00&reason=refund", headers=FORM
    )
    assert stale.status_code == 403
    assert len(await world.store.list_settlements()) == 2
    done = await client.post(
        f"/sessions/{sid}/credit",
        content=f"csrf={token[1]}&reason=charger+fault&amount=1500",
        headers=FORM,
    )
    assert done.status_code == 303
    shown = (await client.get(f"/sessions/{sid}")).text
    assert "charger fault" in shown and "-0.00 EUR" in shown and "pending" in shown


def test_chart_of_nothing_and_of_a_discharge() -> None:
    assert "No meter samples" in session_chart(chart_series([]))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [
        MeterSample(t0, "Power.Active.Import", 7_000, "W"),
        MeterSample(t0 + timedelta(minutes=5), "Power.Active.Export", 3_000, "W"),
        MeterSample(t0, "Voltage", 230, "V"),  # not charted
        MeterSample(t0, "Power.Active.Import", 1, "W", phase="L1"),  # per phase: not charted
    ]
    svg = session_chart(chart_series(samples))
    assert svg.count("<polyline ") == 1 and 'data-points="2"' in svg
    assert ">7<" in svg and ">-3<" in svg  # the axis spans +7 kW charging to -3 kW discharging


def test_short_time_is_compact_utc_whatever_the_offset() -> None:
    assert short_time("2026-11-25T16:30:59Z") == "2026-11-25 16:30"
    assert short_time("2026-11-25T18:30:00+02:00") == "2026-11-25 16:30"  # shown in UTC
    assert short_time("2026-11-25T16:30:00.123456Z") == "2026-11-25 16:30"
    assert short_time(None) == "" and short_time("garbage") == "garbage"


async def test_sessions_page_shows_compact_utc_dates(client: httpx.AsyncClient) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    page = (await client.get("/sessions")).text
    assert "<th>Started (UTC)</th>" in page
    assert '<td class="nowrap">2026-11-25 16:30</td>' in page
    assert "2026-11-25T16:30" not in page  # no RFC 3339 stamps in the table
