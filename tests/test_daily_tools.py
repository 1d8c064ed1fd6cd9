"""The daily commands: passwords, read-only commands on a missing data directory, clean
errors, the demo login, and a simulator that does not wait for a CSMS that is not there."""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import time
from pathlib import Path

from csms.operators import OperatorRegistry
from csms.store.sqlite import CsmsStore
from simulators.cli import LOGIN_FILE, demo_login
from tests.csms.test_cli import v2g


def clean(stderr: str) -> bool:
    return "Traceback" not in stderr and not re.search(r"\w+Error\b", stderr)


def test_operators_passwd_changes_the_password(tmp_path: Path) -> None:
    data = str(tmp_path)
    added = v2g("operators", "add", "alice", "--password", "first-password", "--data-dir", data)
    assert added.returncode == 0, added.stderr
    changed = v2g("operators", "passwd", "alice", "--password", "second-password",
                  "--data-dir", data)  # fmt: skip
    assert changed.returncode == 0 and "changed" in changed.stdout, changed.stderr
    unknown = v2g("operators", "passwd", "bob", "--password", "second-password", "--data-dir", data)
    assert unknown.returncode == 1 and "no operator 'bob'" in unknown.stderr

    async def check() -> tuple[bool, bool]:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            registry = OperatorRegistry(store)
            old = await registry.authenticate("alice", "first-password")
            new = await registry.authenticate("alice", "second-password")
            return old is not None, new is not None
        finally:
            await store.close()

    assert asyncio.run(check()) == (False, True)
    listed = v2g("operators", "list", "--data-dir", data)
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "ROLE", "ADDED", "(UTC)"]
    assert row.split()[:2] == ["alice", "operator"] and "T" not in row


def test_read_only_commands_never_create_a_data_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "dir"
    for command in (
        ("stations", "list"),
        ("tokens", "list"),
        ("operators", "list"),
        ("sessions", "list"),
        ("sessions", "show", "X:1"),
        ("sessions", "export", "--format", "csv"),
        ("stations", "remove", "CS1"),
    ):
        result = v2g(*command, "--data-dir", str(missing))
        assert result.returncode == 1, command
        assert "not a CSMS data directory" in result.stderr and clean(result.stderr), command
    assert not (tmp_path / "nope").exists()


def test_an_export_to_a_missing_directory_says_so_without_a_class_name(tmp_path: Path) -> None:
    data = str(tmp_path)
    assert v2g("operators", "add", "alice", "--password", "first-password",
               "--data-dir", data).returncode == 0  # fmt: skip
    target = tmp_path / "no-such-dir" / "out.csv"
    result = v2g("sessions", "export", "--format", "csv", "--output", str(target),
                 "--data-dir", data)  # fmt: skip
    assert result.returncode == 1 and str(target) in result.stderr
    assert "No such file or directory" in result.stderr and clean(result.stderr)


def test_simulate_fails_fast_when_the_csms_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scenario = tmp_path / "s.yaml"
    scenario.write_text("stations: 1\n")
    started = time.monotonic()
    result = v2g("simulate", "--scenario", str(scenario), "--csms",
                 f"ws://127.0.0.1:{port}/ocpp", "--data-dir", str(tmp_path / "d"))  # fmt: skip
    assert time.monotonic() - started < 15
    assert result.returncode == 1 and "cannot reach the CSMS" in result.stderr
    assert clean(result.stderr)


def test_simulate_names_every_csms_when_none_can_be_reached(tmp_path: Path) -> None:
    ports = []
    for _ in range(3):
        with socket.socket() as probe:  # ports nothing listens on
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    urls = [f"ws://127.0.0.1:{port}/ocpp" for port in ports]
    scenario = tmp_path / "s.yaml"
    scenario.write_text("stations: 1\n")
    result = v2g("simulate", "--scenario", str(scenario), "--csms", f"{urls[0]},{urls[1]}",
                 "--csms", urls[2], "--data-dir", str(tmp_path / "d"))  # fmt: skip
    assert result.returncode == 1 and clean(result.stderr)
    assert all(f"cannot reach the CSMS at {url}" in result.stderr for url in urls)
    assert len(result.stderr.strip().splitlines()) == 1


async def test_the_demo_login_works_on_every_run_and_is_kept_private(tmp_path: Path) -> None:
    store = await CsmsStore.open_data_dir(tmp_path)
    try:
        registry = OperatorRegistry(store)
        first = await demo_login(registry, tmp_path)
        again = await demo_login(OperatorRegistry(store), tmp_path)
        assert first == again and await registry.authenticate(*again) is not None
        path = tmp_path / LOGIN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.unlink()  # lost: the next run makes a new one that works
        fresh = await demo_login(OperatorRegistry(store), tmp_path)
        assert fresh != first and await OperatorRegistry(store).authenticate(*fresh) is not None
        assert await OperatorRegistry(store).authenticate(*first) is None
    finally:
        await store.close()
