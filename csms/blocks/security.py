"""Block A, Security: SecurityEventNotification (A04), kept per station up to
``keep_security_events`` (the oldest go first)."""

from __future__ import annotations

import logging
from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler
from csms.store.retention import SECURITY_EVENTS

log = logging.getLogger(__name__)


async def on_security_event_notification(
    ctx: StationContext, payload: dict[str, Any]
) -> dict[str, Any]:
    log.info("%s: security event %s", ctx.station_id, payload["type"])
    services = ctx.services
    removed = await services.store.record_security_event(
        ctx.station_id,
        payload["type"],
        payload["timestamp"],
        payload.get("techInfo"),
        keep=services.keep(SECURITY_EVENTS),
    )
    services.pruned(ctx.station_id, SECURITY_EVENTS, removed)
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "SecurityEventNotification": on_security_event_notification,
}
