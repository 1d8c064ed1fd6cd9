"""Block C, Authorization: Authorize (C01) against the identity registry."""

from __future__ import annotations

from typing import Any

from csms.context import CsmsServices, StationContext
from csms.ocpp.rpc import Handler
from csms.timeutil import parse_timestamp


async def authorize_token(services: CsmsServices, id_token: str, token_type: str) -> dict[str, Any]:
    """IdTokenInfo for a token: Accepted only when registered, usable and not expired."""
    if token_type == "NoAuthorization":
        return {"status": "Accepted"}
    record = await services.store.get_token(id_token, token_type)
    if record is None:
        return {"status": "Unknown"}
    info: dict[str, Any] = {"status": record.status}
    if record.expires_at is not None:
        info["cacheExpiryDateTime"] = record.expires_at
        if parse_timestamp(record.expires_at) <= services.clock():
            info["status"] = "Expired"
    return info


async def on_authorize(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    token = payload["idToken"]
    info = await authorize_token(ctx.services, token["idToken"], token["type"])
    return {"idTokenInfo": info}


HANDLERS: dict[str, Handler[StationContext]] = {"Authorize": on_authorize}
