"""The station against an independent strict OCPP 2.0.1 CSMS, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.errors import CallErrorReceived
from chargepoint.runner import StationRunner
from tests.chargepoint.strict_csms import CsmsState, StrictCsms

STATION, PASSWORD = "CP-STRICT-1", "correct-horse-battery-1"
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$")
DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}T")


@pytest.fixture
async def csms() -> AsyncIterator[StrictCsms]:
    server = StrictCsms(CsmsState(passwords={STATION: PASSWORD}))
    await server.start()
    yield server
    await server.stop()


def config(csms: StrictCsms, **overrides: Any) -> StationConfig:
    settings: dict[str, Any] = dict(
        url=csms.url,
        station_id=STATION,
        password=PASSWORD,
        sessions=1,
        exit_when_done=True,
        session_seconds=600,
        tx_updated_interval=60,
        speed=6_000,
        connect_timeout=5,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.05, random_range=0.05, repeat_times=1),
    )
    settings.update(overrides)
    return StationConfig(**settings)


def timestamps(value: Any) -> list[str]:
    """Every date-time-looking string anywhere in a decoded message."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in timestamps(v)]
    if isinstance(value, list):
        return [t for v in value for t in timestamps(v)]
    return [value] if isinstance(value, str) and DATE_LIKE.match(value) else []


def assert_clean_wire(state: CsmsState) -> None:
    """No CALLERROR either way (a schema violation would cause one) and strict timestamps."""
    assert state.frames, "nothing crossed the wire"
    for frame in state.frames:
        message = frame.message
        assert message[0] != 4, f"CALLERROR on the wire: {frame.text}"
        if frame.direction == "in":
            for stamp in timestamps(message):
                assert RFC3339_MS.match(stamp), f"bad timestamp {stamp!r} in {frame.text}"


def registers(event: dict[str, Any]) -> dict[str, tuple[int, str]]:
    values = event["meterValue"][0]["sampledValue"]
    return {v["measurand"]: (v["value"], v["context"]) for v in values}


async def test_full_session_is_schema_valid_and_in_order(csms: StrictCsms) -> None:
    runner = StationRunner(config(csms))
    assert await runner.run() == 0, runner.errors
    state = csms.state
    assert_clean_wire(state)

    actions = state.actions()
    assert actions[0] == "BootNotification"
    assert state.of("BootNotification")[0]["reason"] == "PowerUp"
    events = state.of("TransactionEvent")
    assert [e["eventType"] for e in events[:1] + events[-1:]] == ["Started", "Ended"]
    assert {e["eventType"] for e in events[1:-1]} == {"Updated"}
    periodic = [e for e in events if e["triggerReason"] == "MeterValuePeriodic"]
    clock = [e for e in events if e["triggerReason"] == "MeterValueClock"]
    assert len(periodic) == 9  # Updated at 60, 120, ..., 540 s of a 600 s session
    assert len(events) == 2 + 9 + len(clock) and len(clock) <= 1  # at most one 15-min instant
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    # Authorize comes before Started; statuses: Available at boot, Occupied, Available at the end
    assert actions.index("Authorize") < actions.index("TransactionEvent")
    statuses = [s["connectorStatus"] for s in state.of("StatusNotification")]
    assert statuses == ["Available", "Occupied", "Available"]

    started, ended = events[0], events[-1]
    assert started["triggerReason"] == "Authorized"
    assert started["idToken"] == {"idToken": "04E1A2B3C4D5E6", "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connectorId": 1}
    begin = registers(started)
    assert begin["Energy.Active.Import.Register"][1] == "Transaction.Begin"
    assert begin["Energy.Active.Export.Register"][1] == "Transaction.Begin"
    end = registers(ended)
    assert end["Energy.Active.Import.Register"][1] == "Transaction.End"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert end["Energy.Active.Import.Register"][0] > begin["Energy.Active.Import.Register"][0]
    for update in periodic:
        assert {c for _, c in registers(update).values()} == {"Sample.Periodic"}
    for update in clock:  # at the aligned instant itself, to the millisecond
        assert re.search(r"T\d\d:(00|15|30|45):00\.000Z$", update["timestamp"]), update
        assert {c for _, c in registers(update).values()} == {"Sample.Clock"}
    assert not any(e.get("offline") for e in events)
    security = state.of("SecurityEventNotification")
    assert [e["type"] for e in security] == ["StartupOfTheDevice"]


