"""Independent strict peers against a real ``v2g csms`` process: ocpp-rpc 2.2.1 in strict mode
acts as an OCPP 2.0.1 station and as an OCPP 1.6 station. It validates every frame both ways
against the official schemas it ships, so a CSMS request or answer off the schema shows up as
a ``violation`` (and a CALLERROR), as would one of the peer's own.

Each station sends every message the CSMS handles for its version (taken from the CSMS's own
handler tables, so a newly handled message needs a payload here), and provokes every request
the CSMS sends (the README's table): remote start and stop and reset through their API routes,
SetChargingProfile and CostUpdated from the dispatcher on meter values, and every other one
through the operator API's ``POST /api/stations/{id}/ocpp/{action}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.blocks import HANDLERS_201
from csms.blocks16 import HANDLERS_16
from tests.interop.peer import CsmsProcess, StrictPeer, v2g
from tests.test_readme_messages import table

STATION, PASSWORD = "CP-STRICT-PEER", "strict-peer-password-1"
TOKEN = "TOKENSTRICT1"
OPERATOR = ("olga", "operator-password-1")

ANSWERS_201: dict[str, Any] = {
    "RequestStartTransaction": {"status": "Accepted"},
    "RequestStopTransaction": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "CostUpdated": {},
    "ChangeAvailability": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "GetTransactionStatus": {"messagesInQueue": False},
    "GetLog": {"status": "Accepted", "filename": "station.log"},
    "UpdateFirmware": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "GetLocalListVersion": {"versionNumber": 0},
    "SendLocalList": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "GetChargingProfiles": {"status": "NoProfiles"},
    "GetCompositeSchedule": {"status": "Rejected"},
    "DataTransfer": {"status": "UnknownVendorId"},
    "GetBaseReport": {"status": "Accepted"},
    "ReserveNow": {"status": "Accepted"},
    "CancelReservation": {"status": "Accepted"},
    "ClearDisplayMessage": {"status": "Accepted"},
    "ClearVariableMonitoring": {"clearMonitoringResult": [{"status": "Accepted", "id": 1}]},
    "CustomerInformation": {"status": "Accepted"},
    "GetDisplayMessages": {"status": "Unknown"},
    "GetMonitoringReport": {"status": "Accepted"},
    "GetReport": {"status": "Accepted"},
    "SetDisplayMessage": {"status": "Accepted"},
    "SetMonitoringBase": {"status": "Accepted"},
    "SetMonitoringLevel": {"status": "Accepted"},
    "SetVariableMonitoring": {
        "setMonitoringResult": [
            {
                "status": "Accepted",
                "type": "Delta",
                "severity": 5,
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    },
    "GetVariables": {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "0",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    },
    "SetVariables": {
        "setVariableResult": [
            {
                "attributeStatus": "Accepted",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    },
}

ANSWERS_16: dict[str, Any] = {
    "RemoteStartTransaction": {"status": "Accepted"},
    "RemoteStopTransaction": {"status": "Accepted"},
    "Reset": {"status": "Accepted"},
    "SetChargingProfile": {"status": "Accepted"},
    "ChangeConfiguration": {"status": "Accepted"},
    "GetConfiguration": {"configurationKey": [], "unknownKey": []},
    "TriggerMessage": {"status": "Accepted"},
    "ChangeAvailability": {"status": "Accepted"},
    "UnlockConnector": {"status": "Unlocked"},
    "SendLocalList": {"status": "Accepted"},
    "GetLocalListVersion": {"listVersion": 0},
    "ReserveNow": {"status": "Accepted"},
    "CancelReservation": {"status": "Accepted"},
    "UpdateFirmware": {},
    "GetDiagnostics": {"fileName": "diagnostics.log"},
    "ClearChargingProfile": {"status": "Accepted"},
    "ClearCache": {"status": "Accepted"},
    "GetCompositeSchedule": {"status": "Rejected"},
    "DataTransfer": {"status": "UnknownVendorId"},
    "ExtendedTriggerMessage": {"status": "Accepted"},
    "GetLog": {"status": "Accepted", "filename": "station.log"},
    "SignedUpdateFirmware": {"status": "Accepted"},
}


def now(offset_s: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sampled_201(import_wh: int, soc: int, context: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": now(),
            "sampledValue": [
                {
                    "value": import_wh,
                    "measurand": "Energy.Active.Import.Register",
                    "context": context,
                    "unitOfMeasure": {"unit": "Wh"},
                },
                {
                    "value": 0,
                    "measurand": "Energy.Active.Export.Register",
                    "context": context,
                    "unitOfMeasure": {"unit": "Wh"},
                },
                {"value": soc, "measurand": "SoC", "context": context},
            ],
        }
    ]


def messages_201(transaction_id: str) -> dict[str, dict[str, Any]]:
    """A schema-valid request for every station-to-CSMS message of 2.0.1 (and more)."""
    component = {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}
    schedule = {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000}],
    }
    return {
        "Heartbeat": {},
        "StatusNotification": {
            "timestamp": now(),
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
        "Authorize": {"idToken": {"idToken": TOKEN, "type": "ISO14443"}},
        "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": now()},
        "NotifyReport": {
            "requestId": 1,
            "generatedAt": now(),
            "seqNo": 0,
            "reportData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "variableAttribute": [{"type": "Actual", "value": "300"}],
                }
            ],
        },
        "MeterValues": {"evseId": 1, "meterValue": sampled_201(1000, 41, "Sample.Periodic")},
        "NotifyEvent": {
            "generatedAt": now(),
            "seqNo": 0,
            "eventData": [
                {
                    "eventId": 1,
                    "timestamp": now(),
                    "trigger": "Delta",
                    "actualValue": "false",
                    "eventNotificationType": "HardWiredNotification",
                    "component": component,
                    "variable": {"name": "Problem"},
                }
            ],
        },
        "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1},
        "ClearedChargingLimit": {"chargingLimitSource": "EMS", "evseId": 1},
        "ReportChargingProfiles": {
            "requestId": 2,
            "chargingLimitSource": "CSO",
            "evseId": 1,
            "chargingProfile": [
                {
                    "id": 9,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative",
                    "transactionId": transaction_id,
                    "chargingSchedule": [schedule],
                }
            ],
        },
        "NotifyEVChargingSchedule": {"timeBase": now(), "evseId": 1, "chargingSchedule": schedule},
        "NotifyEVChargingNeeds": {
            "evseId": 1,
            "chargingNeeds": {
                "requestedEnergyTransfer": "AC_three_phase",
                "acChargingParameters": {
                    "energyAmount": 20000,
                    "evMinCurrent": 6,
                    "evMaxCurrent": 16,
                    "evMaxVoltage": 400,
                },
            },
        },
        "LogStatusNotification": {"status": "Uploaded", "requestId": 3},
        "FirmwareStatusNotification": {"status": "Installed", "requestId": 4},
        "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n"},
        "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    }


def messages_16() -> dict[str, dict[str, Any]]:
    """A schema-valid request for every station-to-CSMS message of 1.6 (and more)."""
    return {
        "Heartbeat": {},
        "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        "Authorize": {"idTag": TOKEN},
        "DataTransfer": {"vendorId": "com.example", "messageId": "ping", "data": "1"},
        "FirmwareStatusNotification": {"status": "Installed"},
        "DiagnosticsStatusNotification": {"status": "Uploaded"},
        "SignedFirmwareStatusNotification": {"status": "Installed", "requestId": 1},
        "LogStatusNotification": {"status": "Uploaded", "requestId": 2},
        "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": now()},
    }


def operator_requests_201() -> dict[str, dict[str, Any]]:
    """A schema-valid request for every CSMS-to-station message of 2.0.1 an operator sends."""
    variable = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    token = {"idToken": TOKEN, "type": "ISO14443"}
    return {
        "CancelReservation": {"reservationId": 1},
        "ChangeAvailability": {"operationalStatus": "Operative"},
        "ClearCache": {},
        "ClearChargingProfile": {"chargingProfileId": 9},
        "ClearDisplayMessage": {"id": 1},
        "ClearVariableMonitoring": {"id": [1]},
        "CustomerInformation": {"requestId": 1, "report": True, "clear": False, "idToken": token},
        "DataTransfer": {"vendorId": "com.example", "messageId": "ping"},
        "GetBaseReport": {"requestId": 2, "reportBase": "FullInventory"},
        "GetChargingProfiles": {
            "requestId": 3,
            "chargingProfile": {"chargingProfilePurpose": "TxProfile"},
        },
        "GetCompositeSchedule": {"duration": 3600, "evseId": 1},
        "GetDisplayMessages": {"requestId": 4},
        "GetLocalListVersion": {},
        "GetLog": {
            "log": {"remoteLocation": "https://logs.example.com/upload"},
            "logType": "DiagnosticsLog",
            "requestId": 5,
        },
        "GetMonitoringReport": {"requestId": 6},
        "GetReport": {"requestId": 7},
        "GetTransactionStatus": {},
        "GetVariables": {"getVariableData": [variable]},
        "ReserveNow": {"id": 1, "expiryDateTime": now(3600), "idToken": token},
        "SendLocalList": {"versionNumber": 1, "updateType": "Full"},
        "SetDisplayMessage": {
            "message": {
                "id": 1,
                "priority": "NormalCycle",
                "message": {"format": "UTF8", "content": "welcome"},
            }
        },
        "SetMonitoringBase": {"monitoringBase": "All"},
        "SetMonitoringLevel": {"severity": 5},
        "SetVariableMonitoring": {
            "setMonitoringData": [{"value": 1, "type": "Delta", "severity": 5, **variable}]
        },
        "SetVariables": {"setVariableData": [{"attributeValue": "300", **variable}]},
        "TriggerMessage": {"requestedMessage": "Heartbeat"},
        "UnlockConnector": {"evseId": 1, "connectorId": 1},
        "UpdateFirmware": {
            "requestId": 8,
            "firmware": {"location": "https://fw.example.com/f.bin", "retrieveDateTime": now()},
        },
    }


def operator_requests_16() -> dict[str, dict[str, Any]]:
    """A schema-valid request for every CSMS-to-station message of 1.6 an operator sends."""
    return {
        "CancelReservation": {"reservationId": 1},
        "ChangeAvailability": {"connectorId": 0, "type": "Operative"},
        "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "300"},
        "ClearCache": {},
        "ClearChargingProfile": {"id": 9},
        "DataTransfer": {"vendorId": "com.example", "messageId": "ping"},
        "ExtendedTriggerMessage": {"requestedMessage": "Heartbeat"},
        "GetCompositeSchedule": {"connectorId": 1, "duration": 3600},
        "GetConfiguration": {},
        "GetDiagnostics": {"location": "ftp://diagnostics.example.com/"},
        "GetLocalListVersion": {},
        "GetLog": {
            "logType": "DiagnosticsLog",
            "requestId": 1,
            "log": {"remoteLocation": "https://logs.example.com/upload"},
        },
        "ReserveNow": {
            "connectorId": 1,
            "expiryDate": now(3600),
            "idTag": TOKEN,
            "reservationId": 1,
        },
        "SendLocalList": {"listVersion": 1, "updateType": "Full"},
        "SignedUpdateFirmware": {
            "requestId": 2,
            "firmware": {
                "location": "https://fw.example.com/f.bin",
                "retrieveDateTime": now(),
                "signingCertificate": "-----BEGIN CERTIFICATE-----",
                "signature": "c2lnbmF0dXJl",
            },
        },
        "TriggerMessage": {"requestedMessage": "Heartbeat"},
        "UnlockConnector": {"connectorId": 1},
        "UpdateFirmware": {"location": "https://fw.example.com/f.bin", "retrieveDate": now()},
    }


def csms_sends(column: int) -> set[str]:
    """The README's CSMS-to-station rows marked for one version (0: 1.6, 1: 2.0.1, 2: 2.1)."""
    return {
        name
        for (name, way), marks in table().items()
        if way == "CSMS to station" and marks[column] == "yes"
    }


