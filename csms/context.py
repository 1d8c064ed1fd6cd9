"""The one object each functional-block handler is given: who is talking and what it may use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from csms.config import CsmsConfig
from csms.model import TransactionEventRecord
from csms.store.sqlite import CsmsStore
from csms.tariffs import Tariff
from csms.timeutil import Clock, format_timestamp

# Called after a TransactionEvent was stored for the first time (settlement hooks in here).
TransactionListener = Callable[[TransactionEventRecord], Awaitable[None]]


@dataclass(slots=True)
class CsmsServices:
    """Shared by every connection: storage, configuration, clock and event listeners."""

    store: CsmsStore
    config: CsmsConfig
    clock: Clock
    transaction_listeners: list[TransactionListener] = field(default_factory=list)
    tariff: Tariff | None = None  # prices running costs; settlement uses the same tariff
    settlement_written: Callable[[], None] | None = None  # wakes the outbox

    def now_text(self) -> str:
        return format_timestamp(self.clock())


@dataclass(frozen=True, slots=True)
class StationContext:
    """Per-connection context handed to handlers."""

    station_id: str
    services: CsmsServices
