"""Keeping garbage collections short while thousands of stations are connected.

CPython's cyclic collector stops the event loop for as long as it walks the objects it
looks at. Two things made those walks long with thousands of connections:

- A full (generation 2) collection walks every live object: about a second at 10,000
  stations (each connection holds a few hundred).
- Even the young collections grew with the fleet. Each message a station sends replaces
  the objects its connection waits on (its reader's coroutines, futures, the frame parser),
  and those die only at the station's next message, seconds later. The collector counts
  allocations minus deallocations of *any* age, so the old ones dying hold the count down
  while the new ones pile up in generation 0: at 5,000 stations a "young" collection walked
  100,000 objects (90-130 ms).

So, while at least ``minimum`` stations are connected, the server collects what was made
since the last tick and freezes the survivors (``gc.freeze``: out of the collector's sight)
every ``TICK_S``; each collection then walks only the objects of one tick. During a
handshake ramp (500 a second) a tick of 0.25 s made 40-100 ms collections; at 0.1 s one
walks the objects of 50 handshakes. ``v2g csms`` also freezes its start-up heap (modules,
schemas: 85,000 objects), which no collection needs to walk again.

Frozen objects are still freed by their reference counts, but cycles among them are
collected only by a FULL collection (everything given back and collected once: a walk of
the whole heap, about 0.1 s per 1,000 connections). A station's messages leave no cycles
behind them (measured: none in 250 heartbeats), and neither does a closed connection
(``csms.ws_connection`` breaks the two it used to leave, about 80 objects a connection).
So the FULL is only a safety net for cycles left elsewhere, and it stays a long pause even
once the connections are gone (the heap of a 5,000-station registry and the start-up
heap: 260 ms at 5,000, collecting about one object a connection). It runs once the
connections closed since the last one exceed ``garbage_share`` times the most that were
live meanwhile (and ``minimum``), at most once per ``min_interval`` seconds: not after a
mass disconnect, but after the fleet has turned over ``garbage_share`` times.

While the ticks run, the automatic collector is off: its own young collections walked the
same objects again between two ticks (20-40 ms each during a mass disconnect at 5,000).
Once fewer than ``minimum / 2`` connections have been live for ``linger`` seconds, the ticks
stop and normal collections take over. The linger covers the tail of a mass disconnect:
the closed connections' handlers finish for a second or more after the connections are
counted gone, and without the ticks the automatic collections came back in the middle of it
(young collections of 25-42 ms at 5,000, beside passes already busy with the handlers).

Far below ``minimum`` (a quarter of it) and with the ticks stopped, the counts are looked at
once a second instead of every tick: a ramp reaches the minimum a second later at most.

``GcPacer`` is the decision (pure: counts and a clock in, an action out); ``apply``
(``ledger.gc_freeze``, shared with a validator process) does it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field

from ledger.gc_freeze import GcAction, apply, freeze_start_up_heap

__all__ = [
    "IDLE_TICK_S",
    "TICK_S",
    "AutomaticCollector",
    "GcAction",
    "GcPacer",
    "apply",
    "freeze_start_up_heap",
]

TICK_S = 0.1  # how often the objects made since the last tick are collected and frozen
IDLE_TICK_S = 1.0  # how often the counts are looked at while far below ``minimum`` (no ticks)


@dataclass(slots=True)
class GcPacer:
    """``decide(live, now)`` once a tick; ``closed()`` whenever a connection ends."""

    minimum: int = 200
    garbage_share: float = 4.0  # closed connections per most live ones that call for a FULL
    min_interval: float = 60.0  # seconds between FULLs (a mass disconnect pays one)
    linger: float = 5.0  # seconds below minimum / 2 live before the ticks stop
    active: bool = field(default=False, init=False)  # freezing each tick
    quiet_since: float | None = field(default=None, init=False)  # below minimum / 2 since
    closed_since_full: int = field(default=0, init=False)
    peak: int = field(default=0, init=False)  # most live connections since the last FULL
    last_full: float | None = field(default=None, init=False)
    full_collections: int = field(default=0, init=False)

    def closed(self) -> None:
        self.closed_since_full += 1

    def interval(self, live: int) -> float:
        """Seconds to the next ``decide``: a tick while the ticks run or ``live`` nears
        ``minimum``; otherwise a look once a second (an idle CSMS wakes for little)."""
        return TICK_S if self.active or live >= self.minimum // 4 else IDLE_TICK_S

    def decide(self, live: int, now: float) -> GcAction | None:
        if live >= self.minimum // 2:
            self.quiet_since = None
            self.active = self.active or live >= self.minimum
        elif self.quiet_since is None:
            self.quiet_since = now
        elif now - self.quiet_since >= self.linger:
            self.active = False
        recent = self.last_full is not None and now - self.last_full < self.min_interval
        self.peak = max(self.peak, live)
        garbage = max(self.minimum, self.garbage_share * self.peak)
        if self.closed_since_full >= garbage and not recent:
            self.closed_since_full, self.peak = 0, live
            self.last_full = now
            self.full_collections += 1
            return GcAction.FULL
        return GcAction.FREEZE if self.active else None


class AutomaticCollector:
    """Turns the automatic collector off while the ticks run, and back on after them."""

    def __init__(self) -> None:
        self.held = False  # this pacer turned it off

    def follow(self, ticking: bool) -> None:
        if ticking and not self.held and gc.isenabled():
            gc.disable()
            self.held = True
        elif not ticking:
            self.release()

    def release(self) -> None:
        if self.held:
            gc.enable()
            self.held = False