async def test_offline_events_are_replayed_in_order_with_offline_true(csms: StrictCsms) -> None:
    runner = StationRunner(config(csms, session_seconds=3600, speed=3600))
    run = asyncio.create_task(runner.run())
    await csms.wait_for(lambda: len(csms.state.of("TransactionEvent")) >= 3, what="updates")
    port = csms.port
    await csms.stop()
    await asyncio.sleep(0.3)  # the session goes on, its events are queued
    await csms.start(port)
    assert await asyncio.wait_for(run, timeout=15) == 0, runner.errors
    state = csms.state
    assert_clean_wire(state)
    assert state.connections == 2

    received = [r for r in state.received if r.action == "TransactionEvent"]
    seqs = [r.payload["seqNo"] for r in received]
    assert sorted(set(seqs)) == list(range(len(set(seqs)))), "a seqNo is missing"
    assert seqs == sorted(seqs), "events were not replayed in order"
    second = [r.payload for r in received if r.connection == 2]
    replayed = [e for e in second if e.get("offline")]
    assert replayed, "nothing was replayed"
    assert second[: len(replayed)] == replayed, "replayed events must come before new ones"
    assert all(not e.get("offline") for e in (r.payload for r in received if r.connection == 1))
    assert second[-1]["eventType"] == "Ended"
    # the station booted again on the new connection before replaying
    assert next(r.action for r in state.received if r.connection == 2) == "BootNotification"


