"""Benchmark: session Ended -> committed settlement and receipt, at a steady session rate.

Our CSMS runs as its own process (``bench.serve ours --ledger embedded``: 4 in-process
validators, the default tariff, one meter key registered for every station). This process
drives stations over websockets: a new session starts every 1/``--rate`` seconds on a free
station, with OCMF-signed Begin and End readings (``chargepoint.meter``), Started then Ended.
For each session it takes the wall-clock instant the Ended answer arrived, then watches the
CSMS database (read-only, polled every 20 ms) for the settlement's ``committed_at`` (the
instant the outbox recorded the commit, CSMS clock = this machine's clock) and its receipt.

Prints e2e_commit_p50/p99 (Ended answer -> committed_at) and e2e_receipt_p50/p99 (Ended
answer -> receipt stored, as observed by polling), with the embedded ledger's default block
interval (or ``--block-interval-ms``). Then the reference version (``bench.reference``: a
block is stored, and so has a receipt, only once the next block is decided: two block
intervals) runs at the same interval in the same run: ``e2e_reference_*``. ``--before
COMMIT`` also runs that commit's tree (``e2e_before_*``), to measure a change in one run.
Run: ``python -m bench.bench_e2e [--quick] [--before COMMIT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.common import (
    REPO,
    emit,
    percentile,
    raise_open_files_limit,
    read_json_line,
    spawn_module,
    stop_process,
)
from bench.reference import REFERENCE_COMMIT, reference_tree
from bench.serve import PASSWORD, TOKEN, TOKEN_TYPE, station_id
from chargepoint.meter import public_key_pem
from csms.app import EMBEDDED_BLOCK_INTERVAL_MS
from ledger.home import STORE_FILE, validator_homes
from simulators.signed_events import SignedMeterDriver

SESSION_SPAN = timedelta(seconds=10)  # each session's meter time, in the past
DEFAULT_BLOCKS_MS = EMBEDDED_BLOCK_INTERVAL_MS  # the embedded ledger's (and the reference's)


class SigningStation:
    """One station connection with its own signing meter; runs one session at a time."""

    def __init__(self, index: int, key: ec.EllipticCurvePrivateKey) -> None:
        self.name = station_id(index)
        self.driver = SignedMeterDriver(
            key, serial=f"BENCH-{index}", id_token=TOKEN, token_type=TOKEN_TYPE, import_wh=1000
        )
        self.ws: ClientConnection | None = None
        self.ids = 0
        self.sessions = 0
        self.next_start = datetime.now(UTC)  # set by ``drive``: this station's sessions
        # follow one another in (past) time, so that none overlaps another of its EVSE

    async def open(self, url: str) -> None:
        token = base64.b64encode(f"{self.name}:{PASSWORD}".encode()).decode()
        self.ws = await connect(
            f"{url}/ocpp/{self.name}",
            subprotocols=[Subprotocol("ocpp2.0.1")],
            additional_headers={"Authorization": f"Basic {token}"},
            compression=None,
        )
        await self.call("BootNotification", {
            "reason": "PowerUp", "chargingStation": {"model": "B", "vendorName": "bench"},
        })  # fmt: skip

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        assert self.ws is not None
        self.ids += 1
        message_id = str(self.ids)
        await self.ws.send(json.dumps([2, message_id, action, payload]))
        while True:
            frame: list[Any] = json.loads(await self.ws.recv())
            if frame[0] == 2:  # dispatch calls from the CSMS: accept
                result = {} if frame[2] == "CostUpdated" else {"status": "Accepted"}
                await self.ws.send(json.dumps([3, frame[1], result]))
            elif frame[1] == message_id:
                return frame

    async def session(self) -> tuple[str, str, float]:
        """Run Started then Ended; return (station, transaction id, Ended answer wall time)."""
        self.sessions += 1
        transaction_id = f"{self.name}-{self.sessions}"
        began = self.next_start
        ended = began + SESSION_SPAN
        self.next_start = ended + timedelta(seconds=1)
        driver = self.driver
        begin = driver.meter_value(began, "Begin", "Transaction.Begin")
        await self.call(
            "TransactionEvent", driver.event("Started", 0, transaction_id, began, begin)
        )
        driver.move(500, 100, began)  # 216 kW over the span: a plausible power
        end = driver.meter_value(ended, "End", "Transaction.End")
        answer = await self.call(
            "TransactionEvent", driver.event("Ended", 1, transaction_id, ended, end)
        )
        if answer[0] != 3:
            raise RuntimeError(f"Ended refused: {answer}")
        return self.name, transaction_id, time.time()


def committed(db_path: Path) -> dict[tuple[str, str], tuple[str, str | None, bool]]:
    """(station, transaction) -> (status, committed_at, has receipt), read-only."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(
            "SELECT station_id, transaction_id, status, committed_at, receipt IS NOT NULL"
            " FROM settlements"
        ).fetchall()
    finally:
        conn.close()
    return {(r[0], r[1]): (r[2], r[3], bool(r[4])) for r in rows}


