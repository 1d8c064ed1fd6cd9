"""Simulated time is faithful, discharge included: the same seeded scenario at speeds 60,
600 and 3600 (real stations over real websockets, the real CSMS, its dispatcher and its SQLite
file) gives every session its drawn dwell time, the same energy imported and exported, the
same amount and the same departure outcome.

Each EV arrives an hour of tariff before short evening peaks in which exporting pays; the
dispatcher plans each session's schedule from the EV's needs and the station follows it on
its own clock, so what the EV does no longer depends on how fast that clock runs."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from csms.app import start_csms
from csms.model import SessionRecord
from csms.timeutil import parse_timestamp
from simulators.fleet import ev_factory, evse_seed, plan_fleet, station_seed
from simulators.run import run_scenario, simulation_config
from simulators.scenario import Scenario

# Two short peaks a few simulated minutes into each EVSE's first and second stay.
PEAKS = """\
id: short-peaks
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 180000, export_price: 60000}
  - {start: "15:03", import_price: 390000, export_price: 420000}
  - {start: "15:09", import_price: 300000, export_price: 110000}
  - {start: "15:14", import_price: 390000, export_price: 420000}
  - {start: "15:18", import_price: 180000, export_price: 60000}
"""
MAX_PRICE = 420000  # micro-units per kWh: the most a Wh can move an amount (per 1000)

SCENARIO = Scenario(
    stations=2,
    evses_per_station=2,
    sessions_per_evse=2,
    dwell_hours=(0.13, 0.16),  # 8 to 10 simulated minutes: 8 to 10 wall seconds at speed 60
    arrival_soc_pct=(59, 62),
    target_soc_pct=60,  # within reach: what the EVs charge before a peak they may give back
    arrival_spread_hours=0.02,
    start="2026-11-25T15:00:00Z",
    meter_interval_s=30,
    aligned_interval_s=60,  # a signed reading at every minute, so at every tariff boundary
    v2g_share=1.0,
    seed=7,
)

Key = tuple[str, int, int]  # station, EVSE, n-th stay on it


def drawn_dwells(scenario: Scenario) -> dict[Key, float]:
    """The dwell time (s) each EVSE's n-th EV draws (the first EV drawn is parked)."""
    out = {}
    for n, plan in enumerate(plan_fleet(scenario, Path("unused"))):
        for evse in range(1, scenario.evses_per_station + 1):
            seed = evse_seed(station_seed(scenario, n), evse)
            new_ev = ev_factory(scenario, random.Random(seed))
            new_ev(scenario.start_time)  # parked before the first session
            for nth in range(scenario.sessions_per_evse):
                ev = new_ev(scenario.start_time)
                dwell = ev.spec.departure - scenario.start_time
                out[(plan.station_id, evse, nth)] = dwell.total_seconds()
    return out


class Stay:
    """One session as the CSMS stored and settled it."""

    def __init__(self, session: SessionRecord, amount: int) -> None:
        assert session.started_at and session.ended_at
        self.begin = parse_timestamp(session.started_at)
        self.dwell = (parse_timestamp(session.ended_at) - self.begin).total_seconds()
        self.import_wh = session.import_wh
        self.export_wh = session.export_wh
        self.amount = amount


async def run_at(speed: float, tmp_path: Path) -> tuple[dict[Key, Stay], int]:
    """Each stay of the run at ``speed``, and how many EVs left with their target."""
    tariff = tmp_path / "peaks.yaml"
    tariff.write_text(PEAKS)
    scenario = replace(SCENARIO, speed=speed, tariff=str(tariff))
    config = simulation_config(scenario)
    app = await start_csms(tmp_path / f"speed-{speed:g}", config, ledger="embedded")
    try:
        url = f"ws://127.0.0.1:{app.port}/ocpp"
        run = await run_scenario(
            scenario, app.store, url, key_dir=tmp_path / "keys", settle_timeout_s=0
        )
        assert run.errors == [], run.errors
        summary = run.summary
        departures = summary.targets_met + summary.targets_missed + summary.targets_out_of_reach
        assert departures == scenario.total_sessions, summary  # every EV's target accounted for
        sessions = [s for s in await app.store.list_sessions() if s.state == "ended"]
        amounts = {}
        for s in sessions:
            settled = await app.store.settlement_for_session(s.station_id, s.transaction_id)
            assert settled is not None and settled.amount is not None, s
            amounts[s.transaction_id] = settled.amount
    finally:
        await app.stop()
    assert len(sessions) == scenario.total_sessions
    assert_back_to_back_from_arrival(scenario, sessions)
    out: dict[Key, Stay] = {}
    seen: dict[tuple[str, int], int] = {}
    for s in sorted(sessions, key=lambda s: (s.station_id, s.evse_id or 0, s.started_at or "")):
        assert s.evse_id is not None
        nth = seen.get((s.station_id, s.evse_id), 0)
        seen[(s.station_id, s.evse_id)] = nth + 1
        out[(s.station_id, s.evse_id, nth)] = Stay(s, amounts[s.transaction_id])
    return out, summary.targets_met


