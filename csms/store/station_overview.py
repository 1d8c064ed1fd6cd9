"""What the stations page reads beside the registry: sessions per station, the open
transactions an operator may stop, and the OCPP version a station last connected with."""

from __future__ import annotations

from dataclasses import dataclass

from csms.store.sqlite import CsmsStore

MAX_OPEN_LISTED = 20  # open transactions offered per station, oldest first


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    transaction_id: str
    evse_id: int | None
    started_at: str | None


class StationOverview:
    """Reads on the CSMS store's connection (no writes)."""

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    async def session_counts(self) -> dict[str, int]:
        """How many sessions each station has had (any state)."""
        rows = await self._store.fetchall(
            "SELECT station_id, COUNT(*) AS n FROM sessions GROUP BY station_id"
        )
        return {row["station_id"]: int(row["n"]) for row in rows}

    async def open_transactions(self, station_id: str) -> list[OpenTransaction]:
        """The station's active transactions, oldest first, at most ``MAX_OPEN_LISTED``."""
        rows = await self._store.fetchall(
            "SELECT transaction_id, evse_id, started_at FROM sessions"
            " WHERE station_id = ? AND state = 'active' ORDER BY started_at LIMIT ?",
            (station_id, MAX_OPEN_LISTED),
        )
        return [
            OpenTransaction(row["transaction_id"], row["evse_id"], row["started_at"])
            for row in rows
        ]

    async def last_connection_event(self, station_id: str) -> str | None:
        """The connection log's last word on the station (``connected``, ``disconnected``)."""
        row = await self._store.fetchone(
            "SELECT event FROM connections_log WHERE station_id = ? ORDER BY id DESC LIMIT 1",
            (station_id,),
        )
        return None if row is None else str(row["event"])

    async def last_protocol(self, station_id: str) -> str | None:
        """The OCPP subprotocol of the station's last connection (``ocpp2.0.1``), if any."""
        row = await self._store.fetchone(
            "SELECT detail FROM connections_log WHERE station_id = ? AND event = 'connected'"
            " ORDER BY id DESC LIMIT 1",
            (station_id,),
        )
        return None if row is None else row["detail"]
