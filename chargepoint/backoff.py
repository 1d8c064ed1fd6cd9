"""Reconnect delays: exponential, capped, jittered so a fleet does not reconnect in step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay policy in wall seconds: ``initial * factor**attempt``, at most ``cap``.

    ``jitter`` is the fraction of each delay that is randomised: 0.5 gives a delay uniformly
    in [d/2, d] ("equal jitter"), so retries spread out yet never collapse to zero.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.cap < self.initial:
            raise ValueError("need 0 < initial <= cap and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    def delay(self, attempt: int, rand: float) -> float:
        """The wait before retry number ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        return base * (1 - self.jitter) + base * self.jitter * rand
