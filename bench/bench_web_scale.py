"""The review API and /metrics on a large store vs a small one, in the same run.

Two real SQLite stores are filled: a large one (100,000 sessions over 10,000 stations; with
``--quick`` 20,000 over 2,000) and a small one (1,000 sessions over 100 stations), each
session with its settlement (committed, every 50th flagged), its stored progress, two
transaction events, and each station with two connectors and a connection log entry. The web
app (``csms.web``) serves each store and a client asks it, as an auditor, through
``httpx.ASGITransport`` (in process: the figures are the app's own work, without the socket's
constant delays):

- ``GET /api/sessions?limit=100``: the first page of sessions (``web_sessions_*``), and the
  same filtered on one station (``web_station_sessions_*``) and on flagged ones
  (``web_flagged_sessions_*``);
- ``GET /metrics``: one Prometheus scrape (``web_metrics_*``);
- ``GET /api/stations``: the stations as the API serves them unasked (``web_stations_*``).

Each figure is the median latency over ``--repeats`` requests and the response size; the
``*_ratio`` figures are large over small: a request whose cost follows the page, not the store,
stays near 1. The fill writes rows with SQL (as the CSMS would have written them over months);
when the store keeps tallies (``csms.store.tallies``) they are counted once from the rows after
the fill, as the migration that introduced them does, and the bench checks the scrape counts
every committed settlement.

Run: ``python -m bench.bench_web_scale [--quick] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import emit
from csms.operators import OperatorRegistry
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp
from csms.web.app import create_app
from csms.web.deps import ReviewDeps

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AUDITOR, PASSWORD = "bench-auditor", "bench-auditor-pass"
FLAGGED_EVERY = 50


def stamp(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def station_id(n: int) -> str:
    return f"CS-{n:05d}"


def rows(sessions: int, stations: int) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of a store that has run ``sessions`` sessions over ``stations`` stations."""
    out: dict[str, list[tuple[Any, ...]]] = {
        "stations": [],
        "connector_status": [],
        "connections_log": [],
        "sessions": [],
        "transaction_progress": [],
        "transaction_events": [],
        "settlements": [],
    }
    for n in range(stations):
        sid = station_id(n)
        out["stations"].append(
            (sid, "x", stamp(0), "Bench", "V2G-1", stamp(sessions * 60), stamp(0))
        )
        for connector in (1, 2):
            out["connector_status"].append((sid, connector, 1, "Available", stamp(0)))
        out["connections_log"].append((sid, "connected", stamp(0), "ocpp2.0.1"))
    for i in range(sessions):
        sid, tx = station_id(i % stations), f"TX{i:07d}"
        start, end = i * 60, i * 60 + 1_800
        out["sessions"].append(
            (sid, tx, "ended", 1, stamp(start), stamp(end), 1, 1, "TOKEN", "ISO14443",
             "Local", 2, 3, 0, stamp(end + 1))
        )  # fmt: skip
        out["transaction_progress"].append(
            (sid, tx, 12, 0, stamp(end), 10_000 + 7_000, 0, "0", stamp(end - 60), stamp(start),
             10_000, 0, 10_000, 0, stamp(end), 80, stamp(end))
        )  # fmt: skip
        for seq, kind, at in ((0, "Started", start), (1, "Ended", end)):
            out["transaction_events"].append(
                (sid, tx, seq, kind, "Authorized", 0, stamp(at), stamp(at + 0.2), "{}")
            )
        flagged = i % FLAGGED_EVERY == 0
        out["settlements"].append(
            (f"S{i:07d}", sid, tx, "settlement", "flagged" if flagged else "committed",
             "no_evidence" if flagged else None, None, f"v1:ev-{i % 977}", 7_000, 0,
             2_100_000, "EUR", "{}", stamp(end + 1),
             None if flagged else stamp(end + 1 + (i % 7) * 0.4),
             None if flagged else i // 100, None if flagged else f"{i // 100:064x}",
             None if flagged else i % 100)
        )  # fmt: skip
    return out


