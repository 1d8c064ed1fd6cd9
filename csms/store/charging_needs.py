"""OCPP 2.1 EV charging needs (K15-K18, V2X): what each EV asked for, newest last.

A dispatch decision reads the EV's latest needs for its EVSE: when it leaves, how much energy
it wants, and how much it allows to be discharged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from csms.store.sqlite import CsmsStore


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

    async def record(self, needs: EvChargingNeeds) -> None:
        values = [getattr(needs, name) for name in _COLUMNS]
        values[_COLUMNS.index("available_transfer")] = ",".join(needs.available_transfer) or None
        placeholders = ", ".join("?" for _ in _COLUMNS)
        await self._store.execute_write(
            f"INSERT INTO ev_charging_needs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
            tuple(values),
        )

    async def latest(self, station_id: str, evse_id: int) -> EvChargingNeeds | None:
        """The most recent needs an EV reported on one EVSE."""
        row = await self._store.fetchone(
            f"SELECT {', '.join(_COLUMNS)} FROM ev_charging_needs"
            " WHERE station_id = ? AND evse_id = ? ORDER BY id DESC LIMIT 1",
            (station_id, evse_id),
        )
        return None if row is None else _needs(row)

    async def last_between(
        self, station_id: str, evse_id: int, since: str, until: str | None
    ) -> EvChargingNeeds | None:
        """The last needs received on one EVSE in [since, until] (RFC 3339 UTC texts as
        stored; ``until`` None: up to now): what the EV of a session asked for."""
        bound = "" if until is None else " AND received_at <= ?"
        row = await self._store.fetchone(
            f"SELECT {', '.join(_COLUMNS)} FROM ev_charging_needs"
            f" WHERE station_id = ? AND evse_id = ? AND received_at >= ?{bound}"
            " ORDER BY id DESC LIMIT 1",
            (station_id, evse_id, since) + (() if until is None else (until,)),
        )
        return None if row is None else _needs(row)


def _needs(row: Sequence[Any]) -> EvChargingNeeds:
    data = dict(zip(_COLUMNS, row, strict=True))
    available = data.pop("available_transfer")
    return EvChargingNeeds(
        **data, available_transfer=tuple(available.split(",")) if available else ()
    )
