"""The 2.1 messages that set power outside a profile are bounded or refused.

Properties over generated needs, caps, ratings and requests (UpdateDynamicSchedule and the
answer to a PullDynamicScheduleUpdate, SetDERControl with LimitMaxDischarge,
NotifyAllowedEnergyTransfer), then a real 2.1 station (the ``ocpp`` library's v21
ChargePoint, which checks every payload against the 2.1 schemas) sent each message through
the operator path, and pulling its dynamic schedule.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.routing import on
from ocpp.v21 import ChargePoint, call, call_result

from csms.app import CsmsApp
from csms.dispatch_limits import StationCaps, limits_for, station_limits
from csms.evse_limits import EvseCaps
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP21
from csms.power_bounds import (
    ACTIVE_POWER_DER,
    bound_allowed_transfer,
    bound_der_control,
    bound_dynamic_update,
    dynamic_update_limits,
    dynamic_update_reactive,
    is_discharge_mode,
)
from csms.sent_profiles import SentProfile
from csms.store.charging_needs import EvChargingNeeds
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station
from tests.csms.test_dispatch_limits import ev_needs, power, reactive_ceilings

SCHEMAS = SchemaSet(OCPP21)
value = st.one_of(
    st.none(),
    st.integers(-50_000, 50_000),
    st.floats(-50_000, 50_000, allow_nan=False, allow_infinity=False),
)
UPDATE_FIELDS = [
    f"{name}{suffix}"
    for name in ("limit", "dischargeLimit", "setpoint", "setpointReactive")
    for suffix in ("", "_L2", "_L3")
]
caps_strategy = st.builds(StationCaps, max_charge_w=power, max_discharge_w=power)
evse_strategy = st.builds(
    EvseCaps,
    max_power_w=power,
    bidirectional=st.sampled_from([None, True, False]),
    bidirectional_source=st.just("V2XChargingCtrlr.SupportedEnergyTransferModes"),
)


@settings(max_examples=400, deadline=None)
@given(
    values=st.fixed_dictionaries({}, optional={f: value for f in UPDATE_FIELDS}),
    evse_id=st.sampled_from([0, 1, 2]),
    amperes=st.booleans(),
    reported=ev_needs(),
    caps=caps_strategy,
    evse=evse_strategy,
)
def test_every_dynamic_update_sent_is_within_every_declared_limit(
    values: dict[str, Any],
    evse_id: int,
    amperes: bool,
    reported: EvChargingNeeds | None,
    caps: StationCaps,
    evse: EvseCaps,
) -> None:
    update = {k: v for k, v in values.items() if v is not None}
    request = {"chargingProfileId": 7, "scheduleUpdate": update}
    profile = SentProfile(7, evse_id, amperes, signal_curve=False)
    limits = dynamic_update_limits(profile, reported, caps, evse)
    reactive = dynamic_update_reactive(profile, reported, limits)
    sent, _ = bound_dynamic_update(request, profile, limits, reactive)
    SCHEMAS.validate_request("UpdateDynamicSchedule", sent)
    needs_seen = reported if evse_id else None
    ceilings = [caps.max_charge_w, evse.max_power_w]
    floors = [caps.max_discharge_w, evse.max_power_w]
    if needs_seen is not None:
        ceilings.append(needs_seen.max_charge_w)
        floors.append(needs_seen.max_discharge_w)
    ceiling = min(c for c in [*ceilings, 10**7] if c is not None)
    floor = min(f for f in [*floors, 10**7] if f is not None)
    ev_may = evse_id == 0 or (
        needs_seen is not None and needs_seen.bidirectional and needs_seen.max_discharge_w != 0
    )
    volts = 230 * 3 if amperes else 1
    station_may = evse.bidirectional is not False
    absorb, inject = reactive_ceilings(
        needs_seen, ceiling, floor if station_may and ev_may else 0, station_wide=evse_id == 0
    )
    for name, number in sent["scheduleUpdate"].items():
        if name.startswith("setpointReactive"):
            assert -inject - 1e-6 <= number * volts <= absorb + 1e-6, (name, number, needs_seen)
            continue
        watts = number * volts
        assert watts <= ceiling + 1e-6, (name, number, limits)
        if name.startswith("limit"):
            assert number >= 0, (name, number)
        if name.startswith("dischargeLimit"):
            assert number <= 0, (name, number)
        if number < 0:
            assert evse.bidirectional is not False and ev_may, (name, number, reported, evse)
            assert -watts <= floor + 1e-6, (name, number, limits)


def der_request(control: str, ys: list[float], unit: str) -> dict[str, Any]:
    return {
        "isDefault": False,
        "controlId": "c1",
        "controlType": control,
        "curve": {
            "priority": 0,
            "yUnit": unit,
            "curveData": [{"x": 49.0 + n, "y": y} for n, y in enumerate(ys)],
            "startTime": "2026-11-25T10:00:00Z",
            "duration": 3600,
        },
    }


@settings(max_examples=300, deadline=None)
@given(
    control=st.sampled_from(["FreqWatt", "VoltWatt", "FreqDroop", "VoltVar", "HFMustTrip"]),
    ys=st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=10),
    unit=st.sampled_from(["PctMaxW", "PctWAvail", "PctMaxVar"]),
    caps=caps_strategy,
    evse=evse_strategy,
)
def test_every_der_control_sent_is_within_the_caps_or_refused(
    control: str, ys: list[float], unit: str, caps: StationCaps, evse: EvseCaps
) -> None:
    request = der_request(control, ys, unit)
    limits = station_limits("2.1", caps, evse)
    own = [w for w in (caps.max_charge_w, caps.max_discharge_w) if w is not None]
    cap = min(own) if own else None
    try:
        sent, changes = bound_der_control(
            STATION, request, limits, rating_w=evse.max_power_w, cap_w=cap
        )
    except ValueError as exc:
        assert control in ACTIVE_POWER_DER and limits.max_discharge_w == 0
        assert "may not discharge" in str(exc)
        return
    assert control not in ACTIVE_POWER_DER or limits.max_discharge_w > 0
    SCHEMAS.validate_request("SetDERControl", sent)
    rating = evse.max_power_w
    bounded = control in ACTIVE_POWER_DER and unit in ("PctMaxW", "PctWAvail")
    for point, original in zip(sent["curve"]["curveData"], ys, strict=True):
        if bounded and rating and cap is not None and cap < rating:
            assert abs(point["y"]) * rating / 100 <= cap + 1e-6, (point, cap, rating)
            assert math.copysign(1, point["y"]) == math.copysign(1, original)
        else:
            assert point["y"] == original
    assert bool(changes) == (sent != request)


@settings(max_examples=300, deadline=None)
@given(
    pct=st.one_of(st.integers(-50, 200), st.floats(-50, 200, allow_nan=False)),
    caps=caps_strategy,
    evse=evse_strategy,
)
def test_every_limit_max_discharge_sent_is_within_the_discharge_bound(
    pct: float, caps: StationCaps, evse: EvseCaps
) -> None:
    request = {
        "isDefault": False,
        "controlId": "d1",
        "controlType": "LimitMaxDischarge",
        "limitMaxDischarge": {"priority": 0, "pctMaxDischargePower": pct},
    }
    limits = station_limits("2.1", caps, evse)
    sent, changes = bound_der_control(
        STATION, request, limits, rating_w=evse.max_power_w, cap_w=caps.max_discharge_w
    )
    SCHEMAS.validate_request("SetDERControl", sent)
    sent_pct = sent["limitMaxDischarge"]["pctMaxDischargePower"]
    assert 0 <= sent_pct <= 100
    if evse.bidirectional is False or caps.max_discharge_w == 0 or evse.max_power_w == 0:
        assert sent_pct == 0, (sent_pct, caps, evse)
    if evse.max_power_w and caps.max_discharge_w is not None:
        assert sent_pct * evse.max_power_w / 100 <= caps.max_discharge_w + 1e-6
    assert bool(changes) == (sent_pct != pct)


TRANSFER_MODES = [
    "AC_single_phase",
    "AC_two_phase",
    "AC_three_phase",
    "DC",
    "AC_BPT",
    "AC_BPT_DER",
    "AC_DER",
    "DC_BPT",
    "DC_ACDP",
    "DC_ACDP_BPT",
    "WPT",
]


@settings(max_examples=300, deadline=None)
@given(
    modes=st.lists(st.sampled_from(TRANSFER_MODES), min_size=1, max_size=5, unique=True),
    reported=ev_needs(),
    caps=caps_strategy,
    evse=evse_strategy,
)
def test_no_discharge_mode_is_allowed_an_ev_that_may_not_discharge(
    modes: list[str], reported: EvChargingNeeds | None, caps: StationCaps, evse: EvseCaps
) -> None:
    request = {"transactionId": "tx-1", "allowedEnergyTransfer": modes}
    limits = limits_for("2.1", reported, caps, None, evse)
    ev_may = (
        reported is not None
        and reported.bidirectional
        and reported.max_discharge_w != 0
        and evse.bidirectional is not False
        and limits.max_discharge_w > 0
    )
    try:
        sent, changes = bound_allowed_transfer(STATION, request, limits)
    except ValueError as exc:
        assert not ev_may and all(is_discharge_mode(m) for m in modes)
        assert "may not" in str(exc)
        return
    SCHEMAS.validate_request("NotifyAllowedEnergyTransfer", sent)
    if not ev_may:
        assert not any(is_discharge_mode(m) for m in sent["allowedEnergyTransfer"])
        assert sent["allowedEnergyTransfer"] == [m for m in modes if not is_discharge_mode(m)]
    else:
        assert sent == request
    assert bool(changes) == (sent != request)


class Station21(ChargePoint):
    """A 2.1 station accepting profiles, dynamic updates, DER controls and aFRR signals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[dict[str, Any]] = []
        self.signals: list[int] = []
        self.allowed: list[list[str]] = []

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, **_: Any) -> Any:
        return call_result.SetChargingProfile(status="Accepted")

    @on("UpdateDynamicSchedule")
    async def on_update_dynamic_schedule(self, schedule_update: dict[str, Any], **_: Any) -> Any:
        self.updates.append(schedule_update)
        return call_result.UpdateDynamicSchedule(status="Accepted")

    @on("SetDERControl")
    async def on_set_der_control(self, **_: Any) -> Any:
        return call_result.SetDERControl(status="Accepted")

    @on("NotifyAllowedEnergyTransfer")
    async def on_allowed(self, allowed_energy_transfer: list[str], **_: Any) -> Any:
        self.allowed.append(allowed_energy_transfer)
        return call_result.NotifyAllowedEnergyTransfer(status="Accepted")

    @on("AFRRSignal")
    async def on_afrr_signal(self, signal: int, **_: Any) -> Any:
        self.signals.append(signal)
        return call_result.AFRRSignal(status="Accepted")


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station21]:
    await csms.store.set_station_caps(STATION, max_charge_w=6_000, max_discharge_w=4_000)
    async with library_station(csms, Station21, ["ocpp2.1"], "ocpp2.1") as cp:
        yield cp