INSERTS = {
    "stations": "INSERT INTO stations (station_id, password_hash, created_at, vendor, model,"
    " last_seen_at, last_boot_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "connector_status": "INSERT INTO connector_status (station_id, evse_id, connector_id,"
    " status, at) VALUES (?, ?, ?, ?, ?)",
    "connections_log": "INSERT INTO connections_log (station_id, event, at, detail)"
    " VALUES (?, ?, ?, ?)",
    "sessions": "INSERT INTO sessions (station_id, transaction_id, state, started_seen,"
    " started_at, ended_at, evse_id, connector_id, id_token, id_token_type, stopped_reason,"
    " last_seq_no, event_count, offline_events, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "transaction_progress": "INSERT INTO transaction_progress (station_id, transaction_id,"
    " samples, dropped, reading_at, import_wh, export_wh, milli, previous_at, first_at,"
    " first_import_wh, first_export_wh, import_low, export_low, latest_at, soc, soc_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "transaction_events": "INSERT INTO transaction_events (station_id, transaction_id, seq_no,"
    " event_type, trigger_reason, offline, timestamp, received_at, raw)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "settlements": "INSERT INTO settlements (settlement_id, station_id, transaction_id, kind,"
    " status, reason, corrects, ev, import_wh, export_wh, amount, currency, body, created_at,"
    " committed_at, block_height, block_hash, tx_index)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
}


async def fill(store: CsmsStore, sessions: int, stations: int) -> None:
    data = rows(sessions, stations)
    async with store.transaction() as db:
        for table, sql in INSERTS.items():
            await db.executemany(sql, data[table])
        try:  # the tallies, counted from the rows as their migration does (when there are any)
            tallies = importlib.import_module("csms.store.tallies")
        except ImportError:
            return
        await db.run(lambda: tallies.rebuild(db.conn()))


async def timed(http: httpx.AsyncClient, path: str, repeats: int) -> tuple[float, int, str]:
    """Median seconds and the response size of ``repeats`` GETs of ``path``."""
    took, body = [], b""
    for _ in range(repeats):
        began = time.perf_counter()
        response = await http.get(path, auth=(AUDITOR, PASSWORD))
        took.append(time.perf_counter() - began)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        body = response.content
    return statistics.median(took), len(body), body.decode()


async def measure(root: Path, sessions: int, stations: int, repeats: int) -> dict[str, Any]:
    root.mkdir()
    store = await CsmsStore.open(root / "csms.sqlite")
    began = time.perf_counter()
    await fill(store, sessions, stations)
    fill_s = time.perf_counter() - began
    registry = OperatorRegistry(store)
    await registry.add(AUDITOR, PASSWORD, "auditor", stamp(0))
    app = create_app(ReviewDeps(store=store, data_dir=root))
    out: dict[str, Any] = {"fill_s": fill_s}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            await timed(http, "/api/sessions?limit=1", 1)  # warm: the password check, caches
            station = station_id(stations // 2)
            paths = {
                "sessions": "/api/sessions?limit=100",
                "station_sessions": f"/api/sessions?limit=100&station={station}",
                "flagged_sessions": "/api/sessions?limit=100&status=flagged",
                "metrics": "/metrics",
                "stations": "/api/stations",
            }
            for name, path in paths.items():
                seconds, size, text = await timed(http, path, repeats)
                out[name] = (seconds, size)
                if name == "metrics":
                    committed = sessions - len(range(0, sessions, FLAGGED_EVERY))
                    line = f'v2g_settlement_commit_seconds_bucket{{le="+Inf"}} {committed}'
                    assert line in text, f"the scrape does not count {committed} commits"
    finally:
        await store.close()
    return out


async def run(large: tuple[int, int], small: tuple[int, int], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = await measure(Path(tmp) / "large", *large, repeats)
        little = await measure(Path(tmp) / "small", *small, repeats)
    emit("web_large_sessions", large[0])
    emit("web_large_stations", large[1])
    emit("web_small_sessions", small[0])
    emit("web_small_stations", small[1])
    emit("web_large_fill_s", round(big["fill_s"], 1))
    for name in ("sessions", "station_sessions", "flagged_sessions", "metrics", "stations"):
        (large_s, large_bytes), (small_s, small_bytes) = big[name], little[name]
        emit(f"web_{name}_large_ms", round(large_s * 1000, 2))
        emit(f"web_{name}_small_ms", round(small_s * 1000, 2))
        emit(f"web_{name}_large_bytes", large_bytes)
        emit(f"web_{name}_small_bytes", small_bytes)
        emit(f"web_{name}_ratio", round(large_s / small_s, 2))
        emit(f"web_{name}_bytes_ratio", round(large_bytes / small_bytes, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=0, help="requests per figure")
    args = parser.parse_args()
    large = (20_000, 2_000) if args.quick else (100_000, 10_000)
    repeats = args.repeats or (5 if args.quick else 15)
    asyncio.run(run(large, (1_000, 100), repeats))


if __name__ == "__main__":
    main()
