"""Keeping full garbage collections from stalling every station at once.

Each live connection holds a few hundred objects the cyclic collector tracks. With 10,000
stations a full (generation 2) collection walks millions of them and stops the event loop
for about a second, which every station sees as latency. Connections are long-lived, so
the server moves them out of the collector's sight (``gc.freeze``) after each growth of
the connection count, and hands them back (``gc.unfreeze``) once many have gone, so that
cycles left by closed connections are still collected.

``GcPacer`` is the decision (pure: counts in, an action out); ``apply`` does it.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from enum import Enum


class GcAction(Enum):
    FREEZE = "freeze"  # move every tracked object to the permanent generation
    UNFREEZE = "unfreeze"  # give them back to the oldest generation


@dataclass(slots=True)
class GcPacer:
    """Freeze when live connections grew by ``growth`` since the last freeze (and are at
    least ``minimum``); unfreeze when they fell below ``shrink`` of the frozen count."""

    minimum: int = 500
    growth: float = 1.05
    shrink: float = 0.75
    frozen_at: int = field(default=0, init=False)  # live connections at the last freeze

    def observe(self, live: int) -> GcAction | None:
        if self.frozen_at and live < self.frozen_at * self.shrink:
            self.frozen_at = 0
            return GcAction.UNFREEZE
        if live >= self.minimum and live >= max(self.frozen_at * self.growth, self.minimum):
            self.frozen_at = live
            return GcAction.FREEZE
        return None


def apply(action: GcAction | None) -> None:
    if action is GcAction.FREEZE:
        gc.freeze()
    elif action is GcAction.UNFREEZE:
        gc.unfreeze()
