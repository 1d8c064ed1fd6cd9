"""The dashboard in a real browser: headless Chromium (Debian's) driven by Playwright.

Logs in through the form, opens the sessions page, opens the committed session, and checks
that its chart is an SVG with data and that its settlement id is shown. A screenshot is kept
in ``test-artifacts/dashboard-session.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.web.world import OPERATOR, OPERATOR_PW, build_world

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
    pytest.mark.slow,  # a real browser process: ~2-3 s
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no chromium binary (apt-get install -y chromium)"
    ),
]


async def test_log_in_open_a_session_and_see_its_chart(tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    world = await build_world(tmp_path / "data")
    web = await start_web(ReviewDeps(store=world.store, data_dir=world.data_dir), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{web.port}"
    try:
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=30_000)
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 1400})
                page.set_default_timeout(15_000)
                first = await page.goto(f"{base}/sessions")
                assert first is not None and first.status == 401  # anonymous: the login form
                await page.fill("#name", OPERATOR)
                await page.fill("#password", OPERATOR_PW)
                await page.click("#login")
                await page.wait_for_url(f"{base}/sessions")
                table = await page.inner_text("#sessions")
                assert world.settlement_id in table and world.flagged_id in table

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
                assert "check out" in await page.inner_text("#evidence")
                assert "Height 1" in await page.inner_text("#block")
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "dashboard-session.png"), full_page=True)

                await page.click("header a[href='/chain']")
                await page.wait_for_url(f"{base}/chain")
                assert (await page.inner_text("#height")).strip() == "1"
                assert "checks out" in await page.inner_text("#verified")
            finally:
                await browser.close()
    finally:
        await web.stop()
        await world.store.close()
    assert (ARTIFACTS / "dashboard-session.png").stat().st_size > 10_000
