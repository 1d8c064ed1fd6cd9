"""OCPP 2.1 EV charging needs (K15-K18, V2X): what each EV asked for, newest last.

A dispatch decision reads the EV's latest needs for its EVSE: when it leaves, how much energy
it wants, and how much it allows to be discharged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from csms.store.retention import CHARGING_NEEDS, KEEP_CHARGING_NEEDS
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, parse_timestamp

MAX_CANDIDATES = 50  # needs read to find a session's (an EV states a few per session)


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    """One NotifyEVChargingNeeds, normalised: energy in integer Wh, power in integer W."""

    station_id: str
    evse_id: int
    received_at: str
    requested_transfer: str
    timestamp: str | None = None
    available_transfer: tuple[str, ...] = field(default=())
    control_mode: str | None = None
    departure_time: str | None = None
    target_energy_wh: int | None = None
    min_energy_wh: int | None = None
    max_energy_wh: int | None = None
    min_v2x_energy_wh: int | None = None
    max_v2x_energy_wh: int | None = None
    target_soc: int | None = None
    max_charge_w: int | None = None
    max_discharge_w: int | None = None
    min_discharge_w: int | None = None
    raw: str = "{}"

    @property
    def bidirectional(self) -> bool:
        """Whether the EV asked for, or offers, a bidirectional (BPT) transfer."""
        modes = (self.requested_transfer, *self.available_transfer)
        return any("BPT" in mode for mode in modes)


_COLUMNS = (
    "station_id",
    "evse_id",
    "received_at",
    "timestamp",
    "requested_transfer",
    "available_transfer",
    "control_mode",
    "departure_time",
    "target_energy_wh",
    "min_energy_wh",
    "max_energy_wh",
    "min_v2x_energy_wh",
    "max_v2x_energy_wh",
    "target_soc",
    "max_charge_w",
    "max_discharge_w",
    "min_discharge_w",
    "raw",
)


class ChargingNeedsStore:
    """The ``ev_charging_needs`` table on the CSMS's one writer connection."""

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    async def record(self, needs: EvChargingNeeds, *, keep: int = KEEP_CHARGING_NEEDS) -> int:
        """Keep the needs, and the station's newest ``keep`` of them (``keep_charging_needs``);
        returns how many older ones went."""
        values = [getattr(needs, name) for name in _COLUMNS]
        values[_COLUMNS.index("available_transfer")] = ",".join(needs.available_transfer) or None
        placeholders = ", ".join("?" for _ in _COLUMNS)
        return await self._store.insert_and_prune(
            f"INSERT INTO ev_charging_needs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            tuple(values),
            CHARGING_NEEDS,
            keep,
        )

    async def latest(self, station_id: str, evse_id: int) -> EvChargingNeeds | None:
        """The most recent needs an EV reported on one EVSE."""
        row = await self._store.fetchone(
            f"SELECT {', '.join(_COLUMNS)} FROM ev_charging_needs"
            " WHERE station_id = ? AND evse_id = ? ORDER BY id DESC LIMIT 1",
            (station_id, evse_id),
        )
        return None if row is None else _needs(row)

    async def station_time(self, station_id: str, evse_id: int, now: datetime) -> datetime | None:
        """The station's clock at CSMS time ``now``, as the last live event of the session
        running on ``evse_id`` shows it: that event's station time plus the CSMS time since it
        was received (None without one). 2.0.1 needs carry no time of their own; an ISO 15118
        EV states them right after the session starts, so this places them on the session's
        clock, accelerated or not."""
        row = await self._store.fetchone(
            "SELECT e.timestamp, e.received_at FROM transaction_events e"
            " JOIN sessions s ON s.station_id = e.station_id"
            " AND s.transaction_id = e.transaction_id"
            " WHERE s.station_id = ? AND s.evse_id = ? AND s.state = 'active' AND e.offline = 0"
            " ORDER BY e.received_at DESC, e.seq_no DESC LIMIT 1",
            (station_id, evse_id),
        )
        if row is None:
            return None
        try:
            at, received = parse_timestamp(row[0]), parse_timestamp(row[1])
        except ValueError:
            return None
        return at + max(timedelta(0), now - received)

    async def for_session(
        self, station_id: str, evse_id: int, start: datetime, end: datetime | None
    ) -> EvChargingNeeds | None:
        """The last needs an EV stated on one EVSE within a session's window [start, end]
        (``end`` None: still running), by the station's own clock (``timestamp``, the clock of
        the session's times, accelerated in a simulation), else by the CSMS's receive time.

        The stored texts are narrowed by a day either way in SQL (offsets, precision), then
        compared as instants; at most ``MAX_CANDIDATES`` rows are read.
        """
        low = format_timestamp(start - timedelta(days=1))
        high = "9999" if end is None else format_timestamp(end + timedelta(days=1))
        rows = await self._store.fetchall(
            f"SELECT {', '.join(_COLUMNS)} FROM ev_charging_needs"
            " WHERE station_id = ? AND evse_id = ?"
            " AND COALESCE(timestamp, received_at) >= ? AND COALESCE(timestamp, received_at) <= ?"
            " ORDER BY id DESC LIMIT ?",
            (station_id, evse_id, low, high, MAX_CANDIDATES),
        )
        for row in rows:
            needs = _needs(row)
            try:
                said = parse_timestamp(needs.timestamp or needs.received_at)
            except ValueError:
                continue
            if start <= said and (end is None or said <= end):
                return needs
        return None


def _needs(row: Sequence[Any]) -> EvChargingNeeds:
    data = dict(zip(_COLUMNS, row, strict=True))
    available = data.pop("available_transfer")
    return EvChargingNeeds(
        **data, available_transfer=tuple(available.split(",")) if available else ()
    )
