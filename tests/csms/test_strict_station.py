"""An independent, strictly validating station (the ``ocpp`` library's client) against our CSMS.

The library validates every payload both ways against the official schemas; on top of that
every frame the CSMS sends is recorded and its timestamps checked (RFC 3339, with timezone,
at most 3 fractional digits). Every CSMS-initiated call of the service API is exercised.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call
from websockets.asyncio.client import ClientConnection, connect

from csms.app import CsmsApp
from csms.errors import CallErrorResponse
from csms.service import VariableRef
from tests.csms.builders import transaction_event
from tests.csms.conftest import PASSWORD, STATION, auth_header, url

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?(Z|[+-]\d\d:\d\d)")
TIME_KEYS = {"currentTime", "timestamp", "cacheExpiryDateTime", "generatedAt"}


class RecordingConnection:
    """Wraps the client socket so the test sees every raw frame the CSMS sent."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[str] = []

    async def recv(self) -> str:
        message = await self.ws.recv()
        assert isinstance(message, str)
        self.received.append(message)
        return message

    async def send(self, message: str) -> None:
        await self.ws.send(message)


class StrictStation(ChargePoint):
    """Answers every CSMS-initiated call of the service API with schema-valid payloads."""

    @on("RequestStartTransaction")
    async def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, **_: Any
    ) -> Any:
        from ocpp.v201 import call_result

        return call_result.RequestStartTransaction(status="Accepted", transaction_id="tx-remote")

    @on("RequestStopTransaction")
    async def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.RequestStopTransaction(status="Accepted")

    @on("GetVariables")
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "60",
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in get_variable_data
            ]
        )

    @on("SetVariables")
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.SetVariables(
            set_variable_result=[
                {
                    "attribute_status": "Rejected",
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in set_variable_data
            ]
        )

    @on("Reset")
    async def on_reset(self, type: str, **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.Reset(status="Scheduled" if type == "OnIdle" else "Accepted")

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")
    async def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        from ocpp.v201 import call_result

        return call_result.ChangeAvailability(status="Accepted")


def check_times(value: Any) -> int:
    """Check every timestamp in a payload; return how many were checked."""
    checked = 0
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TIME_KEYS and isinstance(item, str):
                assert RFC3339.fullmatch(item), f"{key}={item!r} is not RFC 3339 with timezone"
                checked += 1
            else:
                checked += check_times(item)
    elif isinstance(value, list):
        checked += sum(check_times(item) for item in value)
    return checked


async def test_strict_station_runs_a_session_and_answers_every_service_call(
    csms: CsmsApp,
) -> None:
    ws = await connect(
        url(csms),
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
    )
    recorder = RecordingConnection(ws)
    station = StrictStation(STATION, recorder)
    runner = asyncio.create_task(station.start())
    try:
        boot = await station.call(
            call.BootNotification(
                charging_station={"model": "Strict", "vendor_name": "Independent"},
                reason="PowerUp",
            ),
            suppress=False,
        )
        assert boot.status == "Accepted"
        heartbeat = await station.call(call.Heartbeat(), suppress=False)
        assert heartbeat.current_time
        await station.call(
            call.StatusNotification(
                timestamp="2026-11-25T10:00:00.000Z",
                connector_status="Occupied",
                evse_id=1,
                connector_id=1,
            ),
            suppress=False,
        )
        auth = await station.call(
            call.Authorize(id_token={"id_token": "UNKNOWN", "type": "ISO14443"}), suppress=False
        )
        assert auth.id_token_info["status"] == "Unknown"
        for seq_no, event_type in enumerate(["Started", "Updated", "Ended"]):
            payload = transaction_event(event_type, seq_no, "tx-strict", import_wh=1000 * seq_no)
            await station.call(
                call.TransactionEvent(
                    event_type=payload["eventType"],
                    timestamp=payload["timestamp"],
                    trigger_reason=payload["triggerReason"],
                    seq_no=payload["seqNo"],
                    transaction_info={
                        "transaction_id": "tx-strict",
                        **({"stopped_reason": "Local"} if event_type == "Ended" else {}),
                    },
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[
                        {
                            "timestamp": payload["timestamp"],
                            "sampled_value": [{"value": 1000 * seq_no}],
                        }
                    ],
                ),
                suppress=False,
            )
        session = await csms.store.get_session(STATION, "tx-strict")
        assert session is not None and session.state == "ended" and session.import_wh == 2000

        service = csms.stations
        assert (await service.request_start_transaction(STATION, "TEMP-1", evse_id=1))[
            "status"
        ] == "Accepted"
        assert (await service.request_stop_transaction(STATION, "tx-remote"))[
            "status"
        ] == "Accepted"
        got = await service.get_variables(
            STATION, [VariableRef("OCPPCommCtrlr", "HeartbeatInterval")]
        )
        assert got[0]["attributeStatus"] == "Accepted" and got[0]["attributeValue"] == "60"
        sets = await service.set_variables(
            STATION, [(VariableRef("OCPPCommCtrlr", "HeartbeatInterval"), "30")]
        )
        assert sets[0]["attributeStatus"] == "Rejected"
        assert (await service.reset(STATION, "OnIdle"))["status"] == "Scheduled"
        assert (await service.trigger_message(STATION, "Heartbeat"))["status"] == "Accepted"
        assert (await service.change_availability(STATION, "Inoperative"))["status"] == "Accepted"
    finally:
        runner.cancel()
        await ws.close()

    frames = [json.loads(text) for text in recorder.received]
    assert sum(check_times(frame[-1] if frame[0] != 4 else {}) for frame in frames) >= 2
    sent_calls = [frame[2] for frame in frames if frame[0] == 2]
    assert sent_calls == [
        "RequestStartTransaction",
        "RequestStopTransaction",
        "GetVariables",
        "SetVariables",
        "Reset",
        "TriggerMessage",
        "ChangeAvailability",
    ]
    assert not [frame for frame in frames if frame[0] == 4]


async def test_station_callerror_surfaces_as_call_error_response(csms: CsmsApp) -> None:
    """The library answers a call it has no handler for with NotImplemented: we raise, not None."""
    ws = await connect(
        url(csms),
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=auth_header(STATION, PASSWORD),
    )
    station = ChargePoint(STATION, ws)
    runner = asyncio.create_task(station.start())
    try:
        await station.call(call.Heartbeat(), suppress=False)
        try:
            await csms.stations.reset(STATION)
        except CallErrorResponse as exc:
            assert exc.code == "NotImplemented"
        else:
            raise AssertionError("a CALLERROR must not pass silently")
    finally:
        runner.cancel()
        await ws.close()
