"""Block B, Provisioning: BootNotification (B01) and NotifyReport (B07).

A report is stored as received (the station's newest ``keep_reports`` messages); what it
says about the EVSEs' power and discharge (``csms.evse_limits``) is kept for the dispatch
bounds.
"""

from __future__ import annotations

import json
from typing import Any

from csms.context import StationContext
from csms.evse_limits import facts_from_report
from csms.ocpp.rpc import Handler
from csms.store.evse_caps import EvseCapsStore
from csms.store.retention import REPORTS


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
    services = ctx.services
    removed = await services.store.record_report(
        ctx.station_id,
        payload["requestId"],
        payload["seqNo"],
        payload["generatedAt"],
        json.dumps(payload, separators=(",", ":")),
        keep=services.keep(REPORTS),
    )
    services.pruned(ctx.station_id, REPORTS, removed)
    facts = facts_from_report(payload.get("reportData") or ())
    if facts:
        await EvseCapsStore(services.store).record(ctx.station_id, facts, services.now_text())
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "BootNotification": on_boot_notification,
    "NotifyReport": on_notify_report,
}
