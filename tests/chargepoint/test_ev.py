from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.ev import (
    UJ_PER_WH,
    Ev,
    EvSpec,
    EvState,
    advance,
    clamp_setpoint,
    discharge_floor_uj,
    flowing_w,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def spec(**overrides: object) -> EvSpec:
    values: dict[str, object] = {
        "capacity_wh": 60_000,
        "reserve_soc_pct": 30,
        "max_charge_w": 11_000,
        "max_discharge_w": 7_000,
        "departure": T0 + timedelta(hours=12),
        "target_soc_pct": 80,
    }
    values.update(overrides)
    return EvSpec(**values)  # type: ignore[arg-type]


def test_charging_integrates_power_over_time_exactly() -> None:
    ev = Ev(spec(), soc_pct=50, at=T0)
    ev.set_limit(7_400, T0)
    flow = ev.advance(T0 + timedelta(minutes=30))
    assert flow.imported_uj == 3_700 * UJ_PER_WH  # 7.4 kW for half an hour
    assert flow.exported_uj == 0
    assert ev.stored_wh == 30_000 + 3_700
    assert ev.power_w == 7_400


def test_negative_limit_discharges_and_is_clamped_to_the_ev_limit() -> None:
    ev = Ev(spec(), soc_pct=90, at=T0)
    ev.set_limit(-20_000, T0)
    assert ev.power_w == -7_000
    flow = ev.advance(T0 + timedelta(hours=1))
    assert flow.exported_uj == 7_000 * UJ_PER_WH
    assert ev.stored_wh == 54_000 - 7_000


def test_charge_request_is_clamped_to_max_charge_power() -> None:
    assert clamp_setpoint(spec(), 50_000) == 11_000
    assert clamp_setpoint(spec(), -3_000) == -3_000


def test_full_battery_stops_charging_mid_step() -> None:
    ev = Ev(spec(), soc_pct=99, at=T0)
    ev.set_limit(11_000, T0)
    flow = ev.advance(T0 + timedelta(hours=2))
    assert flow.imported_uj == 600 * UJ_PER_WH  # only the missing 1 % fits
    assert ev.soc_pct == 100
    assert ev.power_w == 0


def test_reserve_stops_discharging_mid_step() -> None:
    ev = Ev(spec(target_soc_pct=0), soc_pct=35, at=T0)
    ev.set_limit(-7_000, T0)
    flow = ev.advance(T0 + timedelta(hours=4))
    assert flow.exported_uj <= 3_000 * UJ_PER_WH
    assert flow.exported_uj > 3_000 * UJ_PER_WH - 7_000  # within one microsecond of power
    assert ev.state.stored_uj >= 18_000 * UJ_PER_WH
    assert ev.power_w == 0


def test_target_at_departure_limits_discharge() -> None:
    # 80 % of 60 kWh at departure in 2 h with 11 kW charging: keep at least 48 - 22 = 26 kWh,
    # and the floor rises as departure nears, so discharge stops above it.
    departure = T0 + timedelta(hours=2)
    ev = Ev(spec(departure=departure, reserve_soc_pct=10), soc_pct=60, at=T0)
    assert discharge_floor_uj(ev.spec, T0) == 26_000 * UJ_PER_WH
    assert discharge_floor_uj(ev.spec, departure) == 48_000 * UJ_PER_WH
    ev.set_limit(-7_000, T0)
    ev.advance(T0 + timedelta(hours=1))
    # it meets the rising floor when 36 kWh - 7 kW*t = 26 kWh + 11 kW*t, t = 10/18 h
    expected_export_wh = 7_000 * 10 / 18
    assert abs((36_000 - ev.stored_wh) - expected_export_wh) <= 1
    assert ev.power_w == 0  # the floor has risen above the battery: no more discharge
    # above the reserve (6 kWh) the whole time: the target, not the reserve, stopped it
    assert ev.stored_wh > 30_000


def test_clock_going_backwards_is_refused() -> None:
    ev = Ev(spec(), soc_pct=50, at=T0)
    try:
        ev.advance(T0 - timedelta(seconds=1))
    except ValueError:
        return
    raise AssertionError("expected ValueError")


def test_four_hour_session_runs_fast_with_many_steps() -> None:
    ev = Ev(spec(), soc_pct=40, at=T0)
    ev.set_limit(11_000, T0)
    total = 0
    for second in range(1, 4 * 3600 + 1):
        total += ev.advance(T0 + timedelta(seconds=second)).imported_uj
    assert total == min(11_000 * 4 * UJ_PER_WH, 36_000 * UJ_PER_WH)
    assert ev.soc_pct == 100


@settings(max_examples=200, deadline=None)
@given(
    start_soc=st.integers(0, 100),
    reserve=st.integers(0, 100),
    target=st.integers(0, 100),
    steps=st.lists(
        st.tuples(st.integers(-30_000, 30_000), st.integers(0, 3 * 3600 * 1000)),
        min_size=1,
        max_size=20,
    ),
)
def test_reserve_never_crossed_and_battery_never_overfilled(
    start_soc: int, reserve: int, target: int, steps: list[tuple[int, int]]
) -> None:
    s = spec(reserve_soc_pct=reserve, target_soc_pct=target, departure=T0 + timedelta(hours=6))
    state = EvState(at=T0, stored_uj=s.capacity_uj * start_soc // 100, requested_w=0)
    for limit, ms in steps:
        state = EvState(at=state.at, stored_uj=state.stored_uj, requested_w=limit)
        before = state.stored_uj
        state, flow = advance(s, state, state.at + timedelta(milliseconds=ms))
        assert state.stored_uj <= s.capacity_uj
        assert state.stored_uj == before + flow.imported_uj - flow.exported_uj
        if flow.exported_uj:
            assert state.stored_uj >= s.reserve_uj  # discharge never goes below the reserve
        assert flow.imported_uj == 0 or flow.exported_uj == 0
        assert flowing_w(s, state) * limit >= 0  # never flows against the request