async def send_the_rest(
    csms: CsmsProcess, peer: StrictPeer, column: int, requests: dict[str, dict[str, Any]]
) -> None:
    """Every CSMS-to-station message of the version not seen yet goes through the operator
    API (``POST /api/stations/{id}/ocpp/{action}``) and reaches the peer."""
    seen = {r["method"] for r in peer.of_type("inbound")}
    rest = csms_sends(column) - seen
    missing = rest - set(requests)
    assert not missing, f"no strict-peer request for {missing}"
    async with httpx.AsyncClient(base_url=csms.http_url, timeout=20) as http:
        for action in sorted(rest):
            answer = await http.post(
                f"/api/stations/{STATION}/ocpp/{action}", json=requests[action], auth=OPERATOR
            )
            assert answer.status_code == 200, (action, answer.text)
            await peer.inbound(action)
    assert csms_sends(column) <= {r["method"] for r in peer.of_type("inbound")}


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsProcess]:
    data = tmp_path / "data"
    v2g("stations", "add", STATION, "--password", PASSWORD, "--data-dir", str(data))
    v2g("tokens", "add", TOKEN, "--type", "ISO14443", "--data-dir", str(data))
    v2g("operators", "add", OPERATOR[0], "--password", OPERATOR[1], "--data-dir", str(data))
    process = CsmsProcess(data)
    await process.start()
    yield process
    process.stop()