def assert_back_to_back_from_arrival(scenario: Scenario, sessions: list[SessionRecord]) -> None:
    """Each EVSE's first EV begins at its station's planned arrival (to the millisecond) and
    each next one when the one before left, however long connecting, authorizing and the
    CSMS's answers took in wall time: the timeline is the drawn stays, so it ends when the
    scenario says. The next arrival may trail by one late wake-up another EVSE of the station
    saw (the shared clock never goes back): a few wall milliseconds, under a minute here."""
    arrivals = {p.station_id: p.start for p in plan_fleet(scenario, Path("unused"))}
    spans: dict[tuple[str, int | None], list[tuple[datetime, datetime]]] = {}
    for s in sessions:
        assert s.started_at and s.ended_at
        spans.setdefault((s.station_id, s.evse_id), []).append(
            (parse_timestamp(s.started_at), parse_timestamp(s.ended_at))
        )
    ms = timedelta(milliseconds=1)
    for (station_id, _evse), runs in spans.items():
        runs.sort()
        assert abs(runs[0][0] - arrivals[station_id]) <= ms, (station_id, runs)
        for before, after in pairwise(runs):
            assert timedelta(0) <= after[0] - before[1] <= timedelta(minutes=1), (station_id, runs)


async def test_three_speeds_give_the_same_sessions_with_discharge(tmp_path: Path) -> None:
    """Tolerances: a dwell to 2 ms (OCPP's millisecond timestamps); energy to 1 Wh (register
    rounding) plus what charging and discharging at the EV's limits (11 + 7 kW) can move in
    the time a stay began later or earlier than at speed 60 (an EVSE's first stay begins
    exactly at its arrival; a next one may trail by a late wake-up, seconds at most); an
    amount to what those Wh cost at the highest price, plus 1 micro-unit of rounding."""
    runs = {speed: await run_at(speed, tmp_path) for speed in (60, 600, 3600)}
    reference, reference_met = runs[60]
    drawn = drawn_dwells(SCENARIO)
    for speed, (stays, met) in runs.items():
        assert stays.keys() == reference.keys(), speed
        assert met == reference_met == SCENARIO.total_sessions, (speed, met)  # targets kept
        assert sum(s.export_wh for s in stays.values()) > 0, speed  # the EVs did discharge
        for key, stay in stays.items():
            ref = reference[key]
            assert abs(stay.dwell - drawn[key]) <= 0.002, (speed, key, stay.dwell, drawn[key])
            shift_s = abs((stay.begin - ref.begin).total_seconds())
            energy_tol = 1 + (11_000 + 7_000) * shift_s / 3600
            assert abs(stay.import_wh - ref.import_wh) <= energy_tol, (speed, key, shift_s)
            assert abs(stay.export_wh - ref.export_wh) <= energy_tol, (speed, key, shift_s)
            amount_tol = 1 + 2 * energy_tol * MAX_PRICE / 1000
            assert abs(stay.amount - ref.amount) <= amount_tol, (speed, key, shift_s)


async def test_a_second_run_counts_only_its_own_sessions_and_overlaps_none(
    tmp_path: Path,
) -> None:
    from csms.timeutil import utc_now

    scenario = replace(SCENARIO, speed=3600, start="")  # the default: a timeline ending by now
    app = await start_csms(tmp_path / "data", simulation_config(scenario))
    try:
        url = f"ws://127.0.0.1:{app.port}/ocpp"
        for _ in range(2):
            run = await run_scenario(
                scenario, app.store, url, key_dir=tmp_path / "keys", settle_timeout_s=0
            )
            assert run.errors == [] and run.summary.sessions == scenario.total_sessions
        sessions = await app.store.list_sessions()
        assert len(sessions) == 2 * scenario.total_sessions
        spans: dict[tuple[str, int | None], list[tuple[str, str]]] = {}
        for session in sessions:
            assert session.started_at and session.ended_at
            assert parse_timestamp(session.ended_at) <= utc_now()  # nothing in the future
            spans.setdefault((session.station_id, session.evse_id), []).append(
                (session.started_at, session.ended_at)
            )
        for runs in spans.values():
            runs.sort()
            assert all(a[1] <= b[0] for a, b in pairwise(runs)), runs
    finally:
        await app.stop()
