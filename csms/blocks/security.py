"""Block A, Security: SecurityEventNotification (A04)."""

from __future__ import annotations

import logging
from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler

log = logging.getLogger(__name__)


async def on_security_event_notification(
    ctx: StationContext, payload: dict[str, Any]
) -> dict[str, Any]:
    log.info("%s: security event %s", ctx.station_id, payload["type"])
    await ctx.services.store.record_security_event(
        ctx.station_id, payload["type"], payload["timestamp"], payload.get("techInfo")
    )
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "SecurityEventNotification": on_security_event_notification,
}
