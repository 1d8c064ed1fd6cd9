"""Time for the station: an injectable clock with an acceleration factor.

Simulated sessions last hours of station time but must run in seconds in tests and demos:
the clock maps wall time to station time (``speed`` station seconds per wall second) and
sleeps in station seconds. Timestamps leave the station in one format only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Station time: ``now`` is timezone-aware, ``sleep`` and ``wait`` count station seconds."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait until ``event`` is set (True) or ``seconds`` of station time pass (False)."""
        ...

    def hold(self) -> None:
        """Stop station time until the matching :meth:`release` (holds nest): for work the
        simulation does not model, such as connecting or an EV's plug-in and authorization."""
        ...

    def release(self) -> None: ...


class AcceleratedClock:
    """Station time running ``speed`` times faster than the wall clock, from a start instant.

    Station time never runs ahead of the work: when a sleep or wait wakes past the station
    instant it waited for, or is asked to wait for an instant already past (the machine
    cannot keep up with ``speed``), the overshoot is taken out of station time, so the clock
    slows down instead of skipping the instants the station meant to act at. :attr:`lag_s`
    is the wall time taken out so far and :meth:`achieved_speed` the speed the clock really
    ran at. Station time never goes backwards, and a waiter never wakes before its instant.

    An accelerated clock (``speed`` > 1) can be held (:meth:`hold`): while any hold lasts
    station time stands still, so wall time spent connecting, booting or authorizing (hours
    of station time at 3600x on a loaded machine) does not stretch the simulated timeline.
    :attr:`held_s` is the wall time held. A real-time clock (``speed`` <= 1) is never held:
    it stays with the wall clock.
    """

    #: an overshoot longer than this (wall seconds) counts as the machine falling behind
    tolerance_s = 0.002

    def __init__(
        self,
        *,
        speed: float = 1.0,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        held: bool = False,
    ) -> None:
        """``held``: start with one hold (given back by :meth:`release`), so station time
        begins only once whoever builds the station around it lets it run."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._monotonic = monotonic
        self._t0 = monotonic()
        self.lag_s = 0.0  # wall seconds taken out of station time
        self._lag_mark = self._t0  # wall time up to which lag has been taken out
        self._last = self._start
        self.held_s = 0.0  # wall seconds station time stood still under holds
        self._holds = 0
        self._held_since: float | None = None
        if held and speed > 1:
            self._holds, self._held_since = 1, self._t0  # not a tick of station time first

    def _running(self) -> datetime:
        wall = self._monotonic() if self._held_since is None else self._held_since
        elapsed = (wall - self._t0 - self.lag_s - self.held_s) * self.speed
        return self._start + timedelta(seconds=elapsed)

    def hold(self) -> None:
        if self.speed <= 1:
            return
        if self._holds == 0:
            self._held_since = self._monotonic()
        self._holds += 1

    def release(self) -> None:
        if self.speed <= 1 or self._holds == 0:
            return
        self._holds -= 1
        if self._holds == 0 and self._held_since is not None:
            now = self._monotonic()
            self.held_s += now - self._held_since
            self._held_since = None
            self._lag_mark = max(self._lag_mark, now)  # held time is not lag as well

    def now(self) -> datetime:
        self._last = max(self._last, self._running())
        return self._last

    def achieved_speed(self) -> float:
        """Station seconds per wall second since the start, held time left out (``speed``
        when it kept up)."""
        wall = self._monotonic() - self._t0 - self.held_s
        if self._held_since is not None:
            wall -= self._monotonic() - self._held_since
        simulated = (self.now() - self._start).total_seconds()
        return self.speed if wall <= 0 else simulated / wall

    def fell_behind(self, target: datetime) -> None:
        """Take the overshoot past ``target`` out of station time; each wall interval is
        taken out once however many waiters fell behind in it."""
        over = (self._running() - target).total_seconds() / self.speed  # wall seconds
        if over <= self.tolerance_s:
            return
        woke = self._monotonic()
        taken = min(over, woke - self._lag_mark)
        if taken > 0:
            self.lag_s += taken
            self._lag_mark = woke

    async def sleep(self, seconds: float) -> None:
        await self.wait(asyncio.Event(), seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        target = self.now() + timedelta(seconds=seconds)  # in the past: already behind
        while (left := (target - self._running()).total_seconds()) > 0:
            try:
                await asyncio.wait_for(event.wait(), timeout=left / self.speed)
            except TimeoutError:
                continue
            return True
        self.fell_behind(target)
        return event.is_set()


class Hold:
    """One holder's hold on a clock (:meth:`Clock.hold`), taken and given back at most once
    each in turn, so a holder that gives it back on every path never leaves the clock held."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.taken = False

    def take(self) -> None:
        if not self.taken:
            self.clock.hold()
            self.taken = True

    def give(self) -> None:
        if self.taken:
            self.clock.release()
            self.taken = False


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and exactly three fractional digits (OCPP's limit)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def next_aligned(after: datetime, interval_s: int) -> datetime | None:
    """The first clock-aligned instant strictly after ``after``; None when ``interval_s`` is 0.

    Aligned instants are whole multiples of the interval from midnight UTC, and every
    midnight is one (OCPP AlignedDataCtrlr.Interval), so a 900 s interval hits every hour.
    """
    if interval_s <= 0:
        return None
    utc = after.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    step = timedelta(seconds=interval_s)
    candidate = midnight + ((utc - midnight) // step + 1) * step
    return min(candidate, midnight + timedelta(days=1))
