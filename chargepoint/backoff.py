"""Reconnect delays as OCPP 2.0.1 defines them, so a fleet does not come back in lockstep.

OCPP 2.0.1 (Part 2, "Reconnecting", OCPPCommCtrlr): the first reconnection attempt waits
``RetryBackOffWaitMinimum`` seconds plus a random part of at most ``RetryBackOffRandomRange``
seconds; after each failed attempt the wait doubles, at most ``RetryBackOffRepeatTimes``
times, with a new random part each time; after that it stays at the last wait.
"""

from __future__ import annotations

from dataclasses import dataclass

# Our factory values (the specification leaves them to the station): the first retry after
# 3 to 13 s, the longest wait 3 * 2**3 + 10 = 34 s.
RETRY_WAIT_MINIMUM = 3.0
RETRY_RANDOM_RANGE = 10.0
RETRY_REPEAT_TIMES = 3


@dataclass(frozen=True)
class Backoff:
    """``wait_minimum * 2**min(attempt, repeat_times) + random_range * rand`` wall seconds."""

    wait_minimum: float = RETRY_WAIT_MINIMUM  # RetryBackOffWaitMinimum
    random_range: float = RETRY_RANDOM_RANGE  # RetryBackOffRandomRange
    repeat_times: int = RETRY_REPEAT_TIMES  # RetryBackOffRepeatTimes

    def __post_init__(self) -> None:
        if self.wait_minimum < 0 or self.random_range < 0:
            raise ValueError("RetryBackOffWaitMinimum and RetryBackOffRandomRange must be >= 0")
        if not 0 <= self.repeat_times <= 32:
            raise ValueError("RetryBackOffRepeatTimes must be within 0..32")

    def delay(self, attempt: int, rand: float) -> float:
        """The wait before retry number ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
        doubled = self.wait_minimum * 2 ** min(max(attempt, 0), self.repeat_times)
        return doubled + self.random_range * rand

    @property
    def longest(self) -> float:
        """The longest wait this policy can draw (the back-off window of one retry)."""
        return self.wait_minimum * 2**self.repeat_times + self.random_range
