"""OCPP 1.6 Firmware Management and security extension notifications: acknowledged and logged.

The CSMS does not manage firmware; these reports are answered so a station never retries them,
and security events are kept like 2.0.1's (block A).
"""

from __future__ import annotations

import logging
from typing import Any

from csms.blocks.security import on_security_event_notification
from csms.context import StationContext
from csms.ocpp.rpc import Handler

log = logging.getLogger(__name__)


async def on_status_report(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    log.info("%s: status report %s", ctx.station_id, payload.get("status"))
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {
    "FirmwareStatusNotification": on_status_report,
    "DiagnosticsStatusNotification": on_status_report,
    "SignedFirmwareStatusNotification": on_status_report,
    "LogStatusNotification": on_status_report,
    "SecurityEventNotification": on_security_event_notification,
}
