"""Crash safety with real processes: the CSMS is killed with SIGKILL at random moments while a
fleet runs against it (4 validator processes settle); after restarts every session is settled
exactly once, no settlement is committed twice, and no acknowledged event is lost."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from chargepoint.backoff import Backoff
from chargepoint.clock import AcceleratedClock
from chargepoint.config import StationConfig
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_meters, public_key_path
from chargepoint.runner import StationRunner, default_start
from chargepoint.transaction import IdToken
from csms.store.sqlite import CsmsStore
from ledger.sqlite_store import SqliteBlockStore

STATIONS, SESSIONS, KILLS = 3, 2, 3
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_block(count: int) -> int:
    """A base port with ``count`` free consecutive ports after it."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(30_000, 60_000)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port block")


def v2g(*args: str) -> None:
    result = subprocess.run([PY, "-m", "v2g", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


class Processes:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen([PY, "-m", "v2g", *args], stdout=log, stderr=log)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


async def wait_for_port(port: int, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


async def settled_on_chain(path: Path) -> collections.Counter[str]:
    """How often each settlement id occurs in the blocks of one validator's store."""
    blocks = await SqliteBlockStore.open(path, readonly=True)
    seen: collections.Counter[str] = collections.Counter()
    try:
        async for stored in blocks.blocks():
            for tx in stored.block.txs:
                record = json.loads(tx.data)
                if record.get("type") == "settlement":
                    seen[record["settlement_id"]] += 1
    finally:
        await blocks.close()
    return seen


@pytest.mark.slow
async def test_kill_9_the_csms_during_a_fleet_run(tmp_path: Path, processes: Processes) -> None:
    ledger_dir, csms_dir = tmp_path / "ledger", tmp_path / "csms"
    v2g("ledger", "init", "--data-dir", str(ledger_dir), "--validators", "4",
        "--base-port", str(free_block(4)))  # fmt: skip
    for n in range(4):
        processes.start(f"v{n}", "validator", "--home", str(ledger_dir / "validators" / f"v{n}"),
                        "--block-interval-ms", "200")  # fmt: skip
    csms_dir.mkdir()
    (csms_dir / "csms.yaml").write_text(
        "dispatch_interval: 0.3\nrate_limit_per_s: 1000\nrate_limit_burst: 1000\n"
        "max_pending_frames: 1000\nping_interval: 2\nping_timeout: 2\n"
    )
    plans = []
    for n in range(STATIONS):
        station, key = f"CRASH-{n}", tmp_path / f"meter-{n}.key"
        ensure_meter_key(key)
        v2g("stations", "add", station, "--password", "crash-password",
            "--meter-key", str(public_key_path(key)), "--data-dir", str(csms_dir))  # fmt: skip
        v2g("tokens", "add", f"CRASHTOK{n}", "--data-dir", str(csms_dir))
        plans.append((station, key, f"CRASHTOK{n}"))

    port = free_port()
    csms_args = ("csms", "--data-dir", str(csms_dir), "--port", str(port), "--http-port", "0",
                 "--genesis", str(ledger_dir / "genesis.json"))  # fmt: skip
    csms = processes.start("csms", *csms_args)
    await wait_for_port(port)

    runners = []
    for n, (station, key, token) in enumerate(plans):
        config = StationConfig(
            url=f"ws://127.0.0.1:{port}/ocpp", station_id=station, password="crash-password",
            evses=1, sessions=SESSIONS, exit_when_done=True, id_token=IdToken(token),
            session_seconds=3 * 3600, speed=3600, tx_updated_interval=600,
            connect_timeout=60, response_timeout=10,
            backoff=Backoff(wait_minimum=0.2, random_range=0.2, repeat_times=1),
        )  # fmt: skip
        meters = ev_meters(ensure_meter_key(key), station_id=station, evses=1,
                           options=EvOptions(seed=n), stay_seconds=3 * 3600)  # fmt: skip
        # the station clock starts far enough back that its sessions end by now, with room
        # for the hours its clock runs on while the CSMS is down
        clock = AcceleratedClock(speed=3600, start=default_start(config) - timedelta(hours=24))
        runners.append(StationRunner(config, clock=clock, meters=meters))
    fleet = asyncio.gather(*(runner.run() for runner in runners))

    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    kills = 0
    while kills < KILLS and not fleet.done():
        await asyncio.sleep(rng.uniform(0.8, 2.5))
        csms.kill()  # SIGKILL: no shutdown, no flush beyond what was committed
        csms.wait()
        kills += 1
        await asyncio.sleep(rng.uniform(0.1, 0.8))
        csms = processes.start("csms", *csms_args)
        await wait_for_port(port)
    codes = await asyncio.wait_for(fleet, 180)
    assert codes == [0] * STATIONS, [r.errors for r in runners]
    assert kills >= 1

    store = await CsmsStore.open_data_dir(csms_dir)
    try:
        for _ in range(300):  # the restarted CSMS drains its outbox
            settlements = await store.list_settlements()
            if len(settlements) == STATIONS * SESSIONS and all(
                s.status == "committed" for s in settlements
            ):
                break
            await asyncio.sleep(0.2)
        sessions = await store.list_sessions()
        assert len(sessions) == STATIONS * SESSIONS
        assert {s.status for s in settlements} == {"committed"}, [
            (s.status, s.reason) for s in settlements
        ]
        assert len(settlements) == STATIONS * SESSIONS
        for session in sessions:  # every acknowledged event is there, exactly once
            events = await store.transaction_events(session.station_id, session.transaction_id)
            seq_nos = [e["seq_no"] for e in events]
            assert seq_nos == list(range(len(seq_nos))), (session.transaction_id, seq_nos)
            assert events[-1]["event_type"] == "Ended"
        ids = {s.settlement_id for s in settlements}
    finally:
        await store.close()

    seen: collections.Counter[str] = collections.Counter()
    for _ in range(50):  # v0 may still be fetching a block the others decided
        seen = await settled_on_chain(ledger_dir / "validators" / "v0" / "blocks.sqlite")
        if set(seen) >= ids:
            break
        await asyncio.sleep(0.2)
    assert set(seen) == ids  # zero lost
    assert max(seen.values()) == 1  # zero duplicates
