"""OCPP 2.1 SetChargingProfile to the power the EV is asked for (pure).

2.1 says what to do per schedule period with ``operationMode``: ``ChargingOnly`` under
``limit``, ``Idle``, or ``CentralSetpoint`` at ``setpoint`` (< 0 discharges, bounded by
``dischargeLimit``). Other modes need a local controller this simulator does not have and are
refused.

Per-phase fields: the spec's ``limit_L2``, ``setpoint_L2``, ``dischargeLimit_L2`` (and
``_L3``) make the plain field phase L1. The ``ocpp`` 2.1.0 library hands them to handlers as
``limit_l2``, ``setpoint_l2``, ``discharge_limit_l2``, which are read here and added up; the
station never sends such fields, because the library's snake-to-camel conversion would turn
them into ``dischargeLimitL2``, which the schema refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

VOLTS_PER_PHASE = 230
DEFAULT_PHASES = 3


class ProfileRefused(ValueError):
    """A profile this station cannot follow; ``reason`` is a 2.1 reasonCode (<= 20 chars)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason[:20]
        super().__init__(detail)


@dataclass(frozen=True)
class Setpoint:
    """What one EVSE's EV is asked to do: ``power_w`` > 0 charges, < 0 discharges.

    ``power_w`` None means charging without a limit (ChargingOnly with no ``limit``). A
    TxProfile names the ``transaction_id`` it is for.
    """

    evse_id: int
    mode: str
    power_w: int | None
    transaction_id: str | None = None


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


def active_period(schedule: Mapping[str, Any], now: datetime) -> Mapping[str, Any]:
    """The period in force at ``now`` (the first one before ``startSchedule`` or without it).

    Raises ProfileRefused for a ``startSchedule`` that is not a timezone-aware time.
    """
    periods = sorted(schedule["charging_schedule_period"], key=lambda p: p["start_period"])
    start = schedule.get("start_schedule")
    if start is None:
        return periods[0]
    try:
        begins = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        raise ProfileRefused("InvalidSchedule", f"startSchedule {start!r} is no time") from None
    if begins.tzinfo is None:
        raise ProfileRefused("InvalidSchedule", f"startSchedule {start!r} has no timezone")
    elapsed = (now - begins).total_seconds()
    current = periods[0]
    for period in periods:
        if period["start_period"] <= elapsed:
            current = period
    return current


def _watts(value: Decimal | None, unit: str, phases: int) -> int | None:
    if value is None:
        return None
    if unit == "A":
        value *= VOLTS_PER_PHASE * phases
    return int(value.to_integral_value())


def setpoint_from(evse_id: int, profile: Mapping[str, Any], now: datetime) -> Setpoint:
    """The setpoint of ``profile``'s first schedule at ``now`` (snake-case dict, as handed in).

    Raises ProfileRefused for an operation mode this station cannot follow or a
    CentralSetpoint without a setpoint.
    """
    schedules = profile["charging_schedule"]
    schedule = schedules[0] if isinstance(schedules, list) else schedules
    unit = schedule["charging_rate_unit"]
    period = active_period(schedule, now)
    phases = int(period.get("number_phases") or DEFAULT_PHASES)
    mode = period.get("operation_mode") or "ChargingOnly"
    limit = _watts(phase_total(period, "limit"), unit, phases)
    transaction_id = profile.get("transaction_id")
    if mode == "Idle":
        return Setpoint(evse_id, mode, 0, transaction_id)
    if mode == "ChargingOnly":
        return Setpoint(evse_id, mode, None if limit is None else max(0, limit), transaction_id)
    if mode != "CentralSetpoint":
        raise ProfileRefused("UnsupportedMode", f"operationMode {mode} needs a local controller")
    setpoint = _watts(phase_total(period, "setpoint"), unit, phases)
    if setpoint is None:
        raise ProfileRefused("MissingSetpoint", "CentralSetpoint without a setpoint")
    discharge_limit = _watts(phase_total(period, "discharge_limit"), unit, phases)
    if setpoint < 0 and discharge_limit is not None:
        setpoint = -min(-setpoint, abs(discharge_limit))
    if setpoint > 0 and limit is not None:
        setpoint = min(setpoint, limit)
    return Setpoint(evse_id, mode, setpoint, transaction_id)
