"""The lists a web user asks for come a bounded page at a time: /api/sessions and the sessions
page (a keyset cursor), /api/stations and the stations page; the CSV export is streamed a page
of sessions at a time; /metrics reads tallies. Every row is served once."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from csms.review import load_rows
from csms.store.session_list import Cursor
from csms.store.tallies import Tallies
from tests.csms.store.session_rows import add_sessions
from tests.csms.web.test_pages import log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, World

AUTH = (AUDITOR, AUDITOR_PW)
MORE = 45  # sessions added to the world's, over 6 more stations


async def follow(client: httpx.AsyncClient, path: str, **params: Any) -> list[list[Any]]:
    """Every page of a list, following X-Next-Cursor (and checking the Link header)."""
    pages: list[list[Any]] = []
    while True:
        answer = await client.get(path, params=params, auth=AUTH)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        cursor = answer.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in answer.headers
            return pages
        assert 'rel="next"' in answer.headers["link"] and cursor in answer.headers["link"]
        params["after"] = cursor


async def test_api_sessions_come_a_bounded_page_at_a_time(
    client: httpx.AsyncClient, world: World
) -> None:
    await add_sessions(world.store, MORE, 6)
    expected = [r.id for r in await load_rows(world.store)]
    assert len(expected) == MORE + 2
    pages = await follow(client, "/api/sessions", limit=10)
    assert [len(p) for p in pages] == [10, 10, 10, 10, 7]
    assert [s["id"] for p in pages for s in p] == expected
    flagged = await follow(client, "/api/sessions", limit=3, status="flagged")
    assert all(len(p) <= 3 for p in flagged)
    ids = [s["id"] for p in flagged for s in p]
    assert ids == [r.id for r in await load_rows(world.store) if r.status == "flagged"]
    default = await client.get("/api/sessions", auth=AUTH)
    assert len(default.json()) == MORE + 2  # under the default page of 100
    for params, status in (
        ({"limit": "1001"}, 422),
        ({"limit": "0"}, 422),
        ({"offset": "10001"}, 422),
        ({"after": "not-a-cursor"}, 400),
        ({"after": Cursor("a", "b", "c").text() + "x" * 3000}, 400),
    ):
        answer = await client.get("/api/sessions", params=params, auth=AUTH)
        assert answer.status_code == status, (params, answer.text)
    refused = await client.get("/api/sessions", params={"after": "%%"}, auth=AUTH)
    assert "after" in refused.json()["detail"]


async def test_the_csv_export_streams_every_session_once(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_sessions(world.store, MORE, 6)
    monkeypatch.setattr("csms.review.LIST_PAGE", 4)  # many chunks
    assert (await log_in(client, AUDITOR, AUDITOR_PW)).status_code == 303
    chunks = []
    async with client.stream("GET", "/sessions.csv") as answer:
        assert answer.status_code == 200
        assert "content-length" not in answer.headers  # streamed, not built whole first
        async for chunk in answer.aiter_text():
            chunks.append(chunk)
    lines = list(csv.DictReader(io.StringIO("".join(chunks))))
    sessions = [line["id"] for line in lines if line["kind"] != "credit"]
    assert sessions == [r.id for r in await load_rows(world.store)]
    credits = [line["id"] for line in lines if line["kind"] == "credit"]
    assert len(credits) == len(set(credits)) > 0
    station = await client.get("/sessions.csv", params={"station": "CS-002"})
    ids = {line["station_id"] for line in csv.DictReader(io.StringIO(station.text))}
    assert ids == {"CS-002"}


async def test_the_sessions_page_links_to_older_ones(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_sessions(world.store, MORE, 6)
    monkeypatch.setattr("csms.web.pages.PAGE_ROWS", 20)
    assert (await log_in(client, AUDITOR, AUDITOR_PW)).status_code == 303
    shown: list[str] = []
    path = "/sessions?station=&status="
    for _ in range(10):
        page = (await client.get(path)).text
        rows = [unquote(i) for i in re.findall(r'<a class="mono" href="/sessions/([^"]+)"', page)]
        assert 0 < len(rows) <= 20
        shown += rows
        if 'id="older"' not in page:
            break
        path = page.split('id="older" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert "after=" in path and "station=" in path  # the filters go along
    assert shown == [r.id for r in await load_rows(world.store)]


async def test_metrics_count_the_settlements_from_the_tallies(
    client: httpx.AsyncClient, world: World
) -> None:
    await add_sessions(world.store, MORE, 6)
    rows = await world.store.fetchall("SELECT status, COUNT(*) FROM settlements GROUP BY status")
    text = (await client.get("/metrics", auth=AUTH)).text
    for status, n in rows:
        assert f'v2g_settlements{{status="{status}"}} {n}' in text
    committed = (await Tallies(world.store).commit_latency()).count
    assert committed == 1  # the world's own commit: the rows added by hand were never marked
    assert f"v2g_settlement_commit_seconds_count {committed}" in text


async def test_api_stations_come_a_bounded_page_at_a_time(
    client: httpx.AsyncClient, world: World
) -> None:
    await add_sessions(world.store, MORE, 6)
    expected = [s.station_id for s in await world.store.list_stations()]
    assert len(expected) == 8
    pages = await follow(client, "/api/stations", limit=3)
    assert [len(p) for p in pages] == [3, 3, 2]
    listed = [s for p in pages for s in p]
    assert [s["station_id"] for s in listed] == expected
    counts = {s["station_id"]: s["session_count"] for s in listed}
    assert counts["CS-001"] == len(
        [r for r in await load_rows(world.store) if r.station_id == "CS-001"]
    )
    assert (
        await client.get("/api/stations", params={"limit": "1001"}, auth=AUTH)
    ).status_code == 422
    assert (await log_in(client, AUDITOR, AUDITOR_PW)).status_code == 303
    page = (await client.get("/stations")).text
    assert 'id="more-stations"' not in page and page.count('<tr id="station-') == 8