def dynamic_profile(profile_id: int, *, signal_curve: bool = False) -> dict[str, Any]:
    period: dict[str, Any] = {"startPeriod": 0, "limit": 3_000, "operationMode": "ChargingOnly"}
    if signal_curve:
        period["operationMode"] = "ExternalSetpoint"
        period["v2xSignalWattCurve"] = [
            {"signal": -100, "power": -20_000},
            {"signal": 100, "power": 20_000},
        ]
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Dynamic",
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "startSchedule": format_timestamp(utc_now()),
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [period],
                }
            ],
        },
    }


async def test_a_dynamic_update_is_bounded_by_the_profiles_evse(
    csms: CsmsApp, station: Station21
) -> None:
    with pytest.raises(ValueError, match="has accepted no charging profile 5"):
        await csms.stations.operator_call(
            STATION, "UpdateDynamicSchedule", {"chargingProfileId": 5, "scheduleUpdate": {}}
        )
    await csms.stations.operator_call(STATION, "SetChargingProfile", dynamic_profile(5))
    sent = await csms.stations.operator_call(
        STATION,
        "UpdateDynamicSchedule",
        {"chargingProfileId": 5, "scheduleUpdate": {"limit": 22_000, "setpoint": -9_000}},
    )
    # no EV needs seen on EVSE 1: charge only, within the operator's 6 kW
    assert station.updates == [{"limit": 6_000, "setpoint": 0}]
    assert sent.clamped == (
        "scheduleUpdate: limit 22000 -> 6000 W",
        "scheduleUpdate: setpoint -9000 -> 0 W",
    )


