"""The fleet simulator and the demo through the real command line: real stations, the real
CSMS, the embedded validator set; then the ledger and the review CLI agree with the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def v2g(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_simulate_runs_a_scenario_and_settles_every_session(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "stations: 3\nevses_per_station: 2\nsessions_per_evse: 1\n"
        "dwell_hours: [3, 4]\nv2g_share: 1\nstart: '2026-11-25T15:30:00Z'\n"
        "arrival_spread_hours: 0.5\nspeed: 4000\nseed: 11\n"
    )
    data = tmp_path / "data"
    result = v2g("simulate", "--scenario", str(scenario), "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["sessions"] == 6 and summary["committed"] == 6 and summary["errors"] == 0
    assert summary["export_kwh"] > 0  # the evening peak made V2G-willing EVs discharge
    assert summary["commit_latency_p99_ms"] is not None

    listed = v2g("sessions", "list", "--data-dir", str(data), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows["sessions"] if isinstance(rows, dict) else rows
    assert len(rows) == 6
    verified = v2g("ledger", "verify", "--data-dir", str(data / "ledger"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_demo_exits_once_every_session_is_committed(tmp_path: Path) -> None:
    result = v2g("demo", "--data-dir", str(tmp_path), "--stations", "2", "--exit",
                 "--http-port", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dashboard: http://127.0.0.1:" in result.stderr
    assert "log in as operator /" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_scenario_names_file_and_key(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("stations: -3\n")
    result = v2g("simulate", "--scenario", str(scenario), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 1
    assert str(scenario) in result.stderr and "'stations'" in result.stderr
