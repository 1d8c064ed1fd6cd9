"""Block K, Smart charging: NotifyEVChargingNeeds (K15-K17), OCPP 2.0.1 and 2.1.

What an ISO 15118 EV tells the station at the start of a session: its departure time and the
energy it wants by then (2.0.1: AC/DC ``energyAmount``; 2.1 also ``v2xChargingParameters``
with energy and SoC targets and charge and discharge power limits). The needs are converted
at the boundary and stored; ``csms.dispatch_limits`` keeps a dispatch decision within them
and ``csms.departure`` keeps the EV's departure target.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from csms.context import StationContext
from csms.errors import PropertyConstraintViolation
from csms.ocpp.rpc import Handler
from csms.store.charging_needs import ChargingNeedsStore, EvChargingNeeds
from csms.store.retention import CHARGING_NEEDS
from csms.timeutil import format_timestamp, parse_timestamp

log = logging.getLogger(__name__)


def _whole(value: Any) -> int | None:
    """A schema ``number`` (Wh or W) as an integer, rounded half to even; None stays None."""
    if value is None:
        return None
    return int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_EVEN))


def _checked_time(value: str | None, what: str) -> str | None:
    if value is not None:
        try:
            parse_timestamp(value)
        except ValueError as exc:
            raise PropertyConstraintViolation(f"{what}: {exc}") from None
    return value


def to_needs(station_id: str, payload: dict[str, Any], received_at: str) -> EvChargingNeeds:
    """Convert a NotifyEVChargingNeedsRequest into the CSMS's own record (at the boundary)."""
    needs = payload["chargingNeeds"]
    v2x = needs.get("v2xChargingParameters") or {}
    ac = needs.get("acChargingParameters") or {}
    dc = needs.get("dcChargingParameters") or {}
    target = v2x.get("evTargetEnergyRequest", dc.get("energyAmount", ac.get("energyAmount")))
    return EvChargingNeeds(
        station_id=station_id,
        evse_id=payload["evseId"],
        received_at=received_at,
        timestamp=_checked_time(payload.get("timestamp"), "timestamp"),
        requested_transfer=needs["requestedEnergyTransfer"],
        available_transfer=tuple(needs.get("availableEnergyTransfer", ())),
        control_mode=needs.get("controlMode"),
        departure_time=_checked_time(needs.get("departureTime"), "departureTime"),
        target_energy_wh=_whole(target),
        min_energy_wh=_whole(v2x.get("evMinEnergyRequest")),
        max_energy_wh=_whole(v2x.get("evMaxEnergyRequest")),
        min_v2x_energy_wh=_whole(v2x.get("evMinV2XEnergyRequest")),
        max_v2x_energy_wh=_whole(v2x.get("evMaxV2XEnergyRequest")),
        target_soc=v2x.get("targetSoC"),
        max_charge_w=_whole(v2x.get("maxChargePower", dc.get("evMaxPower"))),
        max_discharge_w=_whole(v2x.get("maxDischargePower")),
        min_discharge_w=_whole(v2x.get("minDischargePower")),
        raw=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
    )


async def on_notify_ev_charging_needs(
    ctx: StationContext, payload: dict[str, Any]
) -> dict[str, Any]:
    await store_needs(ctx, to_needs(ctx.station_id, payload, ctx.services.now_text()))
    # Accepted promises a schedule (K15): only a CSMS whose dispatcher runs can send one
    scheduled = ctx.services.plan_due is not None
    ctx.services.wake_dispatcher()
    return {"status": "Accepted" if scheduled else "Rejected"}


async def store_needs(ctx: StationContext, needs: EvChargingNeeds) -> EvChargingNeeds:
    """Keep an EV's needs: on the station's clock (the session's, for needs without a time of
    their own), logged once."""
    store = ChargingNeedsStore(ctx.services.store)
    if needs.timestamp is None:  # 2.0.1: place them on the station's clock
        at = await store.station_time(ctx.station_id, needs.evse_id, ctx.services.clock())
        needs = replace(needs, timestamp=None if at is None else format_timestamp(at))
    removed = await store.record(needs, keep=ctx.services.keep(CHARGING_NEEDS))
    ctx.services.pruned(ctx.station_id, CHARGING_NEEDS, removed)
    log.info(
        "%s: EVSE %d needs %s (departure %s, target %s Wh, discharge up to %s W)",
        ctx.station_id,
        needs.evse_id,
        needs.requested_transfer,
        needs.departure_time,
        needs.target_energy_wh,
        needs.max_discharge_w,
    )
    return needs


HANDLERS: dict[str, Handler[StationContext]] = {
    "NotifyEVChargingNeeds": on_notify_ev_charging_needs,
}
