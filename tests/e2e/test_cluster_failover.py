"""Two CSMS processes, one PostgreSQL database, one validator set, 200 stations, one SIGKILL.

Two ``v2g csms`` processes share a PostgreSQL database and settle to four validator
processes (``--genesis``). 200 simulated stations, given both URLs, run two V2G sessions each
(from 15:00: an EV charges until the evening peak, then gives back in the
peak what it took beyond what it came with) connected to process A. An operator's POST on process B
reaches a station connected to A and brings its answer back. The validators are paused while
the first sessions end, so A holds claimed settlements it cannot get committed; then A is
killed with SIGKILL mid-run. Every station moves to B and finishes there; no acknowledged
event is lost, every session has exactly one settlement, and every settlement is committed
on the ledger exactly once (B takes A's claims over once they run out).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.serve import cheap_password_hash
from chargepoint.backoff import Backoff
from chargepoint.clock import AcceleratedClock
from chargepoint.config import StationConfig
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_meters, public_key_path
from chargepoint.runner import StationRunner
from chargepoint.transaction import IdToken
from csms.model import NEGATIVE_LIMIT_201, TokenRecord
from csms.operators import OperatorRegistry
from csms.store.leases import live_leases
from csms.store.sqlite import CsmsStore
from tests.e2e.test_csms_crash import settled_on_chain
from tests.e2e.test_failover import (
    PASSWORD,
    Cluster,
    check_every_event_once,
    cluster,  # noqa: F401 - the fixture  # fmt: skip
    init_ledger,
    stored_events,
)
from tests.postgres import PostgresServer

STATIONS = 200
SPEED = 600  # station seconds per wall second: an hour takes 6 s
OPERATOR = ("ops", "operator-password")


def peak_start() -> datetime:
    """Two days ago at 15:00 UTC: the first EVs charge for an hour, then in the default
    tariff's export peak (16:00-20:00) the CSMS's plan has them give back what they took
    beyond what they came with (never below their arrival energy); the second EVs arrive in
    the peak with nothing taken yet, so they only charge. Long enough ago that no reading
    lies in the CSMS's future."""
    day = datetime.now(UTC) - timedelta(days=2)
    return day.replace(hour=15, minute=0, second=0, microsecond=0)


async def register(url: str, tmp_path: Path) -> list[tuple[str, Path]]:
    """The stations (cheap password hashes: this is about failover, not hashing), their meter
    keys and tokens, and an operator."""
    store = await CsmsStore.open(url)
    stations = []
    try:
        hashed = cheap_password_hash(PASSWORD)
        rows = []
        for n in range(STATIONS):
            station, key = f"CL-{n:03d}", tmp_path / "keys" / f"CL-{n:03d}.key"
            key.parent.mkdir(exist_ok=True)
            ensure_meter_key(key)
            rows.append((station, hashed, public_key_path(key).read_text(), None, None))
            stations.append((station, key))
        await store.add_stations(rows, "t")
        await asyncio.gather(
            *(
                store.set_station_caps(station, discharge=NEGATIVE_LIMIT_201)
                for station, _ in stations
            ),
            *(
                store.add_token(
                    TokenRecord(f"TOK{station}", "ISO14443", "Accepted", "invoice", None, "t")
                )
                for station, _ in stations
            ),
        )
        await OperatorRegistry(store).add(*OPERATOR, "operator", "t")
    finally:
        await store.close()
    return stations


def dashboard_port(processes: Cluster, name: str) -> int:
    found = re.search(r"dashboard on http://127\.0\.0\.1:(\d+)/", processes.log(name))
    assert found, processes.log(name)[-2000:]
    return int(found.group(1))


def holders(url: str) -> dict[str, str]:
    """station -> the process holding its live connection."""

    async def read() -> dict[str, str]:
        store = await CsmsStore.open(url)
        try:
            return {s: lease.process for s, lease in (await live_leases(store)).items()}
        finally:
            await store.close()

    return asyncio.run(read())


def claimed_by_a(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE claimed_by LIKE 'csms-a:%'"
        ).fetchone()
    return int(row[0]) if row else 0


