"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

Walks every page as an operator would: the login form (a wrong password first), the sessions
list with its totals and compact dates, a committed session (chart ticks and tariff boundary,
the evidence table with its folded hashes), a flagged one (the re-settle button, pressed), the
chain with its last block time and the block holding the settlement, and the stations. No page
may trip the Content-Security-Policy. Screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from csms.evidence import key_fingerprint, parse_public_key
from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.web.world import (
    OPERATOR,
    OPERATOR_PW,
    OTHER_STATION,
    STATION,
    build_world,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,  # a real browser process: ~3-5 s
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no chromium binary (apt-get install -y chromium)"
    ),
]


async def test_every_page_in_a_browser(tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    world = await build_world(tmp_path / "data")
    station = await world.store.get_station(OTHER_STATION)
    assert station is not None and station.meter_key is not None
    fingerprint = key_fingerprint(parse_public_key(station.meter_key))
    deps = ReviewDeps(store=world.store, data_dir=world.data_dir, setup=world.setup)
    web = await start_web(deps, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{web.port}"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 1400})
                page.set_default_timeout(15_000)
                console: list[str] = []
                page.on("console", lambda message: console.append(message.text))

                # login: anonymous gets the form; a wrong password says so; the right one enters
                first = await page.goto(f"{base}/sessions")
                assert first is not None and first.status == 401
                assert await page.input_value("input[name=next]") == "/sessions"
                await page.fill("#name", OPERATOR)
                await page.fill("#password", "not-the-password")
                await page.click("#login")
                assert "Wrong name or password" in await page.inner_text("main")
                await page.fill("#name", OPERATOR)
                await page.fill("#password", OPERATOR_PW)
                await page.click("#login")
                await page.wait_for_url(f"{base}/sessions")
                assert f"{OPERATOR} (operator)" in await page.inner_text("header")

                # sessions: both listed, the flagged one with its reason, totals, compact dates
                table = await page.inner_text("#sessions")
                assert world.settlement_id in table and world.flagged_id in table
                assert "wrong_meter_key" in table  # the reason it is flagged
                assert (await page.inner_text("#total-import")).strip() == "9.000"
                started = page.locator("#sessions tbody tr td.nowrap").first
                assert re.fullmatch(r"2026-11-25 16:3\d", (await started.inner_text()).strip())
                white_space = await started.evaluate("cell => getComputedStyle(cell).whiteSpace")
                assert white_space == "nowrap"  # a date stays on one line
                assert await page.get_attribute("#csv", "href") == "/sessions.csv"
                await page.screenshot(path=str(ARTIFACTS / "dashboard-sessions.png"))

                # a committed session: chart with ticks and the tariff boundary, evidence table
                await page.click(f"a[href='/sessions/{world.settlement_id}']")
                await page.wait_for_url(f"{base}/sessions/{world.settlement_id}")
                shown = await page.inner_text("#settlement-id")
                assert shown.strip() == world.settlement_id
                chart = page.locator("svg#session-chart")
                assert await chart.is_visible()
                lines = chart.locator("polyline")
                assert await lines.count() == 4  # import, export, net power, SoC
                points = [
                    int(await lines.nth(i).get_attribute("data-points") or 0)
                    for i in range(await lines.count())
                ]
                assert all(n >= 2 for n in points)
                box = await chart.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 200
                assert await chart.locator("line[data-tick]").count() >= 4
                assert "17:00" in (await chart.text_content() or "")  # a tick label
                boundary = chart.locator("line[data-boundary]")
                assert await boundary.get_attribute("data-boundary") == "2026-11-25T17:00:00Z"
                assert "check out" in await page.inner_text("#evidence")
                records = page.locator("#evidence-records tbody tr")
                assert await records.count() == 3
                assert "Begin" in await records.nth(0).inner_text()
                assert "54.500" in await records.nth(2).inner_text()
                hidden = records.nth(0).locator("details p").first
                assert not await hidden.is_visible()  # the hash is folded
                await records.nth(0).locator("summary").click()
                assert await hidden.is_visible() and "SHA-256" in await hidden.inner_text()
                assert "Height 1" in await page.inner_text("#block")
                await page.screenshot(path=str(ARTIFACTS / "dashboard-session.png"), full_page=True)

                # a flagged session: each record fails; an operator may re-settle it
                await page.goto(f"{base}/sessions/{world.flagged_id}")
                bad = await page.inner_text("#evidence-records")
                assert bad.count("signature does not verify") == 3
                await page.click("form[action$='/resettle'] button")
                await page.wait_for_url(re.compile(r".*/sessions/.*\?message=.*"))
                assert "re-settle:" in await page.inner_text("main .error")

                # the chain: height, verification, last block time, the block with the settlement
                await page.click("header a[href='/chain']")
                await page.wait_for_url(f"{base}/chain")
                assert (await page.inner_text("#height")).strip() == "1"
                assert "checks out" in await page.inner_text("#verified")
                assert re.search(
                    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(.+ ago\)",
                    await page.inner_text("#last-block-time"),
                )
                await page.click(f"#blocks a[href='/chain/blocks/1#{world.settlement_id}']")
                await page.wait_for_url(f"{base}/chain/blocks/1#{world.settlement_id}")
                assert (await page.inner_text("#block-height")).strip() == "1"
                held = await page.inner_text("#block-settlements")
                assert world.settlement_id in held and "-0.10 EUR" in held

                # the stations: profile, tolerance, meter key, sessions; read-only: no actions
                await page.click("header a[href='/stations']")
                await page.wait_for_url(f"{base}/stations")
                other = await page.inner_text(f"#station-{OTHER_STATION}")
                assert fingerprint[:16] in other and "strict" in other
                assert await page.inner_text(f"#station-{STATION} td.sessions") == "1"
                assert await page.locator("#stations th", has_text="Security profile").count() == 1
                assert await page.locator("form[action$='/reset']").count() == 0
                assert "Read-only view" in await page.inner_text("main")
                await page.screenshot(path=str(ARTIFACTS / "dashboard-stations.png"))
                assert not [m for m in console if "Content Security Policy" in m], console
            finally:
                await browser.close()
    finally:
        await web.stop()
        await world.store.close()
    assert (ARTIFACTS / "dashboard-session.png").stat().st_size > 10_000
