"""A V2G station (EV behind a signing meter) against the real CSMS over real sockets.

Mid-session the CSMS sends SetChargingProfile with a negative limit: the export register
grows; then a positive one: the import register grows. The session ends with signed
evidence the CSMS accepts, and the station keeps the totalCost it was answered with.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chargepoint.backoff import Backoff
from chargepoint.clock import AcceleratedClock
from chargepoint.config import StationConfig
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_meters, public_key_path
from chargepoint.runner import StationRunner
from chargepoint.transaction import IdToken
from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.model import TokenRecord
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now

STATION, PASSWORD = "CS-V2G-1", "station-password-1"
TOKEN = IdToken("04E1A2B3C4D5E6", "ISO14443")
SPEED = 3600  # one station hour per wall second


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def profile(transaction_id: str, limit_w: int, at: datetime, profile_id: int) -> dict[str, Any]:
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": transaction_id,
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "startSchedule": format_timestamp(at),
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_w}],
                }
            ],
        },
    }


async def registers(app: CsmsApp, transaction_id: str) -> tuple[int, int]:
    samples = await app.store.register_samples(STATION, transaction_id)
    return (samples[-1].import_wh, samples[-1].export_wh) if samples else (0, 0)


async def test_discharge_then_charge_on_the_csms_command(tmp_path: Path) -> None:
    config = CsmsConfig(port=0, ping_interval=5, ping_timeout=5, close_timeout=1)
    # the embedded ledger turns settlement on; the dispatcher's first pass (at start) finds no
    # session and the next comes long after this test, so only the test sends profiles
    config = config.with_overrides(dispatch_interval=3600)
    app = await start_csms(tmp_path / "csms", config, ledger="embedded")
    key = ensure_meter_key(tmp_path / "meter.pem")
    now = format_timestamp(utc_now())
    pem = public_key_path(tmp_path / "meter.pem").read_text()
    await app.store.add_station(STATION, hash_password(PASSWORD), now, pem)
    await app.store.add_token(
        TokenRecord(TOKEN.id_token, TOKEN.type, "Accepted", "invoice", None, now)
    )
    station_config = StationConfig(
        url=f"ws://127.0.0.1:{app.port}/ocpp",
        station_id=STATION,
        password=PASSWORD,
        sessions=1,
        exit_when_done=True,
        id_token=TOKEN,
        session_seconds=4 * 3600,
        speed=SPEED,
        tx_updated_interval=300,
        connect_timeout=10,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.1, random_range=0.1, repeat_times=1),
    )
    options = EvOptions(battery_kwh=60, soc_pct=50, reserve_soc_pct=20, target_soc_pct=50)
    meters = ev_meters(
        key, station_id=STATION, evses=1, options=options, stay_seconds=4 * 3600 + 600
    )
    # the session (4 h of station time) ends before now: nothing is stamped in the future
    start = datetime.now(UTC).replace(minute=40, second=0, microsecond=0) - timedelta(hours=5)
    clock = AcceleratedClock(speed=SPEED, start=start)
    runner = StationRunner(station_config, clock=clock, meters=meters)
    run = asyncio.create_task(runner.run())
    try:
        sessions: list[Any] = []

        async def started() -> bool:
            sessions[:] = await app.store.list_sessions(STATION)
            return bool(sessions) and sessions[0].event_count >= 2

        await eventually(started, "the session to run")
        tx = sessions[0].transaction_id
        first = await registers(app, tx)
        assert first[0] > 0 and first[1] == 0  # charging at the EV's own maximum so far

        answer = await app.stations.call(
            STATION, "SetChargingProfile", profile(tx, -7000, clock.now(), 1)
        )
        assert answer["status"] == "Accepted"
        assert meters[1].power_w == -7000

        async def exporting() -> bool:
            _, exp = await registers(app, tx)
            return exp >= 1000

        await eventually(exporting, "the export register to grow")
        during = await registers(app, tx)

        answer = await app.stations.call(
            STATION, "SetChargingProfile", profile(tx, 11000, clock.now(), 2)
        )
        assert answer["status"] == "Accepted"

        async def importing() -> bool:
            imp, _ = await registers(app, tx)
            return imp >= during[0] + 1000

        await eventually(importing, "the import register to grow again")
        code = await asyncio.wait_for(run, 30)
        assert code == 0, runner.errors
        samples = await app.store.register_samples(STATION, tx)
        imports = [s.import_wh for s in samples]
        exports = [s.export_wh for s in samples]
        assert imports == sorted(imports) and exports == sorted(exports)
        assert exports[-1] >= 1000 and imports[-1] > during[0]
        # every whole hour inside the session has a signed reading taken at that instant
        records = signed_records(await app.store.transaction_events(STATION, tx))
        natures = [r["RD"][0]["TX"] for r in records]
        assert natures[0] == "B" and natures[-1] == "E" and set(natures[1:-1]) == {"C"}
        signed_at = {r["RD"][0]["TM"][:19] for r in records if r["RD"][0]["TX"] == "C"}
        began, ended = (ocmf_time(r["RD"][0]["TM"]) for r in (records[0], records[-1]))
        hour = began.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        hours = []
        while hour < ended:
            hours.append(hour.strftime("%Y-%m-%dT%H:%M:%S"))
            hour += timedelta(hours=1)
        assert len(hours) >= 3 and set(hours) <= signed_at
        settlement = await app.store.settlement_for_session(STATION, tx)
        assert settlement is not None and settlement.status in ("pending", "committed"), (
            settlement.reason if settlement else None
        )
        # the settled energy is the register deltas between the Begin and End records
        begin, end = records[0]["RD"], records[-1]["RD"]
        assert settlement.import_wh == kwh_delta(begin[0], end[0])
        assert settlement.export_wh == kwh_delta(begin[1], end[1]) >= 1000
        assert settlement.amount is not None
        # the totalCost answered to Ended is the settled amount in currency units
        assert runner.station.total_costs[tx] == settlement.amount / 1_000_000
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await app.stop()


def ocmf_time(text: str) -> datetime:
    """``2026-11-25T10:00:00,000+0000 S`` as a datetime."""
    return datetime.strptime(text[:23].replace(",", "."), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=UTC
    )


def kwh_delta(first: dict[str, Any], last: dict[str, Any]) -> int:
    """Wh between two OCMF readings of one register (kWh with three decimals)."""
    assert first["RI"] == last["RI"] and first["RU"] == last["RU"] == "kWh"
    return round(last["RV"] * 1000) - round(first["RV"] * 1000)


def signed_records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Payloads of the OCMF records the CSMS stored, in the order they were sent."""
    out = []
    for event in events:
        payload = event.get("payload") or event
        text = json.dumps(payload)
        for value in _signed_values(json.loads(text)):
            record = base64.b64decode(value["signedMeterData"]).decode()
            out.append(json.loads(record.split("|")[1]))
    return out


