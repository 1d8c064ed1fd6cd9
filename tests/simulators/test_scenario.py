from __future__ import annotations

import random
from pathlib import Path

import pytest

from simulators.scenario import ScenarioError, draw_ev, load_scenario


def test_scenario_values_and_ev_draws(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("stations: 3\nbattery_kwh: [60, 60]\nv2g_share: 0\nseed: 4\n")
    scenario = load_scenario(path)
    assert scenario.stations == 3 and scenario.total_sessions == 6
    ev = draw_ev(scenario, random.Random(scenario.seed))
    assert ev.battery_wh == 60_000
    assert not ev.v2g and ev.reserve_soc_pct == 100 and ev.max_discharge_w == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stations: 0\n", "key 'stations': expected 1..20000"),
        ("stations: many\n", "key 'stations': expected a number"),
        ("battery_kwh: [80, 40]\n", "key 'battery_kwh': expected 0 <= low <= high"),
        ("battery_kwh: 60\n", "key 'battery_kwh': expected [low, high]"),
        ("stationz: 2\n", "unknown key 'stationz'"),
        ("start: yesterday\n", "key 'start': expected an RFC 3339 time"),
        ("[1, 2]\n", "expected a mapping"),
    ],
)
def test_bad_scenarios_name_file_key_and_expectation(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_the_default_timeline_ends_no_later_than_now() -> None:
    from datetime import UTC, datetime, timedelta

    from simulators.scenario import Scenario, latest_start

    scenario = Scenario(sessions_per_evse=3, dwell_hours=(3.0, 5.0), arrival_spread_hours=1.0)
    start = scenario.start_time
    assert start.hour == 15 and start.minute == 0
    assert start + timedelta(hours=1 + 3 * 5) <= datetime.now(UTC)
    assert start + timedelta(days=2) > datetime.now(UTC)  # and not needlessly far back
    now = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    assert latest_start(timedelta(hours=6), now) == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert latest_start(timedelta(hours=9), now) == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
