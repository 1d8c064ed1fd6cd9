"""An independent, strictly schema-validating OCPP 2.0.1 CSMS for testing the station.

Built only from the ``ocpp`` library and ``websockets`` (nothing of ``csms/``): every request
the station sends is validated against the official 2.0.1 JSON schemas by the library before
a handler sees it (an invalid one gets a CALLERROR, which the tests look for); every answer
the station gives to a CSMS-initiated call is validated the same way. Raw frames are kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp.exceptions import GenericError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve
from websockets.typing import Subprotocol


@dataclass
class Frame:
    """One websocket message as it crossed the wire."""

    connection: int
    direction: str  # "in" (station -> CSMS) or "out"
    text: str

    @property
    def message(self) -> list[Any]:
        return json.loads(self.text)


@dataclass
class Received:
    """One station-initiated call after schema validation."""

    connection: int
    action: str
    payload: dict[str, Any]


@dataclass
class CsmsState:
    """What the test configures and what the CSMS saw."""

    passwords: dict[str, str]
    boot_status: str = "Accepted"
    heartbeat_interval: int = 300
    invalid_tokens: set[str] = field(default_factory=set)
    refuse_actions: set[str] = field(default_factory=set)  # answered with a CALLERROR
    frames: list[Frame] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    def actions(self) -> list[str]:
        return [r.action for r in self.received]

    def of(self, action: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received if r.action == action]


class RecordingConnection:
    """Duck-typed connection for ``ChargePoint`` that records every frame."""

    def __init__(self, ws: ServerConnection, state: CsmsState, number: int) -> None:
        self.ws, self.state, self.number = ws, state, number

    async def recv(self) -> str:
        text = await self.ws.recv()
        assert isinstance(text, str)
        self.state.frames.append(Frame(self.number, "in", text))
        return text

    async def send(self, text: str) -> None:
        self.state.frames.append(Frame(self.number, "out", text))
        await self.ws.send(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StrictCsmsPoint(ChargePoint):
    """The CSMS side of one station connection; handlers record the camelCase payloads."""

    def __init__(self, station_id: str, conn: RecordingConnection, state: CsmsState) -> None:
        super().__init__(station_id, conn, response_timeout=5)
        self.state, self.number = state, conn.number

    def _record(self, action: str) -> None:
        if action in self.state.refuse_actions:
            raise GenericError(description=f"{action} refused by test")
        frame = next(
            f
            for f in reversed(self.state.frames)
            if f.direction == "in" and f.connection == self.number
        )
        self.state.received.append(Received(self.number, action, frame.message[3]))

    @on(Action.boot_notification)
    def on_boot(self, **_: Any) -> call_result.BootNotification:
        self._record("BootNotification")
        return call_result.BootNotification(
            current_time=_now(),
            interval=self.state.heartbeat_interval,
            status=self.state.boot_status,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        self._record("Heartbeat")
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, **_: Any) -> call_result.StatusNotification:
        self._record("StatusNotification")
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        self._record("Authorize")
        status = "Invalid" if id_token["id_token"] in self.state.invalid_tokens else "Accepted"
        return call_result.Authorize(id_token_info={"status": status})

    @on(Action.transaction_event)
    def on_transaction_event(self, **_: Any) -> call_result.TransactionEvent:
        self._record("TransactionEvent")
        return call_result.TransactionEvent()

    @on(Action.security_event_notification)
    def on_security_event(self, **_: Any) -> call_result.SecurityEventNotification:
        self._record("SecurityEventNotification")
        return call_result.SecurityEventNotification()

    @on(Action.notify_report)
    def on_notify_report(self, **_: Any) -> call_result.NotifyReport:
        self._record("NotifyReport")
        return call_result.NotifyReport()

    @on(Action.notify_ev_charging_needs)
    def on_charging_needs(self, **_: Any) -> call_result.NotifyEVChargingNeeds:
        self._record("NotifyEVChargingNeeds")
        return call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        self._record("MeterValues")
        return call_result.MeterValues()

    @on(Action.log_status_notification)
    def on_log_status(self, **_: Any) -> call_result.LogStatusNotification:
        self._record("LogStatusNotification")
        return call_result.LogStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, **_: Any) -> call_result.FirmwareStatusNotification:
        self._record("FirmwareStatusNotification")
        return call_result.FirmwareStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, **_: Any) -> call_result.SignCertificate:
        self._record("SignCertificate")
        return call_result.SignCertificate(status="Accepted")

    @on(Action.report_charging_profiles)
    def on_report_charging_profiles(self, **_: Any) -> call_result.ReportChargingProfiles:
        self._record("ReportChargingProfiles")
        return call_result.ReportChargingProfiles()


class StrictCsms:
    """A websockets server on 127.0.0.1 checking path, Basic auth and subprotocol."""

    def __init__(self, state: CsmsState) -> None:
        self.state = state
        self.points: dict[str, StrictCsmsPoint] = {}
        self.server: Server | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        self.server = await serve(
            self._handle,
            "127.0.0.1",
            port,
            subprotocols=[Subprotocol("ocpp2.0.1")],
            process_request=self._check_auth,
        )
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def _check_auth(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "ocpp" or parts[1] not in self.state.passwords:
            return conn.respond(HTTPStatus.NOT_FOUND, "unknown station\n")
        expected = base64.b64encode(f"{parts[1]}:{self.state.passwords[parts[1]]}".encode())
        if request.headers.get("Authorization") != f"Basic {expected.decode()}":
            return conn.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.subprotocol != "ocpp2.0.1":
            await ws.close(1002, "subprotocol ocpp2.0.1 required")
            return
        station_id = ws.request.path.strip("/").split("/")[1]
        self.state.connections += 1
        point = StrictCsmsPoint(
            station_id, RecordingConnection(ws, self.state, self.state.connections), self.state
        )
        self.points[station_id] = point
        try:
            await point.start()
        except Exception:
            pass  # the connection closed

    async def call(self, station_id: str, payload: Any) -> Any:
        """A CSMS-initiated call; the answer is schema-validated (raises if not)."""
        return await self.points[station_id].call(payload, suppress=False)

    async def wait_for(
        self, predicate: Any, *, timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Poll until ``predicate()`` holds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not predicate():
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what}; saw {self.state.actions()}")
            await asyncio.sleep(0.01)
