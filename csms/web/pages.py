"""The dashboard: server-rendered pages behind a login form and a signed session cookie.

An anonymous request for a page is answered 401 with the login form, so the page works in a
browser and the status still says "log in first".
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from csms.operators import COOKIE_NAME, COOKIE_TTL_S, Operator, sign_session
from csms.reports import csv_text
from csms.review import CHART_POINTS, SessionFilter, chart_series
from csms.web.api import cursor, session_filter
from csms.web.auth import Auth
from csms.web.chart import session_chart
from csms.web.errors import BadRequest, TooManyAttempts, WebError
from csms.web.formats import age, kwh, money, ms_time, short_time, tariff_boundaries
from csms.web.service import ReviewService

router = APIRouter(include_in_schema=False)
CHAIN_BLOCKS = 100  # the newest blocks holding settlements listed on the chain page
PAGE_ROWS = 100  # sessions on one page, newest first; the page links to the older ones
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
STYLESHEET = Path(__file__).parent / "static" / "app.css"  # the only styles (CSP: 'self')


class LoginRequired(WebError):
    """A page was asked for without a valid session cookie."""

    status = 401


templates.env.globals.update(kwh=kwh, money=money, short_time=short_time, ms_time=ms_time)


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/sessions"


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first of each name)."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8") from None
    return {k: v[0] for k, v in parse_qs(text).items()}


async def operator_of(request: Request) -> Operator:
    auth: Auth = request.app.state.auth
    operator = await auth.cookie(request)
    if operator is None:
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return operator


def render(
    request: Request,
    name: str,
    operator: Operator | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    review: ReviewService = request.app.state.review
    return templates.TemplateResponse(
        request,
        name,
        {"operator": operator, "read_only": review.deps.read_only, **context},
        status_code=status_code,
    )


def login_page(request: Request, next_path: str, message: str | None = None) -> HTMLResponse:
    return render(
        request, "login.html", None, next=_safe_next(next_path), message=message, status_code=401
    )


@router.get("/static/app.css")
async def stylesheet() -> Response:
    """The dashboard's one stylesheet, public (the login page uses it); no inline styles."""
    return Response(
        STYLESHEET.read_bytes(),
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/login")
async def login_form(request: Request, next: str = "/sessions") -> HTMLResponse:
    response = login_page(request, next)
    response.status_code = 200
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    auth: Auth = request.app.state.auth
    address = request.client.host if request.client else "?"
    try:
        operator = await auth.verify(
            form.get("name", ""), form.get("password", ""), address, "login"
        )
    except TooManyAttempts as held:
        refusal = login_page(request, form.get("next", "/sessions"), str(held).capitalize() + ".")
        refusal.status_code = 429
        refusal.headers["Retry-After"] = str(held.retry_after)
        return refusal
    if operator is None:
        return login_page(request, form.get("next", "/sessions"), "Wrong name or password.")
    response = RedirectResponse(_safe_next(form.get("next", "/sessions")), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        sign_session(
            auth.secret,
            operator.name,
            int(time.time()),
            await auth.registry.session_stamp(operator.name) or "",
        ),
        max_age=COOKIE_TTL_S,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth: Auth = request.app.state.auth
    await auth.revoke(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME)
    return response


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/sessions", status_code=303)


def _form_filter(
    station: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    pseudonym: str | None = None,
    bad_evidence: bool | None = None,
) -> SessionFilter:
    """The sessions filter of the page's form (an unticked box filters nothing)."""
    return session_filter(station, status, since, until, pseudonym, bad_evidence or None)


@router.get("/sessions")
async def sessions_page(
    request: Request, wanted: SessionFilter = Depends(_form_filter), after: str | None = None
) -> HTMLResponse:
    operator = await operator_of(request)
    review: ReviewService = request.app.state.review
    page = await review.sessions(wanted, limit=PAGE_ROWS, after=cursor(after))
    rows = page.rows
    query = {key: request.query_params.get(key) for key in ("since", "until")}
    filters = {k: v for k, v in request.query_params.items() if k != "after"}
    older = None
    if page.next is not None:
        older = "/sessions?" + urlencode({**filters, "after": page.next.text()})
    currencies = {r.currency for r in rows if r.currency}
    totals = {
        "import_wh": sum(r.import_wh for r in rows),
        "export_wh": sum(r.export_wh for r in rows),
        "amount": sum(r.amount or 0 for r in rows),
        "currency": currencies.pop() if len(currencies) == 1 else None,
    }
    return render(
        request,
        "sessions.html",
        operator,
        rows=rows,
        older=older,
        first_page=not after,
        totals=totals,
        f=wanted,
        q=query,
        csv_link="/sessions.csv?" + urlencode(filters) if filters else "/sessions.csv",
    )


@router.get("/sessions.csv")
async def sessions_csv(request: Request, wanted: SessionFilter = Depends(_form_filter)) -> Response:
    """The filtered sessions as CSV (the same columns as ``v2g sessions export``), streamed a
    page of sessions at a time: memory stays bounded however many there are."""
    await operator_of(request)
    review: ReviewService = request.app.state.review

    async def chunks() -> AsyncIterator[str]:
        yield csv_text([], header=True)
        async for rows in review.all_sessions(wanted):
            yield csv_text(rows, header=False)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="sessions.csv"'},
    )


@router.get("/sessions/{review_id}")
async def session_page(
    request: Request, review_id: str, message: str | None = None
) -> HTMLResponse:
    operator = await operator_of(request)
    review: ReviewService = request.app.state.review
    detail = await review.session(review_id)
    marks = await review.soc_marks(detail)
    auth: Auth = request.app.state.auth
    return render(
        request,
        "session.html",
        operator,
        d=detail,
        chart=session_chart(
            chart_series(detail.chart),
            boundaries=tariff_boundaries(detail.intervals),
            marks=marks,
        ),
        marks=marks,
        chart_points=CHART_POINTS,
        can_credit=operator.can_act
        and review.deps.setup is not None
        and detail.settlement is not None
        and detail.settlement.status == "committed",
        can_resettle=operator.can_act
        and review.deps.setup is not None
        and detail.settlement is not None
        and detail.settlement.status == "flagged",
        csrf=auth.csrf_token(request),
        message=message,
    )


@router.get("/chain")
async def chain_page(request: Request) -> HTMLResponse:
    operator = await operator_of(request)
    review: ReviewService = request.app.state.review
    status = await review.chain()
    counts = await review.settlement_counts()
    blocks, blocks_total = await review.blocks(CHAIN_BLOCKS)
    since_top = None
    if status.top_time_ms is not None:
        since_top = age(review.deps.clock().timestamp() - status.top_time_ms / 1000)
    return render(
        request,
        "chain.html",
        operator,
        c=status,
        counts=counts,
        since_top=since_top,
        blocks=blocks,
        blocks_total=blocks_total,
    )


@router.get("/chain/blocks/{height}")
async def block_page(request: Request, height: str) -> HTMLResponse:
    operator = await operator_of(request)
    if not height.isdigit() or len(height) > 18:
        raise BadRequest(f"block height: expected a whole number, got {height!r}")
    review: ReviewService = request.app.state.review
    return render(request, "block.html", operator, b=await review.block(int(height)))


@router.get("/stations")
async def stations_page(
    request: Request, message: str | None = None, after: str | None = None
) -> HTMLResponse:
    operator = await operator_of(request)
    review: ReviewService = request.app.state.review
    auth: Auth = request.app.state.auth
    stations, next_after = await review.stations(after=after or None)
    return render(
        request,
        "stations.html",
        operator,
        stations=stations,
        more=None if next_after is None else "/stations?" + urlencode({"after": next_after}),
        can_act=operator.can_act and not review.deps.read_only,
        csrf=auth.csrf_token(request),
        message=message,
    )