def _signed_values(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "signedMeterData" in node:
            return [node]
        return [v for child in node.values() for v in _signed_values(child)]
    if isinstance(node, list):
        return [v for child in node for v in _signed_values(child)]
    return []


async def test_cli_station_with_a_meter_key_is_settled_by_the_csms(tmp_path: Path) -> None:
    """``v2g chargepoint --meter-key``: the key and its .pub.pem appear, the operator registers
    the .pub.pem, and the session's signed evidence settles (not flagged)."""
    import subprocess
    import sys

    config = CsmsConfig(port=0, ping_interval=5, ping_timeout=5, close_timeout=1)
    app = await start_csms(tmp_path / "csms", config, ledger="embedded")
    key_file = tmp_path / "meter.pem"
    try:
        cli = [sys.executable, "-m", "v2g", "chargepoint", f"ws://127.0.0.1:{app.port}/ocpp"]
        printed = await asyncio.create_subprocess_exec(
            *cli, STATION, "--meter-key", str(key_file), "--print-meter-key",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        pem, _ = await asyncio.wait_for(printed.communicate(), 30)
        assert printed.returncode == 0 and pem.startswith(b"-----BEGIN PUBLIC KEY-----")
        assert public_key_path(key_file).read_bytes() == pem
        now = format_timestamp(utc_now())
        await app.store.add_station(STATION, hash_password(PASSWORD), now, pem.decode())
        await app.store.add_token(
            TokenRecord(TOKEN.id_token, TOKEN.type, "Accepted", "invoice", None, now)
        )
        process = await asyncio.create_subprocess_exec(
            *cli, STATION, "--password", PASSWORD, "--meter-key", str(key_file),
            "--sessions", "1", "--exit", "--speed", "3600", "--session-seconds", "7200",
            "--meter-interval", "600", "--soc", "30", "--ev-seed", "3",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert str(public_key_path(key_file)) in err.decode()
        (session,) = await app.store.list_sessions(STATION)
        assert session.state == "ended" and session.import_wh > 0
        settlement = await app.store.settlement_for_session(STATION, session.transaction_id)
        assert settlement is not None and settlement.status in ("pending", "committed"), (
            settlement.reason if settlement else None
        )
        assert settlement.import_wh == session.import_wh
    finally:
        await app.stop()
