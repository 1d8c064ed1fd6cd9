"""Reconnects, timeouts, heartbeats, several EVSEs and a signing meter, against the strict CSMS."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import socket
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.v201 import call

from chargepoint.clock import AcceleratedClock
from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf
from chargepoint.runner import StationRunner
from chargepoint.transaction import IdToken
from tests.chargepoint.strict_csms import CsmsState, StrictCsms
from tests.chargepoint.test_against_strict_csms import (
    PASSWORD,
    assert_clean_wire,
    config,
    run_cli,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_station_keeps_retrying_until_the_csms_comes_up() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}))
    port = free_port()
    csms.port = port
    runner = StationRunner(config(csms))
    run = asyncio.create_task(runner.run())
    await asyncio.sleep(0.4)  # several refused attempts, backoff 0.05 s doubling to 0.2 s
    assert not run.done()
    await csms.start(port)
    try:
        assert await asyncio.wait_for(run, 10) == 0, runner.errors
        assert csms.state.connections == 1
        assert "Ended" in [e["eventType"] for e in csms.state.of("TransactionEvent")]
    finally:
        await csms.stop()


async def test_cli_gives_up_on_an_unreachable_csms_with_one_line() -> None:
    port = free_port()
    code, output = await run_cli(
        f"ws://127.0.0.1:{port}/ocpp",
        "CP1",
        "--sessions",
        "1",
        "--exit",
        "--connect-timeout",
        "0.5",
        "--retry-wait-min",
        "0.05",
        "--retry-random-range",
        "0.05",
    )
    assert code == 1
    assert "cannot connect" in output
    assert len(output.strip().splitlines()) == 1


async def test_heartbeats_follow_the_interval_the_csms_gives() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}, heartbeat_interval=1))
    await csms.start()
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False))
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: "Heartbeat" in csms.state.actions(), timeout=3, what="beat")
        assert runner.station.device_model.read_int("OCPPCommCtrlr", "HeartbeatInterval") == 1
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await csms.stop()


async def test_sessions_spread_over_evses_each_with_its_own_seq_numbers() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}))
    await csms.start()
    try:
        runner = StationRunner(config(csms, evses=2, sessions=3))
        assert await runner.run() == 0, runner.errors
        assert_clean_wire(csms.state)
        by_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in csms.state.of("TransactionEvent"):
            by_tx[event["transactionInfo"]["transactionId"]].append(event)
        assert len(by_tx) == 3
        for events in by_tx.values():
            assert [e["seqNo"] for e in events] == list(range(len(events)))
            assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
        evses = {events[0]["evse"]["id"] for events in by_tx.values()}
        assert evses == {1, 2}
    finally:
        await csms.stop()


async def test_signed_meter_values_from_the_ev_meter_pass_the_schema() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}))
    await csms.start()
    start = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    spec = EvSpec(60_000, 20, 11_000, 7_000, start + timedelta(hours=9), 80)
    source = EvMeter(
        Ev(spec, soc_pct=40, at=start),
        Meter(key, MeterInfo(serial="MTR-1"), import_wh=5_000),
        public_key=public_key_ocmf(key),
        evse_id="DE*V2G*E1*1",
        token_type="ISO14443",
    )
    source.set_limit(11_000, start)
    try:
        cfg = config(csms, aligned_interval=120)  # signed Sample.Clock readings every 2 min
        runner = StationRunner(
            cfg, clock=AcceleratedClock(speed=cfg.speed, start=start), meters={1: source}
        )
        assert await runner.run() == 0, runner.errors
        assert_clean_wire(csms.state)  # the library validated every signedMeterValue
        events = csms.state.of("TransactionEvent")
        signed = {}
        for event in (events[0], events[-1]):
            for value in event["meterValue"][0]["sampledValue"]:
                if "signedMeterValue" in value:
                    signed[event["eventType"]] = value["signedMeterValue"]
        assert set(signed) == {"Started", "Ended"}
        for smv in signed.values():
            assert smv["encodingMethod"] == "OCMF"
            record = base64.b64decode(smv["signedMeterData"]).decode()
            assert record.startswith("OCMF|")
            payload = json.loads(record.split("|")[1])
            assert payload["ID"] == cfg.id_token.id_token  # the meter knew whom it signed for
        clock = [e for e in events if e["triggerReason"] == "MeterValueClock"]
        assert len(clock) in (4, 5)  # every 120 s of a 600 s session, on the clock's grid
        for event in clock:
            (value,) = [
                v for v in event["meterValue"][0]["sampledValue"] if "signedMeterValue" in v
            ]
            assert value["context"] == "Sample.Clock"
            text = base64.b64decode(value["signedMeterValue"]["signedMeterData"]).decode()
            reading = json.loads(text.split("|")[1])["RD"][0]
            assert reading["TX"] == "C"
            # signed at the event's own instant (OCMF and OCPP spell the same millisecond)
            assert reading["TM"][:23].replace(",", ".") == event["timestamp"][:23]
        begin = events[0]["meterValue"][0]["sampledValue"][0]
        end = events[-1]["meterValue"][0]["sampledValue"][0]
        assert end["value"] > begin["value"] >= 5_000
    finally:
        await csms.stop()


async def test_without_exit_a_refused_token_is_logged_and_the_station_stays_up() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}, invalid_tokens={"BAD1"}))
    await csms.start()
    runner = StationRunner(
        config(csms, sessions=2, exit_when_done=False, id_token=IdToken("BAD1", "ISO14443"))
    )
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: len(csms.state.of("Authorize")) == 2, what="two authorizes")
        await asyncio.sleep(0.05)
        assert not run.done()
        assert [str(e) for e in runner.errors] == ["Authorize BAD1 was not accepted: Invalid"] * 2
        assert "TransactionEvent" not in csms.state.actions()
        assert csms.state.of("StatusNotification")[-1]["connectorStatus"] == "Available"
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await csms.stop()


async def test_pending_boot_waits_silently_until_a_triggered_boot_is_accepted() -> None:

    csms = StrictCsms(
        CsmsState(
            passwords={"CP-STRICT-1": PASSWORD}, boot_status="Pending", heartbeat_interval=300
        )
    )
    await csms.start()
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False))
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: "BootNotification" in csms.state.actions(), what="boot")
        await asyncio.sleep(0.1)
        assert csms.state.actions() == ["BootNotification"]  # nothing else while Pending
        got = await csms.call(
            "CP-STRICT-1",
            call.GetVariables(
                get_variable_data=[
                    {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}
                ]
            ),
        )
        assert got.get_variable_result[0]["attribute_value"] == "CP-STRICT-1"
        csms.state.boot_status = "Accepted"
        got = await csms.call(
            "CP-STRICT-1", call.TriggerMessage(requested_message="BootNotification")
        )
        assert got.status == "Accepted"
        await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), what="online")
        assert csms.state.actions()[:2] == ["BootNotification", "BootNotification"]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await csms.stop()


async def test_cli_without_exit_runs_until_interrupted() -> None:
    csms = StrictCsms(CsmsState(passwords={"CP-STRICT-1": PASSWORD}))
    await csms.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "v2g",
        "chargepoint",
        csms.url,
        "CP-STRICT-1",
        "--password",
        PASSWORD,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), timeout=10)
        await asyncio.sleep(0.2)
        assert proc.returncode is None  # still running: no --exit
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=10)
        assert proc.returncode == 130, err.decode()
        assert b"Traceback" not in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await csms.stop()
