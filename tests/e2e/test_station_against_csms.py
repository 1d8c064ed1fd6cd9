"""Our station against our CSMS over real sockets: sessions, and offline replay without
double counting when the CSMS goes away in the middle of a session."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.runner import StationRunner
from chargepoint.transaction import IdToken
from csms.app import start_csms
from csms.config import CsmsConfig
from csms.model import TokenRecord
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now

PASSWORD = "station-password"
SESSION_LINE = re.compile(
    r"^CS-E2E EVSE [12] transaction (?P<tx>\w+): \d{4}-\d\d-\d\d \d\d:\d\d:\d\d -> "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((?P<duration>\d+ h \d\d min)\), "
    r"(?P<kwh_in>[\d.]+) kWh in, (?P<kwh_out>[\d.]+) kWh out(, SoC \d+ -> \d+ %)?, ended \w+$",
    re.MULTILINE,
)


async def start(data_dir: Path, port: int = 0) -> object:
    config = CsmsConfig(port=port, ping_interval=5, ping_timeout=5, close_timeout=1)
    app = await start_csms(data_dir, config)
    if await app.store.get_station("CS-E2E") is None:
        now = format_timestamp(utc_now())
        await app.store.add_station("CS-E2E", hash_password(PASSWORD), now)
        await app.store.add_token(
            TokenRecord("04E1A2B3C4D5E6", "ISO14443", "Accepted", "invoice", None, now)
        )
    return app


async def test_station_cli_runs_sessions_against_our_csms(tmp_path: Path) -> None:
    app = await start(tmp_path)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "v2g", "chargepoint",
            f"ws://127.0.0.1:{app.port}/ocpp", "CS-E2E", "--password", PASSWORD,
            "--sessions", "2", "--exit", "--evses", "2", "--speed", "3600",
            "--session-seconds", "1800", "--meter-interval", "300",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        sessions = await app.store.list_sessions("CS-E2E")
        assert len(sessions) == 2
        assert all(s.state == "ended" and s.started_seen for s in sessions)
        assert all(s.import_wh > 0 for s in sessions)
        # one line per session: its times, 30 min, and the energy the CSMS stored
        lines = {m["tx"]: m for m in SESSION_LINE.finditer(out.decode())}
        assert set(lines) == {s.transaction_id for s in sessions}, out.decode()
        for s in sessions:
            line = lines[s.transaction_id]
            assert line["duration"] == "0 h 30 min"
            assert round(float(line["kwh_in"]) * 1000) == s.import_wh
            assert round(float(line["kwh_out"]) * 1000) == s.export_wh
        station = await app.store.get_station("CS-E2E")
        assert station is not None and station.last_boot_at is not None
        statuses = await app.store.connector_statuses("CS-E2E")
        assert set(statuses) == {(1, 1), (2, 1)}
    finally:
        await app.stop()  # type: ignore[attr-defined]


async def test_offline_replay_against_our_csms_does_not_double_count(tmp_path: Path) -> None:
    app = await start(tmp_path)
    port = app.port  # type: ignore[attr-defined]
    config = StationConfig(
        url=f"ws://127.0.0.1:{port}/ocpp",
        station_id="CS-E2E",
        password=PASSWORD,
        evses=1,
        sessions=1,
        exit_when_done=True,
        id_token=IdToken("04E1A2B3C4D5E6", "ISO14443"),
        session_seconds=3600,
        speed=900,  # a 1-hour session takes 4 s
        tx_updated_interval=120,
        connect_timeout=30,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.2, random_range=0.2, repeat_times=0),
    )
    runner = StationRunner(config)
    run = asyncio.create_task(runner.run())
    try:
        for _ in range(100):  # wait until the session is running and reporting
            sessions = await app.store.list_sessions("CS-E2E")  # type: ignore[attr-defined]
            if sessions and sessions[0].event_count >= 3:
                break
            await asyncio.sleep(0.05)
        await app.stop()  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)  # the station keeps metering offline
        app = await start(tmp_path, port)
        code = await asyncio.wait_for(run, 60)
        assert code == 0, runner.errors
        events = await app.store.transaction_events(  # type: ignore[attr-defined]
            "CS-E2E",
            (await app.store.list_sessions("CS-E2E"))[0].transaction_id,  # type: ignore[attr-defined]
        )
        seq_nos = [e["seq_no"] for e in events]
        assert seq_nos == list(range(len(seq_nos)))  # every event once, none lost
        assert any(e["offline"] for e in events)  # some were queued while the CSMS was away
        assert events[-1]["event_type"] == "Ended"
        session = (await app.store.list_sessions("CS-E2E"))[0]  # type: ignore[attr-defined]
        assert session.event_count == len(seq_nos) and session.state == "ended"
    finally:
        run.cancel()
        await app.stop()  # type: ignore[attr-defined]
