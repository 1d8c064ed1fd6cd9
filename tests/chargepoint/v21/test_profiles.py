"""2.1 SetChargingProfile periods to signed limits, and the library's per-phase field names."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload

from chargepoint.charging_profiles import limit_at
from chargepoint.payloads import charging_profile_from
from chargepoint.v21.profiles import (
    NO_LIMIT,
    ProfileRefused,
    discharges,
    period_limit,
    signed_profile,
)
from tests.chargepoint.fakes import T0


def request(*periods: dict[str, Any], unit: str = "W") -> dict[str, Any]:
    """A SetChargingProfileRequest as the CSMS sends it (camelCase, spec field names)."""
    return {
        "evseId": 1,
        "chargingProfile": {
            "id": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": "tx-1",
            "chargingSchedule": [
                {"id": 1, "chargingRateUnit": unit, "chargingSchedulePeriod": list(periods)}
            ],
        },
    }


def handed_in(raw: dict[str, Any]) -> dict[str, Any]:
    """The profile as the library hands it to a handler: keys converted to snake case."""
    converted = camel_to_snake_case(raw)
    assert isinstance(converted, dict)
    profile = converted["charging_profile"]
    assert isinstance(profile, dict)
    return profile


def limit(period: dict[str, Any]) -> Decimal:
    """The signed limit of one camelCase period, read the way the handler reads it."""
    converted = camel_to_snake_case({"startPeriod": 0, **period})
    assert isinstance(converted, dict)
    return period_limit(converted)


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
    period = {
        "operationMode": "CentralSetpoint",
        "numberPhases": 3,
        "setpoint": -4000,
        "setpoint_L2": -3000,
        "setpoint_L3": -3000,
        "dischargeLimit": -2000,
        "dischargeLimit_L2": -2000,
        "dischargeLimit_L3": -2000,
    }
    assert limit(period) == -6000


def test_central_setpoint_discharges_and_charges() -> None:
    central = {"operationMode": "CentralSetpoint"}
    assert limit({**central, "setpoint": -5000, "dischargeLimit": -5000}) == -5000
    assert limit({**central, "setpoint": -5000}) == -5000
    assert limit({**central, "setpoint": 9000, "limit": 7000}) == 7000


def test_idle_and_charging_only() -> None:
    assert limit({"operationMode": "Idle", "limit": 7000}) == 0
    assert limit({"operationMode": "ChargingOnly", "limit": 3700}) == 3700
    assert limit({"limit": 3700}) == 3700  # ChargingOnly is the default
    assert limit({"operationMode": "ChargingOnly"}) == NO_LIMIT  # the EV clamps it
    # ChargingOnly never discharges, whatever sign the limit carries
    assert limit({"operationMode": "ChargingOnly", "limit": -3700}) == 0


def test_modes_needing_a_local_controller_are_refused() -> None:
    with pytest.raises(ProfileRefused) as info:
        limit({"operationMode": "LocalFrequency"})
    assert info.value.reason == "UnsupportedMode"
    with pytest.raises(ProfileRefused) as missing:
        limit({"operationMode": "CentralSetpoint"})
    assert missing.value.reason == "MissingSetpoint"


def test_the_signed_profile_feeds_the_shared_schedule_core() -> None:
    raw = request(
        {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 16, "numberPhases": 1},
        {"startPeriod": 900, "operationMode": "CentralSetpoint", "setpoint": -10},
        unit="A",
    )
    signed = signed_profile(handed_in(raw))
    assert discharges(signed)
    profile = charging_profile_from(signed)
    assert profile.transaction_id == "tx-1"
    assert limit_at(profile, T0, T0) == 16 * 230  # A to W at 230 V on one phase
    assert limit_at(profile, T0 + timedelta(seconds=900), T0) == -10 * 230 * 3
    charging_only = signed_profile(handed_in(request({"startPeriod": 0, "limit": 7000})))
    assert not discharges(charging_only)


phase = st.integers(min_value=-20_000, max_value=20_000)


@given(phase, phase, phase, st.integers(min_value=-30_000, max_value=0))
def test_a_discharge_never_exceeds_either_bound(l1: int, l2: int, l3: int, bound: int) -> None:
    period = {
        "operationMode": "CentralSetpoint",
        "setpoint": l1,
        "setpoint_L2": l2,
        "setpoint_L3": l3,
        "dischargeLimit": bound,
    }
    total = l1 + l2 + l3
    expected = total if total >= 0 else -min(-total, -bound)
    assert limit(period) == expected
