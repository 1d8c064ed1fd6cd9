"""Block G, Availability: StatusNotification (G01) and Heartbeat (G02)."""

from __future__ import annotations

from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler


async def on_heartbeat(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    now = ctx.services.now_text()
    await ctx.services.store.touch_station(ctx.station_id, now)
    return {"currentTime": now}


async def on_status_notification(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    await ctx.services.store.set_connector_status(
        ctx.station_id,
        payload["evseId"],
        payload["connectorId"],
        payload["connectorStatus"],
        payload["timestamp"],
    )
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
}
