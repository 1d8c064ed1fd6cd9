"""V2G dispatch policy (smart charging, OCPP 2.0.1 block K): charge or discharge on a price signal.

When the export price is above a threshold and the EV is above its reserve SoC, the EV
should feed the grid; otherwise it charges. The decision is pure; the request it yields is
a plain camelCase ``SetChargingProfile`` payload (TxProfile, W) using the pre-2.1 convention
on 2.0.1: a negative limit means discharge. Sending it is the caller's job, from a
supervised task, never from inside a handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from csms.timeutil import format_timestamp

Mode = Literal["charge", "discharge"]


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """When to discharge and at what power (W, magnitudes)."""

    export_threshold: int  # micro-units per kWh; discharge only strictly above it
    charge_w: int
    discharge_w: int

    def __post_init__(self) -> None:
        if self.charge_w < 0 or self.discharge_w < 0:
            raise ValueError("charge_w and discharge_w are magnitudes and must not be negative")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the EV should do and the signed limit that says it (< 0 discharges)."""

    mode: Mode
    limit_w: int


def decide(
    policy: DispatchPolicy, *, export_price: int, soc_pct: float, reserve_soc_pct: float
) -> Decision:
    """Discharge when the export price beats the threshold and the EV is above its reserve."""
    if export_price > policy.export_threshold and soc_pct > reserve_soc_pct:
        return Decision("discharge", -policy.discharge_w)
    return Decision("charge", policy.charge_w)


def set_charging_profile_request(
    decision: Decision,
    *,
    evse_id: int,
    transaction_id: str,
    profile_id: int,
    start: datetime,
    stack_level: int = 0,
    version: Literal["2.0.1", "2.1"] = "2.0.1",
) -> dict[str, Any]:
    """The ``SetChargingProfileRequest`` payload (camelCase) carrying ``decision``.

    On 2.0.1 the period's ``limit`` carries the sign (< 0 discharges). On 2.1 a discharge is
    said natively: ``operationMode`` CentralSetpoint with a negative ``setpoint`` and
    ``dischargeLimit``; charging is ``ChargingOnly`` with a positive ``limit``.
    """
    if evse_id <= 0:
        raise ValueError("a TxProfile targets one EVSE: evse_id must be positive")
    return {
        "evseId": evse_id,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": transaction_id,
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "startSchedule": format_timestamp(start),
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [_period(decision, version)],
                }
            ],
        },
    }


def schedule_request(
    periods: Sequence[tuple[datetime, Decision]],
    *,
    evse_id: int,
    transaction_id: str,
    profile_id: int,
    version: Literal["2.0.1", "2.1"] = "2.0.1",
) -> dict[str, Any]:
    """A ``SetChargingProfileRequest`` whose schedule asks each decision from its instant on
    (``csms.dispatch_plan``): the schedule starts at the first instant's whole second, and
    each period's ``startPeriod`` is its whole-second offset from there."""
    if not periods:
        raise ValueError("a schedule needs at least one period")
    first = periods[0][0].replace(microsecond=0)
    request = set_charging_profile_request(
        periods[0][1],
        evse_id=evse_id,
        transaction_id=transaction_id,
        profile_id=profile_id,
        start=first,
        version=version,
    )
    request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"] = [
        _period(decision, version, start_s=int((at - first).total_seconds()))
        for at, decision in periods
    ]
    return request


def _period(decision: Decision, version: str, *, start_s: int = 0) -> dict[str, Any]:
    if version == "2.0.1":
        return {"startPeriod": start_s, "limit": decision.limit_w}
    if version != "2.1":
        raise ValueError(f"no charging profile shape for OCPP {version}")
    if decision.mode == "discharge":
        return {
            "startPeriod": start_s,
            "operationMode": "CentralSetpoint",
            "setpoint": decision.limit_w,
            "dischargeLimit": decision.limit_w,
        }
    return {"startPeriod": start_s, "operationMode": "ChargingOnly", "limit": decision.limit_w}
