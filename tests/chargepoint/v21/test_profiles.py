"""2.1 SetChargingProfile periods to EV setpoints, and the library's per-phase field names."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload

from chargepoint.clock import format_timestamp
from chargepoint.v21.profiles import ProfileRefused, Setpoint, setpoint_from
from tests.chargepoint.fakes import T0


def request(*periods: dict[str, Any], unit: str = "W", start: str | None = None) -> dict[str, Any]:
    """A SetChargingProfileRequest as the CSMS sends it (camelCase, spec field names)."""
    schedule: dict[str, Any] = {
        "id": 1,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": list(periods),
    }
    if start is not None:
        schedule["startSchedule"] = start
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": "tx-1",
            "chargingSchedule": [schedule],
        },
    }


def handed_in(raw: dict[str, Any]) -> dict[str, Any]:
    """The profile as the library hands it to a handler: keys converted to snake case."""
    converted = camel_to_snake_case(raw)
    assert isinstance(converted, dict)
    profile = converted["charging_profile"]
    assert isinstance(profile, dict)
    return profile


def setpoint(*periods: dict[str, Any], unit: str = "W", start: str | None = None) -> Setpoint:
    return setpoint_from(1, handed_in(request(*periods, unit=unit, start=start)), T0)


async def test_library_round_trip_mangles_per_phase_names_which_the_schema_refuses() -> None:
    spec = request(
        {
            "startPeriod": 0,
            "operationMode": "CentralSetpoint",
            "setpoint": -2000,
            "setpoint_L2": -2000,
        }
    )
    await validate_payload(Call("1", "SetChargingProfile", spec), "2.1")  # spec names: valid
    mangled = snake_to_camel_case(camel_to_snake_case(spec))
    period = mangled["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    assert "setpointL2" in period and "setpoint_L2" not in period
    with pytest.raises(OCPPError):
        await validate_payload(Call("1", "SetChargingProfile", mangled), "2.1")


def test_per_phase_fields_are_added_up_and_the_discharge_limit_bounds_the_setpoint() -> None:
    result = setpoint(
        {
            "startPeriod": 0,
            "operationMode": "CentralSetpoint",
            "numberPhases": 3,
            "setpoint": -4000,
            "setpoint_L2": -3000,
            "setpoint_L3": -3000,
            "dischargeLimit": -2000,
            "dischargeLimit_L2": -2000,
            "dischargeLimit_L3": -2000,
        }
    )
    assert result == Setpoint(1, "CentralSetpoint", -6000, "tx-1")


def test_central_setpoint_discharges_and_charges() -> None:
    period = {"startPeriod": 0, "operationMode": "CentralSetpoint"}
    assert setpoint({**period, "setpoint": -5000, "dischargeLimit": -5000}).power_w == -5000
    assert setpoint({**period, "setpoint": -5000}).power_w == -5000
    assert setpoint({**period, "setpoint": 9000, "limit": 7000}).power_w == 7000


def test_idle_and_charging_only() -> None:
    assert setpoint({"startPeriod": 0, "operationMode": "Idle"}).power_w == 0
    charging = setpoint({"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 3700})
    assert (charging.mode, charging.power_w) == ("ChargingOnly", 3700)
    assert setpoint({"startPeriod": 0, "limit": 3700}).mode == "ChargingOnly"  # the default
    assert setpoint({"startPeriod": 0, "operationMode": "ChargingOnly"}).power_w is None
    # ChargingOnly never discharges, whatever sign the limit carries
    assert (
        setpoint({"startPeriod": 0, "operationMode": "ChargingOnly", "limit": -3700}).power_w == 0
    )


def test_amperes_become_watts_per_phase() -> None:
    period = {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 16, "numberPhases": 1}
    assert setpoint(period, unit="A").power_w == 16 * 230
    three = {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 16}
    assert setpoint(three, unit="A").power_w == 16 * 230 * 3


def test_the_period_in_force_now_is_chosen() -> None:
    start = format_timestamp(T0 - timedelta(minutes=20))
    first = {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 7000}
    second = {"startPeriod": 900, "operationMode": "Idle"}
    third = {"startPeriod": 3600, "operationMode": "ChargingOnly", "limit": 1000}
    assert setpoint(third, first, second, start=start).mode == "Idle"
    assert setpoint(first, second).power_w == 7000  # no start: the first period


def test_modes_needing_a_local_controller_are_refused() -> None:
    with pytest.raises(ProfileRefused) as info:
        setpoint({"startPeriod": 0, "operationMode": "LocalFrequency"})
    assert info.value.reason == "UnsupportedMode"
    with pytest.raises(ProfileRefused) as missing:
        setpoint({"startPeriod": 0, "operationMode": "CentralSetpoint"})
    assert missing.value.reason == "MissingSetpoint"


phase = st.integers(min_value=-20_000, max_value=20_000)


@given(phase, phase, phase, st.integers(min_value=-30_000, max_value=0))
def test_a_discharge_never_exceeds_either_bound(l1: int, l2: int, l3: int, bound: int) -> None:
    result = setpoint(
        {
            "startPeriod": 0,
            "operationMode": "CentralSetpoint",
            "setpoint": l1,
            "setpoint_L2": l2,
            "setpoint_L3": l3,
            "dischargeLimit": bound,
        }
    )
    total = l1 + l2 + l3
    assert result.power_w is not None
    if total >= 0:
        assert result.power_w == total
    else:
        assert result.power_w == -min(-total, -bound)


def test_a_start_schedule_that_is_no_aware_time_is_refused() -> None:
    period = {"startPeriod": 0, "operationMode": "Idle"}
    for start in ("", "soon", "2026-01-01T11:00:00"):
        with pytest.raises(ProfileRefused) as info:
            setpoint(period, start=start)
        assert info.value.reason == "InvalidSchedule"
