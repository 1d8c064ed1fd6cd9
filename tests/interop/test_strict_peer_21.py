"""An independent strict OCPP 2.1 station against a real ``v2g csms`` process.

ocpp-rpc 2.2.1 ships the OCPP 2.1 schemas and validates every frame both ways against them in
strict mode (``protocols: ['ocpp2.1']``): a request or answer of the CSMS off the schema shows
up as a ``violation``. The station boots (and is asked for its report), authorizes, runs a
V2X session whose EV declares ``maxChargePower`` 3 kW and ``maxDischargePower`` 0 under a
tariff where exporting pays all day, sends every station-initiated message the CSMS handles on
2.1, and is sent every message the README lists for 2.1: the dispatcher's setpoints and
CostUpdated on its own, UpdateDynamicSchedule, AFRRSignal and SetDERControl and the rest
through the operator API. Nothing the CSMS sends may ask this EV to discharge or to charge
above 3 kW.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.blocks21 import HANDLERS_21
from tests.interop.peer import CsmsProcess, StrictPeer, v2g
from tests.interop.test_strict_peers import (
    ANSWERS_201,
    OPERATOR,
    PASSWORD,
    STATION,
    TOKEN,
    api,
    assert_clean,
    messages_201,
    now,
    operator_requests_201,
    sampled_201,
    send_the_rest,
)

EXPORT_PAYS = """\
id: export-pays
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 10000, export_price: 2000000}
"""
MAX_CHARGE_W = 3_000

ANSWERS_21: dict[str, Any] = {
    **ANSWERS_201,
    "NotifyAllowedEnergyTransfer": {"status": "Accepted"},
    "UpdateDynamicSchedule": {"status": "Accepted"},
    "AFRRSignal": {"status": "Accepted"},
    "SetDERControl": {"status": "Accepted"},
    "GetDERControl": {"status": "Accepted"},
    "ClearDERControl": {"status": "Accepted"},
}

NEEDS = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_BPT",
        "availableEnergyTransfer": ["AC_BPT", "AC_three_phase"],
        "controlMode": "ScheduledControl",
        "v2xChargingParameters": {"maxChargePower": MAX_CHARGE_W, "maxDischargePower": 0},
    },
}


def der_curve() -> dict[str, Any]:
    return {
        "priority": 0,
        "yUnit": "PctMaxW",
        "curveData": [{"x": 49.8, "y": -50}, {"x": 50.2, "y": 50}],
        "startTime": now(),
        "duration": 3600,
    }


def messages_21(transaction_id: str) -> dict[str, dict[str, Any]]:
    """A schema-valid request for every station-to-CSMS message of 2.1."""
    return {
        **messages_201(transaction_id),
        "NotifyEVChargingNeeds": NEEDS,
        "NotifyDERAlarm": {
            "controlType": "FreqWatt",
            "timestamp": now(),
            "gridEventFault": "OverFrequency",
        },
        "NotifyDERStartStop": {"controlId": "der-1", "started": True, "timestamp": now()},
        # a profile this CSMS did not send: answered Rejected (UnknownProfile), schema-valid
        "PullDynamicScheduleUpdate": {"chargingProfileId": 987},
        "NotifyPriorityCharging": {"transactionId": transaction_id, "activated": False},
        "NotifySettlement": {
            "transactionId": transaction_id,
            "pspRef": "psp-1",
            "status": "Settled",
            "settlementAmount": 1.5,
            "settlementTime": now(),
        },
        "ReportDERControl": {
            "requestId": 1,
            "curve": [
                {
                    "id": "der-1",
                    "curveType": "FreqWatt",
                    "isDefault": False,
                    "isSuperseded": False,
                    "curve": der_curve(),
                }
            ],
        },
    }


def operator_requests_21() -> dict[str, dict[str, Any]]:
    """A schema-valid request for every CSMS-to-station message of 2.1 an operator sends."""
    return {
        **operator_requests_201(),
        "NotifyAllowedEnergyTransfer": {
            "transactionId": "tx-strict-21",
            "allowedEnergyTransfer": ["AC_three_phase"],
        },
        "SetDERControl": {
            "isDefault": False,
            "controlId": "der-1",
            "controlType": "FreqWatt",
            "curve": der_curve(),
        },
        "GetDERControl": {"requestId": 9},
        "ClearDERControl": {"isDefault": False, "controlId": "der-1"},
    }


def powers(profile: dict[str, Any]) -> list[tuple[str, float]]:
    """Every power a 2.1 SetChargingProfile carries, with its name."""
    found = []
    for schedule in profile["chargingProfile"]["chargingSchedule"]:
        assert schedule["chargingRateUnit"] == "W"
        for period in schedule["chargingSchedulePeriod"]:
            for name, number in period.items():
                if name in ("startPeriod", "numberPhases", "operationMode"):
                    continue
                if name.endswith("Curve"):
                    found += [(f"{name}.power", point["power"]) for point in number]
                else:
                    found.append((name, number))
    return found


def assert_within_the_ev(profile: dict[str, Any]) -> None:
    for name, number in powers(profile):
        assert 0 <= number <= MAX_CHARGE_W, (name, number, profile)


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsProcess]:
    data = tmp_path / "data"
    v2g("stations", "add", STATION, "--password", PASSWORD, "--data-dir", str(data))
    v2g("tokens", "add", TOKEN, "--type", "ISO14443", "--data-dir", str(data))
    v2g("operators", "add", OPERATOR[0], "--password", OPERATOR[1], "--data-dir", str(data))
    (data / "tariff.yaml").write_text(EXPORT_PAYS)
    process = CsmsProcess(data)
    await process.start()
    yield process
    process.stop()


async def operator(csms: CsmsProcess, action: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=csms.http_url, timeout=20) as http:
        return await http.post(f"/api/stations/{STATION}/ocpp/{action}", json=body, auth=OPERATOR)


def updated(transaction_id: str, seq_no: int, import_wh: int) -> dict[str, Any]:
    return {
        "eventType": "Updated",
        "timestamp": now(),
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
        "meterValue": sampled_201(import_wh, 80, "Sample.Periodic"),
    }


async def test_a_strict_21_station_and_the_csms_stay_within_the_schemas_and_the_ev(
    csms: CsmsProcess,
) -> None:
    peer = await StrictPeer.start(
        url=csms.ws_url,
        identity=STATION,
        password=PASSWORD,
        protocol="ocpp2.1",
        answers=ANSWERS_21,
    )
    try:
        boot = {
            "chargingStation": {"vendorName": "Interop", "model": "ocpp-rpc-21"},
            "reason": "PowerUp",
        }
        booted = await peer.call("BootNotification", boot)
        assert booted["type"] == "result" and booted["result"]["status"] == "Accepted", booted
        asked = await peer.inbound("GetBaseReport")  # the CSMS learns the EVSE limits itself
        assert asked["reportBase"] == "FullInventory"
        authorized = await peer.call(
            "Authorize", {"idToken": {"idToken": TOKEN, "type": "ISO14443"}}
        )
        assert authorized["result"]["idTokenInfo"]["status"] == "Accepted", authorized
        needs = await peer.call("NotifyEVChargingNeeds", NEEDS)
        assert needs["type"] == "result", needs
        transaction_id = "tx-strict-21"
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
                "meterValue": sampled_201(1000, 80, "Transaction.Begin"),
            },
        )
        assert started["type"] == "result", started
        sent = {"BootNotification", "Authorize", "NotifyEVChargingNeeds", "TransactionEvent"}
        payloads = messages_21(transaction_id)
        missing = set(HANDLERS_21) - sent - set(payloads)
        assert not missing, f"no strict-peer payload for {missing}"
        for action in sorted(set(HANDLERS_21) - sent):
            answer = await peer.call(action, payloads[action])
            assert answer["type"] == "result", answer
        # several passes of the dispatcher, with the SoC high and exporting paying all day
        for seq_no, import_wh in enumerate((2_000, 2_500, 3_000), start=1):
            answer = await peer.call("TransactionEvent", updated(transaction_id, seq_no, import_wh))
            assert answer["type"] == "result" and "totalCost" not in answer["result"], answer
        dispatched = await peer.inbound("SetChargingProfile")
        assert dispatched["chargingProfile"]["transactionId"] == transaction_id
        assert (await peer.inbound("CostUpdated"))["transactionId"] == transaction_id
        # the operator asks for more than the EV declared: it is clamped before it is sent
        update = {
            "chargingProfileId": dispatched["chargingProfile"]["id"],
            "scheduleUpdate": {"limit": 11_000, "setpoint": -7_000},
        }
        response = await operator(csms, "UpdateDynamicSchedule", update)
        assert response.status_code == 200, response.text
        assert (await peer.inbound("UpdateDynamicSchedule"))["scheduleUpdate"] == {
            "limit": MAX_CHARGE_W,
            "setpoint": 0,
        }
        refused = await operator(csms, "AFRRSignal", {"timestamp": now(), "signal": 10})
        assert refused.status_code == 400 and "v2xSignalWattCurve" in refused.text, refused.text
        curve = dict(dispatched, chargingProfile=dict(dispatched["chargingProfile"], id=77))
        period = {
            "startPeriod": 0,
            "operationMode": "ExternalSetpoint",
            "setpoint": -7_000,
            "v2xSignalWattCurve": [
                {"signal": -100, "power": -11_000},
                {"signal": 100, "power": 11_000},
            ],
        }
        curve["chargingProfile"]["chargingSchedule"] = [
            dict(
                dispatched["chargingProfile"]["chargingSchedule"][0],
                id=77,
                chargingSchedulePeriod=[period],
            )
        ]
        response = await operator(csms, "SetChargingProfile", curve)
        assert response.status_code == 200, response.text
        response = await operator(csms, "AFRRSignal", {"timestamp": now(), "signal": 10})
        assert response.status_code == 200, response.text
        assert (await peer.inbound("AFRRSignal"))["signal"] == 10
        # operator actions through the JSON API
        assert (await api(csms, "start", {"id_token": TOKEN}))["status"] == "Accepted"
        await peer.inbound("RequestStartTransaction")
        assert (await api(csms, "stop", {"transaction_id": transaction_id}))["status"] == "Accepted"
        await peer.inbound("RequestStopTransaction")
        ended = await peer.call(
            "TransactionEvent",
            {
                "eventType": "Ended",
                "timestamp": now(),
                "triggerReason": "RemoteStop",
                "seqNo": 4,
                "transactionInfo": {
                    "transactionId": transaction_id,
                    "chargingState": "EVConnected",
                    "stoppedReason": "Remote",
                },
                "meterValue": sampled_201(3_200, 80, "Transaction.End"),
            },
        )
        assert ended["type"] == "result", ended
        assert (await api(csms, "reset", {"type": "OnIdle"}))["status"] == "Accepted"
        await peer.inbound("Reset")
        await send_the_rest(csms, peer, 2, operator_requests_21())
        assert_clean(peer, ANSWERS_21)
        assert peer.of_type("error") == []
        profiles = [
            r["params"] for r in peer.of_type("inbound") if r["method"] == "SetChargingProfile"
        ]
        assert len(profiles) >= 2
        for profile in profiles:
            assert_within_the_ev(profile)
        # the 2.1 validation is live: the peer's own call off the schema never leaves it
        refused = await peer.call("Heartbeat", {"unexpected": 1})
        assert refused["type"] == "error"
        (violation,) = peer.of_type("violation")
        assert violation["method"] == "Heartbeat" and violation["outbound"] is True
    finally:
        await peer.stop()
