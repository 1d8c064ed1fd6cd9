"""A CSMS under test, as its own process: ``python -m bench.serve ours|reference ...``.

Prints one JSON line ``{"port": P, "pid": PID}`` once it listens, then serves until SIGTERM.

``ours`` is ``start_csms`` with schema validation on (requests and answers) and SQLite
persistence, on the event loop of ``v2g csms`` (``csms.event_loop``); stations ``S00000``.. are
registered with password ``pw`` first. The rate limits are raised (``rate_limit_per_s``
100000, burst 100000) so the benchmark measures the message path, not the per-station
throttle, and ``max_connections`` is raised to the station count.
Station passwords are stored with a low scrypt cost (N=16) so that 10,000 handshakes measure
connection handling, not password hashing; ``bench_connections`` reports the cost of one
production-cost verification separately.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from bench.common import raise_open_files_limit
from bench.reference_csms import start_reference
from csms import event_loop

PASSWORD = "pw"
TOKEN, TOKEN_TYPE = "BENCH-TOKEN-1", "ISO14443"


def station_id(index: int) -> str:
    return f"S{index:05d}"


def cheap_password_hash(password: str) -> str:
    """The store's scrypt format at a low cost (benchmark only; see the module docstring)."""
    salt = os.urandom(16)
    n, r, p = 16, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    encode = base64.b64encode
    return f"scrypt${n}${r}${p}${encode(salt).decode()}${encode(digest).decode()}"


async def serve_ours(args: argparse.Namespace, stop: asyncio.Event) -> None:
    from csms.app import start_csms
    from csms.config import CsmsConfig
    from csms.model import TokenRecord

    data_dir = Path(args.data_dir)
    if args.tariff:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "tariff.yaml").write_text(Path(args.tariff).read_text())
    config = CsmsConfig(
        port=0,
        http_port=0,
        rate_limit_per_s=100_000.0,
        rate_limit_burst=100_000,
        max_connections=args.stations + 100,
        dispatch_interval=3600.0,
        database=args.database or "",
    )
    tuning = None
    if args.block_interval_ms:
        from ledger.consensus.runner import Tuning

        tuning = Tuning(block_interval_ms=args.block_interval_ms)
    app = await start_csms(
        data_dir, config, ledger=args.ledger, tuning=tuning, compile_schemas=True
    )  # as ``v2g csms`` starts
    meter_key = Path(args.meter_key).read_text() if args.meter_key else None
    hashed = cheap_password_hash(PASSWORD)
    async with app.store.transaction() as db:
        await db.executemany(
            "INSERT INTO stations (station_id, password_hash, meter_key, created_at)"
            " VALUES (?, ?, ?, ?)",
            [
                (station_id(i), hashed, meter_key, "2026-01-01T00:00:00Z")
                for i in range(args.stations)
            ],
        )
    await app.store.add_token(
        TokenRecord(TOKEN, TOKEN_TYPE, "Accepted", "invoice", None, "2026-01-01T00:00:00Z")
    )
    print(json.dumps({"port": app.port, "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        await app.stop()


async def serve_reference(args: argparse.Namespace, stop: asyncio.Event) -> None:
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    server, db = await start_reference(data_dir / "reference.sqlite", "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        await db.close()


def watch_pauses(threshold_s: float = 0.1) -> None:
    """Log (stderr) full garbage collections and event-loop stalls longer than the threshold."""
    began: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[info["generation"]] = time.perf_counter()
        elif info["generation"] == 2:
            took = time.perf_counter() - began.get(2, time.perf_counter())
            print(
                f"serve: gen2 collection {took * 1000:.0f} ms at {time.time():.1f}", file=sys.stderr
            )

    gc.callbacks.append(on_gc)

    async def lag() -> None:
        while True:
            due = time.perf_counter() + 0.01
            await asyncio.sleep(0.01)
            late = time.perf_counter() - due
            if late > threshold_s:
                print(
                    f"serve: event loop stalled {late * 1000:.0f} ms at {time.time():.1f}",
                    file=sys.stderr,
                )

    watchers.append(asyncio.get_running_loop().create_task(lag()))


watchers: list[asyncio.Task[None]] = []


async def main(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    if args.watch_pauses:
        watch_pauses()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if args.kind == "ours":
        await serve_ours(args, stop)
    else:
        await serve_reference(args, stop)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["ours", "reference"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--ledger", choices=["off", "embedded"], default="off")
    parser.add_argument("--meter-key", help="PEM public key registered for every station")
    parser.add_argument("--tariff", help="tariff YAML to install in the data dir")
    parser.add_argument("--database", help="postgresql:// URL instead of DATA_DIR/csms.sqlite")
    parser.add_argument("--watch-pauses", action="store_true", help="log GC and loop stalls")
    parser.add_argument("--block-interval-ms", type=int, help="embedded ledger block interval")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    # Ours on the event loop `v2g csms` runs on; the reference on asyncio's default.
    factory = event_loop.new_event_loop if arguments.kind == "ours" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(arguments))
