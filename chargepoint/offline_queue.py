"""TransactionEvents the CSMS has not acknowledged yet, kept in the order they were produced.

Events produced while disconnected, or whose send failed, wait here with ``offline=true``
and are replayed after reconnect, seqNo unchanged, before any newer event (OCPP E04).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from chargepoint.transaction import TxEvent


class OfflineQueue:
    """A FIFO of unsent TransactionEvents (in memory: a power cut loses it, like a RAM buffer)."""

    def __init__(self) -> None:
        self._events: deque[TxEvent] = deque()

    def __len__(self) -> int:
        return len(self._events)

    def push(self, event: TxEvent, *, offline: bool) -> None:
        """Queue ``event`` at the back; ``offline`` marks it as produced or failed while offline."""
        self._events.append(replace(event, offline=True) if offline else event)

    def mark_offline(self) -> None:
        """A send failed: everything waiting is now delayed, so all of it replays as offline."""
        self._events = deque(replace(e, offline=True) for e in self._events)

    def peek(self) -> TxEvent | None:
        """The oldest waiting event, or None."""
        return self._events[0] if self._events else None

    def pop(self) -> TxEvent:
        """Remove the oldest event once the CSMS acknowledged it."""
        return self._events.popleft()

    def pending(self) -> tuple[TxEvent, ...]:
        """A snapshot, oldest first."""
        return tuple(self._events)