async def test_every_csms_initiated_call_gets_a_valid_answer(csms: StrictCsms) -> None:
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False, speed=600))
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), what="boot")

        got = await csms.call(
            STATION,
            call.GetVariables(
                get_variable_data=[
                    {
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                    },
                    {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}},
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "Nope"}},
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    },
                ]
            ),
        )
        results = got.get_variable_result
        assert [r["attribute_status"] for r in results] == [
            "Accepted",
            "UnknownComponent",
            "UnknownVariable",
            "Accepted",
        ]
        assert results[0]["attribute_value"] == "60"
        assert results[3]["attribute_value"] == "300"  # the interval the CSMS gave at boot

        got = await csms.call(
            STATION,
            call.SetVariables(
                set_variable_data=[
                    {
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "TxUpdatedInterval"},
                        "attribute_value": "30",
                    },
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "Identity"},
                        "attribute_value": "x",
                    },
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "attribute_value": "soon",
                    },
                ]
            ),
        )
        assert [r["attribute_status"] for r in got.set_variable_result] == [
            "Accepted",
            "Rejected",
            "Rejected",
        ]
        assert runner.station.device_model.read_int("SampledDataCtrlr", "TxUpdatedInterval") == 30

        for requested, status in [
            ("Heartbeat", "Accepted"),
            ("StatusNotification", "Accepted"),
            ("MeterValues", "Accepted"),
            ("TransactionEvent", "Rejected"),
            ("BootNotification", "Rejected"),
            ("PublishFirmwareStatusNotification", "NotImplemented"),
        ]:
            got = await csms.call(STATION, call.TriggerMessage(requested_message=requested))
            assert got.status == status, requested
        await csms.wait_for(lambda: "Heartbeat" in csms.state.actions(), what="heartbeat")
        await csms.wait_for(lambda: "MeterValues" in csms.state.actions(), what="meter values")

        got = await csms.call(
            STATION, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
        )
        assert got.status == "Accepted"
        await csms.wait_for(
            lambda: csms.state.of("StatusNotification")[-1]["connectorStatus"] == "Unavailable",
            what="Unavailable",
        )
        got = await csms.call(
            STATION,
            call.RequestStartTransaction(
                id_token={"id_token": "REMOTE1", "type": "Central"}, remote_start_id=42
            ),
        )
        assert got.status == "Rejected"  # the only EVSE is inoperative
        got = await csms.call(STATION, call.ChangeAvailability(operational_status="Operative"))
        assert got.status == "Accepted"
        await csms.wait_for(
            lambda: csms.state.of("StatusNotification")[-1]["connectorStatus"] == "Available",
            what="Available",
        )

        got = await csms.call(
            STATION,
            call.RequestStartTransaction(
                id_token={"id_token": "REMOTE1", "type": "Central"}, remote_start_id=42
            ),
        )
        assert got.status == "Accepted"
        await csms.wait_for(lambda: csms.state.of("TransactionEvent"), what="remote Started")
        started = csms.state.of("TransactionEvent")[0]
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 42
        assert started["idToken"]["idToken"] == "REMOTE1"
        tx_id = started["transactionInfo"]["transactionId"]

        got = await csms.call(STATION, call.TriggerMessage(requested_message="TransactionEvent"))
        assert got.status == "Accepted"
        await csms.wait_for(
            lambda: any(e["triggerReason"] == "Trigger" for e in csms.state.of("TransactionEvent")),
            what="triggered TransactionEvent",
        )
        got = await csms.call(STATION, call.RequestStopTransaction(transaction_id="not-a-tx"))
        assert got.status == "Rejected"
        got = await csms.call(STATION, call.RequestStopTransaction(transaction_id=tx_id))
        assert got.status == "Accepted"
        await csms.wait_for(
            lambda: csms.state.of("TransactionEvent")[-1]["eventType"] == "Ended", what="Ended"
        )
        ended = csms.state.of("TransactionEvent")[-1]
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        seqs = [e["seqNo"] for e in csms.state.of("TransactionEvent")]
        assert seqs == list(range(len(seqs)))

        got = await csms.call(STATION, call.Reset(type="Immediate"))
        assert got.status == "Accepted"
        await csms.wait_for(lambda: csms.state.connections == 2, what="reconnect after reset")
        await csms.wait_for(
            lambda: len(csms.state.of("BootNotification")) == 2, what="boot after reset"
        )
        assert csms.state.of("BootNotification")[1]["reason"] == "RemoteReset"
        await csms.wait_for(
            lambda: len(csms.state.of("SecurityEventNotification")) == 2, what="security event"
        )
        assert csms.state.of("SecurityEventNotification")[1]["type"] == "ResetOrReboot"
        assert_clean_wire(csms.state)
        assert runner.errors == []
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_reset_ends_a_running_transaction_first(csms: StrictCsms) -> None:
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False, speed=600))
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), what="boot")
        token = {"id_token": "REMOTE2", "type": "Central"}
        await csms.call(STATION, call.RequestStartTransaction(id_token=token, remote_start_id=7))
        await csms.wait_for(lambda: csms.state.of("TransactionEvent"), what="Started")
        got = await csms.call(STATION, call.Reset(type="OnIdle"))
        assert got.status == "Scheduled"
        got = await csms.call(STATION, call.Reset(type="Immediate"))
        assert got.status == "Accepted"
        await csms.wait_for(lambda: csms.state.connections == 2, what="reconnect after reset")
        ended = csms.state.of("TransactionEvent")[-1]
        assert ended["eventType"] == "Ended"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert ended["triggerReason"] == "ResetCommand"
        await asyncio.sleep(0.2)
        assert csms.state.connections == 2  # the scheduled OnIdle reset did not reboot again
        assert len(csms.state.of("BootNotification")) == 2
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def run_cli(*args: str) -> tuple[int, str]:
    """``v2g chargepoint ARGS``; a leading ``-v`` goes to ``v2g`` (info logs)."""
    verbose = ["-v"] if args[:1] == ("-v",) else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "v2g",
        *verbose,
        "chargepoint",
        *args[len(verbose) :],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_cli_runs_two_sessions_and_exits_zero(csms: StrictCsms) -> None:
    code, output = await run_cli(
        f"{csms.url}/{STATION}",
        STATION,
        "--password",
        PASSWORD,
        "--sessions",
        "2",
        "--exit",
        "--session-seconds",
        "600",
        "--speed",
        "20000",
        "--connect-timeout",
        "5",
    )
    assert code == 0, output
    events = csms.state.of("TransactionEvent")
    assert [e["eventType"] for e in events].count("Ended") == 2
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 2
    assert_clean_wire(csms.state)


