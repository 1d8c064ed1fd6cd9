"""The load generator, as its own process: ``python -m bench.loadgen MODE URL ...``.

Raw ``websockets`` clients, one per station ``S00000``.., each with one outstanding CALL at
a time as OCPP requires. Two modes:

- ``events``: Boot, a TransactionEvent Started, then TransactionEvent Updated in a closed
  loop (the next sent as soon as the last is answered; with ``--interval`` > 0, one every
  interval per station instead: a paced load). Counts answers and their latency in a
  measuring window that opens after a warm-up, once every station is connected.
- ``heartbeat``: connects every station (connect latency = handshake; with ``--rate R``
  station i starts at i/R seconds, open loop, and its latency counts from then), Boot, then a
  Heartbeat every ``--interval`` seconds per station (random phase) for ``--duration``.
  Prints ``{"phase": "connected", ...}`` once all are up so the caller can read memory.

Prints one JSON line of results at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hmac
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from bench.common import percentile, raise_open_files_limit
from bench.serve import PASSWORD, TOKEN, TOKEN_TYPE, station_id

BOOT = {"reason": "PowerUp", "chargingStation": {"model": "Bench", "vendorName": "v2g-bench"}}


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def station_password(station: str, seed: str | None) -> str:
    """The bench password (``bench.serve``), or one of its own per station derived from
    ``seed`` (the stations ``bench_storm`` imports)."""
    if seed is None:
        return PASSWORD
    return hmac.new(seed.encode(), station.encode(), "sha256").hexdigest()[:24]


def auth(station: str, seed: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{station}:{station_password(station, seed)}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def transaction_event(kind: str, seq: int, transaction_id: str, wh: int) -> dict[str, Any]:
    stamp = now_text()
    payload: dict[str, Any] = {
        "eventType": kind,
        "timestamp": stamp,
        "triggerReason": "Authorized" if kind == "Started" else "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
        "meterValue": [
            {
                "timestamp": stamp,
                "sampledValue": [
                    {
                        "value": wh,
                        "context": "Sample.Periodic",
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    },
                    {
                        "value": 7400,
                        "context": "Sample.Periodic",
                        "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "W"},
                    },
                ],
            }
        ],
    }
    if kind == "Started":
        payload["evse"] = {"id": 1, "connectorId": 1}
        payload["idToken"] = {"idToken": TOKEN, "type": TOKEN_TYPE}
    return payload


@dataclass
class Tally:
    """Answers counted inside the measuring window, and every failure."""

    window: tuple[float, float] = (float("inf"), float("inf"))
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    call_errors: int = 0
    connect_latencies: list[float] = field(default_factory=list)
    connect_failures: int = 0
    retries: int = 0  # handshakes retried after a 429/503 with Retry-After

    def record(self, sent: float, answered: float) -> None:
        if self.window[0] <= sent and answered <= self.window[1]:
            self.latencies.append(answered - sent)


class Station:
    """One station's socket with a call helper (one outstanding CALL)."""

    def __init__(self, ws: ClientConnection, tally: Tally) -> None:
        self.ws = ws
        self.tally = tally
        self.ids = itertools.count()

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        message_id = str(next(self.ids))
        sent = time.perf_counter()
        await self.ws.send(json.dumps([2, message_id, action, payload], separators=(",", ":")))
        while True:
            frame: list[Any] = json.loads(await self.ws.recv())
            if frame[0] == 2:  # a CSMS-initiated call: accept it
                await self.ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
                continue
            if frame[1] == message_id:
                break
        self.tally.record(sent, time.perf_counter())
        if frame[0] == 4:
            self.tally.call_errors += 1
        return frame


async def open_station(
    url: str,
    index: int,
    tally: Tally,
    gate: asyncio.Semaphore,
    *,
    seed: str | None = None,
    at: float | None = None,
    retry_for: float = 0.0,
) -> Station | None:
    """Connect station ``index``; with ``at``, no earlier than that ``perf_counter`` time (an
    open-loop arrival: its latency counts from then, however long the CSMS takes). With
    ``retry_for`` > 0 a 429/503 refusal is retried after its ``Retry-After`` (plus up to 1 s
    of jitter), as a station would, for that many seconds after the first attempt."""
    name = station_id(index)
    if at is not None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
    began = time.perf_counter() if at is None else at
    while True:
        async with gate:
            try:
                ws = await connect(
                    f"{url}/ocpp/{name}",
                    subprotocols=[Subprotocol("ocpp2.0.1")],
                    additional_headers=auth(name, seed),
                    compression=None,
                    ping_interval=None,
                    open_timeout=120,
                    max_queue=4,
                )
                break
            except InvalidStatus as refused:
                status = refused.response.status_code
                wait = refused.response.headers.get("Retry-After", "")
                again = status in (429, 503) and wait.isdigit()
                if not again or time.perf_counter() + int(wait) > began + retry_for:
                    tally.connect_failures += 1
                    return None
            except Exception:
                tally.connect_failures += 1
                return None
        tally.retries += 1
        await asyncio.sleep(int(wait) + random.random())
    tally.connect_latencies.append(time.perf_counter() - began)
    return Station(ws, tally)


