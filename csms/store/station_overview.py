"""What the stations page reads beside the registry: sessions per station, the open
transactions an operator may stop, and the OCPP version a station last connected with.

``StationBatch`` reads all of it for one page of stations in a few queries, each bounded per
station however long the station has run: its session count is a tally
(``csms.store.tallies``), its open transactions and its latest live events come through an
index, at most ``MAX_OPEN_LISTED`` and ``SKEW_EVENTS`` of them, and its connection log, connector
statuses and EVSE capabilities are capped in storage (``csms.store.retention``,
``csms.evse_limits``). Sessions and their events are financial records and are never pruned:
every per-station read of them is paged or limited like these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from csms.evse_limits import EvseFact
from csms.model import StationCaps, StationRecord
from csms.store.sqlite import CsmsStore
from csms.store.tallies import Tallies
from csms.timeutil import median_skew

MAX_OPEN_LISTED = 20  # open transactions offered per station, oldest first
SKEW_EVENTS = 20  # the latest live transaction events a station's clock skew is the median of
MAX_PAGE = 1_000  # stations one page holds at most
_UNION = 100  # stations per UNION ALL query (SQLite allows 500 terms in one)


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    transaction_id: str
    evse_id: int | None
    started_at: str | None


@dataclass(frozen=True, slots=True)
class StationFacts:
    """What the stations page shows of one station beside its registry row."""

    connectors: dict[tuple[int, int], str]
    caps: StationCaps
    evse_facts: list[EvseFact]
    last_event: str | None  # the connection log's last word
    last_protocol: str | None
    clock_skew_s: float | None
    session_count: int
    open_transactions: tuple[OpenTransaction, ...]


def _marks(ids: Sequence[str]) -> str:
    return ", ".join("?" * len(ids))


class StationBatch:
    """The reads of one page of stations: a few queries for the whole page."""

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    async def page(self, *, after: str | None, limit: int) -> list[StationRecord]:
        """At most ``limit`` (up to MAX_PAGE) registered stations by id, after ``after``."""
        limit = min(max(1, limit), MAX_PAGE)
        return await self._store.station_page(after=after, limit=limit)

    async def facts(self, station_ids: Sequence[str]) -> dict[str, StationFacts]:
        ids = list(station_ids)
        if not ids:
            return {}
        connectors = await self._connectors(ids)
        caps = await self._caps(ids)
        evse = await self._evse_facts(ids)
        last_event, last_protocol = await self._connection_log(ids)
        skews = await self._clock_skews(ids)
        counts = await Tallies(self._store).session_counts(ids)
        open_tx = await self._open_transactions(ids)
        return {
            i: StationFacts(
                connectors=connectors.get(i, {}),
                caps=caps.get(i, StationCaps()),
                evse_facts=evse.get(i, []),
                last_event=last_event.get(i),
                last_protocol=last_protocol.get(i),
                clock_skew_s=skews.get(i),
                session_count=counts.get(i, 0),
                open_transactions=tuple(open_tx.get(i, ())),
            )
            for i in ids
        }

    async def _connectors(self, ids: list[str]) -> dict[str, dict[tuple[int, int], str]]:
        rows = await self._store.fetchall(
            "SELECT station_id, evse_id, connector_id, status FROM connector_status"
            f" WHERE station_id IN ({_marks(ids)})",
            tuple(ids),
        )
        out: dict[str, dict[tuple[int, int], str]] = {}
        for r in rows:
            out.setdefault(r[0], {})[(int(r[1]), int(r[2]))] = str(r[3])
        return out

    async def _caps(self, ids: list[str]) -> dict[str, StationCaps]:
        rows = await self._store.fetchall(
            "SELECT station_id, max_charge_w, max_discharge_w, discharge, power_key"
            f" FROM station_settings WHERE station_id IN ({_marks(ids)})",
            tuple(ids),
        )
        return {r[0]: StationCaps(r[1], r[2], str(r[3]), r[4]) for r in rows}

    async def _evse_facts(self, ids: list[str]) -> dict[str, list[EvseFact]]:
        rows = await self._store.fetchall(
            "SELECT station_id, evse_id, kind, value, source FROM evse_capabilities"
            f" WHERE station_id IN ({_marks(ids)}) ORDER BY station_id, evse_id, kind",
            tuple(ids),
        )
        out: dict[str, list[EvseFact]] = {}
        for r in rows:
            fact = (
                EvseFact(int(r[1]), max_power_w=int(r[3]), source=str(r[4]))
                if r[2] == "power"
                else EvseFact(int(r[1]), bidirectional=bool(r[3]), source=str(r[4]))
            )
            out.setdefault(r[0], []).append(fact)
        return out

    async def _connection_log(self, ids: list[str]) -> tuple[dict[str, str], dict[str, str | None]]:
        """Each station's last connection event, and the subprotocol of its last connection."""
        last_rows = await self._union(
            ids,
            "SELECT station_id, event FROM connections_log WHERE station_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (),
        )
        connected_rows = await self._union(
            ids,
            "SELECT station_id, detail FROM connections_log WHERE station_id = ?"
            " AND event = 'connected' ORDER BY id DESC LIMIT 1",
            (),
        )
        last = {str(r[0]): str(r[1]) for r in last_rows}
        protocol: dict[str, str | None] = {str(r[0]): r[1] for r in connected_rows}
        return last, protocol

    async def _union(self, ids: list[str], branch: str, params: tuple[Any, ...]) -> list[Any]:
        """One ``branch`` query per station (its ``?`` first the station id, then ``params``),
        joined with UNION ALL, ``_UNION`` stations a query."""
        rows: list[Any] = []
        for start in range(0, len(ids), _UNION):
            chunk = ids[start : start + _UNION]
            sql = " UNION ALL ".join(f"SELECT * FROM ({branch}) b{n}" for n in range(len(chunk)))
            args = tuple(a for i in chunk for a in (i, *params))
            rows += await self._store.fetchall(sql, args)
        return rows

    async def _clock_skews(self, ids: list[str]) -> dict[str, float | None]:
        rows = await self._union(
            ids,
            "SELECT station_id, timestamp, received_at FROM transaction_events"
            " WHERE station_id = ? AND offline = 0 ORDER BY received_at DESC LIMIT ?",
            (SKEW_EVENTS,),
        )
        pairs: dict[str, list[tuple[str, str]]] = {}
        for station_id, timestamp, received_at in rows:
            pairs.setdefault(station_id, []).append((timestamp, received_at))
        return {i: median_skew(p) for i, p in pairs.items()}

    async def _open_transactions(self, ids: list[str]) -> dict[str, list[OpenTransaction]]:
        rows = await self._union(
            ids,
            "SELECT station_id, transaction_id, evse_id, started_at FROM sessions"
            " WHERE station_id = ? AND state = 'active' ORDER BY started_at LIMIT ?",
            (MAX_OPEN_LISTED,),
        )
        out: dict[str, list[OpenTransaction]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(OpenTransaction(r[1], r[2], r[3]))
        return out
