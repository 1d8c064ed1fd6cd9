"""TransactionEvent Updated round trip early and late in one long transaction.

One station over a real socket against the real CSMS (SQLite, a tariff, ledger off): the
round trip of a 1-sample Updated is measured right after the Started (the 1st sample) and
again after the transaction has ``--samples`` register samples (default 10,000), in the same
run, and once more after the CSMS restarts on the same data (the first Updated after a restart
reads its transaction's stored state, it does not reread the samples). The work per event must
not grow with the samples already taken: ``running_cost_late_over_early`` and
``running_cost_restarted_first_over_early`` should stay under 2.

Run: ``python -m bench.bench_running_cost [--quick] [--samples N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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


def event(
    kind: str, seq: int, values: list[tuple[int, int]], transaction_id: str = "tx-long"
) -> dict[str, Any]:
    meter = [
        {"timestamp": at(s), "sampledValue": [{"value": wh, "context": "Sample.Periodic"}]}
        for s, wh in values
    ]
    trigger = "Authorized" if kind == "Started" else "MeterValuePeriodic"
    return {
        "eventType": kind, "timestamp": at(values[-1][0]), "triggerReason": trigger,
        "seqNo": seq, "transactionInfo": {"transactionId": transaction_id},
        "evse": {"id": 1, "connectorId": 1}, "meterValue": meter,
    }  # fmt: skip


async def run(samples: int, repeats: int) -> dict[str, list[float]]:
    """Round trips early, late, and late again after a restart of the CSMS on the same data."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        config = CsmsConfig(port=0, rate_limit_per_s=100_000, rate_limit_burst=100_000)
        tariff = parse_tariff(DEFAULT_TARIFF_YAML.encode(), source="t.yaml")
        app = await start_csms(data, config)
        app.server.services.tariff = tariff
        times: dict[str, list[float]] = {"early": [], "late": [], "restarted": []}
        seq, second, wh = 1, 1, 1000
        try:
            await app.store.add_station(STATION, hash_password(PASSWORD), at(0))
            async with _station(app.port) as call:
                await call(event("Started", 0, [(0, 1000)]))
                await call(event("Started", 0, [(0, 1000)], "tx-short"))
                for _ in range(repeats):
                    wh += 10
                    times["early"].append(await call(event("Updated", seq, [(second, wh)])))
                    seq, second = seq + 1, second + 1
                while second < samples:
                    values = []
                    for _ in range(PER_FRAME):
                        wh += 10
                        values.append((second, wh))
                        second += 1
                    await call(event("Updated", seq, values))
                    seq += 1
                for _ in range(repeats):
                    wh += 10
                    times["late"].append(await call(event("Updated", seq, [(second, wh)])))
                    seq, second = seq + 1, second + 1
            emit("running_cost_samples", await app.store.count("meter_samples"))
        finally:
            await app.stop()
        app = await start_csms(data, config)
        app.server.services.tariff = tariff
        try:
            async with _station(app.port) as call:
                # the first message after a start pays one-off costs: a short transaction's
                # Updated takes them, so the long one's first Updated shows its own work
                await call(event("Updated", 1, [(1, 1010)], "tx-short"))
                for _ in range(repeats):
                    wh += 10
                    times["restarted"].append(await call(event("Updated", seq, [(second, wh)])))
                    seq, second = seq + 1, second + 1
        finally:
            await app.stop()
        return times


@asynccontextmanager
async def _station(port: int) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[float]]]:
    """A connected station; yields a call that returns the round trip of one TransactionEvent."""
    async with connect(
        f"ws://127.0.0.1:{port}/ocpp/{STATION}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
    ) as ws:
        ids = itertools.count(1)

        async def call(payload: dict[str, Any]) -> float:
            began = time.perf_counter()
            await ws.send(json.dumps([2, f"m{next(ids)}", "TransactionEvent", payload]))
            answer = json.loads(await ws.recv())
            assert answer[0] == 3, answer
            return time.perf_counter() - began

        yield call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, help="samples before the late round trips")
    args = parser.parse_args()
    samples = args.samples or 10_000
    times = asyncio.run(run(samples, 20 if args.quick else 50))
    early_ms = statistics.median(times["early"]) * 1000
    late_ms = statistics.median(times["late"]) * 1000
    emit("running_cost_early_ms", round(early_ms, 3))
    emit("running_cost_late_ms", round(late_ms, 3))
    emit("running_cost_late_over_early", round(late_ms / early_ms, 2))
    # the first Updated after a restart: its transaction's state is read, not rebuilt
    first_ms = times["restarted"][0] * 1000
    emit("running_cost_restarted_first_ms", round(first_ms, 3))
    emit("running_cost_restarted_first_over_early", round(first_ms / early_ms, 2))
    restarted_ms = statistics.median(times["restarted"]) * 1000
    emit("running_cost_restarted_over_early", round(restarted_ms / early_ms, 2))


if __name__ == "__main__":
    main()
