"""An EV's charging needs on OCPP 1.6, which has no message for them: a DataTransfer.

1.6 has no NotifyEVChargingNeeds. A station whose EV knows its departure and the energy it
wants by then (the simulated 1.6 station does, from the scenario) sends them as DataTransfer
with vendorId ``NEEDS_VENDOR`` and messageId ``NEEDS_MESSAGE``, ``data`` being a 2.0.1
NotifyEVChargingNeedsRequest as JSON (``evseId``: the connector). The CSMS checks it against
the 2.0.1 schema and keeps it as it keeps 2.0.1 needs (``csms.blocks.smart_charging``), so the
session page shows the EV's departure and target energy. No schedule follows: a 1.6 EV is only
ever charged, at its limit. A bad one is answered Rejected with the reason in ``data``.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

from csms.blocks.smart_charging import store_needs, to_needs
from csms.context import StationContext
from csms.errors import CsmsError
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP201

log = logging.getLogger(__name__)

NEEDS_VENDOR = "org.v2g-bridge"
NEEDS_MESSAGE = "NotifyEVChargingNeeds"
MAX_NEEDS_CHARS = 4096  # a 2.0.1 needs request is a few hundred characters


@cache
def _schemas() -> SchemaSet:
    return SchemaSet(OCPP201)


def _rejected(ctx: StationContext, reason: str) -> dict[str, Any]:
    log.info("%s: DataTransfer %s rejected: %s", ctx.station_id, NEEDS_MESSAGE, reason)
    return {"status": "Rejected", "data": reason}


async def on_needs_data(
    ctx: StationContext, message_id: str | None, data: str | None
) -> dict[str, Any]:
    """DataTransfer ``NEEDS_VENDOR``: the EV's needs (``NEEDS_MESSAGE``), else UnknownMessageId."""
    if message_id != NEEDS_MESSAGE:
        return {"status": "UnknownMessageId"}
    if not data or len(data) > MAX_NEEDS_CHARS:
        return _rejected(ctx, f"data must be 1 to {MAX_NEEDS_CHARS} characters of JSON")
    try:
        payload = json.loads(data)
    except ValueError:
        return _rejected(ctx, "data is not JSON")
    if not isinstance(payload, dict):
        return _rejected(ctx, "data is not a NotifyEVChargingNeedsRequest object")
    try:
        _schemas().validate_request(NEEDS_MESSAGE, payload)
        needs = to_needs(ctx.station_id, payload, ctx.services.now_text())
    except CsmsError as exc:
        return _rejected(ctx, str(exc))
    await store_needs(ctx, needs)
    return {"status": "Accepted"}
