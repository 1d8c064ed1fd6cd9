"""A session planned whole (``csms.dispatch_plan``): the schedule keeps the EV's floor and its
departure target, and discharges only where exporting pays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from csms.dispatch import Decision, DispatchPolicy
from csms.dispatch_limits import Limits
from csms.dispatch_plan import Goal, PlannedPeriod, on_course, plan_session, planned_at
from csms.tariffs import parse_tariff

POLICY = DispatchPolicy(export_threshold=250_000, charge_w=11_000, discharge_w=7_000)
LIMITS = Limits(max_charge_w=11_000, max_discharge_w=7_000)
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
PEAK = parse_tariff(
    b"""\
id: peak
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 180000, export_price: 60000}
  - {start: "16:00", import_price: 390000, export_price: 420000}
  - {start: "20:00", import_price: 300000, export_price: 110000}
""",
    source="peak.yaml",
)


def at(hh_mm: str) -> datetime:
    hours, minutes = (int(x) for x in hh_mm.split(":"))
    return T0.replace(hour=hours, minute=minutes)


def follow(plan: tuple[PlannedPeriod, ...], goal: Goal) -> list[float]:
    """Net Wh delivered at each period edge up to departure, the EV doing what it is asked."""
    edges = [p.start for p in plan if p.start < goal.departure] + [goal.departure]
    energy, out = 0.0, [0.0]
    for begin, end in pairwise(edges):
        energy += planned_at(plan, begin).limit_w * (end - begin).total_seconds() / 3600
        out.append(energy)
    return out


def test_a_plan_charges_to_the_peak_gives_back_what_it_may_and_charges_to_departure() -> None:
    goal = Goal(start=T0, departure=at("21:00"), needed_wh=10_000, floor_wh=0)
    plan = plan_session(goal, LIMITS, POLICY, PEAK)
    charge, discharge = Decision("charge", 11_000), Decision("discharge", -7_000)
    assert [p.decision for p in plan] == [charge, discharge, charge]
    assert plan[0].start == T0 and plan[1].start == at("16:00")
    # 11 kWh in by 16:00, all given back at 7 kW (its floor: the energy it arrived with);
    # the 5 h to departure could have recharged more, so the target does not bind
    assert plan[2].start == at("16:00") + timedelta(seconds=11_000 * 3600 // 7_000)
    assert follow(plan, goal)[-1] >= goal.needed_wh


def test_a_tight_target_cuts_the_discharge_short() -> None:
    goal = Goal(start=T0, departure=at("18:00"), needed_wh=25_000, floor_wh=0)
    plan = plan_session(goal, LIMITS, POLICY, PEAK)
    # 11 kWh in by 16:00; discharging x s then charging to 18:00 must still bring 25 kWh
    # and 10 %: (7 kW * x - (11 - 25) kWh) * 1.1 <= 11 kW * (2 h - x)
    seconds = int((11_000 * 2 + (11_000 - 25_000) * 1.1) * 3600 / (7_000 * 1.1 + 11_000))
    assert plan[1].start == at("16:00")
    assert plan[2].start == at("16:00") + timedelta(seconds=seconds)
    assert follow(plan, goal)[-1] >= 25_000  # and 10 % of what was left to charge after it


def test_no_peak_before_departure_or_no_discharge_allowed_is_one_charge_period() -> None:
    early = Goal(start=T0, departure=at("15:59"), needed_wh=0, floor_wh=0)
    assert plan_session(early, LIMITS, POLICY, PEAK) == (
        PlannedPeriod(T0, Decision("charge", 11_000)),
    )
    reserve = Goal(start=T0, departure=at("21:00"), needed_wh=0, floor_wh=0, may_discharge=False)
    assert len(plan_session(reserve, LIMITS, POLICY, PEAK)) == 1
    charge_only = Limits(max_charge_w=11_000, max_discharge_w=0)
    goal = Goal(start=T0, departure=at("21:00"), needed_wh=0, floor_wh=0)
    assert len(plan_session(goal, charge_only, POLICY, PEAK)) == 1


def test_an_ev_that_arrives_in_the_peak_keeps_its_arrival_energy() -> None:
    goal = Goal(start=at("16:30"), departure=at("22:00"), needed_wh=5_000, floor_wh=0)
    plan = plan_session(goal, LIMITS, POLICY, PEAK)
    assert all(p.decision.mode == "charge" for p in plan)  # nothing of its own to give yet
    allowed = Goal(start=at("16:30"), departure=at("22:00"), needed_wh=5_000, floor_wh=-3_500)
    plan = plan_session(allowed, LIMITS, POLICY, PEAK)
    assert plan[0].decision.mode == "discharge"
    assert plan[1].start == at("16:30") + timedelta(minutes=30)  # 3.5 kWh at 7 kW


@settings(max_examples=200, deadline=None)
@given(
    start_min=st.integers(0, 8 * 60),
    stay_min=st.integers(10, 12 * 60),
    needed_wh=st.integers(-5_000, 60_000),
    floor_wh=st.integers(-10_000, 2_000),
    charge_w=st.integers(1_000, 22_000),
    discharge_w=st.integers(0, 22_000),
)
def test_a_plan_never_breaks_the_floor_and_keeps_a_reachable_target(
    start_min: int,
    stay_min: int,
    needed_wh: int,
    floor_wh: int,
    charge_w: int,
    discharge_w: int,
) -> None:
    """Followed to the letter, a plan never takes the EV below its floor by a discharge, and
    whenever charging all the way could deliver what it needs (with the margin), it does."""
    start = T0.replace(hour=12) + timedelta(minutes=start_min)
    goal = Goal(
        start=start,
        departure=start + timedelta(minutes=stay_min),
        needed_wh=needed_wh,
        floor_wh=min(floor_wh, 0),
    )
    limits = Limits(max_charge_w=charge_w, max_discharge_w=discharge_w)
    policy = DispatchPolicy(250_000, charge_w, discharge_w)
    plan = plan_session(goal, limits, policy, PEAK)
    assert all(b.start < a.start for b, a in pairwise(plan))
    assert plan[-1].decision.mode == "charge"
    energy = follow(plan, goal)
    for (_before, after), period in zip(pairwise(energy), plan, strict=False):
        if period.decision.mode == "discharge":
            assert after >= goal.floor_wh - 1, (plan, energy)
    reachable = charge_w * stay_min / 60 >= max(0, needed_wh) * 1.1
    if reachable:
        assert energy[-1] >= needed_wh - 1, (plan, energy)
    assert on_course(plan, goal, at=goal.start, delivered_wh=0)


def test_an_ev_behind_its_plan_is_off_course() -> None:
    goal = Goal(start=T0, departure=at("21:00"), needed_wh=10_000, floor_wh=0)
    plan = plan_session(goal, LIMITS, POLICY, PEAK)
    assert on_course(plan, goal, at=at("16:00"), delivered_wh=11_000)
    # it took in only 2 kWh by 16:00: the planned discharge would take it below its arrival
    assert not on_course(plan, goal, at=at("16:00"), delivered_wh=2_000)
    # past the discharge, whatever it took in, charging is all there is left to do
    assert on_course(plan, goal, at=at("20:59"), delivered_wh=0)
