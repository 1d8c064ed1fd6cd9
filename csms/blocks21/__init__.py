"""OCPP 2.1 handlers: 2.0.1's where the payloads agree (validated against the 2.1 schemas;
NotifyEVChargingNeeds with its V2X parameters among them), the 2.1-only reports, and
PullDynamicScheduleUpdate (``dynamic``); ``HANDLERS_21`` routes them."""

from __future__ import annotations

from csms.blocks import HANDLERS_201, station_events
from csms.blocks21 import dynamic
from csms.context import StationContext
from csms.ocpp.rpc import Handler

HANDLERS_21: dict[str, Handler[StationContext]] = {
    **HANDLERS_201,
    **station_events.HANDLERS_21_ONLY,
    **dynamic.HANDLERS,
}
