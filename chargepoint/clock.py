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


class AcceleratedClock:
    """Station time running ``speed`` times faster than the wall clock, from a start instant."""

    def __init__(
        self,
        *,
        speed: float = 1.0,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> datetime:
        elapsed = (self._monotonic() - self._t0) * self.speed
        return self._start + timedelta(seconds=elapsed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout=max(0.0, seconds) / self.speed)
        except TimeoutError:
            return event.is_set()
        return True


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
