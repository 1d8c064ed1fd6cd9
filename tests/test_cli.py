from __future__ import annotations

import subprocess
import sys


def run_v2g(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=60
    )


def test_unknown_command_prints_usage() -> None:
    result = run_v2g("no-such-command")
    assert result.returncode == 2
    assert "Usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_commands() -> None:
    result = run_v2g("--help")
    assert result.returncode == 0
    for name in ("csms", "chargepoint", "ledger", "stations", "tokens", "keys"):
        assert name in result.stdout
