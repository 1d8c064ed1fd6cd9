"""A taken port: every command that listens says which address and which option, and exits 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

V2G = str(Path(sys.executable).with_name("v2g"))


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["csms", "--port", "{port}", "--http-port", "0"], "--port"),
        (["csms", "--port", "0", "--http-port", "{port}"], "--http-port"),
        (["dashboard", "--port", "{port}"], "--port"),
        (["demo", "--stations", "1", "--exit", "--http-port", "{port}"], "--http-port"),
    ],
)
def test_a_taken_port_is_one_line_naming_address_and_option(
    tmp_path: Path, taken_port: int, args: list[str], option: str
) -> None:
    (tmp_path / "data").mkdir()
    argv = [a.format(port=taken_port) for a in args] + ["--data-dir", str(tmp_path / "data")]
    done = subprocess.run([V2G, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{taken_port}" in lines[0] and f"with {option})" in lines[0]
    assert "address already in use" in lines[0]
