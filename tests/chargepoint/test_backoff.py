from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargepoint.backoff import Backoff


def test_grows_exponentially_then_caps() -> None:
    policy = Backoff(initial=1.0, factor=2.0, cap=10.0, jitter=0.0)
    assert [policy.delay(n, 0.5) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=0.999999))
def test_jitter_stays_within_half_to_full_delay(attempt: int, rand: float) -> None:
    policy = Backoff(initial=0.5, factor=2.0, cap=30.0, jitter=0.5)
    full = min(30.0, 0.5 * 2.0 ** min(attempt, 64))
    assert full / 2 <= policy.delay(attempt, rand) <= full


def test_jitter_actually_spreads_delays() -> None:
    policy = Backoff(initial=4.0, cap=4.0, jitter=0.5)
    assert policy.delay(0, 0.0) == 2.0
    assert policy.delay(0, 0.999) > 3.9


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=5, cap=1)
    with pytest.raises(ValueError):
        Backoff(jitter=2)
