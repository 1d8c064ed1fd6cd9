"""Failover with real processes: two ``v2g csms`` on one PostgreSQL database, stations given
both URLs, one CSMS killed with SIGKILL mid-session. The stations move to the other, go on
with their transactions, and every event they had acknowledged, or queued, is stored once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.serve import cheap_password_hash
from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from csms.model import TokenRecord
from csms.store.sqlite import CsmsStore
from tests.e2e.test_csms_crash import free_block, free_port, wait_for_port
from tests.postgres import PostgresServer

PY = sys.executable
PASSWORD = "failover-password"
TOKEN = "04E1A2B3C4D5E6"


class Cluster:
    """CSMS processes (and validators) started by a test; every one is stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen([PY, "-m", "v2g", *args], stdout=log, stderr=log)
        self.processes[name] = process
        return process

    async def start_csms(self, name: str, data_dir: Path, genesis: Path, *more: str) -> str:
        """A ``v2g csms`` on ``data_dir`` (its csms.yaml names the database); its OCPP URL."""
        port = free_port()
        self.start(name, "csms", "--data-dir", str(data_dir), "--genesis", str(genesis),
                   "--port", str(port), "--http-port", "0", *more)  # fmt: skip
        try:
            await wait_for_port(port, 60)
        except TimeoutError:
            raise AssertionError(f"{name} did not start: {self.log(name)[-2000:]}") from None
        return f"ws://127.0.0.1:{port}/ocpp"

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)  # no shutdown: what was committed is what there is
        process.wait()

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path)
    yield running
    running.stop_all()


def init_ledger(root: Path, validators: int = 4) -> Path:
    """``v2g ledger init``: a genesis (and validator homes beside it); its path."""
    subprocess.run(
        [PY, "-m", "v2g", "ledger", "init", "--data-dir", str(root), "--validators",
         str(validators), "--base-port", str(free_block(validators))],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return root / "genesis.json"


async def register(url: str, stations: list[str], meter_keys: dict[str, str] | None = None) -> None:
    """The stations (at a low scrypt cost: this is about failover, not hashing) and the token."""
    store = await CsmsStore.open(url)
    try:
        hashed = cheap_password_hash(PASSWORD)
        keys = meter_keys or {}
        await store.add_stations([(s, hashed, keys.get(s), None, None) for s in stations], "t")
        await store.add_token(TokenRecord(TOKEN, "ISO14443", "Accepted", "invoice", None, "t"))
    finally:
        await store.close()


def stored_events(url: str) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(station, transaction) -> its events' (seq_no, type), by seq_no."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT station_id, transaction_id, seq_no, event_type FROM transaction_events"
            " ORDER BY station_id, transaction_id, seq_no"
        ).fetchall()
    events: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for station_id, transaction_id, seq_no, event_type in rows:
        events.setdefault((station_id, transaction_id), []).append((seq_no, event_type))
    return events


def check_every_event_once(
    events: dict[tuple[str, str], list[tuple[int, str]]], sessions: int
) -> None:
    """Every session stored from its Started to its Ended, each seqNo once, none missing."""
    assert len(events) == sessions, f"{len(events)} of {sessions} sessions stored"
    for key, stored in events.items():
        assert [seq for seq, _ in stored] == list(range(len(stored))), (key, stored)
        assert stored[0][1] == "Started" and stored[-1][1] == "Ended", (key, stored)


def csms_dir(root: Path, database: str) -> Path:
    """One data directory for both processes: the database URL, fast pings to notice a loss."""
    root.mkdir()
    (root / "csms.yaml").write_text(
        f"database: {database}\nping_interval: 2\nping_timeout: 2\n"
        "rate_limit_per_s: 1000\nrate_limit_burst: 1000\n"
    )
    return root


@pytest.mark.slow
async def test_stations_move_to_the_second_csms_when_the_first_is_killed(
    tmp_path: Path, postgres: PostgresServer, cluster: Cluster
) -> None:
    database = postgres.create_database()
    stations = [f"FO-{n}" for n in range(6)]
    await register(database, stations)
    data_dir = csms_dir(tmp_path / "csms", database)
    genesis = init_ledger(tmp_path / "ledger")  # no validator runs: settling waits, sessions not
    first = await cluster.start_csms("csms-a", data_dir, genesis)
    second = await cluster.start_csms("csms-b", data_dir, genesis)
    runners = [
        StationRunner(
            StationConfig(
                url=first,
                fallback_urls=(second,),
                station_id=station,
                password=PASSWORD,
                sessions=2,
                exit_when_done=True,
                session_seconds=2 * 3600,
                speed=3600,
                tx_updated_interval=300,
                aligned_interval=0,
                connect_timeout=60,
                response_timeout=10,
                backoff=Backoff(0.2, 0.3, 1),
            )
        )
        for station in stations
    ]
    fleet = asyncio.gather(*(r.run() for r in runners))
    try:
        async with asyncio.timeout(60):
            while len(stored_events(database)) < len(stations):  # every first session running
                await asyncio.sleep(0.1)
        assert all(r.url.startswith(first) and r.station.online.is_set() for r in runners)
        cluster.kill("csms-a")
        codes = await asyncio.wait_for(fleet, 90)
    finally:
        if not fleet.done():
            fleet.cancel()
            await asyncio.gather(fleet, return_exceptions=True)
    assert codes == [0] * len(stations), [r.errors for r in runners]
    for runner in runners:  # each moved over once, and finished on the second
        assert runner.url.startswith(second) and runner.failovers == 1
        assert not len(runner.station.queue)  # every event acknowledged
    check_every_event_once(stored_events(database), 2 * len(stations))
    postgres.drop_database(database)


async def test_a_station_skips_a_csms_that_refuses_or_never_answers(
    tmp_path: Path, postgres: PostgresServer, cluster: Cluster
) -> None:
    database = postgres.create_database()
    await register(database, ["FO-SKIP"])
    data_dir = csms_dir(tmp_path / "csms", database)
    genesis = init_ledger(tmp_path / "ledger")
    working = await cluster.start_csms("csms", data_dir, genesis)
    refused = f"ws://127.0.0.1:{free_port()}/ocpp"  # nothing listens

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the connection, never answers the handshake

    mute = await asyncio.start_server(silent, "127.0.0.1", 0)
    mute_url = f"ws://127.0.0.1:{mute.sockets[0].getsockname()[1]}/ocpp"
    runner = StationRunner(
        StationConfig(
            url=refused,
            fallback_urls=(mute_url, working),
            station_id="FO-SKIP",
            password=PASSWORD,
            sessions=1,
            exit_when_done=True,
            session_seconds=1800,
            speed=3600,
            aligned_interval=0,
            open_timeout=1,
            connect_timeout=30,
            backoff=Backoff(5, 0, 0),
        )
    )
    try:
        started = asyncio.get_running_loop().time()
        assert await asyncio.wait_for(runner.run(), 30) == 0, runner.errors
        # refused, then no answer within open_timeout, then connected: no back-off wait between
        assert asyncio.get_running_loop().time() - started < 5
        assert runner.failovers == 2 and runner.url.startswith(working)
    finally:
        mute.close()
    check_every_event_once(stored_events(database), 1)
    postgres.drop_database(database)
