"""Per-station message rate limit: a token bucket with a flood detector, no I/O, no clock.

Every received frame takes a token; tokens refill at ``rate`` per second up to ``burst``.
A frame without a token is rate limited (answered with a CALLERROR). A station whose limited
frames keep coming without the bucket ever refilling completely is flooding: after
``disconnect_after`` such frames in a row, the caller closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    ACCEPT = "accept"
    LIMIT = "limit"  # answer with a CALLERROR, keep the connection
    DISCONNECT = "disconnect"  # the station keeps flooding: close the connection


@dataclass(slots=True)
class TokenBucket:
    """Time is passed in (seconds, monotonic), so the bucket is a pure state machine."""

    rate: float
    burst: int
    disconnect_after: int
    tokens: float = field(init=False)
    limited_in_a_row: int = field(default=0, init=False)
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.disconnect_after < 1:
            raise ValueError("rate, burst and disconnect_after must be positive")
        self.tokens = float(self.burst)

    def take(self, now: float) -> Verdict:
        """Account for one frame received at ``now``."""
        if self._last is not None and now > self._last:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate)
        self._last = now if self._last is None else max(self._last, now)
        if self.tokens >= self.burst:
            self.limited_in_a_row = 0  # quiet long enough: a past flood is forgiven
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return Verdict.ACCEPT
        self.limited_in_a_row += 1
        if self.limited_in_a_row >= self.disconnect_after:
            return Verdict.DISCONNECT
        return Verdict.LIMIT
