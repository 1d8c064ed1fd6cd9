"""MeterValues outside a transaction: the round trip below and at the per-station cap.

One station over a real socket against the real CSMS (SQLite): the round trip of a 2-sample
MeterValues is measured while the station holds few samples outside transactions (nothing to
prune) and again once it holds ``keep_meter_values`` of them (default 10,000: each message
then removes the two oldest in the same unit of work), in the same run. Pruning walks the
station's newest ``keep`` index entries, so ``retention_at_cap_over_below`` says what that
costs; it should stay under 2.

Run: ``python -m bench.bench_retention [--quick] [--keep N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.common import emit
from csms.app import start_csms
from csms.config import CsmsConfig
from csms.passwords import hash_password
from csms.store.retention import METER_VALUES
from tests.csms.conftest import auth_header

STATION, PASSWORD = "CS-BENCH-1", "bench-station-pw"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PER_FRAME = 200  # samples per filling frame (max_sampled_values)


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")[:-6] + "Z"


def meter_values(first: int, count: int) -> dict[str, Any]:
    return {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": at(first + n),
                "sampledValue": [{"value": 1000 + first + n, "context": "Sample.Clock"}],
            }
            for n in range(count)
        ],
    }


async def run(keep: int, repeats: int) -> tuple[list[float], list[float], int]:
    """Round trips below the cap and at it, and the samples the station holds at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        config = CsmsConfig(
            port=0, rate_limit_per_s=100_000, rate_limit_burst=100_000, keep_meter_values=keep
        )
        app = await start_csms(Path(tmp) / "data", config)
        try:
            await app.store.add_station(STATION, hash_password(PASSWORD), at(0))
            async with connect(
                f"ws://127.0.0.1:{app.port}/ocpp/{STATION}",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers=auth_header(STATION, PASSWORD),
            ) as ws:
                ids = itertools.count(1)
                second = 0

                async def call(count: int) -> float:
                    nonlocal second
                    payload = meter_values(second, count)
                    second += count
                    began = time.perf_counter()
                    await ws.send(json.dumps([2, f"m{next(ids)}", "MeterValues", payload]))
                    answer = json.loads(await ws.recv())
                    assert answer[0] == 3, answer
                    return time.perf_counter() - began

                await call(2)  # one-off costs of the first message
                below = [await call(2) for _ in range(repeats)]
                while second < keep + PER_FRAME:
                    await call(PER_FRAME)
                at_cap = [await call(2) for _ in range(repeats)]
            row = await app.store.fetchone(METER_VALUES.count_sql(), (STATION,))
            return below, at_cap, int(row[0])
        finally:
            await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", type=int, default=10_000, help="keep_meter_values")
    args = parser.parse_args()
    below, at_cap, held = asyncio.run(run(args.keep, 30 if args.quick else 100))
    below_ms = statistics.median(below) * 1000
    at_cap_ms = statistics.median(at_cap) * 1000
    emit("retention_keep", args.keep)
    emit("retention_held", held)
    emit("retention_below_cap_ms", round(below_ms, 3))
    emit("retention_at_cap_ms", round(at_cap_ms, 3))
    emit("retention_at_cap_over_below", round(at_cap_ms / below_ms, 2))


if __name__ == "__main__":
    main()
