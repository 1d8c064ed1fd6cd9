"""Block B, Provisioning: BootNotification (B01) and NotifyReport (B07).

A report is stored as received (the station's newest ``keep_reports`` messages); what it
says about the EVSEs' power and discharge (``csms.evse_limits``) is kept for the dispatch
bounds. The CSMS asks for the report itself once a station has booted
(``csms.evse_discovery``).

Bounded: of one report (``requestId``) a connection keeps at most ``max_report_parts`` parts;
later parts are acknowledged, neither stored nor read, and counted
(``v2g_evse_discovery_total{outcome="report_parts_dropped"}``). At most ``REPORTS_TRACKED``
request ids are counted per connection (the oldest is forgotten first).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from csms.context import StationContext
from csms.evse_limits import facts_from_report
from csms.ocpp.rpc import Handler
from csms.store.evse_caps import EvseCapsStore
from csms.store.retention import REPORTS

log = logging.getLogger(__name__)

REPORTS_TRACKED = 16  # request ids whose parts a connection counts


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


def _within_parts(ctx: StationContext, request_id: int) -> bool:
    """Count one part of report ``request_id``; False once past ``max_report_parts``."""
    parts = ctx.report_parts
    if request_id not in parts and len(parts) >= REPORTS_TRACKED:
        del parts[next(iter(parts))]
    parts[request_id] = parts.get(request_id, 0) + 1
    limit = ctx.services.config.max_report_parts
    if parts[request_id] <= limit:
        return True
    ctx.services.discovery["report_parts_dropped"] += 1
    if parts[request_id] == limit + 1:
        log.warning(
            "%s: NotifyReport %d has more than max_report_parts (%d) parts; the rest are"
            " acknowledged but not kept",
            ctx.station_id,
            request_id,
            limit,
        )
    return False


async def on_notify_report(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    if not _within_parts(ctx, payload["requestId"]):
        return {}
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
        kept = await EvseCapsStore(services.store).record(
            ctx.station_id, facts, services.now_text()
        )
        services.discovery["facts_learned"] += kept
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "BootNotification": on_boot_notification,
    "NotifyReport": on_notify_report,
}
