"""A validator process collects a tick's objects at a time and freezes the survivors."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from ledger.consensus.gc_ticks import IDLE_TICK_S, MIN_NEW, TICK_S, GcTicks, run_gc_ticks
from ledger.gc_freeze import GcAction


def test_work_arriving_freezes_every_tick_and_idle_looks_once_a_second() -> None:
    ticks = GcTicks()
    assert ticks.interval() == IDLE_TICK_S
    assert ticks.decide(MIN_NEW, 0.0) is GcAction.FREEZE
    assert ticks.interval() == TICK_S
    assert ticks.decide(MIN_NEW - 1, 0.1) is None  # too few new objects: nothing to walk
    assert ticks.interval() == IDLE_TICK_S
    assert (ticks.freezes, ticks.full_collections) == (1, 0)


def test_a_full_collection_comes_once_an_interval_and_only_after_a_freeze() -> None:
    ticks = GcTicks(full_interval=100.0)
    assert ticks.decide(0, 0.0) is None
    assert ticks.decide(0, 150.0) is None  # nothing frozen: nothing a FULL could find
    assert ticks.decide(MIN_NEW, 160.0) is GcAction.FREEZE
    assert ticks.decide(MIN_NEW, 160.1) is GcAction.FULL  # 100 s since the first look
    assert ticks.decide(MIN_NEW, 160.2) is GcAction.FREEZE
    assert ticks.decide(MIN_NEW, 200.0) is GcAction.FREEZE  # not again within 100 s
    assert ticks.decide(0, 260.1) is GcAction.FULL
    assert ticks.full_collections == 2


class Node:
    """A tracked object that can be weakly referred to."""

    def __init__(self) -> None:
        self.other: Node | None = None


async def test_survivors_are_frozen_with_the_collector_off_and_a_full_finds_their_cycles(
    restore_gc: None,
) -> None:
    ticks = GcTicks(min_new=100, full_interval=2.0, tick_s=0.02, idle_tick_s=0.02)
    task = asyncio.create_task(run_gc_ticks(ticks))
    await asyncio.sleep(0)
    assert not gc.isenabled()  # the ticks collect; the automatic collector would walk again
    start = gc.get_freeze_count()

    kept = [{"n": [i]} for i in range(5_000)]  # survivors: frozen by the next tick
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle, frozen while alive
    gone = weakref.ref(a)
    for _ in range(50):
        await asyncio.sleep(0.02)
        if ticks.freezes and gc.get_freeze_count() >= start + len(kept):
            break
    assert gc.get_freeze_count() >= start + len(kept)
    del a, b  # garbage now, but frozen: only a FULL collection looks at it
    await asyncio.sleep(0.1)
    assert gone() is not None and ticks.full_collections == 0

    for _ in range(200):  # the FULL, 2 s after the first look
        await asyncio.sleep(0.02)
        if gone() is None:
            break
    assert gone() is None and ticks.full_collections >= 1

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.isenabled()  # as it was before
