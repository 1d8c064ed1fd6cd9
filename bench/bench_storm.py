"""Benchmark: a connection storm against ``v2g csms``, ours beside the reference CSMS.

Ours: N stations, each with its own password, registered with ``v2g stations import``
(timed: ``import_seconds``, ``import_rows_per_s``; it stores each password's MAC and leaves the
scrypt hash to the CSMS, after the station's first handshake), beside ``--hash-now``'s rate
(scrypt at the production cost during the import) on a sample of 200 rows in the same run
(``import_hash_now_rows_per_s``), then ``v2g csms`` (its own process, the
embedded ledger idle) takes N stations connecting at ``--rate`` per second, open loop
(``bench.loadgen heartbeat --rate``: station i starts at i/rate s; its connect latency counts
from then, so a CSMS that falls behind shows it). A station refused with 429/503 and
``Retry-After`` retries after it (for at most ``--retry-for`` s, as a station would; its
latency still counts from its first attempt). Every station boots, then sends a Heartbeat
every ``--interval`` s for ``--duration`` s. Reports connect p50/p99, connect failures and
retries, heartbeat p50/p99, and, from the CSMS's ``/metrics``, the event-loop stalls over
100 ms during the storm (``v2g_event_loop_lag_seconds`` before and after) and the worst stall
since start (``storm_max_stall_ms``; ``storm_start_up_max_stall_ms``: the worst before the
storm began, so a start-up stall is told apart); and the CPU seconds each server process spent
during its storm (``storm_server_cpu_s``, ``storm_reference_server_cpu_s``: from ``/proc``,
Linux only), a figure less at the mercy of a busy machine than the latencies; and the
kernel's listen-queue overflows meanwhile (``storm_listen_overflows``: system-wide, so other
processes' count too); and the scrypt hashes the CSMS ran during the storm (``/metrics``):
for handshakes (``storm_handshake_scrypts``, 0 when every station matched its MAC) and for
imported passwords in the background (``storm_background_hashes``, at most
``pending_hash_per_s`` a second).

The import stores each password's verification MAC (``csms.credentials``), so a station's
handshake costs an HMAC, also in a CSMS that has just started: the storm after a restart.
``--remembered no`` imports with ``--hash-now`` and clears those MACs before the CSMS starts (a
registry from before they existed): then every first handshake costs one scrypt (~35-60 ms
of a worker thread at the production cost), on 2 cores at most ~50 a second, and the storm is
bounded by hashing. ``--hash-cost cheap`` registers at scrypt N=16 instead (as ``bench.serve``).

Reference: ``bench.serve reference`` (the ``ocpp`` library's default way, no authentication)
under the same load generator, in the same run (``storm_reference_*``).

Run: ``python -m bench.bench_storm [--quick] [--stations N] [--rate R] [--hash-cost ...]
[--remembered yes|no] [--registry DIR]`` (``--registry``: import once into DIR and reuse it in
later runs).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    emit,
    raise_open_files_limit,
    read_json_line,
    spawn_module,
    stop_process,
)
from bench.loadgen import station_password
from bench.serve import cheap_password_hash, station_id
from csms.credentials import load_credential_key, password_mac

AUDITOR = ("bench-auditor", "bench-auditor-pw")


def v2g(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "v2g", *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"v2g {args[0]} {args[1]}: {result.stderr.strip()}")
    return result


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def import_stations(
    data_dir: Path, stations: int, hash_cost: str, seed: str, *, hash_now: bool = False
) -> float:
    """Register the stations; the seconds ``v2g stations import`` took (production cost)."""
    rows = [(station_id(i), station_password(station_id(i), seed)) for i in range(stations)]
    if hash_cost == "cheap":
        import asyncio

        from csms.store.sqlite import CsmsStore

        async def register() -> None:
            key = load_credential_key(data_dir)
            hashed = {s: cheap_password_hash(p) for s, p in rows}
            macs = {s: password_mac(key, s, hashed[s], p) for s, p in rows}
            store = await CsmsStore.open_data_dir(data_dir)
            try:
                await store.add_stations(
                    [(s, hashed[s], None, None, None) for s, _ in rows], "t", password_macs=macs
                )
            finally:
                await store.close()

        data_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        asyncio.run(register())
        return time.monotonic() - began
    csv_file = data_dir.parent / "stations.csv"
    csv_file.write_text("station_id,password\n" + "".join(f"{s},{p}\n" for s, p in rows))
    began = time.monotonic()
    v2g("stations", "import", str(csv_file), "--data-dir", str(data_dir),
        *(["--hash-now"] if hash_now else []))  # fmt: skip
    return time.monotonic() - began


HASH_NOW_SAMPLE = 200


def hash_now_seconds(tmp: Path, rows: int) -> float:
    """Seconds ``v2g stations import --hash-now`` takes for ``rows`` rows (a fresh data dir)."""
    data_dir = tmp / "hash-now" / "data"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return import_stations(data_dir, rows, "production", "hash-now", hash_now=True)


def password_hashes(port: int) -> dict[str, int]:
    """``v2g_password_hashes_total`` by ``why`` (handshake, imported) from ``/metrics``."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    token = base64.b64encode(f"{AUDITOR[0]}:{AUDITOR[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()
    found = re.findall(r'v2g_password_hashes_total\{why="(\w+)"\} (\d+)', text)
    return {why: int(n) for why, n in found}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (Linux,
    system-wide: other processes' too; 0 elsewhere). A full queue costs the station seconds
    (its TCP stack resends the SYN after 1, 2, 4... s)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split(), values.split(), strict=False))
            return int(row.get("ListenOverflows", 0))
    return 0


def forget_passwords(data_dir: Path) -> None:
    """Clear every remembered password MAC: each first handshake then costs a scrypt."""
    import sqlite3

    with sqlite3.connect(data_dir / "csms.sqlite") as db:
        db.execute("UPDATE stations SET password_mac = NULL")


def lag(port: int) -> tuple[int, int, float]:
    """(loop-lag samples, those over 100 ms, worst stall since start) from ``/metrics``."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    token = base64.b64encode(f"{AUDITOR[0]}:{AUDITOR[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()

    def value(pattern: str) -> float:
        found = re.search(pattern + r" ([0-9.e+-]+)", text)
        return float(found.group(1)) if found else 0.0

    count = int(value(r"v2g_event_loop_lag_seconds_count"))
    within = int(value(r'v2g_event_loop_lag_seconds_bucket\{le="0\.1"\}'))
    return count, count - within, value("v2g_event_loop_lag_max_seconds")


def loadgen(port: int, args: argparse.Namespace, seed: str | None) -> dict[str, Any]:
    extra = ["--password-seed", seed] if seed else []
    proc = spawn_module(
        "bench.loadgen", "heartbeat", f"ws://127.0.0.1:{port}",
        "--stations", str(args.stations), "--rate", str(args.rate),
        "--connect-concurrency", str(args.stations), "--duration", str(args.duration),
        "--interval", str(args.interval), "--retry-for", str(args.retry_for), *extra,
    )  # fmt: skip
    try:
        connected = read_json_line(proc, args.stations / args.rate + 900)
        result = read_json_line(proc, args.duration + 600)
    finally:
        stop_process(proc)
    result["live"] = connected.get("live", 0)
    return result


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[Path, str, float | None]:
    """The CSMS data dir with the stations registered, their password seed, and the import's
    seconds (None: reused from an earlier run, ``--registry DIR``)."""
    data_dir = args.registry or tmp / "ours"
    marker = data_dir / "bench-storm.seed"
    expected = f"{args.stations} {args.hash_cost}"
    if args.registry and marker.is_file() and marker.read_text().split(" ", 1)[1] == expected:
        return data_dir, marker.read_text().split(" ", 1)[0], None
    if args.registry and data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir}: not empty and not an earlier bench_storm registry")
    seed = "storm-" + os.urandom(4).hex()
    hash_now = args.remembered == "no"  # pending hashes need their MACs
    import_s = import_stations(data_dir, args.stations, args.hash_cost, seed, hash_now=hash_now)
    v2g("operators", "add", AUDITOR[0], "--password", AUDITOR[1], "--role", "auditor",
        "--data-dir", str(data_dir))  # fmt: skip
    marker.write_text(f"{seed} {expected}")
    return data_dir, seed, import_s


def measure_ours(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data_dir, seed, import_s = prepare(args, tmp)
    (data_dir / "csms.yaml").write_text(f"max_connections: {args.stations + 100}\n")
    if args.remembered == "no":
        forget_passwords(data_dir)
    port, http_port = free_port(), free_port()
    with (tmp / "csms.log").open("wb") as log:
        csms = subprocess.Popen(
            [sys.executable, "-m", "v2g", "csms", "--data-dir", str(data_dir),
             "--port", str(port), "--http-port", str(http_port)],
            cwd=REPO, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        wait_for_port(port)
        wait_for_port(http_port)
        time.sleep(1.0)
        before, cpu, dropped = lag(http_port), cpu_seconds(csms.pid), listen_overflows()
        hashes = password_hashes(http_port)
        result = loadgen(port, args, seed)
        after, result["server_cpu_s"] = lag(http_port), cpu_seconds(csms.pid) - cpu
        hashes_after = password_hashes(http_port)
        for why in ("handshake", "imported"):
            result[f"hashes_{why}"] = hashes_after.get(why, 0) - hashes.get(why, 0)
        result["listen_overflows"] = listen_overflows() - dropped
    finally:
        csms.terminate()
        try:
            csms.wait(timeout=30)
        except subprocess.TimeoutExpired:
            csms.kill()
    result["import_s"] = import_s
    result["stalls_over_100ms"] = after[1] - before[1]
    result["max_stall_ms"] = after[2] * 1000
    result["start_up_max_stall_ms"] = before[2] * 1000  # the worst before the storm began
    return result


def measure_reference(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    server = spawn_module("bench.serve", "reference", "--data-dir", str(tmp / "reference"))
    try:
        started = read_json_line(server, 300)
        cpu, dropped = cpu_seconds(server.pid), listen_overflows()
        result = loadgen(int(str(started["port"])), args, None)
        result["server_cpu_s"] = cpu_seconds(server.pid) - cpu
        result["listen_overflows"] = listen_overflows() - dropped
        return result
    finally:
        stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stations", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument(
        "--retry-for",
        type=float,
        default=600.0,
        help="a refused (429/503 + Retry-After) station retries for this long, as stations do",
    )
    parser.add_argument("--hash-cost", choices=["production", "cheap"], default="production")
    parser.add_argument(
        "--remembered",
        choices=["yes", "no"],
        default="yes",
        help="no: clear the remembered password MACs first (every first handshake hashes)",
    )
    parser.add_argument("--only", choices=["ours", "reference"])
    parser.add_argument(
        "--registry",
        type=Path,
        help="keep the imported stations here and reuse them in later runs (saves the import)",
    )
    args = parser.parse_args()
    args.stations = args.stations or (300 if args.quick else 10_000)
    args.rate = args.rate or (100.0 if args.quick else 500.0)
    args.duration = args.duration or (10.0 if args.quick else 30.0)
    emit("open_files_limit", raise_open_files_limit())
    emit("storm_stations", args.stations)
    emit("storm_rate", args.rate)
    emit("storm_hash_cost", args.hash_cost)
    emit("storm_remembered", args.remembered)
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
        kinds = [args.only] if args.only else ["reference", "ours"]
        for kind in kinds:
            measure = measure_ours if kind == "ours" else measure_reference
            result = measure(args, Path(tmp))
            prefix = "storm" if kind == "ours" else "storm_reference"
            emit(f"{prefix}_live", int(result["live"]))
            emit(f"{prefix}_connect_failures", int(result["connect_failures"]))
            emit(f"{prefix}_connect_retries", int(result["connect_retries"]))
            emit(f"{prefix}_connect_p50_ms", float(result["connect_p50_ms"]))
            emit(f"{prefix}_connect_p99_ms", float(result["connect_p99_ms"]))
            emit(f"{prefix}_connect_all_s", float(result["connect_seconds"]))
            emit(f"{prefix}_heartbeat_p50_ms", float(result["heartbeat_p50_ms"]))
            emit(f"{prefix}_heartbeat_p99_ms", float(result["heartbeat_p99_ms"]))
            emit(f"{prefix}_errors", int(result["errors"]) + int(result["call_errors"]))
            emit(f"{prefix}_server_cpu_s", float(result["server_cpu_s"]))
            emit(f"{prefix}_listen_overflows", int(result["listen_overflows"]))
            if kind == "ours":
                if result["import_s"] is not None:
                    emit("import_rows", args.stations)
                    emit("import_seconds", float(result["import_s"]))
                    rate = args.stations / float(result["import_s"])
                    emit("import_rows_per_s", rate)
                    if args.hash_cost == "production":
                        sample = min(HASH_NOW_SAMPLE, args.stations)
                        took = hash_now_seconds(Path(tmp), sample)
                        emit("import_hash_now_rows", sample)
                        emit("import_hash_now_seconds", took)
                        emit("import_hash_now_rows_per_s", sample / took)
                        emit("import_speedup", rate / (sample / took))
                emit("storm_handshake_scrypts", int(result["hashes_handshake"]))
                emit("storm_background_hashes", int(result["hashes_imported"]))
                emit("storm_stalls_over_100ms", int(result["stalls_over_100ms"]))
                emit("storm_max_stall_ms", float(result["max_stall_ms"]))
                emit("storm_start_up_max_stall_ms", float(result["start_up_max_stall_ms"]))


if __name__ == "__main__":
    main()
