"""What operators and auditors review: sessions joined with their settlements and credits.

One read model for the HTTP API, the dashboard pages, the ``v2g sessions`` commands and the
exports. Joining and filtering are pure functions over store records; the two ``load_*``
coroutines are the only reads.

A session's review id is its settlement id once it has one, else ``STATION:TRANSACTION``
(station ids cannot hold ``:``, it separates Basic-auth credentials).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from csms.evidence import RecordCheck, check_evidence, parse_public_key, record_checks
from csms.model import MeterSample, SessionRecord, SettlementRecord
from csms.settling import signed_records
from csms.store.session_list import Cursor, SessionQuery, session_page
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, parse_timestamp

LIST_PAGE = 500  # sessions read at once when every one is wanted (exports, the command line)
SAMPLE_PAGE = 500  # samples in one page of a session's detail, unless asked otherwise
MAX_SAMPLE_PAGE = 5_000  # the most one page holds
CHART_POINTS = 1_000  # about the most points the chart draws of each measurand

EVIDENCE_ROWS = 200  # records checked one by one for the session page, first and last halves

CHART_MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Power.Active.Export",
    "SoC",
)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Every filter is optional; ``since``/``until`` bound the session's start."""

    station: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    pseudonym: str | None = None
    bad_evidence: bool | None = None


@dataclass(frozen=True, slots=True)
class CreditRow:
    settlement_id: str
    corrects: str
    status: str
    reason: str | None
    amount: int | None
    currency: str | None
    created_at: str
    block_height: int | None
    block_hash: str | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as listed: where, when, how much energy, what was settled."""

    id: str
    settlement_id: str | None
    station_id: str
    transaction_id: str
    evse_id: int | None
    started_at: str | None
    ended_at: str | None
    import_wh: int
    export_wh: int
    amount: int | None
    currency: str | None
    status: str  # a settlement's status, else the session's state (active | ended)
    reason: str | None
    ev: str | None
    block_height: int | None
    block_hash: str | None
    credits: tuple[CreditRow, ...] = ()

    @property
    def bad_evidence(self) -> bool:
        return self.status == "flagged"


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """The meter evidence re-checked now against the station's registered key."""

    ok: bool
    code: str | None
    reason: str | None
    meter_key_sha256: str | None
    records: tuple[tuple[str, str], ...]  # (nature, sha256)
    checks: tuple[RecordCheck, ...] = ()  # records alone (first and last EVIDENCE_ROWS / 2)
    record_count: int = 0  # distinct records received


@dataclass(frozen=True, slots=True)
class SamplePage:
    """One page of a session's samples, so a detail has a bounded size however long it ran."""

    samples: tuple[MeterSample, ...]
    offset: int
    limit: int
    total: int  # samples stored for the session
    dropped: int = 0  # samples dropped past max_samples_per_transaction (tolerant stations)


@dataclass(frozen=True, slots=True)
class SessionDetail:
    row: SessionRow
    page: SamplePage
    chart: tuple[MeterSample, ...]  # at most about CHART_POINTS of each charted measurand
    settlement: SettlementRecord | None
    body: dict[str, Any] | None
    evidence: EvidenceView
    receipt: dict[str, Any] | None
    credits: tuple[SettlementRecord, ...] = field(default=())

    @property
    def samples(self) -> tuple[MeterSample, ...]:
        return self.page.samples

    @property
    def intervals(self) -> list[dict[str, Any]]:
        return list(self.body["intervals"]) if self.body else []


def session_key(station_id: str, transaction_id: str) -> str:
    return f"{station_id}:{transaction_id}"


def credit_row(record: SettlementRecord) -> CreditRow:
    return CreditRow(
        settlement_id=record.settlement_id,
        corrects=record.corrects or "",
        status=record.status,
        reason=record.reason,
        amount=record.amount,
        currency=record.currency,
        created_at=record.created_at,
        block_height=record.block_height,
        block_hash=record.block_hash,
    )


