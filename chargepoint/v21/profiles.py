"""OCPP 2.1 SetChargingProfile periods as signed limits for the shared profile store (pure).

2.1 says what to do per schedule period with ``operationMode``: ``ChargingOnly`` under
``limit``, ``Idle``, or ``CentralSetpoint`` at ``setpoint`` (< 0 discharges, bounded by
``dischargeLimit``, and by ``limit`` when it charges). Other modes need a local controller
this simulator does not have and are refused. Each period becomes one signed limit in the
schedule's unit, the pre-2.1 convention the station's smart-charging core
(``chargepoint.charging_profiles``) follows, so stacking, schedules over time, Clear and Get
work the same in 2.1.

Per-phase fields: the spec's ``limit_L2``, ``setpoint_L2``, ``dischargeLimit_L2`` (and
``_L3``) make the plain field phase L1. The ``ocpp`` 2.1.0 library hands them to handlers as
``limit_l2``, ``setpoint_l2``, ``discharge_limit_l2``, which are read here and added up; the
station never sends such fields, because the library's snake-to-camel conversion would turn
them into ``dischargeLimitL2``, which the schema refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# ChargingOnly without a limit: charge as fast as the EV can (it clamps to its own maximum)
NO_LIMIT = 1_000_000


class ProfileRefused(ValueError):
    """A profile this station cannot follow; ``reason`` is a 2.1 reasonCode (<= 20 chars)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason[:20]
        super().__init__(detail)


def phase_total(period: Mapping[str, Any], name: str) -> Decimal | None:
    """A phased field as the sum over phases (``name`` in snake case: ``discharge_limit``)."""
    base = period.get(name)
    if base is None:
        return None
    total = Decimal(str(base))
    for phase in ("l2", "l3"):
        value = period.get(f"{name}_{phase}")
        if value is not None:
            total += Decimal(str(value))
    return total


def period_limit(period: Mapping[str, Any]) -> Decimal:
    """The signed limit one 2.1 period asks for, in its schedule's unit (< 0 discharges)."""
    mode = period.get("operation_mode") or "ChargingOnly"
    limit = phase_total(period, "limit")
    if mode == "Idle":
        return Decimal(0)
    if mode == "ChargingOnly":
        return Decimal(NO_LIMIT) if limit is None else max(Decimal(0), limit)
    if mode != "CentralSetpoint":
        raise ProfileRefused("UnsupportedMode", f"operationMode {mode} needs a local controller")
    setpoint = phase_total(period, "setpoint")
    if setpoint is None:
        raise ProfileRefused("MissingSetpoint", "CentralSetpoint without a setpoint")
    discharge_limit = phase_total(period, "discharge_limit")
    if setpoint < 0 and discharge_limit is not None:
        setpoint = -min(-setpoint, abs(discharge_limit))
    if setpoint > 0 and limit is not None:
        setpoint = min(setpoint, limit)
    return setpoint


def signed_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """``profile`` (snake case, as handed in) with every period as ``limit`` alone, signed."""
    schedules = profile["charging_schedule"]
    converted = []
    for schedule in schedules if isinstance(schedules, list) else [schedules]:
        periods = []
        for period in schedule["charging_schedule_period"]:
            plain: dict[str, Any] = {
                "start_period": period["start_period"],
                "limit": float(period_limit(period)),
            }
            if period.get("number_phases") is not None:
                plain["number_phases"] = period["number_phases"]
            periods.append(plain)
        converted.append({**schedule, "charging_schedule_period": periods})
    return {**profile, "charging_schedule": converted}


def discharges(profile: Mapping[str, Any]) -> bool:
    """True if any period of a ``signed_profile`` asks the EV to feed the grid."""
    return any(
        period["limit"] < 0
        for schedule in profile["charging_schedule"]
        for period in schedule["charging_schedule_period"]
    )
