"""The one object each functional-block handler is given: who is talking and what it may use."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from csms.config import CsmsConfig
from csms.model import TransactionEventRecord
from csms.sample_limits import SampleLimit, limit_sampled_values
from csms.store.sqlite import CsmsStore
from csms.tariffs import Tariff
from csms.timeutil import Clock, format_timestamp

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CsmsServices:
    """Shared by every connection: storage, configuration, clock, tariff, and the wake-ups of
    the outbox and the dispatcher."""

    store: CsmsStore
    config: CsmsConfig
    clock: Clock
    tariff: Tariff | None = None  # prices running costs; settlement uses the same tariff
    settlement_written: Callable[[], None] | None = None  # wakes the outbox
    plan_due: Callable[[], None] | None = None  # wakes the dispatcher: an EV's needs to plan

    def now_text(self) -> str:
        return format_timestamp(self.clock())

    def sample_limit(self, *, tolerant: bool) -> SampleLimit:
        """The per-transaction sample limit (``csms.sample_limits``) for a station."""
        return SampleLimit(
            self.config.max_samples_per_transaction,
            self.config.max_sampled_values,
            tolerant,
        )

    async def record_event(
        self, record: TransactionEventRecord, *, tolerant: bool = False
    ) -> tuple[bool, int]:
        """Store a transaction event once: whether it was new, and the samples dropped past
        the per-transaction limit (tolerant stations; a strict one's event is refused).

        The running cost is kept with the event, priced with ``tariff``. A new Ended event
        may have written a settlement in the same database transaction: wake the outbox."""
        write = await self.store.store_transaction_event(
            record,
            self.now_text(),
            tariff=self.tariff,
            limit=self.sample_limit(tolerant=tolerant),
        )
        if write.is_new and record.event_type == "Ended" and self.settlement_written is not None:
            self.settlement_written()
        return write.is_new, write.dropped

    def wake_dispatcher(self) -> None:
        """A session to plan now: its EV stated its needs."""
        if self.plan_due is not None:
            self.plan_due()


@dataclass(frozen=True, slots=True)
class StationContext:
    """Per-connection context handed to handlers.

    ``tolerant``: the station's tolerance setting (``v2g stations set --tolerance``); what is
    repaired or dropped for a tolerant station is logged and counted in ``deviations`` (the
    server's per-station counter behind ``v2g_ocpp_tolerated_total``).
    """

    station_id: str
    services: CsmsServices
    tolerant: bool = False
    deviations: Counter[str] = field(default_factory=Counter)

    def tolerated(self, kind: str, detail: str) -> None:
        """Log and count one deviation tolerated for this station."""
        self.deviations[kind] += 1
        log.warning("%s: tolerated %s: %s", self.station_id, kind, detail)

    def limit_sampled_values(self, meter_values: Any, where: str) -> Any:
        """``meter_values`` held to ``max_sampled_values`` (``csms.sample_limits``): refused
        for a strict station, truncated (logged and counted) for a tolerant one."""
        limit = self.services.config.max_sampled_values
        kept, dropped = limit_sampled_values(meter_values, limit, tolerant=self.tolerant)
        if dropped:
            self.tolerated(
                "sampled_values_per_message",
                f"{where}: {dropped} sampled values past max_sampled_values ({limit}) dropped",
            )
        return kept

    async def record_event(self, record: TransactionEventRecord) -> bool:
        """Store a transaction event once (False for a duplicate), held to the station's
        per-transaction sample limit; samples dropped past it are logged and counted."""
        is_new, dropped = await self.services.record_event(record, tolerant=self.tolerant)
        if dropped:
            limit = self.services.config.max_samples_per_transaction
            self.tolerated(
                "samples_per_transaction",
                f"{record.event_type} seqNo {record.seq_no} of {record.transaction_id}:"
                f" {dropped} samples past max_samples_per_transaction ({limit}) dropped",
            )
        return is_new
