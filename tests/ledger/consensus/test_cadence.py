"""Blocks on demand: the next height starts on work after the block interval, or on the
idle interval, never on its own."""

from __future__ import annotations

import asyncio
import time

from ledger.consensus.cadence import BlockCadence


class Starter:
    def __init__(self) -> None:
        self.height = 5
        self.work = False
        self.started = 0
        self.cadence: BlockCadence | None = None

    def start(self) -> None:
        assert self.cadence is not None
        if self.cadence.begin():
            self.started += 1


def make(starter: Starter, *, interval_ms: int = 20, idle_ms: int = 0) -> BlockCadence:
    cadence = BlockCadence(
        block_interval_ms=interval_ms,
        max_idle_interval_ms=idle_ms,
        height=lambda: starter.height,
        has_work=lambda: starter.work,
        start=starter.start,
    )
    starter.cadence = cadence
    return cadence


async def test_without_work_no_height_starts() -> None:
    starter = Starter()
    cadence = make(starter)
    cadence.rest(ready=False)
    await asyncio.sleep(0.08)
    assert starter.started == 0 and cadence.waiting


async def test_work_starts_the_height_only_after_the_block_interval() -> None:
    starter = Starter()
    cadence = make(starter, interval_ms=50)
    cadence.rest(ready=False)
    starter.work = True
    cadence.work_arrived()
    assert starter.started == 0  # the interval has not passed
    await asyncio.sleep(0.1)
    assert starter.started == 1 and not cadence.waiting
    cadence.work_arrived()  # already under way: not started twice
    assert starter.started == 1


async def test_work_arriving_after_the_interval_starts_at_once() -> None:
    starter = Starter()
    cadence = make(starter)
    cadence.rest(ready=True)
    assert starter.started == 0
    starter.work = True
    cadence.work_arrived()
    assert starter.started == 1


async def test_the_idle_interval_allows_an_empty_block() -> None:
    starter = Starter()
    make(starter, interval_ms=10, idle_ms=60).rest(ready=False)
    await asyncio.sleep(0.03)
    assert starter.started == 0
    await asyncio.sleep(0.08)
    assert starter.started == 1


async def test_a_timer_of_a_passed_height_does_nothing() -> None:
    starter = Starter()
    cadence = make(starter, interval_ms=20)
    cadence.rest(ready=False)
    starter.height = 6  # a caught-up block moved the height meanwhile
    starter.work = True
    await asyncio.sleep(0.05)
    assert starter.started == 0


async def test_the_interval_counts_from_the_start_of_the_height_before() -> None:
    """A height that took longer than the interval to agree is followed at once (work
    pending); a quicker one once the interval since its start has passed, not a whole
    interval after its decision."""
    starter = Starter()
    cadence = make(starter, interval_ms=500)
    cadence.rest(ready=True)
    starter.work = True
    cadence.work_arrived()
    assert starter.started == 1  # height 6 began
    await asyncio.sleep(0.55)  # agreed in longer than the interval
    starter.height = 6
    cadence.rest(ready=False)
    assert starter.started == 2  # height 7 began at once
    began = time.monotonic()
    await asyncio.sleep(0.2)  # agreed quickly
    starter.height = 7
    decided = time.monotonic()
    cadence.rest(ready=False)
    assert starter.started == 2
    async with asyncio.timeout(2):
        while starter.started < 3:
            await asyncio.sleep(0.005)
    started = time.monotonic()
    assert started - began >= 0.5 - 0.01  # the interval since height 7 began
    assert started < decided + 0.5  # not a whole interval after its decision
