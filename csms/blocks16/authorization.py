"""OCPP 1.6 Core profile, Authorize: an idTag against the identity registry.

A 1.6 idTag carries no type; its registered type is looked up (RFID first) and the shared
2.0.1 decision (``authorize_token``) applies, its status folded into 1.6's smaller enum.
"""

from __future__ import annotations

from typing import Any

from csms.blocks.authorization import authorize_token
from csms.context import CsmsServices, StationContext
from csms.ocpp.rpc import Handler
from csms.store.ocpp16 import Ocpp16Store

# The type recorded for an idTag that is not registered (most 1.6 idTags are RFID cards).
UNREGISTERED_TYPE = "ISO14443"

# 2.0.1 AuthorizationStatusEnumType -> 1.6 AuthorizationStatus
_STATUS_16 = {
    "Accepted": "Accepted",
    "Blocked": "Blocked",
    "Expired": "Expired",
    "ConcurrentTx": "ConcurrentTx",
}


def id_tag_info(info: dict[str, Any]) -> dict[str, Any]:
    """A 2.0.1 IdTokenInfo as a 1.6 IdTagInfo (unknown, no credit, wrong place -> Invalid)."""
    result: dict[str, Any] = {"status": _STATUS_16.get(info["status"], "Invalid")}
    if "cacheExpiryDateTime" in info:
        result["expiryDate"] = info["cacheExpiryDateTime"]
    return result


async def authorize_id_tag(services: CsmsServices, id_tag: str) -> tuple[dict[str, Any], str]:
    """The 1.6 IdTagInfo for an idTag and the token type the session model records."""
    token_type = await Ocpp16Store(services.store).token_type(id_tag)
    if token_type is None:
        return {"status": "Invalid"}, UNREGISTERED_TYPE
    info = await authorize_token(services, id_tag, token_type)
    return id_tag_info(info), token_type


async def on_authorize(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    info, _ = await authorize_id_tag(ctx.services, payload["idTag"])
    return {"idTagInfo": info}


HANDLERS: dict[str, Handler[StationContext]] = {"Authorize": on_authorize}