def phases(db_path: Path, receipt_at: dict[tuple[str, str], float]) -> dict[str, list[float]]:
    """Where each receipt's time went, in seconds: written (the settlement row) -> its
    block proposed (the header's time), -> committed (the outbox has the commit), ->
    receipt stored (as polled). Block times are read from the first validator's store."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(
            "SELECT station_id, transaction_id, created_at, committed_at, block_height"
            " FROM settlements WHERE block_height IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    store = validator_homes(db_path.parent)[0] / STORE_FILE
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        headers = conn.execute("SELECT height, header FROM blocks").fetchall()
    finally:
        conn.close()
    proposed = {int(h): json.loads(bytes(header))["time"] / 1000 for h, header in headers}
    out: dict[str, list[float]] = {"to_block": [], "block_to_commit": [], "commit_to_receipt": []}
    for station, transaction, created, committed_at, height in rows:
        at = proposed.get(height)
        received = receipt_at.get((station, transaction))
        if at is None or received is None or committed_at is None:
            continue
        out["to_block"].append(at - parse_stamp(created))
        out["block_to_commit"].append(parse_stamp(committed_at) - at)
        out["commit_to_receipt"].append(received - parse_stamp(committed_at))
    return out


def parse_stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def drive(args: argparse.Namespace, url: str, db_path: Path) -> dict[str, Any]:
    stations = [SigningStation(i, args.key) for i in range(args.stations)]
    count = int(args.rate * args.duration)
    per_station = -(-count // args.stations) + 1
    span = per_station * (SESSION_SPAN + timedelta(seconds=1))
    first = datetime.now(UTC).replace(microsecond=0) - span
    for s in stations:
        s.next_start = first
    await asyncio.gather(*(s.open(url) for s in stations))
    free: asyncio.Queue[SigningStation] = asyncio.Queue()
    for s in stations:
        free.put_nowait(s)
    ended: dict[tuple[str, str], float] = {}
    errors = 0

    async def one() -> None:
        nonlocal errors
        station = await free.get()
        try:
            name, transaction_id, at = await station.session()
            ended[(name, transaction_id)] = at
        except Exception:
            errors += 1
        finally:
            free.put_nowait(station)

    commit_latency: dict[tuple[str, str], float] = {}
    receipt_latency: dict[tuple[str, str], float] = {}
    flagged: set[tuple[str, str]] = set()
    all_started = asyncio.Event()

    async def watch() -> None:
        """Poll the CSMS database from the first session on, every 20 ms."""
        deadline = float("inf")
        while time.monotonic() < deadline:
            now = time.time()
            rows = await asyncio.to_thread(committed, db_path)
            for session, at in list(ended.items()):
                row = rows.get(session)
                if row is None:
                    continue
                status, committed_at, has_receipt = row
                if status not in ("pending", "committed"):
                    flagged.add(session)
                if committed_at is not None and session not in commit_latency:
                    commit_latency[session] = parse_stamp(committed_at) - at
                if has_receipt and session not in receipt_latency:
                    receipt_latency[session] = now - at
            if all_started.is_set():
                if len(receipt_latency) + len(flagged) >= len(ended):
                    return
                deadline = min(deadline, time.monotonic() + args.settle_timeout)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    began = time.monotonic()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, began + i / args.rate - time.monotonic()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    offered_rate = count / (time.monotonic() - began)
    all_started.set()
    await watcher
    for s in stations:
        if s.ws is not None:
            await s.ws.close()
    receipt_at = {session: ended[session] + late for session, late in receipt_latency.items()}
    return {
        "phases": await asyncio.to_thread(phases, db_path, receipt_at),
        "sessions": count,
        "ended": len(ended),
        "offered_rate": offered_rate,
        "committed": len(commit_latency),
        "receipts": len(receipt_latency),
        "flagged": len(flagged),
        "errors": errors,
        "commit": list(commit_latency.values()),
        "receipt": list(receipt_latency.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, help="sessions started per second")
    parser.add_argument("--duration", type=float, help="seconds of session starts")
    parser.add_argument("--stations", type=int, default=40)
    parser.add_argument("--block-interval-ms", type=int, default=0, help="0: the default")
    parser.add_argument("--settle-timeout", type=float, default=60.0)
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the reference version's run"
    )
    parser.add_argument("--before", help="also run this commit's tree (e2e_before_*)")
    args = parser.parse_args()
    args.rate = args.rate or (5.0 if args.quick else 20.0)
    args.duration = args.duration or (8.0 if args.quick else 30.0)
    raise_open_files_limit()
    args.key = ec.generate_private_key(ec.SECP256R1())
    interval = args.block_interval_ms
    emit("e2e_target_rate", args.rate)
    runs: list[tuple[str, str | None]] = [("e2e", None)]  # (prefix, commit; None: this tree)
    if args.before:
        runs.append(("e2e_before", args.before))
    if not args.no_reference:
        runs.append(("e2e_reference", REFERENCE_COMMIT))
    for prefix, commit in runs:
        if commit is None:
            result = run_once(args, interval, REPO)
        else:
            with reference_tree(commit) as tree:
                result = run_once(args, interval, tree)
        emit(f"{prefix}_block_interval_ms", interval or DEFAULT_BLOCKS_MS)
        emit(f"{prefix}_offered_rate", float(result["offered_rate"]))
        emit(f"{prefix}_sessions", int(result["ended"]))
        emit(f"{prefix}_committed", int(result["committed"]))
        emit(f"{prefix}_receipts", int(result["receipts"]))
        emit(f"{prefix}_flagged", int(result["flagged"]))
        emit(f"{prefix}_errors", int(result["errors"]))
        emit(f"{prefix}_commit_p50_ms", percentile(result["commit"], 0.50) * 1000)
        emit(f"{prefix}_commit_p99_ms", percentile(result["commit"], 0.99) * 1000)
        emit(f"{prefix}_receipt_p50_ms", percentile(result["receipt"], 0.50) * 1000)
        emit(f"{prefix}_receipt_p99_ms", percentile(result["receipt"], 0.99) * 1000)
        for phase, values in result["phases"].items():
            emit(f"{prefix}_{phase}_p50_ms", percentile(values, 0.50) * 1000)
            emit(f"{prefix}_{phase}_p99_ms", percentile(values, 0.99) * 1000)


def run_once(args: argparse.Namespace, block_interval_ms: int, root: Path = REPO) -> dict[str, Any]:
    """One CSMS process with its embedded validators (of the source tree ``root``), driven
    at the steady rate."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        key_file = Path(tmp) / "meter.pem"
        key_file.write_bytes(public_key_pem(args.key))
        data_dir = Path(tmp) / "data"
        command = ["ours", "--data-dir", str(data_dir), "--stations", str(args.stations)]
        command += ["--ledger", "embedded", "--meter-key", str(key_file)]
        if block_interval_ms:
            command += ["--block-interval-ms", str(block_interval_ms)]
        server = spawn_module("bench.serve", *command, root=root)
        try:
            started = read_json_line(server, 120)
            url = f"ws://127.0.0.1:{started['port']}"
            return asyncio.run(drive(args, url, data_dir / "csms.sqlite"))
        finally:
            stop_process(server)


if __name__ == "__main__":
    main()
