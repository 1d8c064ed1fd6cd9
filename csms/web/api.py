"""The JSON API under ``/api``: HTTP Basic for everyone, actions for operators only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from csms.operators import Operator
from csms.review import MAX_SAMPLE_PAGE, SAMPLE_PAGE, SessionFilter
from csms.store.session_list import MAX_PAGE, BadCursor, Cursor
from csms.store.station_overview import MAX_PAGE as MAX_STATION_PAGE
from csms.web.auth import Auth, require_actor
from csms.web.errors import BadRequest
from csms.web.models import (
    ActionOut,
    ChainOut,
    ConnectorOut,
    CreditOutcomeOut,
    CreditRequest,
    OcppCallOut,
    ResetRequest,
    ResettleOut,
    SessionDetailOut,
    SessionOut,
    StartRequest,
    StationEventOut,
    StationOut,
    StopRequest,
    chain_out,
    detail_out,
    session_out,
)
from csms.web.service import STATIONS_PAGE, ReviewService

router = APIRouter(prefix="/api", tags=["review"])
SESSIONS_PAGE = 100  # sessions in a page of /api/sessions unless asked otherwise
MAX_OFFSET = 10_000  # deeper pages go on with ``after`` (an offset walks the rows it skips)


def service(request: Request) -> ReviewService:
    review: ReviewService = request.app.state.review
    return review


async def reader(request: Request) -> Operator:
    """Any authenticated operator or auditor: HTTP Basic, or for reads the page cookie.

    Actions never accept the cookie (a browser sends it with any site's request: CSRF).
    """
    auth: Auth = request.app.state.auth
    if request.method == "GET" and "authorization" not in request.headers:
        operator = await auth.cookie(request)
        if operator is not None:
            return operator
    return await auth.basic(request)


async def basic_reader(request: Request) -> Operator:
    auth: Auth = request.app.state.auth
    return await auth.basic(request)


async def actor(request: Request) -> Operator:
    """An operator authenticated with HTTP Basic: auditors get 403."""
    return require_actor(await basic_reader(request))


Reader = Annotated[Operator, Depends(reader)]
Actor = Annotated[Operator, Depends(actor)]
Review = Annotated[ReviewService, Depends(service)]


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: expected an ISO 8601 date or time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


SESSION_STATUSES = ("pending", "committed", "flagged", "rejected", "active", "ended")


def session_filter(
    station: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    pseudonym: str | None = None,
    bad_evidence: bool | None = None,
) -> SessionFilter:
    if status and status not in SESSION_STATUSES:
        raise BadRequest(f"status: expected one of {', '.join(SESSION_STATUSES)}, got {status!r}")
    return SessionFilter(
        station=station or None,
        status=status or None,
        since=_when(since or None, "since"),
        until=_when(until or None, "until"),
        pseudonym=pseudonym or None,
        bad_evidence=bad_evidence,
    )


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(
    _: Reader,
    review: Review,
    request: Request,
    response: Response,
    station: Annotated[str | None, Query(description="station id")] = None,
    status: Annotated[
        str | None, Query(description="pending|committed|flagged|rejected|active|ended")
    ] = None,
    since: Annotated[
        str | None, Query(description="sessions started at or after (ISO 8601)")
    ] = None,
    until: Annotated[str | None, Query(description="sessions started before (ISO 8601)")] = None,
    pseudonym: Annotated[str | None, Query(description="the EV's pseudonym")] = None,
    bad_evidence: Annotated[bool | None, Query(description="true: flagged sessions only")] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="at most this many, newest first")
    ] = SESSIONS_PAGE,
    after: Annotated[
        str | None, Query(description="the X-Next-Cursor of the page before: the next page")
    ] = None,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="skip this many first (prefer after)")
    ] = 0,
) -> list[SessionOut]:
    wanted = session_filter(station, status, since, until, pseudonym, bad_evidence)
    page = await review.sessions(wanted, limit=limit, after=cursor(after), offset=offset)
    if page.next is not None:
        next_link(request, response, page.next.text())
    return [session_out(row) for row in page.rows]


def next_link(request: Request, response: Response, after: str) -> None:
    """Where the next page starts: ``X-Next-Cursor`` and a ``Link`` header (rel="next")."""
    query = {k: v for k, v in request.query_params.items() if k not in ("after", "offset")}
    query["after"] = after
    response.headers["X-Next-Cursor"] = after
    response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'


def cursor(text: str | None) -> Cursor | None:
    """A page cursor from a query (400 for one this server did not write)."""
    if not text:
        return None
    try:
        return Cursor.parse(text)
    except BadCursor as exc:
        raise BadRequest(f"after: {exc}") from None


@router.get("/sessions/{review_id}", response_model=SessionDetailOut)
async def get_session(
    review_id: str,
    _: Reader,
    review: Review,
    offset: Annotated[int, Query(ge=0, description="the first sample of the page")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_SAMPLE_PAGE, description="samples in the page")
    ] = SAMPLE_PAGE,
) -> SessionDetailOut:
    detail = await review.session(review_id, offset=offset, limit=limit)
    return detail_out(detail, f"/api/sessions/{detail.row.id}/receipt")


@router.get(
    "/sessions/{review_id}/receipt",
    response_model=dict[str, Any],
    description="The ledger receipt as stored: `v2g ledger verify-receipt` checks it offline.",
)
async def get_receipt(review_id: str, _: Reader, review: Review) -> JSONResponse:
    return JSONResponse(await review.receipt(review_id))


@router.get("/chain", response_model=ChainOut)
async def get_chain(
    _: Reader,
    review: Review,
    full: Annotated[
        bool, Query(description="verify every block again, not only the new ones")
    ] = False,
) -> ChainOut:
    return chain_out(await review.chain(full=full), await review.settlement_counts())


@router.get("/stations", response_model=list[StationOut])
async def list_stations(
    _: Reader,
    review: Review,
    request: Request,
    response: Response,
    limit: Annotated[
        int, Query(ge=1, le=MAX_STATION_PAGE, description="at most this many, by station id")
    ] = STATIONS_PAGE,
    after: Annotated[
        str | None, Query(description="the X-Next-Cursor of the page before: the next page")
    ] = None,
) -> list[StationOut]:
    views, next_after = await review.stations(limit=limit, after=after or None)
    if next_after is not None:
        next_link(request, response, next_after)
    return [
        StationOut(
            station_id=v.station_id,
            connected=v.connected,
            ocpp_version=v.ocpp_version,
            last_heartbeat=v.last_heartbeat,
            last_boot_at=v.last_boot_at,
            vendor=v.vendor,
            model=v.model,
            connectors=[
                ConnectorOut(evse_id=e, connector_id=c, status=s) for e, c, s in v.connectors
            ],
            clock_skew_s=v.clock_skew_s,
            discharge=v.discharge,
            last_ocpp_version=v.last_ocpp_version,
            tolerance=v.tolerance,
            security_profile=v.security_profile,
            meter_key_sha256=v.meter_key_sha256,
            session_count=v.session_count,
            auth_failures=v.auth_failures,
            auth_held_s=v.auth_held_s,
            password_pending=v.password_pending,
            process=v.process,
        )
        for v in views
    ]


@router.get("/stations/{station_id}/events", response_model=list[StationEventOut])
async def station_events(
    station_id: str,
    _: Reader,
    review: Review,
    action: Annotated[str | None, Query(description="only this action, e.g. NotifyEvent")] = None,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many, newest first")
    ] = 100,
) -> list[StationEventOut]:
    events = await review.station_events(station_id, limit=limit, action=action or None)
    return [
        StationEventOut(
            id=e.id,
            action=e.action,
            evse_id=e.evse_id,
            summary=e.summary,
            received_at=e.received_at,
            payload=e.payload,
        )
        for e in events
    ]


@router.post(
    "/stations/{station_id}/ocpp/{action}",
    response_model=OcppCallOut,
    description="Send one OCPP message to a connected station: the body is its payload as the"
    " specification writes it (camelCase), checked against the schema of the station's OCPP"
    " version; a charging profile in it is clamped to the dispatch bounds first.",
)
async def ocpp_call(
    station_id: str,
    action: str,
    body: Annotated[dict[str, Any], Body()],
    operator: Actor,
    review: Review,
) -> OcppCallOut:
    done = await review.ocpp_call(operator, station_id, action, body)
    return OcppCallOut(
        station_id=station_id,
        action=action,
        request=done.request,
        response=done.response,
        clamped=list(done.clamped),
    )


@router.post("/stations/{station_id}/start", response_model=ActionOut)
async def remote_start(
    station_id: str, body: StartRequest, operator: Actor, review: Review
) -> ActionOut:
    response = await review.act(
        operator,
        station_id,
        "start",
        id_token=body.id_token,
        token_type=body.token_type,
        evse_id=body.evse_id,
    )
    return ActionOut(station_id=station_id, action="start", response=response)


@router.post("/stations/{station_id}/stop", response_model=ActionOut)
async def remote_stop(
    station_id: str, body: StopRequest, operator: Actor, review: Review
) -> ActionOut:
    response = await review.act(operator, station_id, "stop", transaction_id=body.transaction_id)
    return ActionOut(station_id=station_id, action="stop", response=response)


@router.post("/stations/{station_id}/reset", response_model=ActionOut)
async def reset(station_id: str, body: ResetRequest, operator: Actor, review: Review) -> ActionOut:
    response = await review.act(
        operator, station_id, "reset", reset_type=body.type, evse_id=body.evse_id
    )
    return ActionOut(station_id=station_id, action="reset", response=response)


@router.post("/sessions/{review_id}/resettle", response_model=ResettleOut)
async def resettle(review_id: str, operator: Actor, review: Review) -> ResettleOut:
    outcome = await review.resettle(operator, review_id)
    return ResettleOut(
        settlement_id=outcome.settlement_id, status=outcome.status, reason=outcome.reason
    )


@router.post("/sessions/{review_id}/credit", response_model=CreditOutcomeOut, status_code=201)
async def credit(
    review_id: str, body: CreditRequest, operator: Actor, review: Review
) -> CreditOutcomeOut:
    outcome = await review.credit(operator, review_id, body.reason, body.amount)
    assert outcome.body is not None
    return CreditOutcomeOut(
        credit_id=outcome.settlement_id,
        corrects=str(outcome.body["corrects"]),
        amount=int(outcome.body["amount"]),
        status=outcome.status,
    )
