"""The charging state a station reports follows its EV: no power flowing is SuspendedEV."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chargepoint.sessions import charging_state
from chargepoint.transaction import ChargingState
from tests.chargepoint.fakes import make_station


@dataclass
class PowerMeter:
    power_w: int


@pytest.mark.parametrize(
    ("power_w", "state"),
    [
        (0, ChargingState.SUSPENDED_EV),  # the EV refused a discharge profile, or is full
        (7_000, ChargingState.CHARGING),
        (-5_000, ChargingState.CHARGING),  # 2.0.1 has no Discharging state: energy flows
    ],
)
def test_the_state_follows_the_power_the_ev_takes(power_w: int, state: ChargingState) -> None:
    station = make_station()
    station.meters[1] = PowerMeter(power_w)  # type: ignore[assignment]
    assert charging_state(station, station.evses[1]) == state


def test_a_meter_that_does_not_say_leaves_the_state_alone() -> None:
    station = make_station()
    assert charging_state(station, station.evses[1]) is None
