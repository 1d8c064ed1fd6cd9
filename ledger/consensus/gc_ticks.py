"""Garbage collection in a ``v2g validator`` process: the objects of one tick at a time.

A validator keeps the transactions it checked (``ledger.checked``: up to 200,000 records of
a few containers each) and the ledger state, which grows with every settlement: data
without cycles, which CPython's automatic collector nevertheless walked whole in every
full collection, one each time the surviving objects had grown by a quarter. In a
10,000-settlement run (``bench.bench_ledger_commit``) each validator spent 350-390 ms of its
5.2 s of CPU in collections, the full ones stopping consensus for 55-120 ms; a validator
that has run for weeks holds many times that heap, and each full walk grows with it.

So while work arrives (``MIN_NEW`` or more objects made, less those freed, since the last
collection), every ``TICK_S`` the objects made since the last tick are collected and the
survivors frozen (``ledger.gc_freeze``), with the automatic collector off: each walk covers
one tick's objects. Idle, it looks every ``IDLE_TICK_S`` and collects nothing. Cycles that become
garbage once frozen (an exception's traceback, a closed connection's) are collected by a
FULL collection every ``FULL_INTERVAL_S`` when anything was frozen meanwhile. In the same
run, a validator then spent 150-180 ms in collections (most of it walking each surviving
object once), none longer than about 40 ms (start-up's).

Embedded validators run in the CSMS process, whose own pacer (``csms.gc_pacing``) decides.
``GcTicks`` is the decision (pure: a count and a clock in, an action out).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field

from ledger.gc_freeze import GcAction, apply

log = logging.getLogger(__name__)

TICK_S = 0.1  # how often, while work arrives, the objects made since the last tick are frozen
IDLE_TICK_S = 1.0  # how often an idle validator looks
MIN_NEW = 200  # objects made (less those freed) since the last look: work arriving
FULL_INTERVAL_S = 1800.0  # a FULL collection at most this often (and only after a freeze)


@dataclass(slots=True)
class GcTicks:
    """``decide(new_objects, now)`` once every ``interval()`` seconds."""

    min_new: int = MIN_NEW
    full_interval: float = FULL_INTERVAL_S
    tick_s: float = TICK_S
    idle_tick_s: float = IDLE_TICK_S
    busy: bool = field(default=False, init=False)  # the last look found work: tick fast
    last_full: float | None = field(default=None, init=False)  # or the first look
    froze_since_full: bool = field(default=False, init=False)
    freezes: int = field(default=0, init=False)
    full_collections: int = field(default=0, init=False)

    def interval(self) -> float:
        return self.tick_s if self.busy else self.idle_tick_s

    def decide(self, new_objects: int, now: float) -> GcAction | None:
        """The action for a look that found ``new_objects`` made since the last collection."""
        if self.last_full is None:
            self.last_full = now
        if self.froze_since_full and now - self.last_full >= self.full_interval:
            self.froze_since_full, self.last_full = False, now
            self.full_collections += 1
            return GcAction.FULL
        self.busy = new_objects >= self.min_new
        if not self.busy:
            return None
        self.froze_since_full = True
        self.freezes += 1
        return GcAction.FREEZE


async def run_gc_ticks(ticks: GcTicks) -> None:
    """Collect on ``ticks``' schedule until cancelled; the automatic collector is off
    meanwhile (and as it was again after). The caller freezes the start-up heap first
    (``ledger.gc_freeze.freeze_start_up_heap``), before the process serves anyone."""
    loop = asyncio.get_running_loop()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            await asyncio.sleep(ticks.interval())
            # tracked objects made less those freed since the last collection (none runs
            # between two looks: the automatic collector is off)
            action = ticks.decide(gc.get_count()[0], loop.time())
            began = loop.time()
            apply(action)
            if action is GcAction.FULL:
                log.info("gc: full collection took %.0f ms", (loop.time() - began) * 1000)
    finally:
        if was_enabled:
            gc.enable()
