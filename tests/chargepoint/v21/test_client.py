"""StationClient21 and Station21: V2X setpoints reach the EV, needs follow a Started event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import Ev
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf
from chargepoint.metering import ReadingContext
from chargepoint.transaction import IdToken, TriggerReason, TxEvent
from chargepoint.v21.client import StationClient21
from chargepoint.v21.station import Station21
from tests.chargepoint.fakes import T0, FakeLink, ev_spec
from tests.chargepoint.test_client import FakeConnection, csms_call
from tests.chargepoint.v16.builders import SteerableMeter, make


@dataclass
class Live:
    station: Station21
    conn: FakeConnection
    meter: SteerableMeter

    async def ask(self, action: str, payload: dict[str, Any]) -> list[Any]:
        return await csms_call(self.conn, action, payload)


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    meter = SteerableMeter()
    station = make(Station21, meters={1: meter}, ocpp_version="2.1")
    conn = FakeConnection()
    client = StationClient21(station, conn, response_timeout=2)
    serving = asyncio.create_task(client.start())
    yield Live(station, conn, meter)
    serving.cancel()


def profile(transaction_id: str | None = None, **period: Any) -> dict[str, Any]:
    """A SetChargingProfileRequest: a TxProfile for ``transaction_id``, else a default one."""
    purpose = "TxDefaultProfile" if transaction_id is None else "TxProfile"
    tx = {} if transaction_id is None else {"transactionId": transaction_id}
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            **tx,
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, **period}],
                }
            ],
        },
    }


def start_transaction(station: Station21) -> TxEvent:
    evse = station.evses[1]
    return evse.begin(
        now=station.clock.now(),
        transaction_id="tx-1",
        id_token=IdToken("TAG1"),
        trigger=TriggerReason.AUTHORIZED,
        meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
    )


async def test_a_per_phase_central_setpoint_reaches_the_ev_as_its_total(live: Live) -> None:
    start_transaction(live.station)
    period: dict[str, Any] = {
        "operationMode": "CentralSetpoint",
        "setpoint": -2000,
        "setpoint_L2": -2000,
        "setpoint_L3": -2000,
        "dischargeLimit": -5000,
    }
    frame = await live.ask("SetChargingProfile", profile("tx-1", **period))
    assert frame[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] == -5000


async def test_idle_and_refused_modes(live: Live) -> None:
    start_transaction(live.station)
    assert (await live.ask("SetChargingProfile", profile(operationMode="Idle")))[2] == {
        "status": "Accepted"
    }
    assert live.meter.limits[-1] == 0
    refused = await live.ask("SetChargingProfile", profile(operationMode="LocalFrequency"))
    assert refused[2] == {"status": "Rejected", "statusInfo": {"reasonCode": "UnsupportedMode"}}
    assert live.meter.limits[-1] == 0


async def test_a_21_only_purpose_is_refused_not_an_internal_error(live: Live) -> None:
    request = profile(operationMode="Idle")
    request["chargingProfile"]["chargingProfilePurpose"] = "PriorityCharging"
    frame = await live.ask("SetChargingProfile", request)
    assert frame[2] == {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidProfile"}}


async def test_allowed_transfer_without_bidirectional_mode_forbids_discharge(live: Live) -> None:
    unknown = await live.ask(
        "NotifyAllowedEnergyTransfer",
        {"transactionId": "tx-9", "allowedEnergyTransfer": ["AC_three_phase"]},
    )
    assert unknown[2]["status"] == "Rejected"
    start_transaction(live.station)
    allowed = await live.ask(
        "NotifyAllowedEnergyTransfer",
        {"transactionId": "tx-1", "allowedEnergyTransfer": ["AC_three_phase"]},
    )
    assert allowed[2] == {"status": "Accepted"}
    discharge = profile("tx-1", operationMode="CentralSetpoint", setpoint=-3000)
    frame = await live.ask("SetChargingProfile", discharge)
    assert frame[2]["status"] == "Rejected"
    assert frame[2]["statusInfo"]["reasonCode"] == "DischargeNotAllowed"
    charge = profile("tx-1", operationMode="CentralSetpoint", setpoint=3000)
    assert (await live.ask("SetChargingProfile", charge))[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] == 3000 and -3000 not in live.meter.limits


async def test_a_tx_profile_for_another_transaction_is_refused(live: Live) -> None:
    start_transaction(live.station)
    other = profile("tx-2", operationMode="CentralSetpoint", setpoint=-3000)
    frame = await live.ask("SetChargingProfile", other)
    assert frame[2] == {"status": "Rejected", "statusInfo": {"reasonCode": "TxNotFound"}}
    assert live.meter.limits == []


async def test_20_handlers_answer_under_21(live: Live) -> None:
    request = {
        "getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    }
    frame = await live.ask("GetVariables", request)
    assert frame[0] == 3 and frame[2]["getVariableResult"][0]["attributeStatus"] == "Accepted"


def ev_meter() -> EvMeter:
    """A signing meter behind a 60 kWh EV at 50 %, 11 kW in and 7 kW out, leaving in 8 h."""
    key = ec.generate_private_key(ec.SECP256R1())
    return EvMeter(
        Ev(ev_spec(T0 + timedelta(hours=8)), soc_pct=50, at=T0),
        Meter(key, MeterInfo(serial="M1")),
        public_key=public_key_ocmf(key),
    )


async def test_charging_needs_follow_the_started_event() -> None:
    meter = ev_meter()
    station = make(Station21, meters={1: meter}, ocpp_version="2.1")
    link = FakeLink()
    await station.go_online(link)
    evse = station.evses[1]
    started = evse.begin(
        now=station.clock.now(),
        transaction_id="tx-1",
        id_token=IdToken("TAG1"),
        trigger=TriggerReason.AUTHORIZED,
        meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
    )
    await station.submit(started)
    assert link.actions()[-2:] == ["TransactionEvent", "NotifyEVChargingNeeds"]
    needs = link.sent[-1]
    assert needs.evse_id == 1
    assert needs.charging_needs["v2x_charging_parameters"]["max_discharge_power"] == 7000


async def test_no_needs_without_an_ev_model() -> None:
    station = make(Station21, ocpp_version="2.1")
    link = FakeLink()
    await station.go_online(link)
    await station.submit(start_transaction(station))
    assert link.actions()[-1] == "TransactionEvent"
    assert "NotifyEVChargingNeeds" not in link.actions()


async def test_needs_of_a_start_queued_before_boot_follow_its_replay() -> None:
    meter = ev_meter()
    station = make(Station21, meters={1: meter}, ocpp_version="2.1")
    await station.submit(start_transaction(station))  # not online yet: queued
    link = FakeLink()
    await station.go_online(link)
    assert link.actions() == ["StatusNotification", "TransactionEvent", "NotifyEVChargingNeeds"]
    await station.flush()
    assert link.actions().count("NotifyEVChargingNeeds") == 1  # once only


async def test_clearing_a_21_profile_returns_the_ev_to_its_own_maximum(live: Live) -> None:
    start_transaction(live.station)
    discharge = profile("tx-1", operationMode="CentralSetpoint", setpoint=-4000)
    assert (await live.ask("SetChargingProfile", discharge))[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] == -4000
    frame = await live.ask("ClearChargingProfile", {"chargingProfileId": 1})
    assert frame[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] is None  # no profile: the EV charges at its own maximum
