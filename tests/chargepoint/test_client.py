from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from ocpp.exceptions import FormatViolationError, GenericError, InternalError
from ocpp.v201 import call

from chargepoint import provisioning
from chargepoint.client import StationClient, to_call_error
from chargepoint.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    ChargePointError,
    NotConnected,
    StateError,
)
from tests.chargepoint.fakes import make_station


class FakeConnection:
    """The duck-typed connection ``ocpp`` needs: frames in through a queue, frames out to a list."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.outbox: list[list[Any]] = []
        self.sent = asyncio.Event()

    async def recv(self) -> str:
        return await self.inbox.get()

    async def send(self, text: str) -> None:
        self.outbox.append(json.loads(text))
        self.sent.set()


async def start_client(
    timeout: float = 2.0, **config: Any
) -> tuple[StationClient, FakeConnection, asyncio.Task[Any]]:
    conn = FakeConnection()
    client = StationClient(make_station(**config), conn, response_timeout=timeout)
    return client, conn, asyncio.create_task(client.start())


async def next_out(conn: FakeConnection) -> list[Any]:
    while not conn.outbox:
        conn.sent.clear()
        await asyncio.wait_for(conn.sent.wait(), 2)
    return conn.outbox.pop(0)


async def csms_call(conn: FakeConnection, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send one CSMS call to the station on ``conn`` and return its answer frame."""
    unique_id = f"csms-{action}"
    await conn.inbox.put(json.dumps([2, unique_id, action, payload]))
    frame = await next_out(conn)
    assert frame[1] == unique_id, frame
    return frame


def test_error_mapping_is_total_and_keeps_ocpp_errors() -> None:
    assert isinstance(to_call_error(StateError("busy")), GenericError)
    assert isinstance(to_call_error(ChargePointError("x")), InternalError)
    leaked = to_call_error(KeyError("secret internals"))
    assert isinstance(leaked, InternalError) and "secret" not in leaked.description
    original = FormatViolationError(description="bad")
    assert to_call_error(original) is original


async def test_callerror_becomes_call_error_received() -> None:
    client, conn, serving = await start_client()
    pending = asyncio.create_task(client.send(call.Heartbeat()))
    frame = await next_out(conn)
    assert frame[0] == 2 and frame[2] == "Heartbeat"
    await conn.inbox.put(json.dumps([4, frame[1], "SecurityError", "go away", {}]))
    with pytest.raises(CallErrorReceived) as info:
        await pending
    assert (info.value.action, info.value.code) == ("Heartbeat", "SecurityError")
    serving.cancel()


async def test_no_answer_is_a_call_timeout() -> None:
    client, _conn, serving = await start_client(timeout=0.05)
    with pytest.raises(CallTimeout):
        await client.send(call.Heartbeat())
    serving.cancel()


async def test_dropped_link_ends_the_wait_at_once() -> None:
    client, conn, serving = await start_client(timeout=30)
    pending = asyncio.create_task(client.send(call.Heartbeat()))
    await next_out(conn)
    client.closed.set()
    with pytest.raises(CallTimeout):
        await asyncio.wait_for(pending, 1)
    with pytest.raises(NotConnected):
        await client.send(call.Heartbeat())
    serving.cancel()


async def test_own_invalid_payload_is_not_blamed_on_the_csms() -> None:
    client, conn, serving = await start_client()
    bad = call.StatusNotification(
        timestamp="2026-01-01T00:00:00Z", connector_status="Broken", evse_id=1, connector_id=1
    )
    with pytest.raises(CallFailed) as info:
        await client.send(bad)
    assert not isinstance(info.value, CallErrorReceived)
    assert conn.outbox == []  # nothing left the station
    serving.cancel()


async def test_a_station_that_does_not_check_schemas_sends_and_takes_as_is() -> None:
    """check_schemas off (many simulated stations in one process): neither its own call nor
    the answer is checked here; the CSMS is left to judge the call."""
    client, conn, serving = await start_client(check_schemas=False)
    bad = call.StatusNotification(
        timestamp="2026-01-01T00:00:00Z", connector_status="Broken", evse_id=1, connector_id=1
    )
    pending = asyncio.create_task(client.send(bad))
    frame = await next_out(conn)
    assert frame[2] == "StatusNotification" and frame[3]["connectorStatus"] == "Broken"
    await conn.inbox.put(json.dumps([3, frame[1], {}]))
    await asyncio.wait_for(pending, 2)
    pending = asyncio.create_task(client.send(call.Heartbeat()))
    frame = await next_out(conn)
    await conn.inbox.put(json.dumps([3, frame[1], {"currentTime": 12}]))  # not a date-time
    answer = await asyncio.wait_for(pending, 2)
    assert answer.current_time == 12
    serving.cancel()