async def test_der_controls_that_may_export_are_refused_where_discharge_is_not_allowed(
    csms: CsmsApp, station: Station21
) -> None:
    await csms.store.set_station_caps(STATION, max_discharge_w=0)
    request = der_request("FreqWatt", [-100, 100], "PctMaxW")
    with pytest.raises(
        ValueError,
        match=r"SetDERControl FreqWatt: .* may not discharge: its discharge bound is 0 W",
    ):
        await csms.stations.operator_call(STATION, "SetDERControl", request)
    trip = der_request("HFMustTrip", [0, 0], "Not_Applicable")
    sent = await csms.stations.operator_call(STATION, "SetDERControl", trip)
    assert sent.response["status"] == "Accepted"


async def test_an_afrr_signal_needs_a_signal_curve_this_csms_bounded(
    csms: CsmsApp, station: Station21
) -> None:
    signal = {"timestamp": format_timestamp(utc_now()), "signal": 50}
    with pytest.raises(ValueError, match=r"AFRRSignal: .* not bounded"):
        await csms.stations.operator_call(STATION, "AFRRSignal", signal)
    assert station.signals == []
    sent = await csms.stations.operator_call(
        STATION, "SetChargingProfile", dynamic_profile(9, signal_curve=True)
    )
    curve = sent.request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert [p["power"] for p in curve["v2xSignalWattCurve"]] == [0, 6_000]  # charge only, 6 kW
    await csms.stations.operator_call(STATION, "AFRRSignal", signal)
    assert station.signals == [50]


