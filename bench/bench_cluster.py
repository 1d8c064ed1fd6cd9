"""Two CSMS processes on one PostgreSQL database: what the station lease and the calls between
processes cost (``csms.cluster``).

- **Connect**: N stations (300; ``--quick`` 100) connect to process A, ``--concurrency`` (50)
  handshakes at a time; connect p50/p99 and the whole wave's seconds, with the lease taken
  (``cluster_connect_*``) vs the same CSMS with the lease step skipped (``cluster_ref_connect_*``,
  the reference), in alternating rounds; ``cluster_connect_ratio`` = with / without (wave time).
- **Calls**: one operator call (Reset) at a time to a station on A, asked of A itself (local,
  the reference) and of B (forwarded through the database and NOTIFY); p50/p99 and
  ``cluster_call_p50_ratio`` = forwarded / local. Then ``--parallel`` (20) stations on A asked
  at once through B, 10 calls each: calls/s.

Both CSMSs run in this process on their own database connections (as two processes would
have), on a PostgreSQL 15 server started for the run with its durable defaults; the stations
are raw websocket clients answering every call Accepted. Station passwords are stored at scrypt
N=16 (``bench.serve``): the handshakes measure the connection path, not hashing.

Run: ``python -m bench.bench_cluster [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import emit, percentile, raise_open_files_limit
from bench.serve import PASSWORD, cheap_password_hash, station_id
from csms.app import CsmsApp, start_csms
from csms.cluster import Cluster
from csms.config import CsmsConfig
from tests.csms.conftest import auth_header
from tests.postgres import DURABLE, PostgresServer, PostgresUnavailable, start_postgres


def settings(url: str, name: str, stations: int) -> CsmsConfig:
    return CsmsConfig(
        port=0,
        database=url,
        process_name=name,
        max_connections=stations + 100,
        rate_limit_per_s=100_000.0,
        rate_limit_burst=100_000,
        dispatch_interval=3600.0,
        call_timeout=10.0,
        max_remote_calls=1000,
    )


async def answer_calls(ws: ClientConnection) -> None:
    try:
        async for text in ws:
            frame = json.loads(text)
            if frame[0] == 2:
                await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
    except ConnectionClosed:
        pass


async def open_station(port: int, index: int) -> ClientConnection:
    name = station_id(index)
    return await connect(
        f"ws://127.0.0.1:{port}/ocpp/{name}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(name, PASSWORD),
        open_timeout=60,
        ping_interval=None,
    )


async def register(app: CsmsApp, stations: int) -> None:
    hashed = cheap_password_hash(PASSWORD)
    async with app.store.transaction() as db:
        await db.executemany(
            "INSERT INTO stations (station_id, password_hash, created_at) VALUES (?, ?, ?)",
            [(station_id(i), hashed, "2026-01-01T00:00:00Z") for i in range(stations)],
        )


async def connect_wave(app: CsmsApp, stations: int, concurrency: int) -> dict[str, float]:
    """Every station connects (``concurrency`` at a time) until the CSMS holds it; then all
    disconnect and the CSMS has let go of them."""
    limit = asyncio.Semaphore(concurrency)
    took: list[float] = []
    sockets: list[ClientConnection] = []

    async def one(index: int) -> None:
        async with limit:
            began = time.perf_counter()
            ws = await open_station(app.port, index)
            name = station_id(index)
            while name not in app.server.connections or (
                app.server.cluster is not None and app.server.connections[name].lease_epoch is None
            ):
                await asyncio.sleep(0.001)
            took.append(time.perf_counter() - began)
            sockets.append(ws)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(stations)))
    wave = time.perf_counter() - began
    await asyncio.gather(*(ws.close() for ws in sockets))
    while app.server.connections:
        await asyncio.sleep(0.01)
    return {
        "wave_s": wave,
        "p50_ms": percentile(took, 0.5) * 1000,
        "p99_ms": percentile(took, 0.99) * 1000,
    }


async def call_latency(asker: CsmsApp, calls: int) -> list[float]:
    took = []
    for _ in range(calls):
        began = time.perf_counter()
        done = await asker.stations.operator_call(station_id(0), "Reset", {"type": "Immediate"})
        took.append(time.perf_counter() - began)
        assert done.response == {"status": "Accepted"}, done.response
    return took


async def run(args: argparse.Namespace, postgres: PostgresServer) -> None:
    url = postgres.create_database()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        a = await start_csms(Path(tmp) / "a", settings(url, "A", args.stations))
        b = await start_csms(Path(tmp) / "b", settings(url, "B", args.stations))
        try:
            await register(a, args.stations)
            await measure_connects(args, a)
            await measure_calls(args, a, b)
        finally:
            await b.stop()
            await a.stop()
    postgres.drop_database(url)


async def measure_connects(args: argparse.Namespace, a: CsmsApp) -> None:
    cluster = a.server.cluster
    assert isinstance(cluster, Cluster)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for kind in ("ref", "lease"):
            a.server.cluster = cluster if kind == "lease" else None  # the lease step skipped
            result = await connect_wave(a, args.stations, args.concurrency)
            if kind not in best or result["wave_s"] < best[kind]["wave_s"]:
                best[kind] = result
    a.server.cluster = cluster
    for kind, prefix in (("lease", "cluster_connect"), ("ref", "cluster_ref_connect")):
        emit(f"{prefix}_wave_s", best[kind]["wave_s"])
        emit(f"{prefix}_p50_ms", best[kind]["p50_ms"])
        emit(f"{prefix}_p99_ms", best[kind]["p99_ms"])
    emit("cluster_connect_ratio", best["lease"]["wave_s"] / best["ref"]["wave_s"])


async def measure_calls(args: argparse.Namespace, a: CsmsApp, b: CsmsApp) -> None:
    sockets = [await open_station(a.port, i) for i in range(args.parallel)]
    serving = [asyncio.create_task(answer_calls(ws)) for ws in sockets]
    try:
        while len(a.server.connections) < args.parallel or any(
            c.lease_epoch is None for c in a.server.connections.values()
        ):
            await asyncio.sleep(0.01)
        await call_latency(b, 5)  # warm both paths
        local = await call_latency(a, args.calls)
        forwarded = await call_latency(b, args.calls)
        emit("cluster_local_call_p50_ms", percentile(local, 0.5) * 1000)
        emit("cluster_local_call_p99_ms", percentile(local, 0.99) * 1000)
        emit("cluster_forwarded_call_p50_ms", percentile(forwarded, 0.5) * 1000)
        emit("cluster_forwarded_call_p99_ms", percentile(forwarded, 0.99) * 1000)
        emit("cluster_call_p50_ratio", percentile(forwarded, 0.5) / percentile(local, 0.5))

        async def ten(index: int) -> None:
            for _ in range(10):
                await b.stations.operator_call(station_id(index), "Reset", {"type": "Immediate"})

        began = time.perf_counter()
        await asyncio.gather(*(ten(i) for i in range(args.parallel)))
        emit("cluster_forwarded_calls_per_s", args.parallel * 10 / (time.perf_counter() - began))
    finally:
        for ws in sockets:
            await ws.close()
        for task in serving:
            await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer stations and calls")
    parser.add_argument("--stations", type=int)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--rounds", type=int)
    args: Any = parser.parse_args()
    args.stations = args.stations or (100 if args.quick else 300)
    args.calls = args.calls or (50 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 2)
    raise_open_files_limit()
    emit("cluster_stations", args.stations)
    try:
        postgres = start_postgres(settings=DURABLE)
    except PostgresUnavailable as exc:
        raise SystemExit(f"bench_cluster: PostgreSQL: {exc}") from None
    try:
        asyncio.run(run(args, postgres))
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
