"""Block B, Provisioning: BootNotification (B01) and NotifyReport (B07)."""

from __future__ import annotations

import json
from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler


async def on_boot_notification(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    station = payload["chargingStation"]
    now = services.now_text()
    await services.store.record_boot(
        ctx.station_id,
        vendor=station["vendorName"],
        model=station["model"],
        serial_number=station.get("serialNumber"),
        firmware=station.get("firmwareVersion"),
        at=now,
    )
    return {
        "currentTime": now,
        "interval": services.config.heartbeat_interval,
        "status": "Accepted",
    }


async def on_notify_report(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    await ctx.services.store.record_report(
        ctx.station_id,
        payload["requestId"],
        payload["seqNo"],
        payload["generatedAt"],
        json.dumps(payload, separators=(",", ":")),
    )
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "BootNotification": on_boot_notification,
    "NotifyReport": on_notify_report,
}
