"""The one object each functional-block handler is given: who is talking and what it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from csms.config import CsmsConfig
from csms.model import TransactionEventRecord
from csms.running import RunningCosts
from csms.store.sqlite import CsmsStore
from csms.tariffs import Tariff
from csms.timeutil import Clock, format_timestamp


@dataclass(slots=True)
class CsmsServices:
    """Shared by every connection: storage, configuration, clock, tariff and outbox wake-up."""

    store: CsmsStore
    config: CsmsConfig
    clock: Clock
    tariff: Tariff | None = None  # prices running costs; settlement uses the same tariff
    settlement_written: Callable[[], None] | None = None  # wakes the outbox
    running_costs: RunningCosts = field(default_factory=RunningCosts)

    def now_text(self) -> str:
        return format_timestamp(self.clock())

    async def record_event(self, record: TransactionEventRecord) -> bool:
        """Store a transaction event once (False for a duplicate); a new Ended event may
        have written a settlement in the same database transaction, so wake the outbox."""
        is_new = await self.store.record_transaction_event(record, self.now_text())
        if is_new and record.event_type == "Ended" and self.settlement_written is not None:
            self.settlement_written()
        return is_new


@dataclass(frozen=True, slots=True)
class StationContext:
    """Per-connection context handed to handlers."""

    station_id: str
    services: CsmsServices
