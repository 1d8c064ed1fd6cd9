from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ocpp.exceptions import FormatViolationError
from ocpp.messages import Call, validate_payload

from csms.dispatch import Decision, DispatchPolicy, decide, set_charging_profile_request

POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)
NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_high_export_price_above_reserve_discharges() -> None:
    decision = decide(POLICY, export_price=450_000, soc_pct=60, reserve_soc_pct=30)
    assert decision == Decision("discharge", -7_000)


@pytest.mark.parametrize(
    ("price", "soc"),
    [(300_000, 60), (100_000, 60), (450_000, 30), (450_000, 12.5)],
)
def test_low_price_or_at_reserve_charges(price: int, soc: float) -> None:
    assert decide(POLICY, export_price=price, soc_pct=soc, reserve_soc_pct=30) == Decision(
        "charge", 11_000
    )


async def test_discharge_request_validates_against_the_official_schema() -> None:
    decision = decide(POLICY, export_price=450_000, soc_pct=60, reserve_soc_pct=30)
    payload = set_charging_profile_request(
        decision, evse_id=1, transaction_id="tx-42", profile_id=7, start=NOW
    )
    await validate_payload(Call("1", "SetChargingProfile", payload), "2.0.1")
    profile = payload["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxProfile"
    assert profile["transactionId"] == "tx-42"
    schedule = profile["chargingSchedule"][0]
    assert schedule["chargingRateUnit"] == "W"
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": -7_000}]
    assert schedule["startSchedule"] == "2026-11-25T16:00:00.000Z"


async def test_the_validator_would_catch_a_broken_request() -> None:
    payload = set_charging_profile_request(
        Decision("charge", 11_000), evse_id=1, transaction_id="tx-42", profile_id=7, start=NOW
    )
    payload["chargingProfile"]["chargingProfilePurpose"] = "Discharge"
    with pytest.raises(FormatViolationError, match="Discharge"):
        await validate_payload(Call("1", "SetChargingProfile", payload), "2.0.1")


def test_evse_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="evse_id"):
        set_charging_profile_request(
            Decision("charge", 1), evse_id=0, transaction_id="t", profile_id=1, start=NOW
        )


def test_negative_power_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="magnitudes"):
        DispatchPolicy(export_threshold=0, charge_w=-1, discharge_w=1)


@pytest.mark.parametrize("soc", [60, 10])
async def test_ocpp21_request_says_discharge_natively_and_validates(soc: float) -> None:
    decision = decide(POLICY, export_price=450_000, soc_pct=soc, reserve_soc_pct=30)
    payload = set_charging_profile_request(
        decision, evse_id=2, transaction_id="tx-9", profile_id=3, start=NOW, version="2.1"
    )
    await validate_payload(Call("1", "SetChargingProfile", payload), "2.1")
    period = payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
    if soc > 30:
        assert period["operationMode"] == "CentralSetpoint"
        assert period["setpoint"] == period["dischargeLimit"] == -7_000
        assert "limit" not in period
    else:
        assert period == {"startPeriod": 0, "operationMode": "ChargingOnly", "limit": 11_000}
