"""Benchmark: concurrent stations held with heartbeats, ours against the reference CSMS.

For each CSMS (its own process, ``bench.serve``) the load generator (``bench.loadgen
heartbeat``, another process) connects N stations (at most 200 handshakes in flight), boots
each, then every station sends a Heartbeat every ``--interval`` seconds for ``--duration``.
Reports connect p50/p99 (handshake, including our Basic-auth check), heartbeat p50/p99, the
CSMS process's resident memory per connection (VmRSS from /proc, with every station
connected, minus before any) and its CPU share while the heartbeats run.

Station passwords are stored at a low scrypt cost (see ``bench.serve``); the cost of one
production-cost verification is printed as ``password_verify_ms`` (paid in a worker thread
at each handshake). Run: ``python -m bench.bench_connections [--quick] [--stations N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    cpu_seconds,
    emit,
    raise_open_files_limit,
    read_json_line,
    rss_bytes,
    spawn_module,
    stop_process,
)
from csms.passwords import hash_password, verify_password


def measure(kind: str, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    server = spawn_module(
        "bench.serve", kind, "--data-dir", str(data_dir), "--stations", str(args.stations)
    )
    try:
        started = read_json_line(server, 300)
        pid = int(str(started["pid"]))
        time.sleep(0.5)
        rss_before = rss_bytes(pid)
        loadgen = spawn_module(
            "bench.loadgen",
            "heartbeat",
            f"ws://127.0.0.1:{started['port']}",
            "--stations",
            str(args.stations),
            "--duration",
            str(args.duration),
            "--interval",
            str(args.interval),
        )
        try:
            connected = read_json_line(loadgen, 900)
            cpu_began, wall_began = cpu_seconds(pid), time.monotonic()
            time.sleep(min(3.0, args.duration / 2))
            rss_connected = rss_bytes(pid)
            result = read_json_line(loadgen, args.duration + 300)
            cpu_share = (cpu_seconds(pid) - cpu_began) / (time.monotonic() - wall_began)
        finally:
            stop_process(loadgen)
        result["live"] = connected.get("live", 0)
        result["rss_mib"] = rss_connected / 2**20
        result["rss_per_connection_kib"] = (rss_connected - rss_before) / 1024 / args.stations
        result["cpu_share"] = cpu_share
        return result
    finally:
        stop_process(server)


def password_verify_ms() -> float:
    stored = hash_password("bench-password")
    began = time.perf_counter()
    assert verify_password("bench-password", stored)
    return (time.perf_counter() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stations", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--only", choices=["ours", "reference"])
    args = parser.parse_args()
    args.stations = args.stations or (1000 if args.quick else 10_000)
    args.duration = args.duration or (10.0 if args.quick else 30.0)
    emit("open_files_limit", raise_open_files_limit())
    emit("conn_stations", args.stations)
    emit("conn_heartbeat_interval_s", args.interval)
    emit("password_verify_ms", password_verify_ms())
    kinds = [args.only] if args.only else ["reference", "ours"]
    with tempfile.TemporaryDirectory(prefix="bench-conn-") as tmp:
        for kind in kinds:
            result = measure(kind, args, Path(tmp) / kind)
            prefix = "conn" if kind == "ours" else "reference_conn"
            emit(f"{prefix}_live", int(result["live"]))
            emit(f"{prefix}_connect_p50_ms", float(result["connect_p50_ms"]))
            emit(f"{prefix}_connect_p99_ms", float(result["connect_p99_ms"]))
            emit(f"{prefix}_connect_all_s", float(result["connect_seconds"]))
            emit(f"{prefix}_heartbeats", int(result["heartbeats"]))
            emit(f"{prefix}_heartbeat_p50_ms", float(result["heartbeat_p50_ms"]))
            emit(f"{prefix}_heartbeat_p99_ms", float(result["heartbeat_p99_ms"]))
            emit(f"{prefix}_rss_mib", float(result["rss_mib"]))
            emit(f"{prefix}_rss_per_connection_kib", float(result["rss_per_connection_kib"]))
            emit(f"{prefix}_cpu_share", float(result["cpu_share"]))
            emit(f"{prefix}_errors", int(result["errors"]) + int(result["call_errors"]))


if __name__ == "__main__":
    main()