async def run_events(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    gate = asyncio.Semaphore(args.connect_concurrency)
    ready = asyncio.Event()
    up = 0

    async def one(index: int) -> None:
        nonlocal up
        station = await open_station(args.url, index, tally, gate)
        if station is None:
            return
        try:
            await station.call("BootNotification", BOOT)
            transaction_id = f"tx-{index}"
            wh, seq = 1000, 0
            await station.call(
                "TransactionEvent", transaction_event("Started", seq, transaction_id, wh)
            )
            up += 1
            if up == args.stations:
                ready.set()
            await ready.wait()
            if args.interval > 0:  # paced: one event per interval, random phase
                await asyncio.sleep(random.uniform(0, args.interval))
            while time.perf_counter() < tally.window[1]:
                due = time.perf_counter() + args.interval
                seq += 1
                wh += 3
                event = transaction_event("Updated", seq, transaction_id, wh)
                await station.call("TransactionEvent", event)
                if args.interval > 0:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
        except Exception:
            tally.errors += 1
        finally:
            await station.ws.close()

    tasks = [asyncio.create_task(one(i)) for i in range(args.stations)]
    try:
        await asyncio.wait_for(ready.wait(), args.connect_timeout)
    except TimeoutError:
        ready.set()  # measure whoever made it
    start = time.perf_counter() + args.warmup
    tally.window = (start, start + args.duration)
    await asyncio.gather(*tasks)
    return {
        "stations": up,
        "answered": len(tally.latencies),
        "seconds": args.duration,
        "rate": len(tally.latencies) / args.duration,
        "p50_ms": percentile(tally.latencies, 0.50) * 1000,
        "p99_ms": percentile(tally.latencies, 0.99) * 1000,
        "errors": tally.errors + tally.connect_failures,
        "call_errors": tally.call_errors,
    }


async def run_heartbeats(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    gate = asyncio.Semaphore(args.connect_concurrency)
    began = time.perf_counter()
    rate = args.rate

    def arrival(i: int) -> float | None:
        return began + i / rate if rate > 0 else None

    stations = await asyncio.gather(
        *(
            open_station(
                args.url,
                i,
                tally,
                gate,
                seed=args.password_seed,
                at=arrival(i),
                retry_for=args.retry_for,
            )
            for i in range(args.stations)
        )
    )
    live = [s for s in stations if s is not None]
    connect_seconds = time.perf_counter() - began
    boots = await asyncio.gather(
        *(s.call("BootNotification", BOOT) for s in live), return_exceptions=True
    )
    boot_failures = sum(1 for b in boots if isinstance(b, BaseException))
    # The load generator's own heap of 10,000 connections would make a full collection
    # stall every station at once and be counted as the CSMS's latency: freeze it.
    gc.collect()
    gc.freeze()
    print(json.dumps({"phase": "connected", "live": len(live)}), flush=True)
    tally.window = (time.perf_counter(), time.perf_counter() + args.duration)

    async def beat(station: Station) -> None:
        await asyncio.sleep(random.uniform(0, args.interval))
        while time.perf_counter() < tally.window[1]:
            due = time.perf_counter() + args.interval
            try:
                await station.call("Heartbeat", {})
            except Exception:
                tally.errors += 1
                return
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    await asyncio.gather(*(beat(s) for s in live))
    await asyncio.gather(*(s.ws.close() for s in live), return_exceptions=True)
    return {
        "stations": len(live),
        "connect_seconds": connect_seconds,
        "connect_p50_ms": percentile(tally.connect_latencies, 0.50) * 1000,
        "connect_p99_ms": percentile(tally.connect_latencies, 0.99) * 1000,
        "heartbeats": len(tally.latencies),
        "heartbeat_p50_ms": percentile(tally.latencies, 0.50) * 1000,
        "heartbeat_p99_ms": percentile(tally.latencies, 0.99) * 1000,
        "errors": tally.errors + tally.connect_failures + boot_failures,
        "connect_failures": tally.connect_failures,
        "connect_retries": tally.retries,
        "call_errors": tally.call_errors,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["events", "heartbeat"])
    parser.add_argument("url", help="ws://127.0.0.1:PORT")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between calls")
    parser.add_argument("--connect-concurrency", type=int, default=200)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="heartbeat mode: connections started per second"
    )
    parser.add_argument("--password-seed", help="per-station passwords (bench_storm)")
    parser.add_argument(
        "--retry-for", type=float, default=0.0, help="retry 429/503 for this many seconds"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    raise_open_files_limit()
    run = run_events if args.mode == "events" else run_heartbeats
    result = asyncio.run(run(args))
    result["loadgen_cpu_s"] = time.process_time()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
