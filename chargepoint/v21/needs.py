"""NotifyEVChargingNeeds with V2X charging parameters, from the EV model (pure).

What an ISO 15118-20 EV tells the station at the start of a session: the energy it needs
(to its target SoC, to its reserve, to full), how much it could give back, its charge and
discharge power limits and its departure time. Energies are integer Wh, powers integer W.
Only total (not per-phase) fields are sent: see ``chargepoint.v21.profiles``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp.v21 import call

from chargepoint.clock import format_timestamp
from chargepoint.ev import UJ_PER_WH, Ev

BIDIRECTIONAL = "AC_BPT"
CHARGE_ONLY = "AC_three_phase"


def _wh(uj: int) -> int:
    return uj // UJ_PER_WH if uj >= 0 else -(-uj // UJ_PER_WH)


def v2x_parameters(ev: Ev) -> dict[str, Any]:
    """V2XChargingParametersType (snake case) for the EV as it stands."""
    spec, stored = ev.spec, ev.state.stored_uj
    return {
        "max_charge_power": spec.max_charge_w,
        "max_discharge_power": spec.max_discharge_w,
        "ev_target_energy_request": max(0, _wh(spec.target_uj - stored)),
        "ev_min_energy_request": max(0, _wh(spec.reserve_uj - stored)),
        "ev_max_energy_request": max(0, _wh(spec.capacity_uj - stored)),
        "ev_min_v2x_energy_request": _wh(spec.reserve_uj - stored),  # < 0: can give back
        "ev_max_v2x_energy_request": max(0, _wh(spec.capacity_uj - stored)),
        "target_soc": spec.target_soc_pct,
    }


def charging_needs_call(evse_id: int, ev: Ev, now: datetime) -> call.NotifyEVChargingNeeds:
    """NotifyEVChargingNeeds for ``evse_id``: bidirectional (AC_BPT) if the EV can discharge."""
    bidirectional = ev.spec.max_discharge_w > 0
    needs: dict[str, Any] = {
        "requested_energy_transfer": BIDIRECTIONAL if bidirectional else CHARGE_ONLY,
        "available_energy_transfer": [BIDIRECTIONAL, CHARGE_ONLY]
        if bidirectional
        else [CHARGE_ONLY],
        "control_mode": "DynamicControl",
        "departure_time": format_timestamp(ev.spec.departure),
        "v2x_charging_parameters": v2x_parameters(ev),
    }
    return call.NotifyEVChargingNeeds(
        evse_id=evse_id, charging_needs=needs, timestamp=format_timestamp(now)
    )
