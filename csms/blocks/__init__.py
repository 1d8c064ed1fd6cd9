"""OCPP 2.0.1 functional blocks, one module each; ``HANDLERS`` maps actions to handlers."""

from __future__ import annotations

from csms.blocks import (
    authorization,
    availability,
    firmware,
    meter_values,
    provisioning,
    security,
    smart_charging,
    station_events,
    transactions,
)
from csms.context import StationContext
from csms.ocpp.rpc import Handler

HANDLERS_201: dict[str, Handler[StationContext]] = {
    **provisioning.HANDLERS,
    **availability.HANDLERS,
    **authorization.HANDLERS,
    **transactions.HANDLERS,
    **meter_values.HANDLERS,
    **security.HANDLERS,
    **smart_charging.HANDLERS,
    **station_events.HANDLERS,
    **firmware.HANDLERS,
}
