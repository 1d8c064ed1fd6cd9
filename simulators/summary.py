"""The fleet run's summary: sessions, energy, amounts, commit latency, errors (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """One session as the CSMS settled it (or not)."""

    station_id: str
    transaction_id: str
    status: str  # committed | pending | flagged | rejected | unsettled
    import_wh: int
    export_wh: int
    amount: int | None  # micro-units; > 0 the driver pays
    commit_latency_s: float | None  # settlement written -> committed


MET, MISSED, OUT_OF_REACH = "met", "missed", "out of reach"
TARGET_TOLERANCE_PCT = 1.0  # within one SoC point of the target counts as met


def departure_outcome(
    *,
    target_soc_pct: float,
    arrival_soc_pct: float,
    final_soc_pct: float,
    capacity_wh: int,
    max_charge_w: int,
    seconds: float,
) -> str:
    """Whether an EV left with its target SoC (within one point): ``met``, ``missed``, or
    ``out of reach`` when charging at its limit for the whole stay could not have got it there."""
    if final_soc_pct >= target_soc_pct - TARGET_TOLERANCE_PCT:
        return MET
    needed_wh = capacity_wh * (target_soc_pct - arrival_soc_pct) / 100
    if needed_wh > max_charge_w * seconds / 3600:
        return OUT_OF_REACH
    return MISSED


@dataclass(frozen=True, slots=True)
class Summary:
    stations: int
    sessions: int
    committed: int
    flagged: int
    pending: int
    import_kwh: float
    export_kwh: float
    amount_total: float  # currency units
    commit_latency_p50_ms: float | None
    commit_latency_p99_ms: float | None
    errors: int
    wall_seconds: float
    speed: float | None = None  # simulated seconds per wall second asked for
    achieved_speed: float | None = None  # what the slowest station clock really ran at
    targets_met: int = 0  # EVs that left within one SoC point of their target
    targets_missed: int = 0  # EVs that could have reached it and did not
    targets_out_of_reach: int = 0  # EVs that could not have, even charging all the time

    @property
    def slowed_pct(self) -> float:
        """How much slower than asked simulated time ran (0 when the machine kept up)."""
        if not self.speed or self.achieved_speed is None:
            return 0.0
        return max(0.0, round((1 - self.achieved_speed / self.speed) * 100, 1))

    def speed_line(self) -> str | None:
        """One line for the summary when the clock slowed down (None when it kept up)."""
        if self.slowed_pct < 1 or self.achieved_speed is None:
            return None
        return (
            f"simulated time ran at {self.achieved_speed:,.0f}x instead of {self.speed:,.0f}x "
            f"({self.slowed_pct:.0f} % slower): the machine could not keep up, so the clock "
            "slowed down; energy and amounts are unaffected"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "slowed_pct": self.slowed_pct}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarise(
    outcomes: Sequence[SessionOutcome],
    *,
    stations: int,
    errors: int,
    wall_seconds: float,
    speed: float | None = None,
    achieved_speed: float | None = None,
    departures: Sequence[str] = (),
) -> Summary:
    """The run's figures; ``departures`` holds each EV's ``departure_outcome``."""
    latencies = [o.commit_latency_s for o in outcomes if o.commit_latency_s is not None]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return Summary(
        stations=stations,
        sessions=len(outcomes),
        committed=sum(o.status == "committed" for o in outcomes),
        flagged=sum(o.status in ("flagged", "rejected") for o in outcomes),
        pending=sum(o.status in ("pending", "unsettled") for o in outcomes),
        import_kwh=round(sum(o.import_wh for o in outcomes) / 1000, 3),
        export_kwh=round(sum(o.export_wh for o in outcomes) / 1000, 3),
        amount_total=sum(o.amount or 0 for o in outcomes) / 1_000_000,
        commit_latency_p50_ms=None if p50 is None else round(p50 * 1000, 1),
        commit_latency_p99_ms=None if p99 is None else round(p99 * 1000, 1),
        errors=errors,
        wall_seconds=round(wall_seconds, 2),
        speed=speed,
        achieved_speed=None if achieved_speed is None else round(achieved_speed, 1),
        targets_met=sum(d == MET for d in departures),
        targets_missed=sum(d == MISSED for d in departures),
        targets_out_of_reach=sum(d == OUT_OF_REACH for d in departures),
    )
