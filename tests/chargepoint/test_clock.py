from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest.mock import patch

import pytest

from chargepoint.clock import AcceleratedClock, format_timestamp

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$")


def test_timestamps_are_utc_with_at_most_three_fraction_digits() -> None:
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    text = format_timestamp(moment)
    assert text == "2026-03-01T08:00:00.123Z"
    assert RFC3339_MS.match(text)
    assert format_timestamp(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000Z"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 3, 1))


def test_accelerated_clock_scales_elapsed_time() -> None:
    ticks = iter([100.0, 101.5])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = AcceleratedClock(speed=3600, start=start, monotonic=lambda: next(ticks))
    assert clock.now() == start + timedelta(hours=1.5)


async def test_accelerated_sleep_and_wait_take_station_seconds() -> None:
    clock = AcceleratedClock(speed=36_000)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await clock.sleep(3600)  # one station hour is 0.1 s of wall time
    assert 0.09 <= loop.time() - t0 < 1.0
    event = asyncio.Event()
    assert await clock.wait(event, 360) is False
    loop.call_soon(event.set)
    assert await clock.wait(event, 36_000_000) is True


def test_aligned_instants_are_multiples_of_the_interval_from_midnight_utc() -> None:
    from chargepoint.clock import next_aligned

    at = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
    assert next_aligned(at, 900) == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    # strictly after: an aligned instant itself moves on to the next one
    assert next_aligned(datetime(2026, 3, 1, 10, 15, tzinfo=UTC), 900) == datetime(
        2026, 3, 1, 10, 30, tzinfo=UTC
    )
    # another timezone names the same instants
    local = datetime(2026, 3, 1, 12, 7, 30, tzinfo=timezone(timedelta(hours=2)))
    assert next_aligned(local, 3600) == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    # an interval that does not divide the day restarts at midnight
    assert next_aligned(datetime(2026, 3, 1, 23, 50, tzinfo=UTC), 7 * 3600) == datetime(
        2026, 3, 2, tzinfo=UTC
    )
    assert next_aligned(at, 0) is None


async def test_a_late_wake_up_slows_the_clock_instead_of_skipping_station_time() -> None:
    wall = [100.0]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = AcceleratedClock(speed=3600, start=start, monotonic=lambda: wall[0])

    async def busy_machine(waiting: Coroutine[Any, Any, Any], timeout: float) -> None:
        waiting.close()
        wall[0] += timeout + 0.5  # every wake-up comes half a wall second late
        raise TimeoutError

    with patch("chargepoint.clock.asyncio.wait_for", busy_machine):
        await clock.sleep(3600)  # one station hour asked; 1.5 wall seconds went by
    assert clock.now() == start + timedelta(hours=1)  # not 1.5 h: the overshoot is taken out
    assert clock.lag_s == pytest.approx(0.5)
    assert clock.achieved_speed() == pytest.approx(3600 / 1.5)
    wall[0] += 1.0  # on time from here: the clock runs at full speed again
    assert clock.now() == start + timedelta(hours=2)


def test_station_time_never_goes_backwards() -> None:
    wall = [0.0]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = AcceleratedClock(speed=10, start=start, monotonic=lambda: wall[0])
    wall[0] = 1.0
    first = clock.now()
    clock.fell_behind(start + timedelta(seconds=5))  # a waiter due at 0.5 s woke at 1.0 s
    assert clock.lag_s == pytest.approx(0.5)
    assert clock.now() == first  # held until wall time catches up, never turned back
    wall[0] = 1.6
    assert clock.now() == start + timedelta(seconds=11)


def test_an_accelerated_station_ends_its_sessions_by_now() -> None:
    """The default start leaves room for every round of sessions (back to back: the clock is
    held through connecting and authorizing), so no session ends in the future."""
    from chargepoint.config import StationConfig
    from chargepoint.runner import default_start

    config = StationConfig(
        url="ws://127.0.0.1:1/ocpp", station_id="CS1", sessions=3, evses=2,
        session_seconds=7200, speed=3600,
    )  # fmt: skip
    before = datetime.now(UTC)
    start = default_start(config)
    two_rounds = 2 * timedelta(seconds=config.session_seconds)
    assert start + two_rounds <= before
    assert default_start(StationConfig(url="ws://h/ocpp", station_id="CS1")) >= before  # real time


def test_a_held_clock_stands_still_and_a_real_time_one_is_never_held() -> None:
    wall = [0.0]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = AcceleratedClock(speed=3600, start=start, monotonic=lambda: wall[0])
    clock.hold()
    clock.hold()  # holds nest
    wall[0] = 20.0  # twenty wall seconds connecting on a loaded machine: 20 station hours
    clock.release()
    assert clock.now() == start  # still held
    wall[0] = 25.0
    clock.release()
    assert clock.now() == start
    wall[0] = 26.0
    assert clock.now() == start + timedelta(hours=1)
    assert clock.held_s == pytest.approx(25.0) and clock.lag_s == 0
    assert clock.achieved_speed() == pytest.approx(3600)  # held time is not a slow machine
    clock.release()  # one release too many changes nothing
    assert clock.now() == start + timedelta(hours=1)

    real = AcceleratedClock(speed=1, start=start, monotonic=lambda: wall[0])
    real.hold()
    wall[0] = 30.0
    assert real.now() == start + timedelta(seconds=4)  # the wall clock goes on
