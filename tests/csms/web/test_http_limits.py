"""HTTP limits of the review app, against the real server: body cap (413), malformed
encodings (400), security headers on every page, logout that ends the session on the server,
and bad filter values (400)."""

from __future__ import annotations

import time

import httpx

from csms.operators import COOKIE_NAME, load_session_secret, sign_session
from csms.store.sqlite import CsmsStore
from csms.web.deps import ReviewDeps
from csms.web.limits import DEFAULT_MAX_BODY_BYTES
from csms.web.server import start_web
from tests.csms.web.test_pages import FORM, log_in
from tests.csms.web.world import AUDITOR, AUDITOR_PW, World


async def test_a_large_login_body_is_refused_413(client: httpx.AsyncClient) -> None:
    big = b"name=x&password=" + b"p" * (DEFAULT_MAX_BODY_BYTES + 1)
    answer = await client.post("/login", content=big, headers=FORM)
    assert answer.status_code == 413 and "max_body_bytes" in answer.text

    async def chunked() -> object:
        for _ in range(40):
            yield b"p" * 4096

    answer = await client.post("/login", content=chunked(), headers=FORM)
    assert answer.status_code == 413
    # a normal login still works afterwards
    assert (await log_in(client, AUDITOR, AUDITOR_PW)).status_code == 303


async def test_a_login_body_that_is_not_utf8_is_400(client: httpx.AsyncClient) -> None:
    answer = await client.post("/login", content=b"name=\xff\xfe&password=x", headers=FORM)
    assert answer.status_code == 400


async def test_every_page_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    answers = [await client.get("/login"), await client.get("/sessions")]
    await log_in(client, AUDITOR, AUDITOR_PW)
    answers += [await client.get(p) for p in ("/sessions", "/chain", "/api/sessions", "/nope")]
    for answer in answers:
        csp = answer.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, answer.url
        assert "script-src" not in csp  # no script may run at all
        assert answer.headers.get("x-frame-options") == "DENY"
        assert answer.headers.get("x-content-type-options") == "nosniff"


async def test_no_page_needs_an_inline_style(client: httpx.AsyncClient, world: World) -> None:
    """CSP style-src 'self': every style comes from the stylesheet, served without login."""
    sheet = await client.get("/static/app.css")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert "#session-chart .tick" in sheet.text and ".narrow" in sheet.text
    pages = [await client.get("/login")]
    await log_in(client, AUDITOR, AUDITOR_PW)
    for path in ("/sessions", "/chain", "/stations", f"/sessions/{world.settlement_id}"):
        pages.append(await client.get(path))
    assert '<svg id="session-chart"' in pages[-1].text
    for page in pages:
        assert page.status_code == 200, page.url
        csp = page.headers["content-security-policy"]
        assert "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert '<link rel="stylesheet" href="/static/app.css">' in page.text, page.url
        assert "<style" not in page.text and " style=" not in page.text, page.url


async def test_logout_ends_the_session_on_the_server(client: httpx.AsyncClient) -> None:
    login = await log_in(client, AUDITOR, AUDITOR_PW)
    cookie = login.cookies[COOKIE_NAME]
    assert (await client.get("/chain")).status_code == 200
    await client.post("/logout")
    # the old cookie, replayed, no longer opens anything
    client.cookies.set(COOKIE_NAME, cookie)
    assert (await client.get("/chain")).status_code == 401


async def test_a_logged_out_cookie_stays_refused_after_a_restart(
    client: httpx.AsyncClient, world: World
) -> None:
    login = await log_in(client, AUDITOR, AUDITOR_PW)
    cookie = login.cookies[COOKIE_NAME]
    # a second browser, logged in a minute earlier and not logged out
    row = await world.store.fetchone(
        "SELECT password_hash FROM operators WHERE name = ?", (AUDITOR,)
    )
    assert row is not None
    secret, earlier = load_session_secret(world.data_dir), int(time.time()) - 60
    kept = sign_session(secret, AUDITOR, earlier, row[0])
    await client.post("/logout")
    # junk cookies are not recorded: only a cookie this server signed
    for junk in ("x", sign_session(b"not-our-secret", AUDITOR, int(time.time()))):
        client.cookies.set(COOKIE_NAME, junk)
        await client.post("/logout")
    rows = await world.store.fetchall("SELECT digest FROM revoked_web_sessions")
    assert len(rows) == 1 and cookie not in rows[0][0]
    # a new server process on the same data: its own store connection, its own memory
    store = await CsmsStore.open_data_dir(world.data_dir)
    web = await start_web(ReviewDeps(store=store, data_dir=world.data_dir), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as again:
            again.cookies.set(COOKIE_NAME, cookie)
            assert (await again.get("/chain")).status_code == 401
            again.cookies.set(COOKIE_NAME, kept)
            assert (await again.get("/chain")).status_code == 200
    finally:
        await web.stop()
        await store.close()


async def test_a_bad_status_filter_is_400(client: httpx.AsyncClient) -> None:
    await log_in(client, AUDITOR, AUDITOR_PW)
    answer = await client.get("/api/sessions", params={"status": "bogus"})
    assert answer.status_code == 400 and "status" in answer.text
    assert (await client.get("/api/sessions", params={"status": "flagged"})).status_code == 200