async def api(csms: CsmsProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=csms.http_url, timeout=20) as http:
        answer = await http.post(f"/api/stations/{STATION}/{path}", json=body, auth=OPERATOR)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["response"]
    return result


def assert_clean(peer: StrictPeer, answers: dict[str, Any]) -> None:
    """No schema violation either way, no malformed frame, and every CSMS call was one the
    peer could answer (so none got NotImplemented)."""
    assert peer.of_type("violation") == [], peer.of_type("violation")
    assert peer.of_type("bad") == [], peer.of_type("bad")
    unanswered = {r["method"] for r in peer.of_type("inbound")} - set(answers)
    assert not unanswered, f"the CSMS sent calls the peer has no answer for: {unanswered}"


async def test_a_strict_201_station_and_the_csms_stay_within_the_schemas(
    csms: CsmsProcess,
) -> None:
    peer = await StrictPeer.start(
        url=csms.ws_url,
        identity=STATION,
        password=PASSWORD,
        protocol="ocpp2.0.1",
        answers=ANSWERS_201,
    )
    try:
        boot = {
            "chargingStation": {"vendorName": "Interop", "model": "ocpp-rpc"},
            "reason": "PowerUp",
        }
        booted = await peer.call("BootNotification", boot)
        assert booted["type"] == "result" and booted["result"]["status"] == "Accepted", booted
        sent = {"BootNotification"}
        transaction_id = "tx-strict-201"
        started = await peer.call(
            "TransactionEvent",
            {
                "eventType": "Started",
                "timestamp": now(),
                "triggerReason": "Authorized",
                "seqNo": 0,
                "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
                "idToken": {"idToken": TOKEN, "type": "ISO14443"},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": sampled_201(1000, 40, "Transaction.Begin"),
            },
        )
        assert started["type"] == "result", started
        sent.add("TransactionEvent")
        payloads = messages_201(transaction_id)
        missing = set(HANDLERS_201) - sent - set(payloads)
        assert not missing, f"no strict-peer payload for {missing}"
        for action in sorted(set(HANDLERS_201) - sent):
            answer = await peer.call(action, payloads[action])
            assert answer["type"] == "result", answer
            sent.add(action)
        updated = await peer.call(
            "TransactionEvent",
            {
                "eventType": "Updated",
                "timestamp": now(),
                "triggerReason": "MeterValuePeriodic",
                "seqNo": 1,
                "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
                "meterValue": sampled_201(2500, 45, "Sample.Periodic"),
            },
        )
        assert updated["type"] == "result" and "totalCost" not in updated["result"], updated
        # the dispatcher steers the running session and reports its cost
        profile = await peer.inbound("SetChargingProfile")
        assert profile["chargingProfile"]["transactionId"] == transaction_id
        cost = await peer.inbound("CostUpdated")
        assert cost["transactionId"] == transaction_id
        # operator actions through the JSON API
        assert (await api(csms, "start", {"id_token": TOKEN}))["status"] == "Accepted"
        request = await peer.inbound("RequestStartTransaction")
        assert request["idToken"] == {"idToken": TOKEN, "type": "ISO14443"}
        stop = {"transaction_id": transaction_id}
        assert (await api(csms, "stop", stop))["status"] == "Accepted"
        assert (await peer.inbound("RequestStopTransaction"))["transactionId"] == transaction_id
        ended = await peer.call(
            "TransactionEvent",
            {
                "eventType": "Ended",
                "timestamp": now(),
                "triggerReason": "RemoteStop",
                "seqNo": 2,
                "transactionInfo": {
                    "transactionId": transaction_id,
                    "chargingState": "EVConnected",
                    "stoppedReason": "Remote",
                },
                "meterValue": sampled_201(3000, 46, "Transaction.End"),
            },
        )
        assert ended["type"] == "result", ended
        assert (await api(csms, "reset", {"type": "OnIdle"}))["status"] == "Accepted"
        assert (await peer.inbound("Reset"))["type"] == "OnIdle"
        await send_the_rest(csms, peer, 1, operator_requests_201())
        assert_clean(peer, ANSWERS_201)
        assert peer.of_type("error") == []
    finally:
        await peer.stop()


