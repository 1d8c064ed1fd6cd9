from __future__ import annotations

import re

from simulators.summary import SessionOutcome, percentile, summarise


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None


def test_summary_adds_energy_and_amounts_and_counts_statuses() -> None:
    outcomes = [
        SessionOutcome("A", "1", "committed", 10_500, 2_000, 1_250_000, 0.4),
        SessionOutcome("A", "2", "committed", 3_000, 6_000, -900_000, 0.6),
        SessionOutcome("B", "3", "flagged", 1_000, 0, None, None),
    ]
    summary = summarise(outcomes, stations=2, errors=1, wall_seconds=3.21)
    assert (summary.sessions, summary.committed, summary.flagged, summary.pending) == (3, 2, 1, 0)
    assert summary.import_kwh == 14.5 and summary.export_kwh == 8.0
    assert summary.amount_total == 0.35
    assert summary.commit_latency_p50_ms == 400.0 and summary.commit_latency_p99_ms == 600.0
    assert summary.to_json()["errors"] == 1


def test_the_summary_says_how_much_simulated_time_slowed_down() -> None:
    from simulators.summary import summarise

    kept_up = summarise([], stations=1, errors=0, wall_seconds=1, speed=600, achieved_speed=599)
    assert kept_up.speed_line() is None and kept_up.slowed_pct == 0.2
    slowed = summarise([], stations=1, errors=0, wall_seconds=1, speed=3600, achieved_speed=900)
    line = slowed.speed_line()
    assert line is not None and "900x instead of 3,600x" in line and "75 % slower" in line
    assert slowed.to_json()["slowed_pct"] == 75.0


def test_departure_targets_met_missed_or_out_of_reach() -> None:
    from simulators.summary import MET, MISSED, OUT_OF_REACH, departure_outcome

    ev = {
        "target_soc_pct": 80,
        "arrival_soc_pct": 40,
        "capacity_wh": 60_000,
        "max_charge_w": 11_000,
    }
    assert departure_outcome(**ev, final_soc_pct=79.2, seconds=4 * 3600) == MET  # within a point
    assert departure_outcome(**ev, final_soc_pct=78.9, seconds=4 * 3600) == MISSED  # 24 kWh in 4 h
    assert (
        departure_outcome(**ev, final_soc_pct=70.0, seconds=2 * 3600) == OUT_OF_REACH
    )  # 22 kWh max
    summary = summarise(
        [], stations=1, errors=0, wall_seconds=1, departures=[MET, MET, MISSED, OUT_OF_REACH]
    )
    assert (summary.targets_met, summary.targets_missed, summary.targets_out_of_reach) == (2, 1, 1)
    assert summary.to_json()["targets_missed"] == 1


def test_the_fleet_table_shows_the_departure_targets() -> None:
    from rich.console import Console

    from simulators.cli import summary_table
    from simulators.summary import MET, MISSED

    summary = summarise([], stations=1, errors=0, wall_seconds=1, departures=[MET, MET, MISSED])
    console = Console(width=120, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    assert re.search(r"departure targets met\s+│\s+2", text), text
    assert re.search(r"departure targets missed\s+│\s+1", text), text
    assert re.search(r"departure targets out of reach\s+│\s+0", text), text
