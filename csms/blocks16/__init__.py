"""OCPP 1.6J handlers, one module per feature profile or group; ``HANDLERS_16`` routes them.

Every 1.6 message is mapped onto the same session model as 2.0.1's (``records``), so a 1.6
session is stored, closed and settled like any other.
"""

from __future__ import annotations

from csms.blocks16 import authorization, core, firmware, meter_values, transactions
from csms.context import StationContext
from csms.ocpp.rpc import Handler

HANDLERS_16: dict[str, Handler[StationContext]] = {
    **core.HANDLERS,
    **authorization.HANDLERS,
    **transactions.HANDLERS,
    **meter_values.HANDLERS,
    **firmware.HANDLERS,
}
