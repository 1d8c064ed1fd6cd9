"""Security profile 3 through the real command lines, as an operator would set it up:
certificates, registry, ``v2g csms --tls-*`` and ``v2g chargepoint --ca/--cert/--key``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STATION = "CS-E2E-TLS"
TOKEN = "04E1A2B3C4D5E6"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


def wait_for_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"listening on wss://127\.0\.0\.1:(\d+)/", line)
        if match:
            return int(match.group(1))
        if not line and process.poll() is not None:
            break
    raise AssertionError("the CSMS did not report its port")


@pytest.mark.slow
def test_profile3_session_through_the_command_lines(tmp_path: Path) -> None:
    pki, data = tmp_path / "pki", tmp_path / "data"
    run("csms.cli_certs", "init", "--dir", str(pki))
    run("csms.cli_certs", "server", "--dir", str(pki), "--host", "csms.test")
    run("csms.cli_certs", "station", STATION, "--dir", str(pki))
    run("csms.cli_certs", "station", "CS-INTRUDER", "--dir", str(pki))
    run("v2g", "stations", "add", STATION, "--password", "unused-on-p3", "--data-dir", str(data))
    run("v2g", "tokens", "add", TOKEN, "--data-dir", str(data))
    csms = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "v2g",
            "csms",
            "--data-dir",
            str(data),
            "--port",
            "0",
            "--tls-cert",
            str(pki / "server.pem"),
            "--tls-key",
            str(pki / "server.key"),
            "--tls-ca",
            str(pki / "ca.pem"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"wss://127.0.0.1:{wait_for_port(csms)}/ocpp"

        def station(cert_stem: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "v2g",
                    "chargepoint",
                    url,
                    STATION,
                    "--ca",
                    str(pki / "ca.pem"),
                    "--cert",
                    str(pki / f"{cert_stem}.pem"),
                    "--key",
                    str(pki / f"{cert_stem}.key"),
                    "--sessions",
                    "1",
                    "--exit",
                    "--session-seconds",
                    "600",
                    "--speed",
                    "6000",
                    "--connect-timeout",
                    "10",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )

        good = station(f"station-{STATION}")
        assert good.returncode == 0, good.stderr
        assert "1 session(s) completed" in good.stdout
        intruder = station("station-CS-INTRUDER")
        assert intruder.returncode == 1
        assert "403" in intruder.stderr
    finally:
        csms.send_signal(signal.SIGTERM)
        try:
            csms.wait(timeout=10)
        except subprocess.TimeoutExpired:
            csms.kill()
            csms.wait()
    assert csms.returncode == 0
