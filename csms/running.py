"""Where a transaction in progress stands, advanced by each event's own samples (pure).

The work per event does not grow with the samples a transaction already has: its progress (the
running cost with the last register readings, the first and lowest readings, the newest sample
time and state of charge, the count of samples kept) is stored with each event
(``csms.store.progress``) and each new event folds in only its own samples. A restarted CSMS
reads the stored progress; nothing is recomputed from the samples.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from csms.model import MeterSample, RegisterReading
from csms.settlement import RunningCost
from csms.tariffs import Tariff

IMPORT = "Energy.Active.Import.Register"
EXPORT = "Energy.Active.Export.Register"
SOC = "SoC"


def register_readings(
    samples: Iterable[MeterSample],
) -> list[tuple[datetime, int | None, int | None]]:
    """An event's register readings, one per timestamp, in time order (phase totals only)."""
    by_time: dict[datetime, list[int | None]] = {}
    for sample in samples:
        if sample.phase is not None or sample.measurand not in (IMPORT, EXPORT):
            continue
        pair = by_time.setdefault(sample.timestamp, [None, None])
        slot = 0 if sample.measurand == IMPORT else 1
        current = pair[slot]
        pair[slot] = sample.value if current is None else max(current, sample.value)
    return [(at, pair[0], pair[1]) for at, pair in sorted(by_time.items())]


def _span(low: int | None, high: int | None) -> int:
    return 0 if low is None or high is None else high - low


def _low(last: int | None, new: int | None) -> int | None:
    return new if last is None else last if new is None else min(last, new)


@dataclass(frozen=True, slots=True)
class TransactionProgress:
    """One transaction so far. Registers in Wh; ``cost`` holds the latest (highest) readings.

    ``previous_at`` is the time of the register reading before the latest (the dispatcher's
    step); ``first`` the earliest reading (a missing register read as 0, as the dispatcher
    takes it); ``import_low``/``export_low`` the lowest readings, so the energy so far is the
    high minus the low whatever order the events came in.
    """

    samples: int = 0
    cost: RunningCost = field(default_factory=RunningCost)
    previous_at: datetime | None = None
    first: RegisterReading | None = None
    import_low: int | None = None
    export_low: int | None = None
    latest_at: datetime | None = None
    soc: int | None = None
    soc_at: datetime | None = None

    @property
    def amount(self) -> int:
        """The running cost so far (micro-units)."""
        return self.cost.amount

    @property
    def energy_wh(self) -> tuple[int, int]:
        """Import and export Wh so far, from register deltas."""
        return (
            _span(self.import_low, self.cost.import_wh),
            _span(self.export_low, self.cost.export_wh),
        )

    @property
    def latest(self) -> RegisterReading | None:
        """The latest register reading (a missing register read as 0)."""
        c = self.cost
        if c.at is None:
            return None
        return RegisterReading(c.at, c.import_wh or 0, c.export_wh or 0)

    def advance(self, samples: Iterable[MeterSample], tariff: Tariff | None) -> TransactionProgress:
        """This progress with one event's samples folded in (``tariff`` None: not priced)."""
        samples = tuple(samples)
        if not samples:
            return self
        state = self
        for at, import_wh, export_wh in register_readings(samples):
            state = state._read_registers(at, import_wh, export_wh, tariff)
        latest_at, soc, soc_at = state.latest_at, state.soc, state.soc_at
        for sample in samples:
            if latest_at is None or sample.timestamp > latest_at:
                latest_at = sample.timestamp
            if sample.measurand == SOC and (soc_at is None or sample.timestamp >= soc_at):
                soc, soc_at = sample.value, sample.timestamp
        return replace(
            state,
            samples=state.samples + len(samples),
            latest_at=latest_at,
            soc=soc,
            soc_at=soc_at,
        )

    def _read_registers(
        self, at: datetime, import_wh: int | None, export_wh: int | None, tariff: Tariff | None
    ) -> TransactionProgress:
        last = self.cost.at
        if last is None or at >= last:
            previous_at = last
        else:  # a late reading: the step is between the two newest readings
            previous_at = at if self.previous_at is None else max(self.previous_at, at)
        first = self.first
        if first is None or at < first.at:
            first = RegisterReading(at, import_wh or 0, export_wh or 0)
        return replace(
            self,
            cost=self.cost.advance(at, import_wh, export_wh, tariff),
            previous_at=previous_at,
            first=first,
            import_low=_low(self.import_low, import_wh),
            export_low=_low(self.export_low, export_wh),
        )
