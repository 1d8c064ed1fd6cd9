"""One dispatch pass over a fleet in which one station never answers.

N 2.0.1 stations (200; ``--quick`` 50) each run one session; the first session the pass
meets is on a station that reads every CALL and answers none. The pass is timed three ways
in one run, each on a fresh CSMS (in this process, SQLite, ledger off):

- ``dispatch_all_answer_s``: every station answers (the reference);
- ``dispatch_sequential_silent_s``: one silent station, sessions decided one at a time
  (``dispatch_concurrency: 1``, how a pass ran before it was concurrent; before, the silent
  station also held the pass for the CSMS's ``call_timeout``, 30 s by default, twice:
  SetChargingProfile, then CostUpdated);
- ``dispatch_concurrent_silent_s``: one silent station, the default concurrency.

Each figure is the time from the start of the pass until the last answering station has
received its SetChargingProfile (``*_last_setpoint_s``) and until the pass ended (``*_s``).
The dispatch call timeout is ``--timeout`` (2 s): the silent station's calls take that long.

Run: ``python -m bench.bench_dispatch [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import emit
from bench.serve import cheap_password_hash
from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.model import TokenRecord
from csms.tariffs import parse_tariff

PASSWORD = "fleet password"
TOKEN = "FLEET-TOKEN"
AT = "2026-11-25T10:00:00.000Z"
TARIFF = b"""\
id: flat
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 250000, export_price: 100000}
"""
POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)


@dataclass(slots=True)
class FleetStation:
    """A raw 2.0.1 station with one running session; ``silent`` ones never answer a CALL."""

    station_id: str
    ws: ClientConnection
    silent: bool
    setpoint_at: float | None = None  # loop time its SetChargingProfile arrived
    calls: list[str] = field(default_factory=list)

    async def start_session(self) -> None:
        event = {
            "eventType": "Started",
            "timestamp": AT,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": f"tx-{self.station_id}"},
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": TOKEN, "type": "ISO14443"},
            "meterValue": [
                {
                    "timestamp": AT,
                    "sampledValue": [
                        {
                            "value": 10_000,
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh"},
                        },
                        {"value": 60, "measurand": "SoC", "unitOfMeasure": {"unit": "Percent"}},
                    ],
                }
            ],
        }
        await self.ws.send(json.dumps([2, "start", "TransactionEvent", event]))
        answer = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if answer[0] != 3:
            raise RuntimeError(f"{self.station_id}: Started answered {answer}")

    async def serve(self) -> None:
        """Answer the CSMS's calls (unless silent) and note when the setpoint came."""
        loop = asyncio.get_running_loop()
        async for text in self.ws:
            frame = json.loads(text)
            if frame[0] != 2:
                continue
            action = frame[2]
            self.calls.append(action)
            if action == "SetChargingProfile" and self.setpoint_at is None:
                self.setpoint_at = loop.time()
            if self.silent:
                continue
            answer: dict[str, Any] = {"status": "Accepted"} if action != "CostUpdated" else {}
            await self.ws.send(json.dumps([3, frame[1], answer]))


@asynccontextmanager
async def fleet(
    app: CsmsApp, count: int, *, silent: int = 0, password_hash: str | None = None
) -> AsyncIterator[list[FleetStation]]:
    """``count`` connected stations with a session each; the first ``silent`` never answer
    (their sessions are the oldest, so a pass meets them first)."""
    hashed = password_hash or cheap_password_hash(PASSWORD)
    await app.store.add_token(TokenRecord(TOKEN, "ISO14443", "Accepted", "invoice", None, AT))
    stations: list[FleetStation] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for n in range(count):
            station_id = f"FLEET-{n:04d}"
            await app.store.add_station(station_id, hashed, AT)
            ws = await connect(
                f"ws://127.0.0.1:{app.port}/ocpp/{station_id}",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers={"Authorization": _basic(station_id)},
                open_timeout=10,
            )
            station = FleetStation(station_id, ws, silent=n < silent)
            stations.append(station)
            await station.start_session()
            tasks.append(asyncio.create_task(station.serve()))
        yield stations
    finally:
        for task in tasks:
            task.cancel()
        for station in stations:
            await station.ws.close()


def _basic(station_id: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()


def dispatcher_for(app: CsmsApp, *, concurrency: int, timeout: float) -> Dispatcher:
    return Dispatcher(
        app.server,
        parse_tariff(TARIFF, source="flat.yaml"),
        DispatchSettings(
            POLICY, reserve_soc_pct=30, interval=3600, concurrency=concurrency, call_timeout=timeout
        ),
    )


async def measure(
    count: int, *, silent: int, concurrency: int, timeout: float
) -> tuple[float, float]:
    """(seconds until the last answering station had its setpoint, seconds the pass took)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = CsmsConfig(port=0, call_timeout=30, max_connections=count + 10)
        config = config.with_overrides(rate_limit_per_s=1000.0, rate_limit_burst=1000)
        app = await start_csms(Path(tmp) / "data", config)
        try:
            async with fleet(app, count, silent=silent) as stations:
                dispatcher = dispatcher_for(app, concurrency=concurrency, timeout=timeout)
                loop = asyncio.get_running_loop()
                began = loop.time()
                await dispatcher.run_once()
                took = loop.time() - began
                answering = [s for s in stations if not s.silent]
                for _ in range(100):  # the last answers may still be on the wire
                    if all(s.setpoint_at is not None for s in answering):
                        break
                    await asyncio.sleep(0.01)
                last = max((s.setpoint_at or loop.time()) for s in answering) - began
                return last, took
        finally:
            await app.stop()


async def main(quick: bool, timeout: float) -> None:
    count = 50 if quick else 200
    emit("dispatch_stations", count)
    emit("dispatch_call_timeout_s", timeout)
    started = time.perf_counter()
    runs = {
        "all_answer": (0, 32),
        "sequential_silent": (1, 1),
        "concurrent_silent": (1, 32),
    }
    for name, (silent, concurrency) in runs.items():
        last, took = await measure(count, silent=silent, concurrency=concurrency, timeout=timeout)
        emit(f"dispatch_{name}_last_setpoint_s", round(last, 3))
        emit(f"dispatch_{name}_s", round(took, 3))
    emit("dispatch_bench_wall_s", round(time.perf_counter() - started, 1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.timeout))
