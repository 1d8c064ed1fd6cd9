"""What the station measures: the ``MeterSource`` port and a deterministic default meter.

The EV battery model and the OCMF signing meter plug in here: anything with ``read`` that
returns a ``MeterReading`` (integer Wh registers, W, SoC, and optionally a signed record)
can stand behind an EVSE. The context tells a signing meter when a Begin or End record is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable


class ReadingContext(StrEnum):
    """Why a reading is taken (OCPP ReadingContextEnumType, the values this station uses)."""

    TRANSACTION_BEGIN = "Transaction.Begin"
    SAMPLE_PERIODIC = "Sample.Periodic"
    SAMPLE_CLOCK = "Sample.Clock"
    TRANSACTION_END = "Transaction.End"
    TRIGGER = "Trigger"


@dataclass(frozen=True)
class SignedMeterValue:
    """An OCPP signedMeterValue, carried verbatim (e.g. an OCMF record, Base64)."""

    signed_meter_data: str
    signing_method: str
    encoding_method: str
    public_key: str


@dataclass(frozen=True)
class MeterRequest:
    """What the station tells the meter when it asks for a reading.

    ``aligned_interval_s`` is the station's clock-aligned interval (AlignedDataCtrlr.Interval,
    0 = off): a signing meter signs an Intermediate record at each aligned instant.
    """

    now: datetime
    context: ReadingContext
    transaction_id: str | None = None
    id_token: str | None = None
    aligned_interval_s: int = 0
    id_token_type: str | None = None


@dataclass(frozen=True)
class MeterReading:
    """One reading: lifetime registers in Wh, signed power in W (< 0 discharging), SoC in %."""

    import_wh: int
    export_wh: int
    power_w: int
    soc: int | None = None
    signed: SignedMeterValue | None = None


@dataclass(frozen=True)
class HeldReading:
    """A reading a meter took (and signed) on its own at ``at``, not yet carried to the CSMS."""

    at: datetime
    reading: MeterReading


class MeterSource(Protocol):
    """One EVSE's meter (and, behind it, the EV): the station only ever calls ``read``."""

    def read(self, request: MeterRequest) -> MeterReading: ...


@runtime_checkable
class SigningMeterSource(Protocol):
    """A meter that signs readings on its own (Intermediate records) and hands them over."""

    def read(self, request: MeterRequest) -> MeterReading: ...

    def unsent(self, before: datetime | None = None) -> list[HeldReading]: ...


@runtime_checkable
class DepartingMeterSource(Protocol):
    """A meter whose EV says when it leaves: the session lasts until then."""

    def read(self, request: MeterRequest) -> MeterReading: ...

    def departure(self) -> datetime | None: ...


@runtime_checkable
class ControllableMeterSource(Protocol):
    """A meter with an EV behind it that follows a power limit (W; < 0 discharges)."""

    def read(self, request: MeterRequest) -> MeterReading: ...

    def set_limit(self, limit_w: int | None, now: datetime) -> None: ...


class SimulatedMeter:
    """A deterministic V2G profile: charge, then discharge, in fixed cycles within a transaction.

    Within a transaction the EV charges at ``charge_w`` for ``charge_s`` seconds, then feeds
    the grid at ``discharge_w`` for ``discharge_s`` seconds, repeating; between transactions
    power is zero. Registers integrate power exactly between reads (no drift: fractional Wh
    are carried over), SoC follows the energy moved in and out of a ``capacity_wh`` battery.
    """

    def __init__(
        self,
        *,
        charge_w: int = 7400,
        discharge_w: int = 3700,
        charge_s: int = 900,
        discharge_s: int = 300,
        capacity_wh: int = 60_000,
        start_soc: int = 40,
    ) -> None:
        self.charge_w = charge_w
        self.discharge_w = discharge_w
        self.charge_s = charge_s
        self.discharge_s = discharge_s
        self.capacity_wh = capacity_wh
        self.start_soc = start_soc
        self._import_mws = 0  # milliwatt-seconds, so integration is exact in integers
        self._export_mws = 0
        self._battery_mws = 0
        self._last: datetime | None = None
        self._tx_start: datetime | None = None

    def power_at(self, moment: datetime) -> int:
        """Signed power in W at ``moment`` (positive: import from the grid)."""
        if self._tx_start is None:
            return 0
        phase = (moment - self._tx_start).total_seconds() % (self.charge_s + self.discharge_s)
        return self.charge_w if phase < self.charge_s else -self.discharge_w

    def read(self, request: MeterRequest) -> MeterReading:
        self._advance(request.now)
        if request.context is ReadingContext.TRANSACTION_BEGIN:
            self._tx_start = request.now
            self._battery_mws = 0
        power = self.power_at(request.now)
        reading = MeterReading(
            import_wh=self._import_mws // 3_600_000,
            export_wh=self._export_mws // 3_600_000,
            power_w=power,
            soc=self._soc() if self._tx_start is not None else None,
        )
        if request.context is ReadingContext.TRANSACTION_END:
            self._tx_start = None
        return reading

    def _advance(self, now: datetime) -> None:
        """Integrate power from the last read to ``now`` in whole milliseconds."""
        if self._last is not None and self._tx_start is not None and now > self._last:
            cursor = self._last
            while cursor < now:
                boundary = self._next_boundary(cursor)
                step_end = min(boundary, now)
                ms = round((step_end - cursor).total_seconds() * 1000)
                power = self.power_at(cursor)
                if power >= 0:
                    self._import_mws += power * ms
                    self._battery_mws += power * ms
                else:
                    self._export_mws += -power * ms
                    self._battery_mws += power * ms
                cursor = step_end
        self._last = now if self._last is None else max(self._last, now)

    def _next_boundary(self, moment: datetime) -> datetime:
        assert self._tx_start is not None
        cycle = self.charge_s + self.discharge_s
        elapsed = (moment - self._tx_start).total_seconds()
        phase = elapsed % cycle
        to_go = self.charge_s - phase if phase < self.charge_s else cycle - phase
        return moment + timedelta(seconds=to_go)

    def _soc(self) -> int:
        start_mws = self.start_soc * self.capacity_wh * 36_000  # % of capacity, in mW·s
        now_mws = start_mws + self._battery_mws
        percent = now_mws * 100 // (self.capacity_wh * 3_600_000)
        return max(0, min(100, percent))
