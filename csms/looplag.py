"""Event-loop lag: how late a short periodic sleep wakes up, as a histogram for ``/metrics``.

Any callback that holds the loop (a synchronous hash, a big JSON parse, a full GC) shows up
here as lag; ``max_seconds`` is the worst stall seen since start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

INTERVAL = 0.05
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class LagHistogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LAG_BUCKETS))
    count: int = 0
    total: float = 0.0
    max_seconds: float = 0.0

    def observe(self, lag: float) -> None:
        self.count += 1
        self.total += lag
        self.max_seconds = max(self.max_seconds, lag)
        for i, bound in enumerate(LAG_BUCKETS):
            if lag <= bound:
                self.buckets[i] += 1


class LoopLagMonitor:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.histogram = LagHistogram()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.histogram.observe(max(0.0, time.perf_counter() - before - self.interval))


def render_lag(h: LagHistogram) -> list[str]:
    name = "v2g_event_loop_lag_seconds"
    lines = [
        f"# HELP {name} How late a {INTERVAL:g} s timer on the CSMS event loop fired.",
        f"# TYPE {name} histogram",
    ]
    for bound, n in zip(LAG_BUCKETS, h.buckets, strict=True):
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {n}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {h.count}')
    lines.append(f"{name}_sum {h.total:.6f}")
    lines.append(f"{name}_count {h.count}")
    lines.append("# HELP v2g_event_loop_lag_max_seconds Worst event-loop stall since start.")
    lines.append("# TYPE v2g_event_loop_lag_max_seconds gauge")
    lines.append(f"v2g_event_loop_lag_max_seconds {h.max_seconds:.6f}")
    return lines
