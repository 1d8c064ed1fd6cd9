"""What the API routes and the pages both do: read the review model, act on stations, credit.

Routes stay thin: they authenticate, convert, call one method here, render.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from csms.corrections import CorrectionError, build_credit
from csms.credentials import is_pending
from csms.dispatch_limits import discharge_summary
from csms.errors import OcppCallError, RegistryError, StationCallError, StationNotConnected
from csms.evidence import MeterKeyError, key_fingerprint, parse_public_key
from csms.model import SettlementRecord
from csms.operators import Operator
from csms.remote_calls import RemoteCallsBusy
from csms.review import (
    SAMPLE_PAGE,
    RowPage,
    SessionDetail,
    SessionFilter,
    SessionRow,
    iter_rows,
    load_detail,
    load_page,
)
from csms.service import OperatorCall
from csms.settling import SettlementOutcome
from csms.store.charging_needs import ChargingNeedsStore
from csms.store.leases import live_leases
from csms.store.session_list import Cursor
from csms.store.station_events import StationEvent, StationEventsStore
from csms.store.station_overview import OpenTransaction, StationBatch
from csms.timeutil import format_timestamp, parse_timestamp
from csms.web.chain import ChainStatus, DataDirLedger
from csms.web.chart import SocMarks
from csms.web.deps import ReviewDeps
from csms.web.errors import BadRequest, Busy, Conflict, NotFound, Upstream

log = logging.getLogger(__name__)
NEEDS_SLACK = timedelta(minutes=5)
STATIONS_PAGE = 100  # stations in a page of /api/stations and /stations unless asked otherwise


def _moment(text: str | None) -> datetime | None:
    try:
        return parse_timestamp(text) if text else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StationView:
    station_id: str
    connected: bool
    ocpp_version: str | None
    last_heartbeat: str | None
    last_boot_at: str | None
    vendor: str | None
    model: str | None
    connectors: tuple[tuple[int, int, str], ...]
    clock_skew_s: float | None = None  # station clock minus CSMS clock, recent median
    discharge: str = ""  # what the dispatcher may ask of it, and why (csms.dispatch_limits)
    last_ocpp_version: str | None = None  # the subprotocol of its last connection
    tolerance: str = "strict"
    security_profile: int | None = None  # its own; None: the CSMS's
    csms_security_profile: int | None = None  # the CSMS's (None in a read-only view)
    meter_key_sha256: str | None = None  # SHA-256 of the key's DER, as settlements carry it
    meter_key_problem: str | None = None  # a stored key that cannot be read
    session_count: int = 0
    open_transactions: tuple[OpenTransaction, ...] = ()
    auth_failures: int = 0  # failed or refused handshakes since the CSMS started
    auth_held_s: int = 0  # seconds its id is still refused from addresses that failed
    process: str | None = None  # the CSMS process holding its connection (PostgreSQL only)
    password_pending: bool = False  # imported, no scrypt hash made yet (csms.pending_hash)


def meter_key_summary(meter_key: str | None) -> tuple[str | None, str | None]:
    """(fingerprint, problem) of a registered meter key; (None, None) when there is none."""
    if meter_key is None:
        return None, None
    try:
        return key_fingerprint(parse_public_key(meter_key)), None
    except MeterKeyError as exc:
        return None, str(exc)


@dataclass(frozen=True, slots=True)
class BlockView:
    """A ledger block as the CSMS knows it: the settlements it committed there.

    ``time_ms`` and ``tx_count`` come from a stored receipt's header (None before one is fetched).
    """

    height: int
    block_hash: str | None
    time_ms: int | None
    tx_count: int | None
    settlements: tuple[SettlementRecord, ...]


def block_views(records: Iterable[SettlementRecord]) -> list[BlockView]:
    """The committed settlements grouped by block, newest block first, in transaction order."""
    by_height: dict[int, list[SettlementRecord]] = {}
    for record in records:
        if record.block_height is not None:
            by_height.setdefault(record.block_height, []).append(record)
    views = []
    for height in sorted(by_height, reverse=True):
        held = sorted(by_height[height], key=lambda r: (r.tx_index is None, r.tx_index or 0))
        header: dict[str, Any] = {}
        count = None
        for record in held:
            try:
                receipt = json.loads(record.receipt or "null")
            except ValueError:
                continue
            if isinstance(receipt, dict) and isinstance(receipt.get("header"), dict):
                header, count = receipt["header"], receipt.get("tx_count")
                break
        time_ms = header.get("time")
        views.append(
            BlockView(
                height=height,
                block_hash=next((r.block_hash for r in held if r.block_hash), None),
                time_ms=time_ms if isinstance(time_ms, int) else None,
                tx_count=count if isinstance(count, int) else None,
                settlements=tuple(held),
            )
        )
    return views


class ReviewService:
    def __init__(self, deps: ReviewDeps) -> None:
        self.deps = deps
        self._data_ledger = DataDirLedger(deps.ledger_dir or deps.data_dir)

    async def sessions(
        self,
        wanted: SessionFilter | None = None,
        *,
        limit: int,
        after: Cursor | None = None,
        offset: int = 0,
    ) -> RowPage:
        """One page of the sessions passing ``wanted``, newest first."""
        return await load_page(self.deps.store, wanted, limit=limit, after=after, offset=offset)

    def all_sessions(
        self, wanted: SessionFilter | None = None
    ) -> AsyncIterator[tuple[SessionRow, ...]]:
        """Every session passing ``wanted``, a page at a time (the CSV export)."""
        return iter_rows(self.deps.store, wanted)

    async def session(
        self, review_id: str, *, offset: int = 0, limit: int = SAMPLE_PAGE
    ) -> SessionDetail:
        detail = await load_detail(self.deps.store, review_id, offset=offset, limit=limit)
        if detail is None:
            raise NotFound(f"no session or settlement {review_id!r}")
        return detail

    async def soc_marks(self, detail: SessionDetail) -> SocMarks:
        """The target SoC and departure the session's EV reported, and the dispatcher's reserve.

        The EV's needs are the last it stated on the session's EVSE from shortly before the
        session's start (``NEEDS_SLACK``: they may beat the transaction's own start) to its end.
        """
        row = detail.row
        needs = None
        start = _moment(row.started_at)
        if row.evse_id is not None and start is not None:
            needs = await ChargingNeedsStore(self.deps.store).for_session(
                row.station_id, row.evse_id, start - NEEDS_SLACK, _moment(row.ended_at)
            )
        departure = _moment(needs.departure_time) if needs is not None else None
        return SocMarks(
            target_pct=None if needs is None or needs.target_soc is None else needs.target_soc,
            reserve_pct=self.deps.reserve_soc_pct,
            departure=departure,
            target_energy_wh=None if needs is None else needs.target_energy_wh,
        )

    async def receipt(self, review_id: str) -> dict[str, Any]:
        detail = await self.session(review_id)
        record = detail.settlement
        if review_id != detail.row.id:  # a credit's own receipt
            record = await self.deps.store.get_settlement(review_id)
        if record is None or record.receipt is None:
            raise NotFound(f"{review_id!r} has no ledger receipt yet (not committed)")
        document = json.loads(record.receipt)
        if not isinstance(document, dict) or not document:
            raise NotFound(f"{review_id!r}: committed, its receipt is not fetched yet")
        return document

    async def chain(self, *, verify: bool = True, full: bool = False) -> ChainStatus:
        """The ledger's status: from the app's ledger if it has one, else the data dir's."""
        if self.deps.ledger_status is not None:
            return await self.deps.ledger_status()
        return await self._data_ledger.status(verify=verify, full=full)

    async def settlement_counts(self) -> dict[str, int]:
        counts = await self.deps.store.settlement_counts()
        return {
            status: counts.get(status, 0)
            for status in ("pending", "committed", "flagged", "rejected")
        }

    async def blocks(self, limit: int) -> tuple[list[BlockView], int]:
        """The newest ``limit`` blocks holding settlements of this CSMS, newest first, and how
        many blocks hold any."""
        store = self.deps.store
        heights, total = await store.settlement_blocks(limit)
        return block_views(await store.settlements_in_blocks(heights)), total

    async def block(self, height: int) -> BlockView:
        found = block_views(await self.deps.store.settlements_in_blocks([height]))
        if not found:
            raise NotFound(f"block {height} holds no settlement of this CSMS")
        return found[0]

    async def stations(
        self, *, limit: int = STATIONS_PAGE, after: str | None = None
    ) -> tuple[list[StationView], str | None]:
        """One page of registered stations by id (after ``after``), and the id the next page
        starts after (None: the last page). On PostgreSQL the whole fleet, whichever CSMS
        process holds each station's connection (``csms.cluster``), read from the live leases.
        A few queries for the whole page (``csms.store.station_overview.StationBatch``)."""
        store = self.deps.store
        shared = store.dialect.name == "postgresql"
        batch = StationBatch(store)
        stations = await batch.page(after=after, limit=limit + 1)
        more = len(stations) > limit
        stations = stations[:limit]
        ids = [s.station_id for s in stations]
        leases = await live_leases(store, ids)
        connected: dict[str, str] = {}
        if shared:
            connected = {station_id: lease.subprotocol for station_id, lease in leases.items()}
        elif self.deps.stations is not None:
            live = set(self.deps.stations.connected())
            for station_id in ids:
                if station_id not in live:
                    continue
                try:
                    connected[station_id] = self.deps.stations.ocpp_version(station_id)
                except StationNotConnected:
                    pass
        facts = await batch.facts(ids)
        server = self.deps.server
        csms_profile = server.services.config.security_profile if server is not None else None
        views = []
        for station in stations:
            known = facts[station.station_id]
            statuses = known.connectors
            if shared or self.deps.stations is not None:
                online = station.station_id in connected
            else:  # a read-only view of a SQLite file: the connection log's last word
                online = known.last_event == "connected"
            if not online:  # nobody knows what a disconnected station's connectors do now
                statuses = dict.fromkeys(statuses, "Unknown")
            fingerprint, key_problem = meter_key_summary(station.meter_key)
            failures, held = (
                server.auth_standing(station.station_id) if server is not None else (0, 0)
            )
            views.append(
                StationView(
                    station_id=station.station_id,
                    connected=online,
                    ocpp_version=connected.get(station.station_id),
                    last_heartbeat=station.last_seen_at,
                    last_boot_at=station.last_boot_at,
                    vendor=station.vendor,
                    model=station.model,
                    connectors=tuple((e, c, s) for (e, c), s in sorted(statuses.items())),
                    clock_skew_s=known.clock_skew_s,
                    discharge=discharge_summary(
                        connected.get(station.station_id), known.caps, known.evse_facts
                    ),
                    last_ocpp_version=known.last_protocol,
                    tolerance=station.tolerance,
                    security_profile=station.security_profile,
                    csms_security_profile=csms_profile,
                    meter_key_sha256=fingerprint,
                    meter_key_problem=key_problem,
                    session_count=known.session_count,
                    open_transactions=known.open_transactions,
                    auth_failures=failures,
                    auth_held_s=held,
                    password_pending=is_pending(station.password_hash),
                    process=leases[station.station_id].process
                    if station.station_id in leases
                    else None,
                )
            )
        return views, (ids[-1] if more and ids else None)

    async def station_events(
        self, station_id: str, *, limit: int, action: str | None = None
    ) -> list[StationEvent]:
        """What the station reported beyond transactions (NotifyEvent, limits, DER, ...),
        newest first; 404 for a station not registered."""
        if await self.deps.store.get_station(station_id) is None:
            raise NotFound(f"station {station_id!r} is not registered")
        events = StationEventsStore(self.deps.store)
        return await events.latest(station_id, limit=limit, action=action)

    # -- actions (operators only; the routes check the role) ------------------------------

    def _live(self) -> Any:
        if self.deps.stations is None:
            raise Conflict(
                "this is a read-only view of a data dir: actions need the running CSMS (v2g csms)"
            )
        return self.deps.stations

    async def act(
        self, operator: Operator, station_id: str, action: str, **kwargs: Any
    ) -> dict[str, Any]:
        stations = self._live()
        log.info("%s asks %s of %s %s", operator.name, action, station_id, kwargs)
        try:
            if action == "start":
                return dict(await stations.request_start_transaction(station_id, **kwargs))
            if action == "stop":
                return dict(await stations.request_stop_transaction(station_id, **kwargs))
            if action == "reset":
                return dict(await stations.reset(station_id, **kwargs))
        except StationNotConnected as exc:
            raise Conflict(str(exc)) from None
        except RemoteCallsBusy as exc:
            raise Busy(str(exc)) from None
        except StationCallError as exc:  # a CALLERROR or no answer in time
            raise Upstream(f"{station_id}: {exc}") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        raise BadRequest(f"unknown action {action!r}")

    async def ocpp_call(
        self, operator: Operator, station_id: str, action: str, request: dict[str, Any]
    ) -> OperatorCall:
        """Any message an operator may send (``csms.operator_calls``), schema-checked."""
        stations = self._live()
        log.info("%s sends %s to %s", operator.name, action, station_id)
        try:
            return await stations.operator_call(station_id, action, request)
        except StationNotConnected as exc:
            raise Conflict(str(exc)) from None
        except RemoteCallsBusy as exc:
            raise Busy(str(exc)) from None
        except StationCallError as exc:  # a CALLERROR or no answer in time
            raise Upstream(f"{station_id}: {exc}") from None
        except OcppCallError as exc:  # the request breaks the version's schema
            raise BadRequest(f"{action}: {exc}") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    async def resettle(self, operator: Operator, review_id: str) -> SettlementOutcome:
        """Re-check a flagged session with today's meter key; settle it if it now passes."""
        store = self.deps.store
        if self.deps.setup is None or store.session_closer is None:
            raise Conflict("re-settling needs the CSMS signing key: do it from the running CSMS")
        detail = await self.session(review_id)
        now = format_timestamp(self.deps.clock())
        try:
            outcome = await store.resettle(
                detail.row.station_id, detail.row.transaction_id, by=operator.name, at=now
            )
        except RegistryError as exc:
            raise Conflict(str(exc)) from None
        log.info("%s re-settled %s: %s", operator.name, review_id, outcome.reason or "settled")
        if outcome.status == "pending" and self.deps.settlement_written is not None:
            self.deps.settlement_written()
        return outcome

    async def credit(
        self, operator: Operator, review_id: str, reason: str, amount: int | None
    ) -> SettlementOutcome:
        setup = self.deps.setup
        if setup is None:
            raise Conflict(
                "corrections need the CSMS signing key: issue them from the running CSMS"
            )
        original = await self.deps.store.get_settlement(review_id)
        if original is None:
            detail = await self.session(review_id)
            original = detail.settlement
        if original is None:
            raise NotFound(f"{review_id!r} has no settlement to correct")
        now = format_timestamp(self.deps.clock())
        earlier = [
            s
            for s in await self.deps.store.settlements_of_session(
                original.station_id, original.transaction_id
            )
            if s.kind == "credit" and s.corrects == original.settlement_id
        ]
        try:
            outcome = build_credit(
                setup, original, reason=reason, created_at=now, amount=amount, earlier=earlier
            )
        except CorrectionError as exc:
            raise Conflict(str(exc)) from None
        await self.deps.store.add_credit(original.station_id, original.transaction_id, outcome, now)
        log.info("%s credited %s: %s", operator.name, original.settlement_id, outcome.settlement_id)
        if self.deps.settlement_written is not None:
            self.deps.settlement_written()
        return outcome
