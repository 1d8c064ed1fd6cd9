from __future__ import annotations

from datetime import UTC, datetime

from chargepoint.offline_queue import OfflineQueue
from chargepoint.transaction import EventType, TriggerReason, TxEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(seq: int) -> TxEvent:
    return TxEvent(EventType.UPDATED, T0, TriggerReason.METER_VALUE_PERIODIC, seq, "tx", 1, 1)


def test_keeps_order_and_marks_offline_without_touching_seq_no() -> None:
    queue = OfflineQueue()
    queue.push(event(3), offline=True)
    queue.push(event(4), offline=False)
    assert [(e.seq_no, e.offline) for e in queue.pending()] == [(3, True), (4, False)]
    head = queue.pop()
    assert head.seq_no == 3
    queue.push(event(5), offline=False)
    queue.mark_offline()
    assert [(e.seq_no, e.offline) for e in queue.pending()] == [(4, True), (5, True)]
    assert queue.peek() == queue.pending()[0] and len(queue) == 2
