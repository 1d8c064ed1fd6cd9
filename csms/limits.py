"""Per-station message limits, as pure state machines (time is passed in; no I/O).

Two mechanisms, because stations send in two ways:

- ``TokenBucket`` throttles: each CALL a station sends takes a token; tokens refill at ``rate``
  per second up to ``burst``. Without a token the frame waits for one, in order. A station that
  waits for each answer before sending the next CALL, as OCPP requires, is only ever slowed
  down, never refused: a backlog of stored events flushed on reconnect gets through.
- ``PendingLimit`` guards against floods: a station that keeps sending without waiting for
  answers piles up frames not yet answered. Past ``max_pending`` of them a frame is refused at
  once (CALLERROR "rate limited"); after ``disconnect_after`` refusals in a row the station is
  disconnected, while every other station carries on.
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
    """A throttle: ``reserve`` says how long to wait before handling the next frame."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate and burst must be positive")
        self.tokens = float(self.burst)

    def reserve(self, now: float) -> float:
        """Take a token for a frame at ``now``; the seconds to wait until it is due (0: now)."""
        if self._last is not None and now > self._last:
            self.tokens = min(float(self.burst), self.tokens + (now - self._last) * self.rate)
        self._last = now if self._last is None else max(self._last, now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass(slots=True)
class PendingLimit:
    """Refuses frames beyond ``max_pending`` unanswered ones; flags a flood to disconnect."""

    max_pending: int
    disconnect_after: int
    refused_in_a_row: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.max_pending < 1 or self.disconnect_after < 1:
            raise ValueError("max_pending and disconnect_after must be positive")

    def admit(self, pending: int) -> Verdict:
        """A frame arrives while ``pending`` earlier frames are still unanswered."""
        if pending < self.max_pending:
            self.refused_in_a_row = 0
            return Verdict.ACCEPT
        self.refused_in_a_row += 1
        if self.refused_in_a_row >= self.disconnect_after:
            return Verdict.DISCONNECT
        return Verdict.LIMIT
