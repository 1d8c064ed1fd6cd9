"""TransactionEvent Updated round trip early and late in one long transaction.

One station over a real socket against the real CSMS (SQLite, a tariff, ledger off): the
round trip of a 1-sample Updated is measured right after the Started (the 1st sample) and
again after the transaction has ``--samples`` register samples (default 10,000), in the same
run. The work per event must not grow with the samples already taken: the ratio
``running_cost_late_over_early`` should stay under 2.

Run: ``python -m bench.bench_running_cost [--quick] [--samples N]``.
"""

from __future__ import annotations

import argparse
import asyncio
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
from csms.defaults import DEFAULT_TARIFF_YAML
from csms.passwords import hash_password
from csms.tariffs import parse_tariff
from tests.csms.conftest import auth_header

STATION, PASSWORD = "CS-BENCH-1", "bench-station-pw"
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PER_FRAME = 100  # samples per filling frame (max_sampled_values is 200)


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")[:-6] + "Z"


def event(kind: str, seq: int, values: list[tuple[int, int]]) -> dict[str, Any]:
    meter = [
        {"timestamp": at(s), "sampledValue": [{"value": wh, "context": "Sample.Periodic"}]}
        for s, wh in values
    ]
    trigger = "Authorized" if kind == "Started" else "MeterValuePeriodic"
    return {
        "eventType": kind, "timestamp": at(values[-1][0]), "triggerReason": trigger,
        "seqNo": seq, "transactionInfo": {"transactionId": "tx-long"},
        "evse": {"id": 1, "connectorId": 1}, "meterValue": meter,
    }  # fmt: skip


async def run(samples: int, repeats: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = CsmsConfig(port=0, rate_limit_per_s=100_000, rate_limit_burst=100_000)
        app = await start_csms(Path(tmp) / "data", config)
        app.server.services.tariff = parse_tariff(DEFAULT_TARIFF_YAML.encode(), source="t.yaml")
        try:
            await app.store.add_station(STATION, hash_password(PASSWORD), at(0))
            async with connect(
                f"ws://127.0.0.1:{app.port}/ocpp/{STATION}",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers=auth_header(STATION, PASSWORD),
            ) as ws:
                n = 0

                async def call(payload: dict[str, Any]) -> float:
                    nonlocal n
                    n += 1
                    began = time.perf_counter()
                    await ws.send(json.dumps([2, f"m{n}", "TransactionEvent", payload]))
                    answer = json.loads(await ws.recv())
                    assert answer[0] == 3, answer
                    return time.perf_counter() - began

                await call(event("Started", 0, [(0, 1000)]))
                seq, second, wh = 1, 1, 1000
                early = []
                for _ in range(repeats):
                    wh += 10
                    early.append(await call(event("Updated", seq, [(second, wh)])))
                    seq, second = seq + 1, second + 1
                while second < samples:
                    values = []
                    for _ in range(PER_FRAME):
                        wh += 10
                        values.append((second, wh))
                        second += 1
                    await call(event("Updated", seq, values))
                    seq += 1
                late = []
                for _ in range(repeats):
                    wh += 10
                    late.append(await call(event("Updated", seq, [(second, wh)])))
                    seq, second = seq + 1, second + 1
                emit("running_cost_samples", await app.store.count("meter_samples"))
                return early, late
        finally:
            await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, help="samples before the late round trips")
    args = parser.parse_args()
    samples = args.samples or 10_000
    early, late = asyncio.run(run(samples, 20 if args.quick else 50))
    early_ms, late_ms = statistics.median(early) * 1000, statistics.median(late) * 1000
    emit("running_cost_early_ms", round(early_ms, 3))
    emit("running_cost_late_ms", round(late_ms, 3))
    emit("running_cost_late_over_early", round(late_ms / early_ms, 2))


if __name__ == "__main__":
    main()
