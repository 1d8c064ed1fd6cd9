"""OCPP 2.1 over real sockets, against an independent strict 2.1 station (``ocpp.v21``).

A V2X session runs through the library's 2.1 ChargePoint, which validates every payload both
ways against the official 2.1 schemas: the EV's charging needs are stored, the CSMS answers with
a 2.1 SetChargingProfile (CentralSetpoint, setpoint, dischargeLimit) and NotifyAllowedEnergy-
Transfer, and the session ends with import and export from register deltas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.routing import on
from ocpp.v21 import ChargePoint, call, call_result

from csms.app import CsmsApp
from csms.blocks.smart_charging import to_needs
from csms.blocks21.profiles import split_phases
from csms.dispatch import Decision, set_charging_profile_request
from csms.errors import FormatViolation, OcppCallError
from csms.model import TokenRecord
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP21
from csms.store.charging_needs import ChargingNeedsStore
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station

TAG = "TAG21-V2X"
T0 = "2026-11-25T10:00:00.000Z"
T1 = "2026-11-25T10:30:00.000Z"
T2 = "2026-11-25T11:00:00.000Z"
SCHEMAS = SchemaSet(OCPP21)

V2X_NEEDS = {
    "requested_energy_transfer": "AC_BPT",
    "available_energy_transfer": ["AC_BPT", "AC_three_phase"],
    "control_mode": "DynamicControl",
    "departure_time": "2026-11-25T17:30:00.000Z",
    "v2x_charging_parameters": {
        "ev_target_energy_request": 30_000.4,
        "ev_min_energy_request": -5_000,
        "ev_max_energy_request": 45_000,
        "ev_min_v2x_energy_request": -8_000,
        "ev_max_v2x_energy_request": 40_000,
        "target_soc": 80,
        "max_charge_power": 11_000,
        "max_discharge_power": 10_000,
        "min_discharge_power": 1_000,
    },
}


class Station21(ChargePoint):
    """Answers the 2.1 CSMS-initiated calls and remembers what it was sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.costs: list[float] = []

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, **kwargs: Any) -> Any:
        self.asked.append(("SetChargingProfile", kwargs))
        return call_result.SetChargingProfile(status="Accepted")

    @on("NotifyAllowedEnergyTransfer")
    async def on_allowed(self, **kwargs: Any) -> Any:
        self.asked.append(("NotifyAllowedEnergyTransfer", kwargs))
        return call_result.NotifyAllowedEnergyTransfer(status="Accepted")

    @on("RequestStartTransaction")
    async def on_request_start(self, **kwargs: Any) -> Any:
        self.asked.append(("RequestStartTransaction", kwargs))
        return call_result.RequestStartTransaction(status="Accepted")

    @on("CostUpdated")
    async def on_cost_updated(self, **kwargs: Any) -> Any:
        # answered as a real station does: unanswered, every dispatch pass waits out a timeout
        self.costs.append(kwargs["total_cost"])
        return call_result.CostUpdated()


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station21]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, T0))
    async with library_station(csms, Station21, ["ocpp2.0.1", "ocpp2.1"], "ocpp2.1") as cp:
        yield cp


def energy(timestamp: str, import_wh: float, export_wh: float, context: str) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "sampled_value": [
            {
                "value": import_wh,
                "measurand": "Energy.Active.Import.Register",
                "context": context,
                "unit_of_measure": {"unit": "Wh"},
            },
            {
                "value": export_wh,
                "measurand": "Energy.Active.Export.Register",
                "context": context,
                "unit_of_measure": {"unit": "kWh"},
            },
        ],
    }


def event(event_type: str, seq_no: int, timestamp: str, **extra: Any) -> call.TransactionEvent:
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "EVDeparted"}
    info: dict[str, Any] = {"transaction_id": "tx-21"}
    if event_type == "Ended":
        info["stopped_reason"] = "EVDisconnected"
    return call.TransactionEvent(
        event_type=event_type,
        seq_no=seq_no,
        timestamp=timestamp,
        trigger_reason=trigger[event_type],
        transaction_info=info,
        evse={"id": 1, "connector_id": 1},
        **extra,
    )