async def test_cli_schedule_wait_holds_an_accepted_ev_for_its_schedule(
    csms: StrictCsms, tmp_path: Path
) -> None:
    """``--schedule-wait S``: the strict CSMS accepts the EV's needs and sends no schedule, so
    the EV waits S wall seconds for one, says so (-v), then charges at its own limit."""
    args = [
        f"{csms.url}/{STATION}",
        STATION,
        "--password",
        PASSWORD,
        "--sessions",
        "1",
        "--exit",
        "--session-seconds",
        "600",
        "--speed",
        "20000",
        "--meter-key",
        str(tmp_path / "meter.key"),
    ]
    refused = await run_cli(*args, "--schedule-wait", "-1")
    assert refused[0] == 2 and "--schedule-wait" in refused[1]
    code, output = await run_cli("-v", *args, "--schedule-wait", "0.3")
    assert code == 0, output
    assert "NotifyEVChargingNeeds" in csms.state.actions()
    assert re.search(r"no schedule for \S+ in 0\.3 s", output), output
    code, output = await run_cli("-v", *args)  # the default: no wait
    assert code == 0, output
    assert "no schedule for" not in output


async def test_cli_wrong_password_exits_nonzero_with_one_line(csms: StrictCsms) -> None:
    code, output = await run_cli(
        csms.url,
        STATION,
        "--password",
        "wrong-password-123",
        "--sessions",
        "1",
        "--exit",
    )
    assert code == 1
    assert "401" in output
    assert "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert csms.state.received == []


async def test_cli_invalid_id_token_exits_nonzero(csms: StrictCsms) -> None:
    csms.state.invalid_tokens.add("BADTOKEN")
    code, output = await run_cli(
        csms.url,
        STATION,
        "--password",
        PASSWORD,
        "--sessions",
        "1",
        "--exit",
        "--id-token",
        "BADTOKEN",
        "--speed",
        "20000",
    )
    assert code == 1
    assert "Invalid" in output and "Authorize" in output
    assert len(output.strip().splitlines()) == 1
    assert "TransactionEvent" not in csms.state.actions()


async def test_rejected_boot_fails_an_exit_run(csms: StrictCsms) -> None:
    csms.state.boot_status = "Rejected"
    runner = StationRunner(config(csms))
    assert await asyncio.wait_for(runner.run(), timeout=10) == 1
    assert "BootNotification" in str(runner.errors[0])
    assert csms.state.actions() == ["BootNotification"]


async def test_a_callerror_fails_an_exit_run(csms: StrictCsms) -> None:
    csms.state.refuse_actions.add("TransactionEvent")
    runner = StationRunner(config(csms))
    assert await asyncio.wait_for(runner.run(), timeout=10) == 1
    error = runner.errors[0]
    assert isinstance(error, CallErrorReceived)
    assert (error.action, error.code) == ("TransactionEvent", "GenericError")


async def test_base_report_arrives_as_schema_valid_pages(csms: StrictCsms) -> None:
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False))
    run = asyncio.create_task(runner.run())
    try:
        await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), what="boot")
        got = await csms.call(
            STATION, call.GetBaseReport(request_id=5, report_base="FullInventory")
        )
        assert got.status == "Accepted"
        await csms.wait_for(
            lambda: any(p.get("tbc") is False for p in csms.state.of("NotifyReport")),
            what="last report page",
        )
        pages = csms.state.of("NotifyReport")
        assert [p["seqNo"] for p in pages] == list(range(len(pages)))
        assert {p["requestId"] for p in pages} == {5}
        items = {
            (i["component"]["name"], i["variable"]["name"]): i
            for p in pages
            for i in p["reportData"]
        }
        beat = items[("OCPPCommCtrlr", "HeartbeatInterval")]["variableAttribute"][0]
        assert beat == {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
        got = await csms.call(
            STATION, call.GetBaseReport(request_id=6, report_base="SummaryInventory")
        )
        assert got.status == "Accepted"
        assert_clean_wire(csms.state)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
