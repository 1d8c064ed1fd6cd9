"""What each station reported its EVSEs can do: the ``evse_capabilities`` table.

One row per (station, EVSE, kind), the latest word wins: a station that reports again
replaces what it said before. EVSE ids are bounded (``csms.evse_limits.MAX_EVSE_ID``), so a
station cannot grow the table without end.
"""

from __future__ import annotations

from collections.abc import Iterable

from csms.evse_limits import EvseCaps, EvseFact, caps_for
from csms.store.sqlite import CsmsStore


class EvseCapsStore:
    """The ``evse_capabilities`` table on the CSMS's one writer connection."""

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    async def record(self, station_id: str, facts: Iterable[EvseFact], at: str) -> int:
        """Keep each fact as the latest of its kind for its EVSE; returns how many."""
        count = 0
        for fact in facts:
            for kind, value in (
                ("power", fact.max_power_w),
                ("bidirectional", None if fact.bidirectional is None else int(fact.bidirectional)),
            ):
                if value is None:
                    continue
                await self._store.execute_write(
                    "INSERT INTO evse_capabilities (station_id, evse_id, kind, value, source,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station_id, evse_id,"
                    " kind) DO UPDATE SET value = excluded.value, source = excluded.source,"
                    " updated_at = excluded.updated_at",
                    (station_id, fact.evse_id, kind, value, fact.source, at),
                )
                count += 1
        return count

    async def facts(self, station_id: str) -> list[EvseFact]:
        rows = await self._store.fetchall(
            "SELECT evse_id, kind, value, source FROM evse_capabilities WHERE station_id = ?"
            " ORDER BY evse_id, kind",
            (station_id,),
        )
        return [
            EvseFact(int(r[0]), max_power_w=int(r[2]), source=str(r[3]))
            if r[1] == "power"
            else EvseFact(int(r[0]), bidirectional=bool(r[2]), source=str(r[3]))
            for r in rows
        ]

    async def caps(self, station_id: str, evse_id: int | None) -> EvseCaps:
        """One EVSE's caps (``evse_id`` 0 or None: the station's own)."""
        return caps_for(await self.facts(station_id), evse_id)