def build_rows(
    sessions: Iterable[SessionRecord], settlements: Iterable[SettlementRecord]
) -> list[SessionRow]:
    """Join sessions with their settlement and the credits that correct it (newest first)."""
    by_session: dict[tuple[str, str], SettlementRecord] = {}
    credits: dict[str, list[CreditRow]] = {}
    for record in settlements:
        if record.kind == "credit":
            credits.setdefault(record.corrects or "", []).append(credit_row(record))
        else:
            by_session[(record.station_id, record.transaction_id)] = record
    rows = []
    for session in sessions:
        settled = by_session.get((session.station_id, session.transaction_id))
        rows.append(
            SessionRow(
                id=settled.settlement_id
                if settled
                else session_key(session.station_id, session.transaction_id),
                settlement_id=settled.settlement_id if settled else None,
                station_id=session.station_id,
                transaction_id=session.transaction_id,
                evse_id=session.evse_id,
                started_at=session.started_at,
                ended_at=session.ended_at,
                import_wh=settled.import_wh
                if settled and settled.import_wh is not None
                else session.import_wh,
                export_wh=settled.export_wh
                if settled and settled.export_wh is not None
                else session.export_wh,
                amount=settled.amount if settled else None,
                currency=settled.currency if settled else None,
                status=settled.status if settled else session.state,
                reason=settled.reason if settled else None,
                ev=settled.ev if settled else None,
                block_height=settled.block_height if settled else None,
                block_hash=settled.block_hash if settled else None,
                credits=tuple(credits.get(settled.settlement_id, ())) if settled else (),
            )
        )
    rows.sort(key=lambda r: (r.started_at or "", r.station_id, r.transaction_id), reverse=True)
    return rows


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def matches(row: SessionRow, wanted: SessionFilter) -> bool:
    """Whether a row passes every filter that is set."""
    if wanted.station is not None and row.station_id != wanted.station:
        return False
    if wanted.status is not None and row.status != wanted.status:
        return False
    if wanted.pseudonym is not None and row.ev != wanted.pseudonym:
        return False
    if wanted.bad_evidence is not None and row.bad_evidence != wanted.bad_evidence:
        return False
    if wanted.since is not None or wanted.until is not None:
        started = _moment(row.started_at)
        if started is None:
            return False
        if wanted.since is not None and started < wanted.since:
            return False
        if wanted.until is not None and started >= wanted.until:
            return False
    return True


def filter_rows(rows: Sequence[SessionRow], wanted: SessionFilter) -> list[SessionRow]:
    return [row for row in rows if matches(row, wanted)]


def session_query(wanted: SessionFilter | None) -> SessionQuery:
    """The filter as the store's query takes it (times as stored: UTC, milliseconds)."""
    if wanted is None:
        return SessionQuery()
    return SessionQuery(
        station=wanted.station,
        status=wanted.status,
        since=None if wanted.since is None else format_timestamp(wanted.since),
        until=None if wanted.until is None else format_timestamp(wanted.until),
        pseudonym=wanted.pseudonym,
        bad_evidence=wanted.bad_evidence,
    )


@dataclass(frozen=True, slots=True)
class RowPage:
    """One page of review rows, newest first, and where the next one starts (None: last)."""

    rows: tuple[SessionRow, ...]
    next: Cursor | None


async def load_page(
    store: CsmsStore,
    wanted: SessionFilter | None = None,
    *,
    limit: int = LIST_PAGE,
    after: Cursor | None = None,
    offset: int = 0,
) -> RowPage:
    """At most ``limit`` rows passing ``wanted`` (filtered, ordered and cut by the database)."""
    page = await session_page(store, session_query(wanted), limit=limit, after=after, offset=offset)
    return RowPage(tuple(build_rows(page.sessions, page.settlements)), page.next)


async def iter_rows(
    store: CsmsStore,
    wanted: SessionFilter | None = None,
    *,
    page: int | None = None,
    limit: int | None = None,
) -> AsyncIterator[tuple[SessionRow, ...]]:
    """Every row passing ``wanted`` (the first ``limit`` only, when given), ``page``
    (LIST_PAGE) at a time, each once, in order."""
    after: Cursor | None = None
    left = limit
    while left is None or left > 0:
        size = page or LIST_PAGE
        if left is not None:
            size = min(size, left)
        found = await load_page(store, wanted, limit=size, after=after)
        if found.rows:
            yield found.rows
        if found.next is None:
            return
        after = found.next
        if left is not None:
            left -= len(found.rows)


