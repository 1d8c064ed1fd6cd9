"""The registry commands and CSMS start-up through the real command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from csms.passwords import verify_password
from csms.store.sqlite import CsmsStore


def v2g(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=60
    )


def test_station_registry_round_trip(tmp_path: Path) -> None:
    data = str(tmp_path)
    added = v2g("stations", "add", "CS-1", "--password", "s3cret-pass", "--data-dir", data)
    assert added.returncode == 0, added.stderr
    again = v2g("stations", "add", "CS-1", "--password", "s3cret-pass", "--data-dir", data)
    assert again.returncode == 1 and "already registered" in again.stderr
    assert "Traceback" not in again.stderr
    listed = v2g("stations", "list", "--data-dir", data)
    assert "CS-1" in listed.stdout

    async def stored_hash() -> str:
        store = await CsmsStore.open_data_dir(tmp_path)
        station = await store.get_station("CS-1")
        await store.close()
        assert station is not None
        return station.password_hash

    hashed = asyncio.run(stored_hash())
    assert "s3cret-pass" not in hashed and hashed.startswith("scrypt$")
    assert verify_password("s3cret-pass", hashed) and not verify_password("other", hashed)
    removed = v2g("stations", "remove", "CS-1", "--data-dir", data)
    assert removed.returncode == 0
    gone = v2g("stations", "remove", "CS-1", "--data-dir", data)
    assert gone.returncode == 1 and "not registered" in gone.stderr


def test_token_registry_round_trip(tmp_path: Path) -> None:
    data = str(tmp_path)
    added = v2g("tokens", "add", "04A2B3C4", "--type", "ISO14443", "--payment", "ledger",
                "--data-dir", data)  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = v2g("tokens", "list", "--data-dir", data)
    assert "04A2B3C4" in listed.stdout and "ledger" in listed.stdout
    bad = v2g("tokens", "add", "X", "--type", "Bogus", "--data-dir", data)
    assert bad.returncode == 2 and "Usage:" in bad.stderr


def test_bad_arguments_print_usage(tmp_path: Path) -> None:
    result = v2g("stations", "add", "CS-1", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Usage:" in result.stderr and "--password" in result.stderr
    short = v2g("stations", "add", "CS-1", "--password", "short", "--data-dir", str(tmp_path))
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


def test_csms_refuses_a_bad_config_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("port: [not a port]\n")
    result = v2g("csms", "--data-dir", str(tmp_path / "d"), "--config", str(config))
    assert result.returncode == 1
    assert str(config) in result.stderr and "'port'" in result.stderr
    assert "Traceback" not in result.stderr


def test_csms_serves_until_terminated(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "v2g", "csms", "--data-dir", str(tmp_path), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "CSMS listening on ws://127.0.0.1:" in line
    process.terminate()
    assert process.wait(timeout=20) == 0
    assert (tmp_path / "csms.sqlite").is_file()


def test_station_ids_outside_ocpp_identifier_string_are_refused(tmp_path: Path) -> None:
    data = str(tmp_path)
    for bad in ("CS:1", "CS 1", "CS/1", "CS\u00e91", "x" * 49):
        result = v2g("stations", "add", bad, "--password", "s3cret-pass", "--data-dir", data)
        assert result.returncode == 2 and "identifierString" in result.stderr, (bad, result)
        assert "Traceback" not in result.stderr
    ok = v2g(
        "stations", "add", "CS_1-a.b@c+d|e*f=g", "--password", "s3cret-pass", "--data-dir", data
    )
    assert ok.returncode == 0, ok.stderr
