"""The one object each functional-block handler is given: who is talking and what it may use."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from csms.config import CsmsConfig
from csms.limits import TokenBucket
from csms.model import TransactionEventRecord
from csms.pruning import PruneLog
from csms.sample_limits import SampleLimit, limit_sampled_values
from csms.sent_profiles import SentProfiles
from csms.store.events import EventWrite
from csms.store.retention import CONNECTION_LOG, Kind
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
    # process-wide counts of what the CSMS learned of stations' EVSEs (csms.evse_discovery):
    # outcome -> count, for /metrics (v2g_evse_discovery_total)
    discovery: Counter[str] = field(default_factory=Counter)
    discovery_pace: TokenBucket | None = None  # evse_discovery_per_s, made at first use
    pruning: PruneLog = field(default_factory=PruneLog)  # rows removed past the keep_* caps

    def now_text(self) -> str:
        return format_timestamp(self.clock())

    def keep(self, kind: Kind) -> int:
        """How many rows of ``kind`` each station keeps (config ``keep_<kind>``)."""
        return int(getattr(self.config, f"keep_{kind.name}"))

    async def log_connection(self, station_id: str, event: str, detail: str | None = None) -> None:
        """One entry of the station's connection log, now (``keep_connection_log`` kept)."""
        removed = await self.store.log_connection(
            station_id, event, self.now_text(), detail, keep=self.keep(CONNECTION_LOG)
        )
        self.pruned(station_id, CONNECTION_LOG, removed)

    def connector_refused(self, station_id: str, evse_id: int, connector_id: int) -> None:
        """Count (and log, once per station and hour) a status of a connector past
        ``max_connectors_per_station``, not stored."""
        most = self.config.max_connectors_per_station
        self.pruning.note(
            station_id,
            "connector_status",
            1,
            most,
            self.clock().timestamp(),
            setting="max_connectors_per_station",
            what=f"connector statuses not stored (the last: EVSE {evse_id} connector"
            f" {connector_id})",
        )

    def pruned(self, station_id: str, kind: Kind, removed: int) -> None:
        """Count (and log, once per station and hour) rows removed past ``keep_<kind>``."""
        self.pruning.note(station_id, kind.name, removed, self.keep(kind), self.clock().timestamp())

    def sample_limit(self, *, tolerant: bool) -> SampleLimit:
        """The per-transaction sample limit (``csms.sample_limits``) for a station."""
        return SampleLimit(
            self.config.max_samples_per_transaction,
            self.config.max_sampled_values,
            tolerant,
            self.config.max_events_per_transaction,
        )

    async def record_event(
        self, record: TransactionEventRecord, *, tolerant: bool = False
    ) -> EventWrite:
        """Store a transaction event once: whether it was new, the samples dropped past the
        per-transaction limit, and whether it was not stored past the events limit (tolerant
        stations; a strict one's event is refused).

        The running cost is kept with the event, priced with ``tariff``. A new Ended event
        may have written a settlement in the same database transaction: wake the outbox, unless
        the store handed that settlement to the outbox as it was written."""
        write = await self.store.store_transaction_event(
            record,
            self.now_text(),
            tariff=self.tariff,
            limit=self.sample_limit(tolerant=tolerant),
        )
        if (
            write.is_new
            and record.event_type == "Ended"
            and self.settlement_written is not None
            and self.store.handoff is None  # else handed to the outbox as written
        ):
            self.settlement_written()
        return write

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
    # NotifyReport parts received per requestId on this connection (bounded: see
    # ``csms.blocks.provisioning``)
    report_parts: dict[int, int] = field(default_factory=dict)
    # the charging profiles the station accepted on this connection (``csms.sent_profiles``)
    sent_profiles: SentProfiles = field(default_factory=SentProfiles)

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

    def events_past_limit(self, transaction_id: str, what: str) -> None:
        """Log and count a tolerant station's event not stored past the events limit."""
        limit = self.services.config.max_events_per_transaction
        self.tolerated(
            "events_per_transaction",
            f"{what} of {transaction_id} not stored: past max_events_per_transaction ({limit})",
        )

    async def record_event(self, record: TransactionEventRecord) -> bool:
        """Store a transaction event once (False for a duplicate), held to the station's
        per-transaction sample limit; samples dropped past it are logged and counted."""
        write = await self.services.record_event(record, tolerant=self.tolerant)
        is_new, dropped = write.is_new, write.dropped
        if write.skipped:
            self.events_past_limit(record.transaction_id, f"seqNo {record.seq_no}")
        if dropped:
            limit = self.services.config.max_samples_per_transaction
            self.tolerated(
                "samples_per_transaction",
                f"{record.event_type} seqNo {record.seq_no} of {record.transaction_id}:"
                f" {dropped} samples past max_samples_per_transaction ({limit}) dropped",
            )
        return is_new