async def test_a_checking_station_refuses_an_answer_that_breaks_the_schema() -> None:
    client, conn, serving = await start_client()
    pending = asyncio.create_task(client.send(call.Heartbeat()))
    frame = await next_out(conn)
    await conn.inbox.put(json.dumps([3, frame[1], {"currentTime": 12}]))
    with pytest.raises(CallErrorReceived):
        await asyncio.wait_for(pending, 2)
    serving.cancel()


async def test_inbound_get_variables_is_answered_and_bad_payload_gets_callerror() -> None:
    _client, conn, serving = await start_client()
    request = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    }
    await conn.inbox.put(json.dumps([2, "m1", "GetVariables", request]))
    answer = await next_out(conn)
    assert answer[:2] == [3, "m1"]
    result = answer[2]["getVariableResult"][0]
    assert result["attributeStatus"] == "Accepted" and result["attributeValue"] == "300"
    await conn.inbox.put(json.dumps([2, "m2", "GetVariables", {"getVariableData": "nope"}]))
    error = await next_out(conn)
    assert error[0] == 4 and error[1] == "m2"
    serving.cancel()


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_a_request_the_station_cannot_serve_gets_one_line_and_no_traceback(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, conn, serving = await start_client()
    client._ocpp_version = version
    caplog.set_level(logging.DEBUG)
    for unique_id, action, payload in [
        ("r1", "ReserveNow", {"id": 1, "expiryDateTime": "2026-01-01T00:00:00Z"}),
        ("r2", "Frobnicate", {}),
        ("r3", "UpdateFirmware", {}),
    ]:
        await conn.inbox.put(json.dumps([2, unique_id, action, payload]))
    answers = [await next_out(conn) for _ in range(3)]
    serving.cancel()
    assert [a[:3] for a in answers[:2]] == [
        [4, "r1", "NotImplemented"],
        [4, "r2", "NotSupported"],
    ]
    assert answers[2][0] == 4 and answers[2][1] == "r3"  # not schema-valid
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text
    lines = [r.getMessage() for r in caplog.records if "ReserveNow" in r.getMessage()]
    assert any("NotImplemented" in line for line in lines), lines


async def test_follow_up_runs_only_after_the_answer_is_sent() -> None:
    client, conn, serving = await start_client()
    client.station._link = client  # online on this fake connection
    client.station.online.set()
    trigger = {"requestedMessage": "Heartbeat"}
    await conn.inbox.put(json.dumps([2, "t1", "TriggerMessage", trigger]))
    answer = await next_out(conn)
    assert answer == [3, "t1", {"status": "Accepted"}]
    heartbeat = await next_out(conn)
    assert heartbeat[0] == 2 and heartbeat[2] == "Heartbeat"
    serving.cancel()


async def test_a_failing_handler_becomes_one_callerror_and_the_link_stays_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: Any) -> Any:
        raise StateError("EVSE 1: busy")

    _client, conn, serving = await start_client()
    monkeypatch.setattr(provisioning, "get_variables", broken)
    request = {"getVariableData": [{"component": {"name": "X"}, "variable": {"name": "Y"}}]}
    await conn.inbox.put(json.dumps([2, "e1", "GetVariables", request]))
    error = await next_out(conn)
    assert error[:4] == [4, "e1", "GenericError", "EVSE 1: busy"]
    monkeypatch.undo()
    await conn.inbox.put(json.dumps([2, "e2", "GetVariables", request]))
    answer = await next_out(conn)
    assert answer[:2] == [3, "e2"]
    assert answer[2]["getVariableResult"][0]["attributeStatus"] == "UnknownComponent"
    serving.cancel()


def test_a_value_that_does_not_parse_is_a_property_constraint_violation() -> None:
    from chargepoint.client import to_call_error

    error = to_call_error(ValueError("startSchedule '' is not a timestamp"))
    assert error.code == "PropertyConstraintViolation"
    assert "startSchedule" in error.description
    assert to_call_error(KeyError("x")).code == "InternalError"
