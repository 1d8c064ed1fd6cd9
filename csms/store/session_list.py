"""Sessions as the review lists them, a page at a time: filtered, ordered and cut in SQL.

Newest start first, then by station and transaction id (descending): one total order, read
through the ``sessions_newest`` index (``sessions_station_newest`` for one station), so a page
costs about its own rows however many sessions the CSMS holds. A page goes on after the last
row of the one before (a keyset cursor: its start, station and transaction), so every row comes
once even while new sessions arrive. A filter on the settlement (status, pseudonym, flagged)
reads the rows it passes over as well: narrow it with a station or a time range.

Portable SQL (``csms.store.dialect``): SQLite and PostgreSQL run the same text.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from csms.model import SessionRecord, SettlementRecord
from csms.store.sqlite import SESSION_COLUMNS, SETTLEMENT_ORDER, CsmsStore

MAX_PAGE = 1_000  # sessions one page holds at most


class BadCursor(ValueError):
    """A page cursor that this module did not write."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the last page ended: its last row's start, station and transaction."""

    started_at: str
    station_id: str
    transaction_id: str

    def text(self) -> str:
        raw = json.dumps([self.started_at, self.station_id, self.transaction_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, text: str) -> Cursor:
        if len(text) > 2_000:
            raise BadCursor("the cursor is too long")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            value = json.loads(raw)
        except (binascii.Error, ValueError):
            raise BadCursor("not a cursor this server wrote") from None
        if not (
            isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)
        ):
            raise BadCursor("not a cursor this server wrote")
        return cls(*value)

    @classmethod
    def after(cls, session: SessionRecord) -> Cursor:
        return cls(session.started_at or "", session.station_id, session.transaction_id)


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """What the review filters on; ``since``/``until`` bound the start (stored timestamps)."""

    station: str | None = None
    status: str | None = None  # a settlement's status, else the session's state
    since: str | None = None
    until: str | None = None
    pseudonym: str | None = None
    bad_evidence: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of sessions in order, with their settlements and the credits correcting them."""

    sessions: tuple[SessionRecord, ...]
    settlements: tuple[SettlementRecord, ...]
    next: Cursor | None  # None: this was the last page


_STATUS = "COALESCE(st.status, s.state)"
_ORDER = " ORDER BY s.started_at DESC, s.station_id DESC, s.transaction_id DESC"


def _where(query: SessionQuery, after: Cursor | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.station is not None:
        clauses.append("s.station_id = ?")
        params.append(query.station)
    if query.status is not None:
        clauses.append(f"{_STATUS} = ?")
        params.append(query.status)
    if query.pseudonym is not None:
        clauses.append("st.ev = ?")
        params.append(query.pseudonym)
    if query.bad_evidence is True:
        clauses.append("st.status = 'flagged'")
    elif query.bad_evidence is False:
        clauses.append(f"{_STATUS} != 'flagged'")
    if query.since is not None:
        clauses.append("s.started_at >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append("s.started_at < ?")
        params.append(query.until)
    if after is not None:
        # the first conjunct is a range on the index; the rest breaks ties in the same order
        clauses.append(
            "s.started_at <= ? AND (s.started_at < ? OR (s.started_at = ? AND"
            " (s.station_id < ? OR (s.station_id = ? AND s.transaction_id < ?))))"
        )
        params += [after.started_at] * 3 + [after.station_id] * 2 + [after.transaction_id]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


_FROM = (
    " FROM sessions s"
    " LEFT JOIN settlements st ON st.station_id = s.station_id"
    " AND st.transaction_id = s.transaction_id AND st.kind = 'settlement'"
    " LEFT JOIN transaction_progress p ON p.station_id = s.station_id"
    " AND p.transaction_id = s.transaction_id"
)


async def session_page(
    store: CsmsStore,
    query: SessionQuery,
    *,
    limit: int,
    after: Cursor | None = None,
    offset: int = 0,
) -> SessionPage:
    """At most ``limit`` (up to MAX_PAGE) sessions passing ``query``, after ``after`` (and
    ``offset`` more), in the review's order."""
    limit = min(max(1, limit), MAX_PAGE)
    where, params = _where(query, after)
    rows = await store.fetchall(
        f"SELECT {SESSION_COLUMNS}{_FROM}{where}{_ORDER} LIMIT ? OFFSET ?",
        (*params, limit + 1, max(0, offset)),
    )
    sessions = await store.session_records(rows[:limit])
    settlements = await settlements_of(store, sessions)
    more = len(rows) > limit
    return SessionPage(
        tuple(sessions), tuple(settlements), Cursor.after(sessions[-1]) if more else None
    )


async def settlements_of(store: CsmsStore, sessions: list[SessionRecord]) -> list[SettlementRecord]:
    """The settlements of these sessions and the credits correcting them: one query, each
    session a lookup in the ``settlements_session`` index."""
    if not sessions:
        return []
    pairs = sorted({(s.station_id, s.transaction_id) for s in sessions})
    either = " OR ".join("(station_id = ? AND transaction_id = ?)" for _ in pairs)
    rows = await store.fetchall(
        f"SELECT * FROM settlements WHERE {either} {SETTLEMENT_ORDER}",
        tuple(value for pair in pairs for value in pair),
    )
    return [SettlementRecord(**dict(r)) for r in rows]


async def explain(store: CsmsStore, query: SessionQuery, after: Cursor | None = None) -> str:
    """The engine's plan for a page (what the tests check uses an index)."""
    where, params = _where(query, after)
    head = "EXPLAIN QUERY PLAN" if store.dialect.name == "sqlite" else "EXPLAIN"
    rows = await store.fetchall(
        f"{head} SELECT {SESSION_COLUMNS}{_FROM}{where}{_ORDER} LIMIT ?", (*params, 10)
    )
    return "\n".join(str(tuple(r)) for r in rows)