async def load_rows(store: CsmsStore, wanted: SessionFilter | None = None) -> list[SessionRow]:
    """Every row passing ``wanted``, all in memory (the command line streams ``iter_rows``)."""
    return [row async for page in iter_rows(store, wanted) for row in page]


async def find_session(store: CsmsStore, review_id: str) -> tuple[str, str] | None:
    """The (station, transaction) a review id names: a settlement or credit id, or a key."""
    record = await store.get_settlement(review_id)
    if record is not None:
        return record.station_id, record.transaction_id
    station, sep, transaction = review_id.partition(":")
    if sep and await store.get_session(station, transaction) is not None:
        return station, transaction
    return None


def recheck_evidence(
    session: SessionRecord, samples: Sequence[MeterSample], meter_key: str | None
) -> EvidenceView:
    """Run the OCMF checks again, so a reviewer sees today's verdict on the stored records."""
    texts, carried = signed_records(samples)
    if meter_key is None:
        return EvidenceView(
            False, "no_meter_key", "the station has no registered meter key", None, ()
        )
    if not texts:
        return EvidenceView(False, "no_evidence", "no signed meter values were received", None, ())
    try:
        key = parse_public_key(meter_key)
    except Exception as exc:  # a registry value that is not a key is a finding, not a crash
        return EvidenceView(False, "bad_meter_key", str(exc), None, ())
    check = check_evidence(texts, key, expected_id=session.id_token, carried_keys=carried)
    return EvidenceView(
        check.ok,
        check.code,
        check.reason,
        check.meter_key_sha256,
        tuple((r.nature, r.sha256) for r in check.records),
        record_checks(texts, key, expected_id=session.id_token, limit=EVIDENCE_ROWS),
        len(set(texts)),
    )


async def load_detail(
    store: CsmsStore, review_id: str, *, offset: int = 0, limit: int = SAMPLE_PAGE
) -> SessionDetail | None:
    """A session with one page of its samples (``offset``, ``limit`` up to MAX_SAMPLE_PAGE),
    a downsampled chart series and its evidence checked again: bounded whatever it holds."""
    found = await find_session(store, review_id)
    if found is None:
        return None
    station_id, transaction_id = found
    session = await store.get_session(station_id, transaction_id)
    if session is None:
        return None
    settlement = await store.settlement_for_session(station_id, transaction_id)
    related = await store.settlements_of_session(station_id, transaction_id)
    credits = tuple(s for s in related if s.kind == "credit")
    row = build_rows([session], related)[0]
    offset, limit = max(0, offset), min(max(1, limit), MAX_SAMPLE_PAGE)
    samples = await store.meter_samples_page(station_id, transaction_id, offset=offset, limit=limit)
    total, dropped = await store.sample_counts(station_id, transaction_id)
    page = SamplePage(tuple(samples), offset, limit, total, dropped)
    chart = await store.chart_samples(station_id, transaction_id, CHART_MEASURANDS, CHART_POINTS)
    station = await store.get_station(station_id)
    signed = await store.signed_samples(station_id, transaction_id)
    evidence = recheck_evidence(session, signed, station.meter_key if station else None)
    body = json.loads(settlement.body) if settlement and settlement.body else None
    receipt = json.loads(settlement.receipt) if settlement and settlement.receipt else None
    return SessionDetail(row, page, tuple(chart), settlement, body, evidence, receipt, credits)


def chart_series(samples: Iterable[MeterSample]) -> dict[str, list[tuple[datetime, int]]]:
    """Whole-meter (no phase) values by measurand, in time order, for the session chart."""
    series: dict[str, list[tuple[datetime, int]]] = {m: [] for m in CHART_MEASURANDS}
    for sample in samples:
        if sample.phase is None and sample.measurand in series:
            series[sample.measurand].append((sample.timestamp, sample.value))
    for points in series.values():
        points.sort(key=lambda p: p[0])
    return {name: points for name, points in series.items() if points}


def sample_dict(sample: MeterSample) -> dict[str, Any]:
    return {
        "timestamp": format_timestamp(sample.timestamp),
        "measurand": sample.measurand,
        "value": sample.value,
        "unit": sample.unit,
        "phase": sample.phase,
        "context": sample.context,
        "signed": sample.signed is not None,
    }