async def test_a_v2x_session_is_steered_and_ends_with_register_deltas(
    csms: CsmsApp, station: Station21
) -> None:
    boot = await station.call(
        call.BootNotification(
            charging_station={"model": "Bidi-21", "vendor_name": "Vendor21"}, reason="PowerUp"
        )
    )
    assert boot.status == "Accepted"
    await station.call(
        call.StatusNotification(
            timestamp=T0, connector_status="Occupied", evse_id=1, connector_id=1
        )
    )
    authorized = await station.call(call.Authorize(id_token={"id_token": TAG, "type": "ISO14443"}))
    assert authorized.id_token_info["status"] == "Accepted"
    started = await station.call(
        event(
            "Started",
            0,
            T0,
            id_token={"id_token": TAG, "type": "ISO14443"},
            meter_value=[energy(T0, 10_000, 2.0, "Transaction.Begin")],
        )
    )
    assert started.id_token_info["status"] == "Accepted"

    needs = await station.call(
        call.NotifyEVChargingNeeds(evse_id=1, charging_needs=V2X_NEEDS, timestamp=T0)
    )
    assert needs.status == "Rejected"  # stored, but no dispatcher runs here to send a schedule
    stored = await ChargingNeedsStore(csms.store).latest(STATION, 1)
    assert stored is not None
    assert stored.bidirectional
    assert stored.available_transfer == ("AC_BPT", "AC_three_phase")
    assert stored.departure_time == "2026-11-25T17:30:00.000Z"
    assert (stored.target_energy_wh, stored.min_energy_wh, stored.max_energy_wh) == (
        30_000,
        -5_000,
        45_000,
    )
    assert (stored.min_v2x_energy_wh, stored.max_v2x_energy_wh, stored.target_soc) == (
        -8_000,
        40_000,
        80,
    )
    assert (stored.max_charge_w, stored.max_discharge_w, stored.min_discharge_w) == (
        11_000,
        10_000,
        1_000,
    )

    request = set_charging_profile_request(
        Decision("discharge", -7_000),
        evse_id=1,
        transaction_id="tx-21",
        profile_id=21,
        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        version="2.1",
    )
    SCHEMAS.validate_request("SetChargingProfile", request)
    answer = await csms.stations.set_charging_profile(STATION, request)
    assert answer == {"status": "Accepted"}
    allowed = await csms.stations.notify_allowed_energy_transfer(STATION, "tx-21", ["AC_BPT"])
    assert allowed == {"status": "Accepted"}
    asked = dict(station.asked)
    (period,) = asked["SetChargingProfile"]["charging_profile"]["charging_schedule"][0][
        "charging_schedule_period"
    ]
    assert period == {
        "start_period": 0,
        "operation_mode": "CentralSetpoint",
        "setpoint": -7000,
        "discharge_limit": -7000,
    }
    assert asked["NotifyAllowedEnergyTransfer"] == {
        "transaction_id": "tx-21",
        "allowed_energy_transfer": ["AC_BPT"],
    }

    await station.call(
        event("Updated", 1, T1, meter_value=[energy(T1, 11_000, 4.5, "Sample.Periodic")])
    )
    await station.call(
        event("Ended", 2, T2, meter_value=[energy(T2, 12_500, 9.25, "Transaction.End")])
    )
    session = await csms.store.get_session(STATION, "tx-21")
    assert session is not None and session.state == "ended"
    assert session.import_wh == 12_500 - 10_000
    assert session.export_wh == 9_250 - 2_000
    assert session.stopped_reason == "EVDisconnected"


async def test_charging_only_and_idle_profiles_validate_and_are_accepted(
    csms: CsmsApp, station: Station21
) -> None:
    charge = set_charging_profile_request(
        Decision("charge", 11_000),
        evse_id=1,
        transaction_id="tx-21",
        profile_id=22,
        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        version="2.1",
    )
    idle = set_charging_profile_request(
        Decision("charge", 0),
        evse_id=1,
        transaction_id="tx-21",
        profile_id=23,
        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        version="2.1",
    )
    idle["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] = [
        {"startPeriod": 0, "operationMode": "Idle"}
    ]
    for request in (charge, idle):
        SCHEMAS.validate_request("SetChargingProfile", request)
        assert await csms.stations.set_charging_profile(STATION, request) == {"status": "Accepted"}
    modes = [
        kwargs["charging_profile"]["charging_schedule"][0]["charging_schedule_period"][0][
            "operation_mode"
        ]
        for action, kwargs in station.asked
        if action == "SetChargingProfile"
    ]
    assert modes == ["ChargingOnly", "Idle"]


def discharge_request_with_phases() -> dict[str, Any]:
    request = set_charging_profile_request(
        Decision("discharge", -7_001),
        evse_id=1,
        transaction_id="tx-21",
        profile_id=24,
        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        version="2.1",
    )
    schedule = request["chargingProfile"]["chargingSchedule"][0]
    schedule["chargingSchedulePeriod"] = [split_phases(schedule["chargingSchedulePeriod"][0])]
    return request


