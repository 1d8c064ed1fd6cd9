from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargepoint.backoff import Backoff


def test_doubles_repeat_times_then_stays() -> None:
    policy = Backoff(wait_minimum=1.0, random_range=0.0, repeat_times=3)
    assert [policy.delay(n, 0.5) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=0.999999))
def test_random_part_is_added_within_its_range(attempt: int, rand: float) -> None:
    policy = Backoff(wait_minimum=2.0, random_range=5.0, repeat_times=4)
    fixed = 2.0 * 2 ** min(attempt, 4)
    assert fixed <= policy.delay(attempt, rand) < fixed + 5.0
    assert policy.delay(attempt, rand) <= policy.longest


def test_the_random_part_spreads_a_fleet() -> None:
    policy = Backoff(wait_minimum=3.0, random_range=10.0, repeat_times=3)
    assert policy.delay(0, 0.0) == 3.0
    assert policy.delay(0, 0.999) > 12.9
    assert policy.longest == 34.0


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(wait_minimum=-1)
    with pytest.raises(ValueError):
        Backoff(random_range=-1)
    with pytest.raises(ValueError):
        Backoff(repeat_times=99)


def test_the_station_reports_its_policy_and_follows_the_csms_once_it_is_set() -> None:
    from chargepoint.config import StationConfig
    from chargepoint.runner import StationRunner

    policy = Backoff(wait_minimum=0.5, random_range=0.25, repeat_times=2)
    runner = StationRunner(StationConfig("ws://127.0.0.1:1/ocpp", "CS-1", backoff=policy))
    model = runner.station.device_model
    assert model.read_int("OCPPCommCtrlr", "RetryBackOffWaitMinimum") == 1  # whole seconds
    assert model.read_int("OCPPCommCtrlr", "RetryBackOffRepeatTimes") == 2
    assert runner.backoff() == policy  # fractions kept until the CSMS sets the variables
    model.write("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "5")
    model.write("OCPPCommCtrlr", "RetryBackOffRandomRange", "20")
    assert runner.backoff() == Backoff(wait_minimum=5.0, random_range=20.0, repeat_times=2)
