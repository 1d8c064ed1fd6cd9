"""Drive ``strict_station.js`` (ocpp-rpc in strict mode) from a test, and run a real ``v2g csms``.

``StrictPeer`` starts the Node.js station, sends it calls and collects what it prints: results,
CALLERRORs, the CSMS's calls it answered, and any schema violation either way. ``CsmsProcess``
is ``python -m v2g csms`` on free ports with a data dir registered through the CLI.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "strict_station.js"
MODULES = HERE / "node_modules" / "ocpp-rpc" / "package.json"
PINNED = "2.2.1"


def ensure_node_modules() -> str:
    """The ``node`` to run; installs the locked ``ocpp-rpc`` with ``npm ci`` when missing.

    Fails the test with one line when Node.js or npm is not installed.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: the strict-peer tests need Node.js >= 17.3 and npm"
            " (make test installs them, or: apt-get install -y nodejs npm)",
            pytrace=False,
        )
    if not MODULES.is_file() or json.loads(MODULES.read_text())["version"] != PINNED:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "npm is not installed: cannot install ocpp-rpc for the strict-peer tests"
                " (apt-get install -y npm)",
                pytrace=False,
            )
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.fail(f"npm ci in {HERE} failed: {last}", pytrace=False)
    return node


class StrictPeer:
    """One ocpp-rpc station process in strict mode."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []
        self._ids = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        *,
        url: str,
        identity: str,
        password: str,
        protocol: str,
        answers: dict[str, Any],
    ) -> StrictPeer:
        node = ensure_node_modules()
        options = dict(
            url=url, identity=identity, password=password, protocol=protocol, answers=answers
        )
        process = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            json.dumps(options),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=HERE,
        )
        peer = cls(process)
        connected = await peer.wait_for(lambda r: r["type"] in ("connected", "fatal", "closed"))
        if connected["type"] != "connected" or connected["protocol"] != protocol:
            await peer.stop()
            raise AssertionError(f"the strict peer did not connect with {protocol}: {connected}")
        return peer

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.records.append(json.loads(line))
            self._changed.set()

    async def wait_for(self, predicate: Any, *, timeout: float = 15.0) -> dict[str, Any]:
        """The first record (old or new) matching ``predicate``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for record in self.records:
                if predicate(record):
                    return record
            if self._reader.done():
                raise AssertionError(f"the strict peer exited; it printed {self.records[-5:]}")
            self._changed.clear()
            left = end - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out; the strict peer printed {self.records[-5:]}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one station call; returns its result record, or its error record."""
        self._ids += 1
        number = self._ids
        assert self.process.stdin is not None
        self.process.stdin.write(
            (json.dumps({"id": number, "method": method, "params": params}) + "\n").encode()
        )
        await self.process.stdin.drain()
        return await self.wait_for(
            lambda r: r["type"] in ("result", "error") and r.get("id") == number
        )

    async def inbound(self, method: str, *, timeout: float = 15.0) -> dict[str, Any]:
        """The first CSMS call of ``method`` the peer answered."""
        record = await self.wait_for(
            lambda r: r["type"] == "inbound" and r["method"] == method, timeout=timeout
        )
        params: dict[str, Any] = record["params"]
        return params

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == kind]

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(b'{"close": true}\n')
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 5)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()


def v2g(*args: str) -> str:
    """Run one ``v2g`` CLI command to completion; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "v2g", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"v2g {' '.join(args)}: {done.stderr}"
    return done.stdout


class CsmsProcess:
    """``v2g csms`` on free ports; ``ws_url`` and ``http_url`` once it listens."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None
        self.ws_url = ""
        self.http_url = ""
        self.log = data_dir.parent / "csms.log"

    async def start(self) -> None:
        config = self.data_dir.parent / "csms.yaml"
        config.write_text("dispatch_interval: 0.5\n")
        command = [sys.executable, "-m", "v2g", "csms", "--data-dir", str(self.data_dir)]
        command += ["--port", "0", "--http-port", "0", "--config", str(config)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            text=True,
        )
        for _ in range(1200):  # it says where it listens on stderr
            text = self.log.read_text()
            ws = re.search(r"CSMS listening on ws://\S+?:(\d+)/ocpp/", text)
            web = re.search(r"dashboard on (http://\S+?)/?$", text, re.MULTILINE)
            if ws and web:
                self.ws_url = f"ws://127.0.0.1:{ws.group(1)}/ocpp"
                self.http_url = web.group(1).rstrip("/")
                return
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        self.stop()
        raise AssertionError(f"v2g csms did not start: {self.log.read_text()[-500:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
