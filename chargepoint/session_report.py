"""What one ended session amounted to, as the station saw it: one line for the operator.

Built from the session's Transaction.Begin and Transaction.End samples (register deltas,
never power samples), so the line says what the CSMS will settle. Pure: samples in, text out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from chargepoint.meter import format_kwh
from chargepoint.transaction import MeterSample

IMPORT = "Energy.Active.Import.Register"
EXPORT = "Energy.Active.Export.Register"
SOC = "SoC"


@dataclass(frozen=True, slots=True)
class SessionReport:
    """One ended session: when, how long, energy in and out (Wh), SoC before and after."""

    station_id: str
    evse_id: int
    transaction_id: str
    started: datetime
    ended: datetime
    import_wh: int | None  # None: the meter did not report the register
    export_wh: int | None
    soc_start: int | None
    soc_end: int | None
    reason: str

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()

    def line(self) -> str:
        """``CS1 EVSE 1 transaction T: 2026-12-04 01:00:00 -> 2026-12-04 03:00:00 UTC
        (2 h 00 min), 12.345 kWh in, 0.000 kWh out, SoC 40 -> 62 %, ended Local``"""
        minutes = round(self.seconds / 60)
        duration = f"{minutes // 60} h {minutes % 60:02d} min"
        parts = [
            f"{_utc(self.started)} -> {_utc(self.ended)} UTC ({duration})",
            f"{_kwh(self.import_wh)} kWh in",
            f"{_kwh(self.export_wh)} kWh out",
        ]
        if self.soc_start is not None and self.soc_end is not None:
            parts.append(f"SoC {self.soc_start} -> {self.soc_end} %")
        parts.append(f"ended {self.reason}")
        head = f"{self.station_id} EVSE {self.evse_id} transaction {self.transaction_id}"
        return f"{head}: {', '.join(parts)}"


SessionListener = Callable[[SessionReport], None]


def session_report(
    *,
    station_id: str,
    evse_id: int,
    transaction_id: str,
    begin: MeterSample,
    end: MeterSample,
    reason: str,
) -> SessionReport:
    """The report of a session from its Begin and End samples."""
    return SessionReport(
        station_id=station_id,
        evse_id=evse_id,
        transaction_id=transaction_id,
        started=begin.timestamp,
        ended=end.timestamp,
        import_wh=_delta(begin, end, IMPORT),
        export_wh=_delta(begin, end, EXPORT),
        soc_start=_value(begin, SOC),
        soc_end=_value(end, SOC),
        reason=reason,
    )


def _value(sample: MeterSample, measurand: str) -> int | None:
    return next((v.value for v in sample.values if v.measurand == measurand), None)


def _delta(begin: MeterSample, end: MeterSample, measurand: str) -> int | None:
    first, last = _value(begin, measurand), _value(end, measurand)
    return None if first is None or last is None else last - first


def _kwh(wh: int | None) -> str:
    return "?" if wh is None else format_kwh(max(0, wh))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
