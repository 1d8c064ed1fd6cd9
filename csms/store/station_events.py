"""What stations report beyond their transactions: NotifyEvent, charging limits, charging
profile reports, EV schedules, priority charging, settlements and DER alarms and controls.

Each message is kept as received (its JSON) with a one-line summary, newest last. The table
is bounded per station: in the unit of work of each insert, the station's rows beyond its
newest ``keep`` (config ``keep_station_events``) are removed (``csms.store.retention``), so no
station can grow it without limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from csms.store.retention import KEEP_STATION_EVENTS, STATION_EVENTS
from csms.store.sqlite import CsmsStore

SUMMARY_CHARS = 200


@dataclass(frozen=True, slots=True)
class StationEvent:
    """One stored station-initiated message."""

    id: int
    station_id: str
    action: str
    evse_id: int | None
    summary: str
    received_at: str
    raw: str

    @property
    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.raw)
        return loaded


class StationEventsStore:
    """The ``station_events`` table on the CSMS's one writer connection."""

    def __init__(self, store: CsmsStore, *, keep: int = KEEP_STATION_EVENTS) -> None:
        self._store = store
        self.keep = keep

    async def record(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        summary: str,
        received_at: str,
    ) -> int:
        """Keep one message and drop the station's rows beyond the newest ``keep``, in one
        unit of work; returns how many were dropped."""
        evse_id = payload.get("evseId")
        row = (
            station_id,
            action,
            evse_id if isinstance(evse_id, int) else None,
            summary[:SUMMARY_CHARS],
            received_at,
            json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        )
        return await self._store.insert_and_prune(
            "INSERT INTO station_events (station_id, action, evse_id, summary, received_at,"
            " raw) VALUES (?, ?, ?, ?, ?, ?)",
            row,
            STATION_EVENTS,
            self.keep,
        )

    async def latest(
        self, station_id: str, *, limit: int = 100, action: str | None = None
    ) -> list[StationEvent]:
        """The station's newest messages (of one action, if given), newest first."""
        where = "station_id = ?" + ("" if action is None else " AND action = ?")
        params: tuple[Any, ...] = (station_id,) + (() if action is None else (action,))
        rows = await self._store.fetchall(
            "SELECT id, station_id, action, evse_id, summary, received_at, raw"
            f" FROM station_events WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [StationEvent(*tuple(row)) for row in rows]
