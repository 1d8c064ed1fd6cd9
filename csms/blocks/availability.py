"""Block G, Availability: StatusNotification (G01) and Heartbeat (G02).

A station's connectors are kept up to ``max_connectors_per_station``: the status of one more
is acknowledged, not stored, logged and counted (``csms.pruning``).
"""

from __future__ import annotations

from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler


async def on_heartbeat(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    now = ctx.services.now_text()
    await ctx.services.store.touch_station(ctx.station_id, now)
    return {"currentTime": now}


async def on_status_notification(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    evse_id, connector_id = payload["evseId"], payload["connectorId"]
    stored = await services.store.set_connector_status(
        ctx.station_id,
        evse_id,
        connector_id,
        payload["connectorStatus"],
        payload["timestamp"],
        most=services.config.max_connectors_per_station,
    )
    if not stored:
        services.connector_refused(ctx.station_id, evse_id, connector_id)
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
}
