"""A session's V2G schedule, planned whole (pure): when to charge and when to discharge from
the EV's needs to its departure, for the station to follow on its own clock.

Why a schedule rather than a decision per pass: a station follows a charging schedule at the
instants it names, in station time, however late the CSMS's passes run or a message travels
(a slow link, a busy CSMS, an accelerated simulated clock). A discharge decided on the latest
reading, by contrast, lands whenever it arrives, and so moves more or less energy than was
judged safe. OCPP carries the schedule as one TxProfile with several ``chargingSchedule``
periods; the dispatcher sends it once and again only when it changes (``csms.dispatching``).

The plan walks the tariff's price intervals from the baseline (the EV's reading at its needs)
to its departure. It charges at its charge limit, except in an interval whose export price is
above the policy's threshold, where it discharges for as long as (a) the net energy delivered
since the baseline stays at or above the floor (``csms.departure``: its arrival energy, or
``evMinV2XEnergyRequest`` below or above it), and (b) charging at the charge limit from the
end of the discharge to departure still delivers what the EV needs plus ``MARGIN``. Earlier
intervals come first. A plan stays in force while the EV keeps to it (``on_course``); when it
does not, the dispatcher plans again from the latest reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from csms.departure import MARGIN
from csms.dispatch import Decision, DispatchPolicy
from csms.dispatch_limits import Limits, bound
from csms.tariffs import Tariff

MIN_DISCHARGE_S = 60  # a discharge shorter than this is not worth a period
# how far (Wh) an EV may stray from its plan before it is planned again: the registers count
# whole Wh each, so one that keeps exactly to its plan still reads a Wh or two off it
ON_COURSE_SLACK_WH = 5


@dataclass(frozen=True, slots=True)
class PlannedPeriod:
    """From ``start`` on (until the next period), do ``decision``."""

    start: datetime
    decision: Decision


@dataclass(frozen=True, slots=True)
class Goal:
    """What the plan must keep, from ``start`` (energies in Wh, net into the EV since then)."""

    start: datetime
    departure: datetime
    needed_wh: float  # still to deliver by departure (<= 0: reached)
    floor_wh: float  # the least net energy since ``start`` the EV may fall to
    may_discharge: bool = True  # False: at or below the reserve, or not allowed at all


def plan_session(
    goal: Goal, limits: Limits, policy: DispatchPolicy, tariff: Tariff
) -> tuple[PlannedPeriod, ...]:
    """The schedule from ``goal.start``: periods in time order, the last one a charge that
    lasts past departure. Whole seconds, so it travels as ``startPeriod`` offsets."""
    charge = bound(Decision("charge", policy.charge_w), limits)
    discharge = bound(Decision("discharge", -policy.discharge_w), limits)
    start = goal.start
    if not goal.may_discharge or discharge.mode != "discharge" or goal.departure <= start:
        return (PlannedPeriod(start, charge),)
    charge_w, discharge_w = charge.limit_w, -discharge.limit_w
    edges = [start, *tariff.boundaries(start, goal.departure), goal.departure]
    periods = [PlannedPeriod(start, charge)]
    delivered = 0.0  # Wh since ``start`` under the plan so far
    for begin, end in pairwise(edges):
        length = (end - begin).total_seconds()
        seconds = 0
        if tariff.price_at(begin).export_price > policy.export_threshold:
            seconds = _discharge_seconds(goal, begin, length, delivered, charge_w, discharge_w)
        if seconds:
            periods.append(PlannedPeriod(begin, discharge))
            periods.append(PlannedPeriod(begin + timedelta(seconds=seconds), charge))
        delivered += charge_w * (length - seconds) / 3600 - discharge_w * seconds / 3600
    return _merged(periods)


def _discharge_seconds(
    goal: Goal, begin: datetime, length: float, delivered: float, charge_w: int, discharge_w: int
) -> int:
    """How long a discharge from ``begin`` may last (whole seconds, at most ``length``)."""
    to_floor = (delivered - goal.floor_wh) * 3600 / discharge_w
    surplus = delivered - goal.needed_wh  # Wh beyond what the EV needs
    left = (goal.departure - begin).total_seconds()
    # (discharge_w*x - surplus) * (1 + MARGIN) <= charge_w * (left - x), in seconds and Wh
    keeps_target = (
        (charge_w * left / 3600 + surplus * (1 + MARGIN))
        * 3600
        / (discharge_w * (1 + MARGIN) + charge_w)
    )
    if surplus > 0:
        keeps_target = max(keeps_target, surplus * 3600 / discharge_w)
    seconds = int(min(length, to_floor, keeps_target))
    return seconds if seconds >= MIN_DISCHARGE_S else 0


def _merged(periods: Sequence[PlannedPeriod]) -> tuple[PlannedPeriod, ...]:
    """One period per instant (the last asked), and adjacent periods that ask the same as one."""
    by_start: dict[datetime, PlannedPeriod] = {}
    for period in periods:
        by_start[period.start] = period
    out: list[PlannedPeriod] = []
    for period in sorted(by_start.values(), key=lambda p: p.start):
        if not out or out[-1].decision != period.decision:
            out.append(period)
    return tuple(out)


def planned_at(plan: Sequence[PlannedPeriod], moment: datetime) -> Decision:
    """What ``plan`` asks at ``moment`` (its first period before it starts)."""
    current = plan[0].decision
    for period in plan:
        if period.start > moment:
            break
        current = period.decision
    return current


def on_course(
    plan: Sequence[PlannedPeriod], goal: Goal, *, at: datetime, delivered_wh: float
) -> bool:
    """Whether the EV, having taken in ``delivered_wh`` net since ``goal.start`` by ``at``,
    still reaches what it needs by departure and stays above its floor if the rest of ``plan``
    is followed. Losses and a full battery make it take in less than planned; the plan's
    margin absorbs small ones, a larger one calls for a new plan. A plan with no discharge
    left is always on course: planning again could not do better than charging."""
    rest = _remaining(plan, at, goal.departure)
    if all(decision.mode == "charge" for _, _, decision in rest):
        return True
    energy = delivered_wh
    if energy < goal.floor_wh - ON_COURSE_SLACK_WH:
        return False
    for begin, end, decision in rest:
        energy += decision.limit_w * (end - begin).total_seconds() / 3600
        if energy < goal.floor_wh - ON_COURSE_SLACK_WH:
            return False
    return energy >= goal.needed_wh - ON_COURSE_SLACK_WH


def _remaining(
    plan: Sequence[PlannedPeriod], at: datetime, departure: datetime
) -> list[tuple[datetime, datetime, Decision]]:
    """The plan's stretches between ``at`` and ``departure``."""
    out = []
    for n, period in enumerate(plan):
        end = plan[n + 1].start if n + 1 < len(plan) else departure
        begin, end = max(period.start, at), min(end, departure)
        if begin < end:
            out.append((begin, end, period.decision))
    return out