T0 = "2026-11-25T10:00:00.000Z"


async def plug_in(station: Station21, transaction_id: str, v2x: dict[str, Any], **der: Any) -> None:
    """Boot, start a transaction on EVSE 1 and state the EV's needs (``v2x``, ``der``)."""
    await station.call(
        call.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
    )
    await station.call(
        call.TransactionEvent(
            event_type="Started",
            seq_no=0,
            timestamp=T0,
            trigger_reason="CablePluggedIn",
            transaction_info={"transaction_id": transaction_id},
            evse={"id": 1, "connector_id": 1},
        )
    )
    await state_needs(station, v2x, **der)


async def state_needs(station: Station21, v2x: dict[str, Any], **der: Any) -> None:
    needs: dict[str, Any] = {
        "requested_energy_transfer": "AC_BPT",
        "available_energy_transfer": ["AC_BPT", "AC_three_phase"],
        "v2x_charging_parameters": v2x,
    }
    if der:
        needs["der_charging_parameters"] = der
    await station.call(call.NotifyEVChargingNeeds(evse_id=1, charging_needs=needs, timestamp=T0))


async def test_an_ev_that_declared_no_discharge_is_allowed_no_discharge_mode(
    csms: CsmsApp, station: Station21
) -> None:
    await plug_in(station, "tx-5", {"max_charge_power": 3_000, "max_discharge_power": 0})
    answer = await csms.stations.notify_allowed_energy_transfer(
        STATION, "tx-5", ["AC_BPT", "AC_three_phase"]
    )
    assert answer == {"status": "Accepted"}
    assert station.allowed == [["AC_three_phase"]]
    with pytest.raises(ValueError, match="the EV declared maxDischargePower 0"):
        await csms.stations.operator_call(
            STATION,
            "NotifyAllowedEnergyTransfer",
            {"transactionId": "tx-5", "allowedEnergyTransfer": ["AC_BPT", "DC_BPT"]},
        )
    assert station.allowed == [["AC_three_phase"]]  # nothing sent
    # the same EV now offers 5 kW of discharge: a bidirectional mode may be allowed
    await state_needs(station, {"max_charge_power": 3_000, "max_discharge_power": 5_000})
    await csms.stations.notify_allowed_energy_transfer(STATION, "tx-5", ["AC_BPT"])
    assert station.allowed[-1] == ["AC_BPT"]


async def test_a_pulled_dynamic_schedule_is_bounded_by_the_limits_of_the_moment(
    csms: CsmsApp, station: Station21
) -> None:
    await plug_in(
        station,
        "tx-6",
        {"max_charge_power": 4_000, "max_discharge_power": 0},
        max_charge_reactive_power=1_500,
    )
    unknown = await station.call(call.PullDynamicScheduleUpdate(charging_profile_id=5))
    assert unknown.status == "Rejected"
    assert unknown.status_info["reason_code"] == "UnknownProfile"
    assert unknown.schedule_update is None

    await csms.stations.operator_call(STATION, "SetChargingProfile", dynamic_profile(5))
    pulled = await station.call(call.PullDynamicScheduleUpdate(charging_profile_id=5))
    assert pulled.status == "Accepted"
    assert pulled.schedule_update == {"limit": 3_000}  # the profile's own first period
    sent = await csms.stations.operator_call(
        STATION,
        "UpdateDynamicSchedule",
        {
            "chargingProfileId": 5,
            "scheduleUpdate": {"limit": 9_000, "setpoint": -2_000, "setpointReactive": -900},
        },
    )
    # the EV: 4 kW charge, no discharge, 1.5 kvar absorbed and nothing injected declared
    assert sent.request["scheduleUpdate"] == {"limit": 4_000, "setpoint": 0, "setpointReactive": 0}
    sent = await csms.stations.operator_call(
        STATION,
        "UpdateDynamicSchedule",
        {"chargingProfileId": 5, "scheduleUpdate": {"setpointReactive": 2_000}},
    )
    assert sent.request["scheduleUpdate"] == {"setpointReactive": 1_500}
    pulled = await station.call(call.PullDynamicScheduleUpdate(charging_profile_id=5))
    assert pulled.schedule_update == {"limit": 4_000, "setpoint": 0, "setpoint_reactive": 1_500}

    # the operator lowers the cap, the EV declares less: a pull gets the bounds of the moment
    await csms.store.set_station_caps(STATION, max_charge_w=2_000)
    await state_needs(
        station,
        {"max_charge_power": 4_000, "max_discharge_power": 0},
        max_charge_reactive_power=500,
    )
    pulled = await station.call(call.PullDynamicScheduleUpdate(charging_profile_id=5))
    assert pulled.status == "Accepted"
    assert pulled.schedule_update == {"limit": 2_000, "setpoint": 0, "setpoint_reactive": 500}