async def test_a_strict_16_station_and_the_csms_stay_within_the_schemas(
    csms: CsmsProcess,
) -> None:
    peer = await StrictPeer.start(
        url=csms.ws_url, identity=STATION, password=PASSWORD, protocol="ocpp1.6", answers=ANSWERS_16
    )
    try:
        booted = await peer.call(
            "BootNotification", {"chargePointVendor": "Interop", "chargePointModel": "ocpp-rpc"}
        )
        assert booted["type"] == "result" and booted["result"]["status"] == "Accepted", booted
        sent = {"BootNotification"}
        started = await peer.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": TOKEN, "meterStart": 1000, "timestamp": now()},
        )
        assert started["type"] == "result", started
        assert started["result"]["idTagInfo"]["status"] == "Accepted"
        transaction_id = started["result"]["transactionId"]
        sent.add("StartTransaction")
        meter = await peer.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [
                    {
                        "timestamp": now(),
                        "sampledValue": [
                            {
                                "value": "2500",
                                "measurand": "Energy.Active.Import.Register",
                                "context": "Sample.Periodic",
                                "unit": "Wh",
                            },
                            {"value": "45", "measurand": "SoC", "context": "Sample.Periodic"},
                        ],
                    }
                ],
            },
        )
        assert meter["type"] == "result", meter
        sent.add("MeterValues")
        payloads = messages_16()
        missing = set(HANDLERS_16) - sent - {"StopTransaction"} - set(payloads)
        assert not missing, f"no strict-peer payload for {missing}"
        for action in sorted(set(HANDLERS_16) - sent - {"StopTransaction"}):
            answer = await peer.call(action, payloads[action])
            assert answer["type"] == "result", answer
            sent.add(action)
        profile = await peer.inbound("SetChargingProfile")
        assert profile["csChargingProfiles"]["transactionId"] == transaction_id
        assert (await api(csms, "start", {"id_token": TOKEN}))["status"] == "Accepted"
        assert (await peer.inbound("RemoteStartTransaction"))["idTag"] == TOKEN
        stop = {"transaction_id": str(transaction_id)}
        assert (await api(csms, "stop", stop))["status"] == "Accepted"
        remote_stop = await peer.inbound("RemoteStopTransaction")
        assert remote_stop["transactionId"] == transaction_id
        stopped = await peer.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": 3000,
                "timestamp": now(),
                "reason": "Remote",
                "idTag": TOKEN,
            },
        )
        assert stopped["type"] == "result", stopped
        assert (await api(csms, "reset", {"type": "OnIdle"}))["status"] == "Accepted"
        assert (await peer.inbound("Reset"))["type"] == "Soft"
        await send_the_rest(csms, peer, 0, operator_requests_16())
        assert_clean(peer, ANSWERS_16)
        assert peer.of_type("error") == []
    finally:
        await peer.stop()


async def test_the_peer_reports_a_schema_violation(csms: CsmsProcess) -> None:
    """The harness can fail: an answer off the schema is caught by the peer's strict mode
    (and the CSMS receives a CALLERROR instead, which the API reports as 502)."""
    answers = dict(ANSWERS_201, Reset={"status": "Maybe"})
    peer = await StrictPeer.start(
        url=csms.ws_url, identity=STATION, password=PASSWORD, protocol="ocpp2.0.1", answers=answers
    )
    try:
        boot = {"chargingStation": {"vendorName": "I", "model": "M"}, "reason": "PowerUp"}
        assert (await peer.call("BootNotification", boot))["type"] == "result"
        async with httpx.AsyncClient(base_url=csms.http_url, timeout=20) as http:
            answer = await http.post(f"/api/stations/{STATION}/reset", json={}, auth=OPERATOR)
        assert answer.status_code == 502, answer.text
        (violation,) = peer.of_type("violation")
        assert violation["method"] == "Reset" and violation["outbound"] is True
        refused = await peer.call("Heartbeat", {"unexpected": 1})
        assert refused["type"] == "error"  # its own invalid call never leaves it
        assert len(peer.of_type("violation")) == 2
    finally:
        await peer.stop()
