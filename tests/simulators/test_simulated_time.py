"""Simulated time is faithful: the same seeded scenario at speeds 60, 600 and 3600 (real
stations over real websockets, the real CSMS and its SQLite file) gives every session its
drawn dwell time and the same energy to within 1 Wh."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from csms.app import start_csms
from csms.model import SessionRecord
from csms.timeutil import parse_timestamp
from simulators.fleet import ev_factory, evse_seed, plan_fleet, station_seed
from simulators.run import run_scenario, simulation_config
from simulators.scenario import Scenario

SCENARIO = Scenario(
    stations=2,
    evses_per_station=2,
    sessions_per_evse=2,
    dwell_hours=(0.05, 0.1),  # 3 to 6 simulated minutes: 3 to 6 wall seconds at speed 60
    arrival_spread_hours=0.02,
    start="2026-11-25T02:00:00Z",  # night: the EVs charge at their own maximum throughout
    meter_interval_s=30,
    v2g_share=0.5,
    seed=7,
)


def drawn_dwells(scenario: Scenario) -> dict[tuple[str, int, int], float]:
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


async def run_at(speed: float, tmp_path: Path) -> dict[tuple[str, int, int], tuple[float, int]]:
    scenario = _with(speed)
    data = tmp_path / f"speed-{speed:g}"
    app = await start_csms(data, simulation_config(scenario))
    try:
        url = f"ws://127.0.0.1:{app.port}/ocpp"
        run = await run_scenario(
            scenario, app.store, url, key_dir=tmp_path / "keys", settle_timeout_s=0
        )
        assert run.errors == [], run.errors
        summary = run.summary
        departures = summary.targets_met + summary.targets_missed + summary.targets_out_of_reach
        assert departures == scenario.total_sessions, summary  # every EV's target accounted for
        assert summary.targets_missed == 0, summary  # charged at their limit all night
        sessions = [s for s in await app.store.list_sessions() if s.state == "ended"]
    finally:
        await app.stop()
    assert len(sessions) == scenario.total_sessions
    assert_back_to_back_from_arrival(scenario, sessions)
    out: dict[tuple[str, int, int], tuple[float, int]] = {}
    seen: dict[tuple[str, int], int] = {}
    for s in sorted(sessions, key=lambda s: (s.station_id, s.evse_id or 0, s.started_at or "")):
        assert s.started_at and s.ended_at and s.evse_id is not None
        nth = seen.get((s.station_id, s.evse_id), 0)
        seen[(s.station_id, s.evse_id)] = nth + 1
        dwell = (parse_timestamp(s.ended_at) - parse_timestamp(s.started_at)).total_seconds()
        out[(s.station_id, s.evse_id, nth)] = (dwell, s.import_wh - s.export_wh)
    return out


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


def _with(speed: float) -> Scenario:
    from dataclasses import replace

    return replace(SCENARIO, speed=speed)


async def test_three_speeds_give_the_same_sessions(tmp_path: Path) -> None:
    runs = {speed: await run_at(speed, tmp_path) for speed in (3600, 600, 60)}
    reference = runs[60]
    drawn = drawn_dwells(SCENARIO)
    for speed, sessions in runs.items():
        assert sessions.keys() == reference.keys(), speed
        for key, (dwell, net_wh) in sessions.items():
            # every session lasts a dwell time its EV drew (to the millisecond of OCPP time)
            assert abs(dwell - drawn[key]) <= 0.002, (speed, key, dwell, drawn[key])
            assert abs(net_wh - reference[key][1]) <= 1, (speed, key, net_wh, reference[key])
            assert net_wh > 0  # the EVs charged


async def test_a_second_run_counts_only_its_own_sessions_and_overlaps_none(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

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
