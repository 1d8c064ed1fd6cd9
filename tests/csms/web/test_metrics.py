"""``/metrics``: Prometheus text from a live CSMS with a connected station."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from csms.app import CsmsApp
from csms.metrics import MetricsSnapshot, commit_latencies, count_messages, render_metrics
from csms.model import SettlementRecord
from csms.operators import OperatorRegistry
from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.conftest import open_client

SAMPLE = re.compile(r"^([a-z_][a-z0-9_]*)(\{[^}]*\})? (-?[0-9.e+]+|NaN)$")


def parse(text: str) -> dict[str, float]:
    """Every sample line as ``name{labels}`` -> value; fails on anything not exposition text."""
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        out[match[1] + (match[2] or "")] = float(match[3])
    return out


async def test_metrics_of_a_live_csms(csms: CsmsApp, tmp_path: Path) -> None:
    await OperatorRegistry(csms.store).add("auditor", "auditor-pw", "auditor", "2026-01-01")
    station = await open_client(csms)
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    assert (await station.call("BootNotification", boot))[0] == 3
    assert (await station.call("Heartbeat", {}))[0] == 3
    assert (await station.call("Heartbeat", {}))[0] == 3
    assert (await station.call("NoSuchAction", {}))[0] == 4  # a CALLERROR
    time.sleep(0.3)  # a stall of the event loop, for the lag histogram
    await asyncio.sleep(0.2)
    deps = ReviewDeps(
        store=csms.store, data_dir=tmp_path, stations=csms.stations, server=csms.server
    )
    web = await start_web(deps, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
            assert (await http.get("/metrics")).status_code == 401
            answer = await http.get("/metrics", auth=("auditor", "auditor-pw"))
    finally:
        await web.stop()
        await station.ws.close()
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(answer.text)
    assert samples["v2g_connected_stations"] == 1
    assert samples['v2g_ocpp_messages_total{version="ocpp2.0.1",action="Heartbeat"}'] == 2
    assert samples['v2g_ocpp_messages_total{version="ocpp2.0.1",action="BootNotification"}'] == 1
    errors = {k: v for k, v in samples.items() if k.startswith("v2g_ocpp_callerrors_total")}
    assert sum(errors.values()) == 1
    assert samples['v2g_settlements{status="pending"}'] == 0
    assert "v2g_ledger_height NaN" in answer.text  # no ledger in this data dir
    assert samples['v2g_settlement_commit_seconds_bucket{le="+Inf"}'] == 0
    lag = "v2g_event_loop_lag_seconds"
    assert samples[f"{lag}_count"] >= 2
    assert samples[f'{lag}_bucket{{le="0.1"}}'] < samples[f'{lag}_bucket{{le="+Inf"}}']
    assert samples["v2g_event_loop_lag_max_seconds"] >= 0.2


def record(created: str, committed: str | None, status: str = "committed") -> SettlementRecord:
    return SettlementRecord(
        "s", "st", "tx", "settlement", status, None, None, None, 1, 0, 1, "EUR", "{}", b"",
        created, committed, 1 if committed else None, "ab", 0, "{}",
    )  # fmt: skip


def test_histogram_buckets_are_cumulative() -> None:
    latencies = commit_latencies(
        [
            record("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.300Z"),
            record("2026-01-01T00:00:00.000Z", "2026-01-01T00:00:02.000Z"),
            record("2026-01-01T00:00:00.000Z", "2026-01-01T00:10:00.000Z"),
            record("2026-01-01T00:00:00.000Z", None, "pending"),
        ]
    )
    assert latencies == [0.3, 2.0, 600.0]
    messages, errors = count_messages(
        [("ocpp1.6", {"Heartbeat": 3, "error:FormatViolation": 2}), ("ocpp1.6", {"Heartbeat": 1})]
    )
    text = render_metrics(
        MetricsSnapshot(
            connected_stations=2,
            messages=messages,
            call_errors=errors,
            tolerated={"error_code": 1},
            rate_limited=0,
            settlements={"committed": 3, "pending": 1},
            ledger_height=7,
            commit_latencies=latencies,
        )
    )
    samples = parse(text)
    assert samples['v2g_ocpp_messages_total{version="ocpp1.6",action="Heartbeat"}'] == 4
    assert samples['v2g_ocpp_callerrors_total{version="ocpp1.6",code="FormatViolation"}'] == 2
    assert samples['v2g_settlement_commit_seconds_bucket{le="0.25"}'] == 0
    assert samples['v2g_settlement_commit_seconds_bucket{le="0.5"}'] == 1
    assert samples['v2g_settlement_commit_seconds_bucket{le="2.5"}'] == 2
    assert samples['v2g_settlement_commit_seconds_bucket{le="300"}'] == 2
    assert samples['v2g_settlement_commit_seconds_bucket{le="+Inf"}'] == 3
    assert samples["v2g_settlement_commit_seconds_count"] == 3
    assert samples["v2g_settlement_commit_seconds_sum"] == 602.3
    assert samples["v2g_ledger_height"] == 7
    assert samples['v2g_settlements{status="flagged"}'] == 0


async def test_counters_survive_a_station_leaving_and_coming_back(csms: CsmsApp) -> None:
    from csms.web.app import collect_metrics
    from csms.web.service import ReviewService

    review = ReviewService(
        ReviewDeps(store=csms.store, data_dir=csms.data_dir, stations=None, server=csms.server)  # type: ignore[arg-type]
    )

    async def heartbeats() -> tuple[int, int]:
        snapshot = await collect_metrics(review)
        errors = sum(snapshot.call_errors.values())
        return snapshot.messages[("ocpp2.0.1", "Heartbeat")], errors

    station = await open_client(csms)
    for _ in range(3):
        assert (await station.call("Heartbeat", {}))[0] == 3
    assert (await station.call("NoSuchAction", {}))[0] == 4
    assert await heartbeats() == (3, 1)
    await station.ws.close()
    for _ in range(100):  # until the CSMS has seen the close
        if not csms.server.connections:
            break
        await asyncio.sleep(0.01)
    assert not csms.server.connections
    assert await heartbeats() == (3, 1)  # not 0: a counter never goes back
    again = await open_client(csms)
    assert (await again.call("Heartbeat", {}))[0] == 3
    assert await heartbeats() == (4, 1)
    await again.ws.close()
