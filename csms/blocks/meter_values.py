"""Block J, Meter values: MeterValues (J01) outside transactions."""

from __future__ import annotations

from typing import Any

from csms.context import StationContext
from csms.metering import parse_meter_values
from csms.ocpp.rpc import Handler
from csms.store.retention import METER_VALUES


async def on_meter_values(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    meter_values = ctx.limit_sampled_values(payload["meterValue"], "MeterValues")
    samples = parse_meter_values(meter_values)
    services = ctx.services
    removed = await services.store.record_meter_values(
        ctx.station_id, payload["evseId"], samples, keep=services.keep(METER_VALUES)
    )
    services.pruned(ctx.station_id, METER_VALUES, removed)
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {"MeterValues": on_meter_values}
