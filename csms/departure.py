"""Keeping an EV's departure target (pure): discharge only while the target stays reachable.

An EV that said when it leaves and how much energy it wants by then (NotifyEVChargingNeeds:
``departureTime`` with ``evTargetEnergyRequest``, or the AC/DC ``energyAmount``) is asked to
discharge only if, after one more dispatch step of discharging, charging at its charge limit
for the time left still delivers what it needs plus a margin of ``MARGIN`` (10 %) of that
energy. A discharge that would take it below its floor is refused too: the floor is its energy
at the time of its needs (its arrival) plus ``evMinV2XEnergyRequest`` (negative: it allows that
much below; positive: it needs that much before any discharge), or exactly its arrival energy
when it declared none. A refused discharge becomes a charge at the charge limit.

An EV that stated no departure target (no needs at all: a 1.6 station, or a 2.0.1 station whose
EV does not speak ISO 15118, or needs without a departure time or target energy) is discharged
only of energy its own session put in: never below the energy it arrived with
(``keep_arrival_energy``). Nothing is known of when it leaves, so nothing more is promised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from csms.dispatch import Decision
from csms.dispatch_limits import Limits
from csms.model import RegisterReading

MARGIN = 0.10  # the share of the remaining energy kept in hand for losses and late samples


@dataclass(frozen=True, slots=True)
class DepartureState:
    """Where an EV stands against its departure target (energies in Wh, signed)."""

    seconds_left: float
    energy_to_target_wh: float  # still to deliver to reach the target (<= 0: reached)
    delivered_wh: float  # net energy delivered since its needs (import - export)
    floor_wh: float  # the least ``delivered_wh`` may fall to (0: its arrival energy)


def departure_state(
    *,
    seconds_left: float,
    target_energy_wh: int,
    delivered_wh: float,
    min_v2x_energy_wh: int | None,
) -> DepartureState:
    """The state from the EV's needs and the net energy delivered since they were reported."""
    floor = min_v2x_energy_wh if min_v2x_energy_wh is not None else 0
    return DepartureState(seconds_left, target_energy_wh - delivered_wh, delivered_wh, floor)


def keep_departure(
    decision: Decision, limits: Limits, state: DepartureState, step_seconds: float
) -> Decision:
    """``decision``, unless it is a discharge that would cost the EV its target or its floor."""
    if decision.mode != "discharge":
        return decision
    step = max(step_seconds, 1.0)
    out_wh = -decision.limit_w * step / 3600
    charge = Decision("charge", limits.max_charge_w)
    if state.delivered_wh - out_wh < state.floor_wh:
        return charge
    needed_after = max(0.0, state.energy_to_target_wh + out_wh)
    hours_after = (state.seconds_left - step) / 3600
    if hours_after <= 0 or needed_after * (1 + MARGIN) > limits.max_charge_w * hours_after:
        return charge
    return decision


MIN_STEP_SECONDS = 60.0


def delivered_between(
    baseline: RegisterReading, latest: RegisterReading, previous_at: datetime | None
) -> tuple[float, float]:
    """Net Wh delivered into the EV (import - export) from ``baseline`` to ``latest``, and the
    step to expect until the next reading: the gap since the reading before the latest (at
    least ``MIN_STEP_SECONDS``), how long a discharge decided now may run before the
    dispatcher sees the EV again."""
    delivered = (latest.import_wh - latest.export_wh) - (baseline.import_wh - baseline.export_wh)
    gap = 0.0 if previous_at is None else (latest.at - previous_at).total_seconds()
    return delivered, max(gap, MIN_STEP_SECONDS)


def state_between(
    *,
    baseline: RegisterReading,
    latest: RegisterReading,
    previous_at: datetime | None,
    departure: datetime,
    target_energy_wh: int,
    min_v2x_energy_wh: int | None,
) -> tuple[DepartureState, float]:
    """The EV's state at its ``latest`` register reading against its ``baseline`` (the last
    reading at or before its needs, else the first of the session), and the step."""
    delivered, step = delivered_between(baseline, latest, previous_at)
    state = departure_state(
        seconds_left=(departure - latest.at).total_seconds(),
        target_energy_wh=target_energy_wh,
        delivered_wh=delivered,
        min_v2x_energy_wh=min_v2x_energy_wh,
    )
    return state, step


def state_from_registers(
    *,
    needs_at: datetime | None,
    departure: datetime,
    target_energy_wh: int,
    min_v2x_energy_wh: int | None,
    samples: Sequence[RegisterReading],
) -> tuple[DepartureState, float] | None:
    """``state_between`` for a session's register readings in time order (None: no reading)."""
    if not samples:
        return None
    baseline = samples[0]
    if needs_at is not None:
        for reading in samples:
            if reading.at > needs_at:
                break
            baseline = reading
    return state_between(
        baseline=baseline,
        latest=samples[-1],
        previous_at=samples[-2].at if len(samples) > 1 else None,
        departure=departure,
        target_energy_wh=target_energy_wh,
        min_v2x_energy_wh=min_v2x_energy_wh,
    )


def keep_arrival_energy(
    decision: Decision,
    limits: Limits,
    first: RegisterReading | None,
    latest: RegisterReading | None,
    previous_at: datetime | None,
    *,
    lag_s: float = 0.0,
) -> Decision:
    """For an EV without a departure target: a discharge only while, after one more step of
    it (the reading gap plus ``lag_s``, how late a later decision may reach it), the EV still
    holds at least the energy it arrived with (the session's ``first`` reading; ``latest``
    and the time of the one before it are the newest)."""
    if decision.mode != "discharge":
        return decision
    charge = Decision("charge", limits.max_charge_w)
    if first is None or latest is None:
        return charge
    delivered, step = delivered_between(first, latest, previous_at)
    out_wh = -decision.limit_w * (step + lag_s) / 3600
    return charge if delivered - out_wh < 0 else decision