def test_per_phase_fields_carry_the_spec_names_and_validate() -> None:
    request = discharge_request_with_phases()
    (period,) = request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert period == {
        "startPeriod": 0,
        "operationMode": "CentralSetpoint",
        "setpoint": -2_335,
        "setpoint_L2": -2_333,
        "setpoint_L3": -2_333,
        "dischargeLimit": -2_335,
        "dischargeLimit_L2": -2_333,
        "dischargeLimit_L3": -2_333,
        "numberPhases": 3,
    }
    assert period["setpoint"] + period["setpoint_L2"] + period["setpoint_L3"] == -7_001
    SCHEMAS.validate_request("SetChargingProfile", request)
    charge = split_phases({"startPeriod": 0, "limit": 11_000}, phases=2)
    assert (charge["limit"], charge["limit_L2"], "limit_L3" in charge) == (5_500, 5_500, False)


def test_the_librarys_case_conversion_would_have_broken_per_phase_fields() -> None:
    request = discharge_request_with_phases()
    round_trip = snake_to_camel_case(camel_to_snake_case(request))
    (period,) = round_trip["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert "dischargeLimitL2" in period and "dischargeLimit_L2" not in period
    assert "setpointL3" in period and "setpoint_L3" not in period
    with pytest.raises(OcppCallError) as info:
        SCHEMAS.validate_request("SetChargingProfile", round_trip)
    assert isinstance(info.value, FormatViolation)  # additional properties are not allowed


async def test_per_phase_profile_reaches_a_strict_21_station_intact(
    csms: CsmsApp, station: Station21
) -> None:
    request = discharge_request_with_phases()
    # before the EV said it may discharge, the profile is clamped to charge only
    assert await csms.stations.set_charging_profile(STATION, request) == {"status": "Accepted"}
    (period,) = station.asked[-1][1]["charging_profile"]["charging_schedule"][0][
        "charging_schedule_period"
    ]
    assert (period["discharge_limit_l2"], period["setpoint_l3"]) == (0, 0)
    # an EV that may discharge 10 kW: the profile reaches the station intact
    await station.call(call.NotifyEVChargingNeeds(evse_id=1, charging_needs=V2X_NEEDS))
    assert await csms.stations.set_charging_profile(STATION, request) == {"status": "Accepted"}
    (period,) = station.asked[-1][1]["charging_profile"]["charging_schedule"][0][
        "charging_schedule_period"
    ]
    # the station validated the spec's names on the wire; its own handler sees them snake_cased
    assert (period["discharge_limit_l2"], period["setpoint_l3"]) == (-2_333, -2_333)


def test_needs_without_v2x_take_the_dc_energy_request() -> None:
    payload = {
        "evseId": 2,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC",
            "dcChargingParameters": {
                "evMaxCurrent": 200,
                "evMaxVoltage": 800,
                "evMaxPower": 150_000.5,
                "energyAmount": 42_000,
            },
        },
    }
    SCHEMAS.validate_request("NotifyEVChargingNeeds", payload)
    needs = to_needs("CS", payload, T0)
    assert (needs.evse_id, needs.target_energy_wh, needs.max_charge_w) == (2, 42_000, 150_000)
    assert not needs.bidirectional
    assert needs.max_discharge_w is None


async def test_needs_with_a_zoneless_departure_time_are_refused(
    csms: CsmsApp, station: Station21
) -> None:
    from ocpp.exceptions import OCPPError

    bad = {**V2X_NEEDS, "departure_time": "2026-11-25T17:30:00"}
    with pytest.raises(OCPPError):
        await station.call(
            call.NotifyEVChargingNeeds(evse_id=1, charging_needs=bad), suppress=False
        )
    assert await ChargingNeedsStore(csms.store).latest(STATION, 1) is None


async def test_201_handlers_answer_21_messages_valid_for_21(
    csms: CsmsApp, station: Station21
) -> None:
    heartbeat = await station.call(call.Heartbeat())
    assert heartbeat.current_time.endswith("Z")
    await station.call(
        call.MeterValues(evse_id=1, meter_value=[energy(T0, 500, 0.5, "Sample.Clock")])
    )
    assert await csms.store.count("meter_samples") == 2
    await station.call(
        call.SecurityEventNotification(type="FirmwareUpdated", timestamp=T0, tech_info="v2")
    )
    assert await csms.store.count("security_events") == 1
    await station.call(
        call.NotifyReport(request_id=1, generated_at=T0, seq_no=0, tbc=False, report_data=None)
    )
    assert await csms.store.count("reports") == 1
