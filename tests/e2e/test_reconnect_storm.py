"""A reconnect storm with real processes: 1,000 simulated stations in a session each, the CSMS
(``v2g csms``, its own process) killed with SIGKILL and restarted. The stations come back with
OCPP 2.0.1's randomised back-off: every one of them, within the back-off window (plus the time
the CSMS needs to take 1,000 handshakes), and every transaction event they produced is stored
once, in order, whether it was sent before the crash, queued during it or sent after (each
session sends an Updated every 5 s, so the outage queues events on the stations).

Station passwords are stored at a low scrypt cost (as in ``bench.serve``): this test is about
the stations' back-off and the events, not the cost of hashing (``bench_storm`` measures that).
The simulated stations do not check their own calls and answers against the schemas (the CSMS
checks what it receives either way): in this one process, for 1,000 stations, those checks
were most of the CPU, and the fleet took 27-30 s to come back where it takes ~7 s without
them, so the test measured its own stations rather than the CSMS.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.serve import cheap_password_hash
from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from csms.model import TokenRecord
from csms.store.sqlite import CsmsStore
from tests.e2e.test_csms_crash import free_port, wait_for_port

STATIONS = 1000
PASSWORD = "storm-password"
BACKOFF = Backoff(wait_minimum=1.0, random_range=3.0, repeat_times=2)  # longest: 4 + 3 = 7 s
HANDSHAKES_S = 20.0  # what 1,000 handshakes, boots and replays may take on a busy 2-core box


async def register(data_dir: Path) -> None:
    store = await CsmsStore.open_data_dir(data_dir)
    try:
        hashed = cheap_password_hash(PASSWORD)
        await store.add_stations(
            [(f"STORM-{n:04d}", hashed, None, None, None) for n in range(STATIONS)], "t"
        )
        await store.add_token(
            TokenRecord("04E1A2B3C4D5E6", "ISO14443", "Accepted", "invoice", None, "t")
        )
    finally:
        await store.close()


def start_csms(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "v2g", "csms", "--data-dir", str(data_dir),
             "--port", str(port), "--http-port", "0"],
            stdout=out, stderr=out,
        )  # fmt: skip


def stored_events(data_dir: Path) -> dict[str, list[tuple[int, str, int]]]:
    """transaction id -> its events' (seq_no, type, offline) in the order stored."""
    db = sqlite3.connect(f"file:{data_dir / 'csms.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT transaction_id, seq_no, event_type, offline FROM transaction_events"
            " ORDER BY rowid"
        ).fetchall()
    finally:
        db.close()
    events: dict[str, list[tuple[int, str, int]]] = {}
    for transaction_id, seq_no, event_type, offline in rows:
        events.setdefault(transaction_id, []).append((seq_no, event_type, offline))
    return events


@pytest.mark.slow
async def test_1000_stations_come_back_after_the_csms_is_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "csms"
    data_dir.mkdir()
    (data_dir / "csms.yaml").write_text("ping_interval: 5\nping_timeout: 5\n")
    await register(data_dir)
    port = free_port()
    csms = start_csms(data_dir, port, tmp_path / "csms.log")
    runners: list[StationRunner] = []
    fleet: asyncio.Future[list[int | BaseException]] | None = None
    try:
        await wait_for_port(port, 60)
        for n in range(STATIONS):
            config = StationConfig(
                url=f"ws://127.0.0.1:{port}/ocpp", station_id=f"STORM-{n:04d}",
                password=PASSWORD, sessions=1, session_seconds=30, tx_updated_interval=5,
                aligned_interval=0, response_timeout=20, open_timeout=20, backoff=BACKOFF,
                check_schemas=False,
            )  # fmt: skip
            runners.append(StationRunner(config))
        fleet = asyncio.gather(*(r.run() for r in runners), return_exceptions=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while sum(r.station.online.is_set() for r in runners) < STATIONS:
            assert loop.time() < deadline, "the fleet did not connect"
            await asyncio.sleep(0.2)
        while len(stored_events(data_dir)) < STATIONS:  # every session has started
            assert loop.time() < deadline, "the sessions did not start"
            await asyncio.sleep(0.2)

        csms.send_signal(signal.SIGKILL)
        csms.wait()
        # every station notices and starts backing off: at once from the closed socket, at the
        # latest by its missed pings (5 + 5 s); 1,000 closes take this process a second or two
        noticed_by = loop.time() + 10
        while any(r.station.online.is_set() for r in runners):
            assert loop.time() < noticed_by, (
                f"{sum(r.station.online.is_set() for r in runners)} stations still online"
            )
            await asyncio.sleep(0.1)
        csms = start_csms(data_dir, port, tmp_path / "csms.log")
        await wait_for_port(port, 60)
        restarted = time.monotonic()
        while sum(r.station.online.is_set() for r in runners) < STATIONS:
            waited = time.monotonic() - restarted
            assert waited < BACKOFF.longest + HANDSHAKES_S, (
                f"{sum(r.station.online.is_set() for r in runners)} of {STATIONS} back"
                f" {waited:.1f} s after the restart"
            )
            await asyncio.sleep(0.1)
        back_in = time.monotonic() - restarted
        assert all(r.connections >= 2 for r in runners)

        deadline = loop.time() + 90
        while True:  # every session ends, and every event reaches the restarted CSMS
            events = stored_events(data_dir)
            done = [e for e in events.values() if e[-1][1] == "Ended"]
            if len(done) == STATIONS and not any(len(r.station.queue) for r in runners):
                break
            assert loop.time() < deadline, f"{len(done)} of {STATIONS} sessions ended"
            await asyncio.sleep(0.5)
        assert len(events) == STATIONS
        for transaction_id, stored in events.items():  # each once, in order, none missing
            seq_nos = [seq for seq, _, _ in stored]
            assert seq_nos == list(range(len(seq_nos))), (transaction_id, seq_nos)
        assert not [r.errors for r in runners if r.errors]
        offline = sum(1 for e in events.values() for _, _, off in e if off)
        assert offline >= STATIONS // 2, "the outage should have queued events on the stations"
        print(f"all {STATIONS} back {back_in:.1f} s after the restart; {offline} events offline")
    finally:
        if fleet is not None:
            fleet.cancel()
            await asyncio.gather(fleet, return_exceptions=True)
        if csms.poll() is None:
            csms.send_signal(signal.SIGTERM)
            try:
                csms.wait(timeout=20)
            except subprocess.TimeoutExpired:
                csms.kill()
