"""Fleet scenarios: a YAML file validated into a frozen dataclass (pure, no I/O but the read).

A bad file stops the run naming the file, the key and what was expected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message names file, key and expectation."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """What a fleet run simulates. Ranges are ``[low, high]``, drawn uniformly per EV."""

    stations: int = 4
    evses_per_station: int = 2
    sessions_per_evse: int = 1  # arrivals per EVSE in the run (back to back)
    dwell_hours: tuple[float, float] = (3.0, 5.0)  # arrival to departure
    battery_kwh: tuple[float, float] = (50.0, 80.0)
    arrival_soc_pct: tuple[int, int] = (40, 70)
    target_soc_pct: int = 80
    v2g_share: float = 0.8  # share of EVs willing to discharge
    reserve_soc_pct: int = 30
    max_charge_kw: float = 11.0
    max_discharge_kw: float = 7.0
    start: str = (
        ""  # simulated arrival of the first EVs; "" = the latest 15:00 UTC that ends by now
    )
    arrival_spread_hours: float = 1.0  # arrivals spread over this long after ``start``
    speed: float = 3600.0  # simulated seconds per wall second
    meter_interval_s: int = 300  # TxUpdatedInterval, simulated seconds
    # AlignedDataCtrlr.Interval, simulated seconds: signed readings on this grid from midnight,
    # so every tariff boundary on it has one (a boundary off the grid flags the session)
    aligned_interval_s: int = 900
    tariff: str = ""  # tariff YAML for an embedded CSMS (default: its own)
    seed: int = 1

    @property
    def span(self) -> timedelta:
        """The longest the simulated timeline can run: arrivals, then back-to-back stays."""
        hours = self.arrival_spread_hours + self.sessions_per_evse * self.dwell_hours[1]
        return timedelta(hours=hours, minutes=5 * self.sessions_per_evse)  # + gaps between stays

    @property
    def start_time(self) -> datetime:
        if not self.start:
            return latest_start(self.span, datetime.now(UTC))
        return datetime.fromisoformat(self.start.replace("Z", "+00:00")).astimezone(UTC)

    @property
    def total_sessions(self) -> int:
        return self.stations * self.evses_per_station * self.sessions_per_evse


def latest_start(span: timedelta, now: datetime) -> datetime:
    """The latest 15:00 UTC (afternoon arrivals, then the evening peak) from which a timeline
    of ``span`` ends no later than ``now``: simulated records never lie in the future."""
    start = now.astimezone(UTC).replace(hour=15, minute=0, second=0, microsecond=0)
    while start + span > now:
        start -= timedelta(days=1)
    return start


@dataclass(frozen=True, slots=True)
class EvProfile:
    """One simulated EV's parameters, drawn from the scenario."""

    battery_wh: int
    arrival_soc_pct: int
    target_soc_pct: int
    reserve_soc_pct: int  # 100 for an EV that does not take part in V2G
    max_charge_w: int
    max_discharge_w: int
    dwell: timedelta
    v2g: bool


def draw_ev(scenario: Scenario, rng: random.Random) -> EvProfile:
    v2g = rng.random() < scenario.v2g_share
    return EvProfile(
        battery_wh=int(rng.uniform(*scenario.battery_kwh) * 1000),
        arrival_soc_pct=rng.randint(*scenario.arrival_soc_pct),
        target_soc_pct=scenario.target_soc_pct,
        reserve_soc_pct=scenario.reserve_soc_pct if v2g else 100,
        max_charge_w=int(scenario.max_charge_kw * 1000),
        max_discharge_w=int(scenario.max_discharge_kw * 1000) if v2g else 0,
        dwell=timedelta(hours=rng.uniform(*scenario.dwell_hours)),
        v2g=v2g,
    )


_LIMITS: dict[str, tuple[float, float]] = {
    "stations": (1, 20_000),
    "evses_per_station": (1, 16),
    "sessions_per_evse": (1, 1000),
    "target_soc_pct": (1, 100),
    "v2g_share": (0, 1),
    "reserve_soc_pct": (0, 100),
    "max_charge_kw": (0.1, 1000),
    "max_discharge_kw": (0, 1000),
    "arrival_spread_hours": (0, 24 * 7),
    "speed": (0.001, 1_000_000),
    "meter_interval_s": (1, 86_400),
    "aligned_interval_s": (0, 86_400),
}


def _check_range(path: Path, key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ScenarioError(f"{path}: key {key!r}: expected [low, high], got {value!r}")
    kind = type(default[0])
    low, high = (_check_number(path, key, v, kind) for v in value)
    if low > high or low < 0:
        raise ScenarioError(f"{path}: key {key!r}: expected 0 <= low <= high, got {value!r}")
    return (low, high)


def _check_number(path: Path, key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{path}: key {key!r}: expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise ScenarioError(f"{path}: key {key!r}: expected a whole number, got {value!r}")
    return kind(value)


def load_scenario(path: Path) -> Scenario:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(raw or {}, path)


def parse_scenario(raw: Any, path: Path) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping of settings at the top level")
    defaults = Scenario()
    known = {f.name for f in fields(Scenario)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ScenarioError(
                f"{path}: unknown key {key!r}: expected one of {', '.join(sorted(known))}"
            )
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            values[key] = _check_range(path, key, value, default)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise ScenarioError(f"{path}: key {key!r}: expected a string, got {value!r}")
            values[key] = value
        else:
            number = _check_number(path, key, value, type(default))
            low, high = _LIMITS.get(key, (float("-inf"), float("inf")))
            if not low <= number <= high:
                raise ScenarioError(
                    f"{path}: key {key!r}: expected {low:g}..{high:g}, got {value!r}"
                )
            values[key] = number
    scenario = Scenario(**values)
    if not scenario.start:
        return scenario
    try:
        scenario.start_time  # noqa: B018 - validates the timestamp
    except ValueError:
        raise ScenarioError(
            f"{path}: key 'start': expected an RFC 3339 time with timezone, got {scenario.start!r}"
        ) from None
    if scenario.start_time.utcoffset() is None:
        raise ScenarioError(f"{path}: key 'start': expected a timezone")
    return scenario
