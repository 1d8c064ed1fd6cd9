"""The review web app: API, pages and metrics in one FastAPI application.

``create_app`` is the composition: it builds the operator registry, the cookie secret, the
review service, and maps the web exception tree to HTTP statuses in exactly one place.
Swagger's pages load scripts from the network, so only the OpenAPI document itself is served
(``/api/openapi.json``, authenticated like the rest).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from csms.metrics import MetricsSnapshot, count_messages, render_metrics
from csms.operators import OperatorRegistry, load_session_secret
from csms.store.retention import KINDS
from csms.store.tallies import Tallies
from csms.web import actions, api, pages
from csms.web.auth import Auth
from csms.web.deps import ReviewDeps
from csms.web.errors import Busy, TooManyAttempts, Unauthorized, WebError
from csms.web.service import ReviewService


def create_app(deps: ReviewDeps, *, registry: OperatorRegistry | None = None) -> FastAPI:
    app = FastAPI(
        title="v2g-bridge review API",
        version="1",
        description="Settled V2G sessions, their receipts, the chain and the stations. "
        "HTTP Basic authentication (operators and auditors, `v2g operators add`); "
        "POST actions need the operator role.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.review = ReviewService(deps)
    app.state.auth = Auth(
        registry or OperatorRegistry(deps.store), load_session_secret(deps.data_dir), deps.store
    )
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(actions.router)

    @app.exception_handler(WebError)
    async def web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        if isinstance(exc, pages.LoginRequired):
            return pages.login_page(request, str(exc))
        if not request.url.path.startswith("/api") and request.url.path != "/metrics":
            auth: Auth = request.app.state.auth
            operator = await auth.cookie(request)
            return pages.render(
                request, "base.html", operator, message=str(exc), status_code=exc.status
            )
        headers = {"WWW-Authenticate": 'Basic realm="v2g-bridge"'}
        if isinstance(exc, TooManyAttempts | Busy):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(
            {"detail": str(exc)},
            status_code=exc.status,
            headers=headers if isinstance(exc, Unauthorized | TooManyAttempts | Busy) else None,
        )

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_: api.Reader) -> dict[str, Any]:
        return app.openapi()

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics"])
    async def metrics(
        request: Request, _: api.Reader, review: ReviewService = Depends(api.service)
    ) -> Response:
        return PlainTextResponse(
            render_metrics(await collect_metrics(review, request.app.state.auth)),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    return app


async def collect_metrics(review: ReviewService, auth: Auth | None = None) -> MetricsSnapshot:
    deps = review.deps
    server = deps.server
    connections = list(server.connections.values()) if server is not None else []
    stats = server.message_stats.items() if server is not None else []
    messages, errors = count_messages(stats)
    tolerated: Counter[str] = Counter()
    if server is not None:
        for counts in server.tolerated.values():
            tolerated.update(counts)
    kinds = [k.name for k in KINDS] + ["connector_status"]
    pruned: Counter[str] = Counter(dict.fromkeys(kinds, 0))
    if server is not None:
        pruned.update(server.services.pruning.pruned)
    tallies = Tallies(deps.store)
    settlements = await tallies.settlements()
    chain = await review.chain(verify=False)
    return MetricsSnapshot(
        connected_stations=len(connections),
        messages=messages,
        call_errors=errors,
        tolerated=tolerated,
        rate_limited=server.rate_limited if server is not None else 0,
        settlements=settlements,
        ledger_height=chain.height if chain.available else None,
        commit_latency=await tallies.commit_latency(),
        loop_lag=server.loop_lag.histogram if server is not None else None,
        pruned=pruned,
        throttles=([auth.throttle] if auth is not None else [])
        + ([server.throttle] if server is not None else []),
        discovery=dict(server.services.discovery) if server is not None else {},
        ledger_links=deps.ledger_links() if deps.ledger_links is not None else {},
        validator_links=deps.validator_links() if deps.validator_links is not None else (),
        cluster=server.cluster if server is not None else None,
        password_hashes={
            "handshake": server.credentials.hashes,
            "imported": server.pending_hashes.hashed,
        }
        if server is not None
        else {},
        imported_waiting=server.pending_hashes.waiting if server is not None else 0,
    )
