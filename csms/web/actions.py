"""The dashboard's action forms: re-settle, credit, and remote start, stop and reset.

Each needs the operator role and the CSRF token of the page that showed the form; each calls
the same service method as its API endpoint.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from csms.web.auth import Auth, require_actor
from csms.web.errors import BadRequest, Conflict, NotFound, Upstream
from csms.web.pages import operator_of, read_form
from csms.web.service import ReviewService

router = APIRouter(include_in_schema=False)


async def _checked_form(request: Request) -> dict[str, str]:
    """The form of an action, once its CSRF token proves this dashboard sent it."""
    form = await read_form(request)
    auth: Auth = request.app.state.auth
    auth.check_csrf(request, form.get("csrf", ""))
    return form


@router.post("/sessions/{review_id}/resettle")
async def resettle_form(request: Request, review_id: str) -> Response:
    operator = require_actor(await operator_of(request))
    await _checked_form(request)
    review: ReviewService = request.app.state.review
    outcome = await review.resettle(operator, review_id)
    message = "settled; awaiting commit" if outcome.status == "pending" else outcome.reason
    return RedirectResponse(
        f"/sessions/{quote(review_id)}?message={quote(f're-settle: {message}')}", status_code=303
    )


@router.post("/sessions/{review_id}/credit")
async def credit_form(request: Request, review_id: str) -> Response:
    operator = require_actor(await operator_of(request))
    form = await _checked_form(request)
    amount_text = form.get("amount", "").strip()
    try:
        amount = int(amount_text) if amount_text else None
    except ValueError:
        raise BadRequest(f"amount: expected whole micro-units, got {amount_text!r}") from None
    review: ReviewService = request.app.state.review
    await review.credit(operator, review_id, form.get("reason", ""), amount)
    return RedirectResponse(f"/sessions/{quote(review_id)}", status_code=303)


STATION_ACTIONS = ("start", "stop", "reset")


@router.post("/stations/{station_id}/{action}")
async def station_action_form(request: Request, station_id: str, action: str) -> Response:
    """Remote start, stop or reset from the stations page: the same calls as the API's."""
    if action not in STATION_ACTIONS:
        raise NotFound(f"no station action {action!r}: expected start, stop or reset")
    operator = require_actor(await operator_of(request))
    form = await _checked_form(request)
    review: ReviewService = request.app.state.review
    try:
        if action == "start":
            evse = form.get("evse_id", "").strip()
            if evse and not evse.isdigit():
                raise BadRequest(f"EVSE: expected a whole number, got {evse!r}")
            answer = await review.act(
                operator,
                station_id,
                "start",
                id_token=form.get("id_token", "").strip(),
                token_type=None,
                evse_id=int(evse) if evse else None,
            )
        elif action == "stop":
            answer = await review.act(
                operator, station_id, "stop", transaction_id=form.get("transaction_id", "")
            )
        else:
            kind = form.get("type", "Immediate")
            if kind not in ("Immediate", "OnIdle"):
                raise BadRequest(f"reset type: expected Immediate or OnIdle, got {kind!r}")
            answer = await review.act(operator, station_id, "reset", reset_type=kind, evse_id=None)
        said = f"answered {answer.get('status', answer)}"
    except (BadRequest, Conflict, Upstream) as exc:
        said = f"failed: {exc}"
    return RedirectResponse(
        f"/stations?message={quote(f'{action} {station_id}: {said}')}", status_code=303
    )
