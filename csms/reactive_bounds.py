"""The bounds of a 2.1 reactive power setpoint (``setpointReactive``, pure).

A 2.1 charging schedule period and a dynamic schedule update may carry ``setpointReactive``
(and ``_L2``/``_L3``): reactive power (or current) in the schedule's unit, positive inductive
(the EV absorbs), negative capacitive (the EV injects). It moves no energy, but an EV or EVSE
asked for more than it is rated for faults like one asked for too much active power. So it is
held within, tightest first:

- what the EV declared in its latest NotifyEVChargingNeeds ``derChargingParameters``:
  ``maxChargeReactivePower`` for the absorbed (positive) side, ``maxDischargeReactivePower``
  for the injected (negative) side, each the sum of its phases. An EV that declared neither
  (no DER parameters, or no needs at all) is sent no reactive setpoint other than 0;
- the larger of the active bounds of the same profile (``Limits``: the EVSE's rating, the
  operator's caps, the EV's active limits): the apparent power an EVSE carries is at least its
  reactive power, so this is the most the CSMS knows the connection can carry.

A station-wide profile (EVSE 0, or a ChargingStationMaxProfile) asks no EV anything: it is
bounded by the active bounds alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from csms.dispatch_limits import Limits
from csms.store.charging_needs import EvChargingNeeds

REACTIVE_FIELDS = ("setpointReactive", "setpointReactive_L2", "setpointReactive_L3")


@dataclass(frozen=True, slots=True)
class ReactiveLimits:
    """Magnitudes (var) a reactive setpoint may have: absorbed (>= 0) and injected (<= 0)."""

    absorb_var: int = 0
    inject_var: int = 0


NO_REACTIVE = ReactiveLimits()


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return abs(float(value))
    return None


def _phase_total(der: dict[str, Any], name: str) -> int | None:
    first = _number(der.get(name))
    if first is None:
        return None
    phases = [_number(der.get(f"{name}_L2")), _number(der.get(f"{name}_L3"))]
    return int(first + sum(p for p in phases if p is not None))


def declared_reactive(needs: EvChargingNeeds) -> tuple[int | None, int | None]:
    """(absorbed, injected) var the EV declared in its needs' ``derChargingParameters``."""
    try:
        payload = json.loads(needs.raw)
    except ValueError:
        return None, None
    charging = payload.get("chargingNeeds") if isinstance(payload, dict) else None
    der = charging.get("derChargingParameters") if isinstance(charging, dict) else None
    if not isinstance(der, dict):
        return None, None
    return (
        _phase_total(der, "maxChargeReactivePower"),
        _phase_total(der, "maxDischargeReactivePower"),
    )


def reactive_limits(
    needs: EvChargingNeeds | None, limits: Limits, *, station_wide: bool = False
) -> ReactiveLimits:
    """The reactive bounds of a profile whose active bounds are ``limits``; ``needs`` are
    those of the EV it is for (None: the EV declared nothing)."""
    apparent = max(limits.max_charge_w, limits.max_discharge_w)
    if station_wide:
        return ReactiveLimits(apparent, apparent)
    if needs is None:
        return NO_REACTIVE
    absorb, inject = declared_reactive(needs)
    return ReactiveLimits(min(absorb or 0, apparent), min(inject or 0, apparent))
