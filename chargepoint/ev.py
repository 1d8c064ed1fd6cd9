"""The EV battery model: a bidirectional EV plugged into an EVSE.

Pure code driven by the clock passed in (``advance(now)``), so a 4-hour session runs in
milliseconds in tests. Energy is kept exactly as integer micro-joules (W x us) so that the
meter's integer Wh registers never drift from what the battery saw.

Setpoints follow the pre-2.1 convention used on OCPP 2.0.1: a positive limit (W) charges, a
negative limit discharges. The EV clamps a setpoint to its own power limits, never discharges
below its reserve (nor below what it needs to reach its target SoC by departure at full charge
power) and never charges past a full battery.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

UJ_PER_WH = 3_600_000_000  # micro-joules in one watt-hour
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class EvSpec:
    """What the EV is and what its driver asked for."""

    capacity_wh: int
    reserve_soc_pct: int  # never discharges below this
    max_charge_w: int
    max_discharge_w: int
    departure: datetime
    target_soc_pct: int  # wanted at departure

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0:
            raise ValueError("capacity_wh must be positive")
        if not 0 <= self.reserve_soc_pct <= 100 or not 0 <= self.target_soc_pct <= 100:
            raise ValueError("SoC percentages must lie in 0..100")
        if self.max_charge_w < 0 or self.max_discharge_w < 0:
            raise ValueError("power limits are magnitudes and must not be negative")
        if self.departure.tzinfo is None:
            raise ValueError("departure must carry a timezone")

    @property
    def capacity_uj(self) -> int:
        return self.capacity_wh * UJ_PER_WH

    @property
    def reserve_uj(self) -> int:
        return -(-self.capacity_uj * self.reserve_soc_pct // 100)  # ceiling: never below

    @property
    def target_uj(self) -> int:
        return -(-self.capacity_uj * self.target_soc_pct // 100)


@dataclass(frozen=True, slots=True)
class EnergyFlow:
    """Energy that crossed the EVSE during one ``advance`` (grid view: import = into the EV)."""

    start: datetime
    end: datetime
    imported_uj: int
    exported_uj: int


@dataclass(frozen=True, slots=True)
class EvState:
    """The battery at instant ``at`` under the setpoint requested by the station."""

    at: datetime
    stored_uj: int
    requested_w: int  # as asked by the charging profile: > 0 charge, < 0 discharge


def clamp_setpoint(spec: EvSpec, requested_w: int) -> int:
    """The setpoint the EV accepts: the request bounded by its power limits."""
    if requested_w >= 0:
        return min(requested_w, spec.max_charge_w)
    return -min(-requested_w, spec.max_discharge_w)


def discharge_floor_uj(spec: EvSpec, at: datetime) -> int:
    """Stored energy the EV keeps at ``at``: the reserve, or what it still needs for its target.

    The target floor is the energy from which full charge power still reaches the target
    SoC by departure; it rises as departure approaches.
    """
    remaining_us = max(0, (spec.departure - at) // _US)
    for_target = spec.target_uj - spec.max_charge_w * remaining_us
    return max(spec.reserve_uj, for_target)


def flowing_w(spec: EvSpec, state: EvState) -> int:
    """Power actually flowing now (> 0 charging, < 0 discharging, 0 when a limit holds it)."""
    setpoint = clamp_setpoint(spec, state.requested_w)
    if setpoint > 0 and state.stored_uj >= spec.capacity_uj:
        return 0
    if setpoint < 0 and _discharge_us_left(spec, state, -setpoint) == 0:
        return 0
    return setpoint


def advance(spec: EvSpec, state: EvState, now: datetime) -> tuple[EvState, EnergyFlow]:
    """Integrate the battery from ``state.at`` to ``now`` under the current setpoint."""
    if now < state.at:
        raise ValueError(f"clock went backwards: {now.isoformat()} < {state.at.isoformat()}")
    elapsed_us = (now - state.at) // _US
    setpoint = clamp_setpoint(spec, state.requested_w)
    imported = exported = 0
    if setpoint > 0:
        imported = max(0, min(setpoint * elapsed_us, spec.capacity_uj - state.stored_uj))
    elif setpoint < 0:
        power = -setpoint
        exported = power * min(elapsed_us, _discharge_us_left(spec, state, power))
    stored = state.stored_uj + imported - exported
    flow = EnergyFlow(start=state.at, end=now, imported_uj=imported, exported_uj=exported)
    return replace(state, at=now, stored_uj=stored), flow


def _discharge_us_left(spec: EvSpec, state: EvState, power_w: int) -> int:
    """Microseconds of discharge at ``power_w`` before the stored energy meets a floor.

    The reserve floor is fixed; the target floor rises at ``max_charge_w`` as departure
    nears. Solving for both meeting points exactly keeps a long step from crossing either
    (after departure the target floor stops rising, so the answer is then conservative).
    """
    stored = state.stored_uj
    remaining_us = max(0, (spec.departure - state.at) // _US)
    target_floor = spec.target_uj - spec.max_charge_w * remaining_us
    if stored <= spec.reserve_uj or stored <= target_floor:
        return 0
    to_reserve = (stored - spec.reserve_uj) // power_w
    to_target = (stored - target_floor) // (power_w + spec.max_charge_w)
    return min(to_reserve, to_target)


class Ev:
    """A convenience holder of one EV's spec and state for the station's event loop."""

    def __init__(self, spec: EvSpec, *, soc_pct: float, at: datetime) -> None:
        if not 0 <= soc_pct <= 100:
            raise ValueError("soc_pct must lie in 0..100")
        self.spec = spec
        self.state = EvState(
            at=at, stored_uj=round(spec.capacity_uj * soc_pct / 100), requested_w=0
        )

    def set_limit(self, limit_w: int, now: datetime) -> EnergyFlow:
        """Apply a charging-profile limit from ``now`` on; returns the flow up to ``now``."""
        flow = self.advance(now)
        self.state = replace(self.state, requested_w=int(limit_w))
        return flow

    def advance(self, now: datetime) -> EnergyFlow:
        """Move the battery to ``now``; the returned flow feeds the meter."""
        self.state, flow = advance(self.spec, self.state, now)
        return flow

    @property
    def soc_pct(self) -> float:
        """State of charge in percent (for reporting, not for anything signed)."""
        return 100 * self.state.stored_uj / self.spec.capacity_uj

    @property
    def power_w(self) -> int:
        """Power actually flowing now: > 0 charging, < 0 discharging."""
        return flowing_w(self.spec, self.state)

    @property
    def stored_wh(self) -> int:
        return self.state.stored_uj // UJ_PER_WH

    def departed(self, now: datetime) -> bool:
        return now >= self.spec.departure
