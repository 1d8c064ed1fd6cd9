"""A fleet of simulated stations (real ``chargepoint`` instances over real websockets).

Each station gets its own signing-meter key and idToken, registered in the CSMS's data
directory; each session brings a fresh EV drawn from the scenario (battery, arrival SoC,
V2G-willing or not). Stations start at spread-out simulated arrival times and run their
sessions back to back; ``run_fleet`` returns when every station has finished.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from chargepoint.backoff import Backoff
from chargepoint.clock import AcceleratedClock
from chargepoint.config import StationConfig
from chargepoint.connection import csms_urls
from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_meters, public_key_path
from chargepoint.runner import runner_for
from chargepoint.session_report import SessionReport
from chargepoint.transaction import IdToken
from csms.model import NEGATIVE_LIMIT_201, TokenRecord
from csms.passwords import hash_password
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, utc_now
from simulators.scenario import Scenario, draw_ev
from simulators.summary import departure_outcome

# how long (wall seconds) an EV waits for the schedule its needs ask for; the station clock
# stands still meanwhile, so the schedule governs the session from its first instant
SCHEDULE_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class StationPlan:
    station_id: str
    password: str
    token: str
    payment: str
    meter_key: Path
    start: datetime
    session_seconds: float


@dataclass(frozen=True, slots=True)
class FleetResult:
    stations: int
    errors: list[str]
    achieved_speed: float | None = None  # the slowest station clock's real speed
    departures: tuple[str, ...] = ()  # each EV's departure outcome (``summary.departure_outcome``)


@dataclass(frozen=True, slots=True)
class StationRun:
    errors: list[str]
    achieved_speed: float  # station seconds per wall second over the run
    departures: tuple[str, ...] = ()


def plan_fleet(
    scenario: Scenario, key_dir: Path, *, prefix: str = "SIM", ledger_payments: bool = True
) -> list[StationPlan]:
    """Who the stations are, when their EVs arrive and how long they stay (deterministic).

    With ``ledger_payments`` every second station's EVs pay through the ledger (the paper's
    crypto-payment path), the others by invoice.
    """
    rng = random.Random(scenario.seed)
    spread = scenario.arrival_spread_hours * 3600
    plans = []
    for n in range(scenario.stations):
        station_id = f"{prefix}-{n + 1:05d}"
        dwell = draw_ev(scenario, rng).dwell.total_seconds()
        plans.append(
            StationPlan(
                station_id=station_id,
                password=f"pw-{station_id}-{rng.getrandbits(48):012x}",
                token=f"{prefix}TOK{n + 1:05d}",
                payment="ledger" if ledger_payments and n % 2 else "invoice",
                meter_key=key_dir / f"{station_id}.key",
                start=scenario.start_time + timedelta(seconds=rng.uniform(0, spread)),
                session_seconds=dwell,
            )
        )
    return plans


async def register_fleet(store: CsmsStore, plans: list[StationPlan]) -> None:
    """Register each station (password, meter key) and its idToken, once."""
    now = format_timestamp(utc_now())
    for plan in plans:
        plan.meter_key.parent.mkdir(parents=True, exist_ok=True)
        ensure_meter_key(plan.meter_key)
        pem = public_key_path(plan.meter_key).read_text(encoding="ascii")
        if await store.get_station(plan.station_id) is None:
            hashed = await asyncio.to_thread(hash_password, plan.password)
            await store.add_station(plan.station_id, hashed, now, pem)
        else:
            hashed = await asyncio.to_thread(hash_password, plan.password)
            await store.update_station_secret(plan.station_id, hashed, pem)
        # the simulated 2.0.1 station follows a negative limit by discharging
        await store.set_station_caps(plan.station_id, discharge=NEGATIVE_LIMIT_201)
        if await store.get_token(plan.token, "ISO14443") is None:
            await store.add_token(
                TokenRecord(plan.token, "ISO14443", "Accepted", plan.payment, None, now)
            )


def station_seed(scenario: Scenario, n: int) -> int:
    """The seed of the EVs arriving at the ``n``-th station (0-based)."""
    return scenario.seed * 100_003 + n


def evse_seed(station: int, evse: int) -> int:
    """The seed of the EVs arriving at one EVSE of a station seeded ``station``."""
    return station * 17 + evse


def ev_factory(scenario: Scenario, rng: random.Random) -> Callable[[datetime], Ev]:
    """Fresh EVs drawn from the scenario; each departs after its drawn dwell time."""

    def new_ev(at: datetime) -> Ev:
        profile = draw_ev(scenario, rng)
        spec = EvSpec(
            capacity_wh=profile.battery_wh,
            reserve_soc_pct=profile.reserve_soc_pct,
            max_charge_w=profile.max_charge_w,
            max_discharge_w=profile.max_discharge_w,
            departure=at + profile.dwell,
            target_soc_pct=profile.target_soc_pct,
        )
        return Ev(spec, soc_pct=profile.arrival_soc_pct, at=at)

    return new_ev


async def run_station(
    scenario: Scenario, plan: StationPlan, csms_url: str, seed: int
) -> StationRun:
    """Run one station's sessions to the end: its error lines (empty when clean) and how fast
    its clock really ran. ``csms_url`` may list several CSMS processes, comma-separated."""
    first, *others = csms_urls(csms_url)
    config = StationConfig(
        url=first,
        fallback_urls=tuple(others),
        station_id=plan.station_id,
        password=plan.password,
        evses=scenario.evses_per_station,
        sessions=scenario.evses_per_station * scenario.sessions_per_evse,
        exit_when_done=True,
        id_token=IdToken(plan.token, "ISO14443"),
        session_seconds=max(60.0, scenario.dwell_hours[1] * 3600),  # each EV leaves at its dwell
        speed=scenario.speed,
        tx_updated_interval=scenario.meter_interval_s,
        aligned_interval=scenario.aligned_interval_s,
        connect_timeout=60,
        response_timeout=60,
        backoff=Backoff(wait_minimum=0.2, random_range=0.2, repeat_times=2),
        schedule_wait=SCHEDULE_WAIT_S,
    )
    key = ensure_meter_key(plan.meter_key)
    meters = ev_meters(
        key,
        station_id=plan.station_id,
        evses=scenario.evses_per_station,
        options=EvOptions(),
        stay_seconds=plan.session_seconds,
        new_ev_for=lambda evse: ev_factory(scenario, random.Random(evse_seed(seed, evse))),
    )
    # held until the runner holds it for its session driver: the first EVs arrive at
    # ``plan.start`` however long this process takes to get the stations going
    clock = AcceleratedClock(speed=scenario.speed, start=plan.start, held=True)
    departures: list[str] = []

    def on_session(report: SessionReport) -> None:
        """The EV that just left (still behind its meter): did it get its target?"""
        ev = meters[report.evse_id].ev
        departures.append(
            departure_outcome(
                target_soc_pct=ev.spec.target_soc_pct,
                arrival_soc_pct=report.soc_start if report.soc_start is not None else 0,
                final_soc_pct=ev.soc_pct,
                capacity_wh=ev.spec.capacity_wh,
                max_charge_w=ev.spec.max_charge_w,
                seconds=report.seconds,
            )
        )

    runner = runner_for(config, clock=clock, meters=meters, on_session=on_session)
    clock.release()
    code = await runner.run()
    errors = [] if code == 0 else [f"{plan.station_id}: {e}" for e in runner.errors]
    return StationRun(errors, clock.achieved_speed(), tuple(departures))


async def run_fleet(scenario: Scenario, plans: list[StationPlan], csms_url: str) -> FleetResult:
    """Run every station concurrently; a failing station does not stop the others."""
    results = await asyncio.gather(
        *(
            run_station(scenario, plan, csms_url, station_seed(scenario, n))
            for n, plan in enumerate(plans)
        ),
        return_exceptions=True,
    )
    errors: list[str] = []
    speeds: list[float] = []
    departures: list[str] = []
    for plan, result in zip(plans, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(f"{plan.station_id}: {result or type(result).__name__}")
        else:
            errors.extend(result.errors)
            speeds.append(result.achieved_speed)
            departures.extend(result.departures)
    return FleetResult(len(plans), errors, min(speeds) if speeds else None, tuple(departures))
