"""Two real ``v2g csms`` processes on one PostgreSQL database: a station moves from A to B
and A lets go of it; an operator call on B's API and CLI reaches the station on A; after A is
killed (SIGKILL) its lease lapses and every process lists the station as not connected."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.csms.conftest import auth_header
from tests.postgres import PostgresServer

STATION, PASSWORD = "CS-MOVES", "s3cret-pass"
OPERATOR = ("olivia", "operator-pw")


def v2g(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "v2g", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@contextmanager
def csms_process(data: Path, name: str) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """``v2g csms --process-name NAME`` on free ports: (process, OCPP port, HTTP port)."""
    log = data / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "v2g", "csms", "--data-dir", str(data), "--port", "0"),
                *("--http-port", "0", "--process-name", name),
            ],
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            text = log.read_text(errors="replace")
            if "dashboard on http://" in text:
                break
            assert process.poll() is None, f"CSMS {name} exited: {text[-2000:]}"
            assert time.monotonic() < deadline, f"CSMS {name} did not start: {text[-2000:]}"
            time.sleep(0.1)
        ocpp = int(text.split("ws://127.0.0.1:")[1].split("/")[0])
        http = int(text.split("dashboard on http://127.0.0.1:")[1].split("/")[0])
        yield process, ocpp, http
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


async def station(port: int, asked: list[str]) -> tuple[ClientConnection, asyncio.Task[None]]:
    """The station connected to ``port``, answering every call Accepted."""
    ws = await connect(
        f"ws://127.0.0.1:{port}/ocpp/{STATION}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
        open_timeout=10,
    )

    async def serve() -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                if frame[0] == 2:
                    asked.append(frame[2])
                    await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        except ConnectionClosed:
            pass

    return ws, asyncio.create_task(serve())


async def listed(http: httpx.AsyncClient, port: int) -> dict[str, Any]:
    answer = await http.get(f"http://127.0.0.1:{port}/api/stations", auth=OPERATOR)
    assert answer.status_code == 200, answer.text
    return {s["station_id"]: s for s in answer.json()}[STATION]


async def until(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def test_two_csms_processes_share_stations_calls_and_the_fleet_view(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    settings = f"database: {url}\nstation_lease_seconds: 2\ncall_timeout: 5\n"
    dirs = [tmp_path / "a", tmp_path / "b"]
    for data in dirs:
        data.mkdir()
        (data / "csms.yaml").write_text(settings)
    at = ("--data-dir", str(dirs[0]))
    assert v2g("stations", "add", STATION, "--password", PASSWORD, *at).returncode == 0
    assert v2g("operators", "add", OPERATOR[0], "--password", OPERATOR[1], *at).returncode == 0
    with (
        csms_process(dirs[0], "A") as (a, a_ocpp, a_http),
        csms_process(dirs[1], "B") as (
            _,
            b_ocpp,
            b_http,
        ),
    ):

        async def scenario() -> None:
            asked: list[str] = []
            async with httpx.AsyncClient(timeout=20) as http:
                on_a, serving_a = await station(a_ocpp, asked)
                await until(lambda: connected_on(http, b_http, "A"), "B to list the station on A")
                # an operator call on B's API reaches the station on A
                sent = await http.post(
                    f"http://127.0.0.1:{b_http}/api/stations/{STATION}/ocpp/Reset",
                    json={"type": "Immediate"},
                    auth=OPERATOR,
                )
                assert sent.status_code == 200, sent.text
                assert sent.json()["response"] == {"status": "Accepted"} and asked == ["Reset"]
                # ... and so does ``v2g stations call`` against B
                called = await asyncio.to_thread(
                    v2g,
                    "stations",
                    "call",
                    STATION,
                    "TriggerMessage",
                    '{"requestedMessage": "Heartbeat"}',
                    "--api",
                    f"http://127.0.0.1:{b_http}",
                    "--user",
                    OPERATOR[0],
                    V2G_API_PASSWORD=OPERATOR[1],
                )
                assert called.returncode == 0, called.stderr
                assert json.loads(called.stdout)["response"] == {"status": "Accepted"}
                assert asked == ["Reset", "TriggerMessage"]
                # the station connects to B: A closes its connection
                on_b, serving_b = await station(b_ocpp, asked)
                await asyncio.wait_for(on_a.wait_closed(), 10)
                assert on_a.close_reason == "connected to another CSMS process"
                await serving_a
                await until(lambda: connected_on(http, a_http, "B"), "A to list it on B")
                listing = await asyncio.to_thread(v2g, "stations", "list", *at)
                assert "PROCESS" in listing.stdout and " B" in listing.stdout, listing.stdout
                await on_b.close()
                await serving_b
                # back to A, then A dies: its lease lapses and B says "not connected"
                on_a, serving_a = await station(a_ocpp, asked)
                await until(lambda: connected_on(http, b_http, "A"), "the station back on A")
                a.send_signal(signal.SIGKILL)
                await until(lambda: not_connected(http, b_http), "A's lease to lapse")
                gone = await http.post(
                    f"http://127.0.0.1:{b_http}/api/stations/{STATION}/ocpp/Reset",
                    json={"type": "Immediate"},
                    auth=OPERATOR,
                )
                assert gone.status_code == 409, gone.text
                serving_a.cancel()

        asyncio.run(scenario())
    postgres.drop_database(url)


async def connected_on(http: httpx.AsyncClient, port: int, process: str) -> bool:
    seen = await listed(http, port)
    return bool(seen["connected"]) and seen["process"] == process


async def not_connected(http: httpx.AsyncClient, port: int) -> bool:
    seen = await listed(http, port)
    return not seen["connected"] and seen["process"] is None
