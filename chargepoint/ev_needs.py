"""OCPP 2.0.1 NotifyEVChargingNeeds from the EV model (pure; K15, an ISO 15118-2 EV).

What an ISO 15118-2 EV tells the station at the start of a session: when it leaves
(``departureTime``) and the energy it wants by then (``energyAmount``, to its target SoC), with
its AC current and voltage limits. 2.0.1 has no bidirectional transfer: the requested transfer
is ``AC_three_phase``. 2.1's version, with V2X parameters, is ``chargepoint.v21.needs``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ocpp.charge_point import remove_nones, snake_to_camel_case
from ocpp.v201 import call

from chargepoint.clock import format_timestamp
from chargepoint.ev import UJ_PER_WH, Ev

PHASES, PHASE_VOLTAGE, LINE_VOLTAGE = 3, 230, 400  # a three-phase 400 V AC connection
MIN_CURRENT_A = 6  # IEC 61851-1: the least current a charging EV draws
# 1.6 has no NotifyEVChargingNeeds: the DataTransfer that carries it instead (the CSMS's
# ``csms.blocks16.ev_needs`` answers this vendor and message)
NEEDS_VENDOR = "org.v2g-bridge"
NEEDS_MESSAGE = "NotifyEVChargingNeeds"


def ev_behind(meter: object) -> Ev | None:
    """The EV model behind a meter, if the meter has one."""
    ev = getattr(meter, "ev", None)
    return ev if isinstance(ev, Ev) else None


def energy_to_target_wh(ev: Ev) -> int:
    """Wh still to deliver for the EV's target SoC (0 when it is there already)."""
    return max(0, -(-(ev.spec.target_uj - ev.state.stored_uj) // UJ_PER_WH))


def ac_parameters(ev: Ev) -> dict[str, Any]:
    """ACChargingParametersType (snake case): the energy wanted and the EV's AC limits."""
    max_current = max(MIN_CURRENT_A, round(ev.spec.max_charge_w / (PHASES * PHASE_VOLTAGE)))
    return {
        "energy_amount": energy_to_target_wh(ev),
        "ev_min_current": MIN_CURRENT_A,
        "ev_max_current": max_current,
        "ev_max_voltage": LINE_VOLTAGE,
    }


def charging_needs_call_201(evse_id: int, ev: Ev, now: datetime) -> call.NotifyEVChargingNeeds:
    """NotifyEVChargingNeeds for ``evse_id``: departure and energy to the target, AC three-phase."""
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": format_timestamp(ev.spec.departure),
        "ac_charging_parameters": ac_parameters(ev),
    }
    return call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=evse_id)


def needs_data_16(evse_id: int, ev: Ev, now: datetime) -> str:
    """The 2.0.1 NotifyEVChargingNeedsRequest of ``charging_needs_call_201`` as JSON (camelCase),
    the ``data`` of the DataTransfer a 1.6 station carries it in (1.6 has no such message)."""
    request = charging_needs_call_201(evse_id, ev, now)
    payload = snake_to_camel_case(remove_nones(asdict(request)))
    return json.dumps(payload, separators=(",", ":"))