def settlements(url: str) -> list[tuple[str, str, str, int | None, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT settlement_id, station_id, status, export_wh, reason FROM settlements"
            " WHERE kind = 'settlement'"
        ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]


@pytest.mark.slow
async def test_200_stations_finish_on_b_after_a_is_killed(
    tmp_path: Path,
    postgres: PostgresServer,
    cluster: Cluster,  # noqa: F811 - the fixture
) -> None:
    began = time.monotonic()

    def mark(what: str) -> None:
        print(f"{time.monotonic() - began:6.1f} s  {what}", flush=True)

    database = postgres.create_database()
    stations = await register(database, tmp_path)
    mark("registered")
    genesis = init_ledger(tmp_path / "ledger")
    mark("ledger made")
    for n in range(4):
        home = tmp_path / "ledger" / "validators" / f"v{n}"
        cluster.start(f"v{n}", "validator", "--home", str(home), "--block-interval-ms", "200")
    data_dir = tmp_path / "csms"
    data_dir.mkdir()
    (data_dir / "csms.yaml").write_text(
        f"database: {database}\nping_interval: 2\nping_timeout: 2\nrate_limit_per_s: 1000\n"
        "rate_limit_burst: 1000\nmax_pending_frames: 1000\nmax_connections: 1000\n"
        "dispatch_interval: 1.0\noutbox_lease_seconds: 4\nstation_lease_seconds: 6\n"
    )
    # B after A: the first start writes the data directory's keys both processes share
    first = await cluster.start_csms("csms-a", data_dir, genesis, "--process-name", "csms-a")
    mark("A started")
    second = await cluster.start_csms("csms-b", data_dir, genesis, "--process-name", "csms-b")
    mark("processes started")
    start = peak_start()
    runners = []
    for n, (station, key) in enumerate(stations):
        stay = 2 * 3600  # twice: the first sessions end (and settle) while A runs
        config = StationConfig(
            url=first, fallback_urls=(second,), station_id=station, password=PASSWORD,
            sessions=2, exit_when_done=True, id_token=IdToken(f"TOK{station}"),
            session_seconds=stay, speed=SPEED, tx_updated_interval=1800, aligned_interval=3600,
            connect_timeout=60, response_timeout=20, open_timeout=20,
            backoff=Backoff(wait_minimum=0.5, random_range=2.0, repeat_times=1),
        )  # fmt: skip
        options = EvOptions(seed=n, soc_pct=50, target_soc_pct=30)  # more than it needs
        meters = ev_meters(ensure_meter_key(key), station_id=station, evses=1,
                           options=options, stay_seconds=stay)  # fmt: skip
        clock = AcceleratedClock(speed=SPEED, start=start)
        runners.append(StationRunner(config, clock=clock, meters=meters))
    fleet = asyncio.gather(*(runner.run() for runner in runners))
    try:
        async with asyncio.timeout(60):  # every first session started, on A
            while len(stored_events(database)) < STATIONS:
                await asyncio.sleep(0.2)
        mark("every session started")
        assert all(runner.url.startswith(first) for runner in runners)
        on_a = [s for s, process in (await asyncio.to_thread(holders, database)).items()
                if process == "csms-a"]  # fmt: skip
        assert len(on_a) == STATIONS, f"{len(on_a)} stations held by csms-a"

        # An operator on B asks a station connected to A; A runs the call, B answers.
        api = f"http://127.0.0.1:{dashboard_port(cluster, 'csms-b')}/api/stations/{on_a[0]}"
        async with httpx.AsyncClient(timeout=30) as http:
            asked = await http.post(f"{api}/ocpp/GetTransactionStatus", json={}, auth=OPERATOR)
        assert asked.status_code == 200, asked.text
        assert "messagesInQueue" in asked.json()["response"], asked.text

        # mid-run: the first sessions end while the validators are paused, so A has claimed
        # settlements it cannot get committed when it dies; the second sessions run on
        for n in range(4):
            cluster.processes[f"v{n}"].send_signal(signal.SIGSTOP)
        try:
            async with asyncio.timeout(60):
                while (claimed := await asyncio.to_thread(claimed_by_a, database)) < 1:
                    await asyncio.sleep(0.2)
            cluster.kill("csms-a")
        finally:
            for n in range(4):
                cluster.processes[f"v{n}"].send_signal(signal.SIGCONT)
        mark(f"A killed holding {claimed} outbox claims")
        codes = await asyncio.wait_for(fleet, 90)
        mark("every station done")
    finally:
        if not fleet.done():
            fleet.cancel()
            await asyncio.gather(fleet, return_exceptions=True)
    assert codes == [0] * STATIONS, [r.errors for r in runners if r.errors][:5]
    assert all(runner.url.startswith(second) for runner in runners)  # all finished on B
    assert not any(len(runner.station.queue) for runner in runners)  # every event acknowledged
    check_every_event_once(stored_events(database), 2 * STATIONS)  # none lost, none twice

    deadline = asyncio.get_running_loop().time() + 60
    while True:  # B drains the outbox, A's claims included once they run out
        settled = settlements(database)
        if len(settled) == 2 * STATIONS and {s[2] for s in settled} == {"committed"}:
            break
        assert asyncio.get_running_loop().time() < deadline, sorted({s[2:] for s in settled})[:5]
        await asyncio.sleep(0.5)
    mark("every settlement committed")
    assert len({s[1] for s in settled}) == STATIONS  # two sessions each, one settlement each
    exported = sum(1 for s in settled if s[3])
    mark(f"{exported} of {2 * STATIONS} sessions exported energy (V2G)")
    # V2G: the first EVs (one per station) discharged in the peak; the second only charged
    assert exported >= STATIONS // 2, exported
    assert claimed > 0  # and B committed what A had claimed when it died
    ids = {s[0] for s in settled}
    seen = await settled_on_chain(tmp_path / "ledger" / "validators" / "v0" / "blocks.sqlite")
    for _ in range(50):  # v0 may still be fetching a block the others decided
        if set(seen) >= ids:
            break
        await asyncio.sleep(0.2)
        seen = await settled_on_chain(tmp_path / "ledger" / "validators" / "v0" / "blocks.sqlite")
    assert set(seen) == ids  # every settlement on the ledger
    assert max(seen.values()) == 1  # none twice
    postgres.drop_database(database)
