"""Clamp a charging profile an operator sends to the same bounds as the dispatcher's (pure).

Every power a profile carries is brought within ``Limits`` (``csms.dispatch_limits``): a
charging value within ``[0, max_charge_w]``, a discharging value within
``[-max_discharge_w, 0]``, and a signed one (2.0.1 ``limit``, 2.1 ``setpoint``,
``v2xBaseline``, curve powers) within ``[-max_discharge_w, max_charge_w]``. On 1.6 and 2.1 a
``limit`` is a charging limit and never negative. Profiles in amperes are compared at 230 V per
phase (``numberPhases``, 3 when absent), rounded down to 0.1 A. A 2.1 ``setpointReactive``
is held within ``csms.reactive_bounds`` (the EV's declared reactive powers).

The profile travels in SetChargingProfile (``chargingProfile``; 1.6 ``csChargingProfiles``)
and in remote starts (``chargingProfile`` of RequestStartTransaction and 1.6
RemoteStartTransaction). ``clamp_request`` returns the request to send and one line per value
it changed, for the log and the operator.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from csms.dispatch_limits import Limits, StationCaps, limits_for, station_limits
from csms.evse_limits import EvseCaps
from csms.reactive_bounds import NO_REACTIVE, REACTIVE_FIELDS, ReactiveLimits, reactive_limits
from csms.store.charging_needs import EvChargingNeeds

VOLTS_PER_PHASE = 230

# where a request carries its profile, and which EVSE (1.6: connector) it targets
PROFILE_FIELDS = {
    "SetChargingProfile": ("chargingProfile", "evseId"),
    "RequestStartTransaction": ("chargingProfile", "evseId"),
}
PROFILE_FIELDS_16 = {
    "SetChargingProfile": ("csChargingProfiles", "connectorId"),
    "RemoteStartTransaction": ("chargingProfile", "connectorId"),
}

STARTS = ("RequestStartTransaction", "RemoteStartTransaction")
_CHARGE_ONLY = ("minChargingRate",)
_PHASED = ("", "_L2", "_L3")


def profile_target(version: str, action: str, request: dict[str, Any]) -> int | None:
    """The EVSE (1.6: connector) id a request's profile is for; 0 the whole station; None if
    the request carries no profile."""
    fields = PROFILE_FIELDS_16 if version == "1.6" else PROFILE_FIELDS
    if action not in fields:
        return None
    profile_key, target_key = fields[action]
    if not isinstance(request.get(profile_key), dict):
        return None
    target = request.get(target_key, 0)
    return target if isinstance(target, int) else 0


def is_station_wide(version: str, action: str, request: dict[str, Any]) -> bool:
    """A station-wide maximum (ChargePointMaxProfile, ChargingStationMaxProfile) or EVSE 0."""
    fields = PROFILE_FIELDS_16 if version == "1.6" else PROFILE_FIELDS
    profile = request.get(fields.get(action, ("", ""))[0])
    purpose = profile.get("chargingProfilePurpose") if isinstance(profile, dict) else None
    return purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile") or (
        profile_target(version, action, request) == 0
    )


def request_limits(
    version: str,
    action: str,
    request: dict[str, Any],
    *,
    needs: EvChargingNeeds | None,
    caps: StationCaps,
    evse: EvseCaps,
) -> Limits:
    """The bounds of an operator's profile: a station-wide maximum asks no EV anything
    (``station_limits``); any other is bounded like the dispatcher's for the EV last seen
    on its EVSE (``needs``), without the dispatcher's own powers. A remote start's profile is
    for an EV that has declared nothing yet: ``needs`` are not used for it."""
    if is_station_wide(version, action, request):
        return station_limits(version, caps, evse)
    if action in STARTS:
        needs = None
    return limits_for(version, needs, caps, None, evse)


def request_reactive(
    version: str,
    action: str,
    request: dict[str, Any],
    *,
    needs: EvChargingNeeds | None,
    limits: Limits,
) -> ReactiveLimits:
    """The reactive bounds of an operator's profile (``csms.reactive_bounds``), for the same
    EV as ``request_limits`` (none for a remote start) within its active ``limits``."""
    if is_station_wide(version, action, request):
        return reactive_limits(None, limits, station_wide=True)
    return reactive_limits(None if action in STARTS else needs, limits)


def clamp_request(
    version: str,
    action: str,
    request: dict[str, Any],
    limits: Limits,
    reactive: ReactiveLimits = NO_REACTIVE,
) -> tuple[dict[str, Any], list[str]]:
    """``request`` with its profile's powers within ``limits`` (a 2.1 ``setpointReactive``
    within ``reactive``: 0 unless given), and what was changed."""
    fields = PROFILE_FIELDS_16 if version == "1.6" else PROFILE_FIELDS
    if action not in fields:
        return request, []
    profile_key, _ = fields[action]
    profile = request.get(profile_key)
    if not isinstance(profile, dict):
        return request, []
    clamped = copy.deepcopy(request)
    changes: list[str] = []
    schedules = clamped[profile_key].get("chargingSchedule")
    if isinstance(schedules, dict):  # 1.6: one schedule
        schedules = [schedules]
    for schedule in schedules if isinstance(schedules, list) else ():
        _clamp_schedule(version, schedule, limits, reactive, changes)
    return clamped, changes


def _clamp_schedule(
    version: str,
    schedule: dict[str, Any],
    limits: Limits,
    reactive: ReactiveLimits,
    changes: list[str],
) -> None:
    amperes = schedule.get("chargingRateUnit") == "A"
    for name in _CHARGE_ONLY:
        if isinstance(schedule.get(name), int | float):
            clamp_field(schedule, name, 0, limits.max_charge_w, amperes, 3, changes, "schedule")
    soc_limit = schedule.get("limitAtSoC")
    if isinstance(soc_limit, dict) and isinstance(soc_limit.get("limit"), int | float):
        clamp_field(soc_limit, "limit", 0, limits.max_charge_w, amperes, 3, changes, "limitAtSoC")
    for n, period in enumerate(schedule.get("chargingSchedulePeriod") or ()):
        if not isinstance(period, dict):
            continue
        phases = period.get("numberPhases")
        phases = phases if isinstance(phases, int) and 1 <= phases <= 3 else 3
        where = f"period {n}"
        signed_limit = version == "2.0.1"
        for suffix in _PHASED:
            low = -limits.max_discharge_w if signed_limit else 0
            clamp_field(
                period, "limit" + suffix, low, limits.max_charge_w, amperes, phases, changes, where
            )
            clamp_field(
                period,
                "dischargeLimit" + suffix,
                -limits.max_discharge_w,
                0,
                amperes,
                phases,
                changes,
                where,
            )
            clamp_field(
                period,
                "setpoint" + suffix,
                -limits.max_discharge_w,
                limits.max_charge_w,
                amperes,
                phases,
                changes,
                where,
            )
        for name in REACTIVE_FIELDS:
            clamp_field(
                period,
                name,
                -reactive.inject_var,
                reactive.absorb_var,
                amperes,
                phases,
                changes,
                where,
            )
        clamp_field(
            period,
            "v2xBaseline",
            -limits.max_discharge_w,
            limits.max_charge_w,
            amperes,
            phases,
            changes,
            where,
        )
        for curve in ("v2xFreqWattCurve", "v2xSignalWattCurve"):
            for point in period.get(curve) or ():
                if isinstance(point, dict):
                    clamp_field(
                        point,
                        "power",
                        -limits.max_discharge_w,
                        limits.max_charge_w,
                        amperes,
                        phases,
                        changes,
                        f"{where} {curve}",
                    )


def _in_unit(watts: int, amperes: bool, phases: int) -> float:
    """A bound in W in the schedule's unit: W as is, A at 230 V per phase, down to 0.1 A."""
    if not amperes:
        return watts
    magnitude = math.floor(abs(watts) * 10 / (VOLTS_PER_PHASE * phases)) / 10
    return magnitude if watts >= 0 else -magnitude


def clamp_field(
    holder: dict[str, Any],
    name: str,
    low_w: int,
    high_w: int,
    amperes: bool,
    phases: int,
    changes: list[str],
    where: str,
) -> None:
    """``holder[name]`` (a power in W, or in A at ``phases``) brought within ``[low_w, high_w]``;
    each change is appended to ``changes``."""
    value = holder.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = _in_unit(low_w, amperes, phases), _in_unit(high_w, amperes, phases)
    bounded = min(max(value, low), high)
    if bounded != value:
        bounded = int(bounded) if float(bounded).is_integer() else bounded
        holder[name] = bounded
        unit = "A" if amperes else "W"
        changes.append(f"{where}: {name} {value} -> {bounded} {unit}")
