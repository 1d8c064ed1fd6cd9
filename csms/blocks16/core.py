"""OCPP 1.6 Core profile: BootNotification, Heartbeat, StatusNotification, DataTransfer (an
EV's charging needs, ``csms.blocks16.ev_needs``; any other vendor is UnknownVendorId).

Connector 0 in StatusNotification is the station itself; connector ``n`` is recorded as EVSE
``n``, connector 1, like every 1.6 connector in the session model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from csms.blocks.availability import on_heartbeat
from csms.blocks16.ev_needs import NEEDS_VENDOR, on_needs_data
from csms.context import StationContext
from csms.ocpp.rpc import Handler

log = logging.getLogger(__name__)

# (context, messageId, data) -> DataTransfer.conf payload, for one configured vendor
VendorHandler = Callable[[StationContext, str | None, str | None], Awaitable[dict[str, Any]]]


async def on_boot_notification(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    now = services.now_text()
    await services.store.record_boot(
        ctx.station_id,
        vendor=payload["chargePointVendor"],
        model=payload["chargePointModel"],
        serial_number=payload.get("chargePointSerialNumber")
        or payload.get("chargeBoxSerialNumber"),
        firmware=payload.get("firmwareVersion"),
        at=now,
    )
    return {
        "currentTime": now,
        "interval": services.config.heartbeat_interval,
        "status": "Accepted",
    }


async def on_status_notification(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    connector = payload["connectorId"]
    if payload["errorCode"] != "NoError":
        log.warning(
            "%s: connector %d reports %s (%s)",
            ctx.station_id,
            connector,
            payload["errorCode"],
            payload.get("vendorErrorCode") or payload.get("info") or "",
        )
    services = ctx.services
    evse_connector = 0 if connector == 0 else 1
    stored = await services.store.set_connector_status(
        ctx.station_id,
        connector,
        evse_connector,
        payload["status"],
        payload.get("timestamp") or services.now_text(),
        most=services.config.max_connectors_per_station,
    )
    if not stored:
        services.connector_refused(ctx.station_id, connector, evse_connector)
    return {}


def data_transfer_handler(vendors: Mapping[str, VendorHandler]) -> Handler[StationContext]:
    """DataTransfer answering for the configured vendors only (UnknownVendorId otherwise)."""

    async def on_data_transfer(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
        vendor = vendors.get(payload["vendorId"])
        if vendor is None:
            log.info("%s: DataTransfer from unknown vendor %r", ctx.station_id, payload["vendorId"])
            return {"status": "UnknownVendorId"}
        return await vendor(ctx, payload.get("messageId"), payload.get("data"))

    return on_data_transfer


async def accept_data(
    ctx: StationContext, message_id: str | None, data: str | None
) -> dict[str, Any]:
    """A vendor handler that logs what the station sent and accepts it."""
    log.info("%s: DataTransfer %s accepted (%d chars)", ctx.station_id, message_id, len(data or ""))
    return {"status": "Accepted"}


HANDLERS: dict[str, Handler[StationContext]] = {
    "BootNotification": on_boot_notification,
    "Heartbeat": on_heartbeat,
    "StatusNotification": on_status_notification,
    "DataTransfer": data_transfer_handler({NEEDS_VENDOR: on_needs_data}),
}
