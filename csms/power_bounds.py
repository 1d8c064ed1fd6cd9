"""Bound the 2.1 messages that set power outside a charging profile (pure).

``csms.profile_bounds`` clamps the powers of a charging profile. More 2.1 messages set power,
or allow it; each is bounded here, or refused (``ValueError``, answered 400) when the CSMS
cannot know its bound:

- **UpdateDynamicSchedule** (K, dynamic charging profiles) replaces the ``limit``,
  ``dischargeLimit``, ``setpoint`` and ``setpointReactive`` (and their ``_L2``/``_L3``) of the
  profile it names. The profile must be one the station accepted from this CSMS on its current
  connection (``csms.sent_profiles``): its EVSE gives the bounds (the EV on it, the EVSE's
  rating, the operator's caps, as for a TxProfile), its unit the unit (amperes compared at
  230 V on 3 phases, the tightest reading). The reactive setpoint is held within what the EV
  declared (``csms.reactive_bounds``).
- **PullDynamicScheduleUpdate** (a station asking for the values of a dynamic profile) is
  answered with the profile's latest values as this CSMS sent them, bounded again as an
  UpdateDynamicSchedule is, by the EV's, the EVSE's and the operator's limits of the moment
  (``csms.blocks21.dynamic``).
- **SetDERControl** (R, DER control) is station-wide and expressed in percent of the station's
  own rating. The controls that move active power (``FreqDroop``, ``FreqWatt``, ``VoltWatt``)
  can make the station export: they are refused where the station may not discharge (the same
  reason the dashboard shows). Where the operator's caps are below the station's reported
  rating, each curve point in ``PctMaxW`` is held to the caps' share of that rating.
  ``LimitMaxDischarge`` sets the discharge power allowed, ``pctMaxDischargePower`` percent of
  the rating: it is held within ``[0, share]``, the share of the rating the station may
  discharge (its discharge bound over its rating; 0 where it may not discharge; 100 where the
  rating is unknown). The others (trip settings, reactive power, gradients) set no active
  power.
- **AFRRSignal** (aFRR) moves the power along the active profile's ``v2xSignalWattCurve``,
  whose powers were clamped when this CSMS sent it. It is refused unless the station has
  accepted such a profile from this CSMS on its current connection.
- **NotifyAllowedEnergyTransfer** names the transfer modes the CSMS allows a transaction. A
  bidirectional mode (``*_BPT*``) allows discharge: it is left out where the EV of that
  transaction may not discharge (the dispatcher's bounds: it declared no bidirectional
  transfer, or ``maxDischargePower: 0``, or the station or the operator rules it out), and the
  message is refused when no mode is left.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from csms.dispatch_limits import Limits, StationCaps, limits_for, station_limits
from csms.evse_limits import EvseCaps
from csms.profile_bounds import clamp_field
from csms.reactive_bounds import NO_REACTIVE, REACTIVE_FIELDS, ReactiveLimits, reactive_limits
from csms.sent_profiles import SentProfile
from csms.store.charging_needs import EvChargingNeeds

POWER_MESSAGES = (
    "UpdateDynamicSchedule",
    "SetDERControl",
    "AFRRSignal",
    "NotifyAllowedEnergyTransfer",
)
ACTIVE_POWER_DER = ("FreqDroop", "FreqWatt", "VoltWatt")
_PHASED = ("", "_L2", "_L3")
_CURVE_UNITS = ("PctMaxW", "PctWAvail")


def unknown_profile(station_id: str, profile_id: Any) -> ValueError:
    return ValueError(
        f"UpdateDynamicSchedule: {station_id} has accepted no charging profile {profile_id}"
        " from this CSMS since it connected, so its EVSE and unit, and the bounds of the power"
        " it would set, are unknown; send the profile first (SetChargingProfile)"
    )


def dynamic_update_limits(
    profile: SentProfile, needs: EvChargingNeeds | None, caps: StationCaps, evse: EvseCaps
) -> Limits:
    """The bounds of an update to ``profile``: as a TxProfile for the EV last seen on its
    EVSE (``needs``), or a station-wide maximum for EVSE 0."""
    if profile.evse_id:
        return limits_for("2.1", needs, caps, None, evse)
    return station_limits("2.1", caps, evse)


def dynamic_update_reactive(
    profile: SentProfile, needs: EvChargingNeeds | None, limits: Limits
) -> ReactiveLimits:
    """The reactive bounds of an update to ``profile`` (``csms.reactive_bounds``)."""
    if profile.evse_id:
        return reactive_limits(needs, limits)
    return reactive_limits(None, limits, station_wide=True)


def bound_dynamic_update(
    request: dict[str, Any],
    profile: SentProfile,
    limits: Limits,
    reactive: ReactiveLimits = NO_REACTIVE,
) -> tuple[dict[str, Any], list[str]]:
    """An UpdateDynamicSchedule (or a PullDynamicScheduleUpdate answer) with its powers within
    ``limits`` of the profile's EVSE, its reactive setpoint within ``reactive``."""
    bounded = copy.deepcopy(request)
    update = bounded.get("scheduleUpdate")
    changes: list[str] = []
    if not isinstance(update, dict):
        return bounded, changes
    charge, discharge = limits.max_charge_w, limits.max_discharge_w
    for suffix in _PHASED:
        for name, low, high in (
            ("limit", 0, charge),  # 2.1: a charging limit, never negative
            ("dischargeLimit", -discharge, 0),
            ("setpoint", -discharge, charge),
        ):
            clamp_field(
                update, name + suffix, low, high, profile.amperes, 3, changes, "scheduleUpdate"
            )
    for name in REACTIVE_FIELDS:
        clamp_field(
            update,
            name,
            -reactive.inject_var,
            reactive.absorb_var,
            profile.amperes,
            3,
            changes,
            "scheduleUpdate",
        )
    return bounded, changes


def bound_der_control(
    station_id: str,
    request: dict[str, Any],
    limits: Limits,
    *,
    rating_w: int | None,
    cap_w: int | None,
) -> tuple[dict[str, Any], list[str]]:
    """A SetDERControl held to the station's bounds, or ValueError naming why it cannot be.

    ``limits``: the station-wide bounds (``station_limits``); ``rating_w``: the station's
    reported rating; ``cap_w``: the tightest of the operator's caps (None: no cap)."""
    control = request.get("controlType")
    if control == "LimitMaxDischarge":
        return _bound_limit_max_discharge(request, limits, rating_w)
    if control not in ACTIVE_POWER_DER:
        return request, []
    if limits.max_discharge_w <= 0:
        why_zero = "its discharge bound is 0 W (the operator's cap or the station's rating)"
        raise ValueError(
            f"SetDERControl {control}: moves active power and may make {station_id} export,"
            f" but it may not discharge: {limits.charge_only_reason or why_zero}"
        )
    curve = request.get("curve")
    if rating_w is None or cap_w is None or cap_w >= rating_w or not isinstance(curve, dict):
        return request, []
    if curve.get("yUnit") not in _CURVE_UNITS:
        return request, []
    share = math.floor(cap_w * 1000 / rating_w) / 10  # percent, rounded down to 0.1
    bounded = copy.deepcopy(request)
    changes: list[str] = []
    for n, point in enumerate(bounded["curve"].get("curveData") or ()):
        y = point.get("y") if isinstance(point, dict) else None
        if isinstance(y, int | float) and not isinstance(y, bool) and abs(y) > share:
            point["y"] = math.copysign(share, y)
            changes.append(
                f"curve point {n}: y {y} -> {point['y']} {curve['yUnit']}"
                f" (the operator's cap {cap_w} W of the {rating_w} W rating)"
            )
    return bounded, changes


def check_afrr_signal(station_id: str, profiles: list[SentProfile]) -> None:
    """ValueError unless the station runs a signal curve this CSMS sent (and clamped)."""
    if not profiles:
        raise ValueError(
            f"AFRRSignal: sets the power of the active profile's v2xSignalWattCurve, and"
            f" {station_id} has accepted no profile with one from this CSMS since it"
            " connected: the power it would set is not bounded"
        )


def discharge_share(limits: Limits, rating_w: int | None) -> float:
    """The percent of the station's rating it may discharge, rounded down to 0.1."""
    if limits.max_discharge_w <= 0:
        return 0.0
    if not rating_w:
        return 100.0
    return min(100.0, math.floor(limits.max_discharge_w * 1000 / rating_w) / 10)


def _bound_limit_max_discharge(
    request: dict[str, Any], limits: Limits, rating_w: int | None
) -> tuple[dict[str, Any], list[str]]:
    setting = request.get("limitMaxDischarge")
    pct = setting.get("pctMaxDischargePower") if isinstance(setting, dict) else None
    if not isinstance(pct, int | float) or isinstance(pct, bool):
        return request, []
    share = discharge_share(limits, rating_w)
    bounded_pct = min(max(pct, 0), share)
    if bounded_pct == pct:
        return request, []
    bounded = copy.deepcopy(request)
    bounded_pct = int(bounded_pct) if float(bounded_pct).is_integer() else bounded_pct
    bounded["limitMaxDischarge"]["pctMaxDischargePower"] = bounded_pct
    if limits.max_discharge_w <= 0:
        why = limits.charge_only_reason or "its discharge bound is 0 W"
    elif rating_w:
        why = f"the station's discharge bound {limits.max_discharge_w} W of its {rating_w} W rating"
    else:
        why = "a percentage, 0 to 100"
    return bounded, [f"limitMaxDischarge: pctMaxDischargePower {pct} -> {bounded_pct} ({why})"]


def is_discharge_mode(mode: Any) -> bool:
    """A bidirectional energy transfer mode (``AC_BPT``, ``AC_BPT_DER``, ``DC_BPT``,
    ``DC_ACDP_BPT``): it allows the EV to discharge."""
    return isinstance(mode, str) and "BPT" in mode


def bound_allowed_transfer(
    station_id: str, request: dict[str, Any], limits: Limits
) -> tuple[dict[str, Any], list[str]]:
    """A NotifyAllowedEnergyTransfer without discharge modes unless ``limits`` (the EV of the
    transaction) allow discharge; ValueError when no mode would be left."""
    modes = request.get("allowedEnergyTransfer")
    if limits.max_discharge_w > 0 or not isinstance(modes, list):
        return request, []
    kept = [m for m in modes if not is_discharge_mode(m)]
    if len(kept) == len(modes):
        return request, []
    dropped = [m for m in modes if is_discharge_mode(m)]
    why = limits.charge_only_reason or "its discharge bound is 0 W"
    if not kept:
        raise ValueError(
            f"NotifyAllowedEnergyTransfer: {', '.join(dropped)} would allow the EV of"
            f" transaction {request.get('transactionId')} on {station_id} to discharge, but it"
            f" may not: {why}; no other mode was named"
        )
    return {**request, "allowedEnergyTransfer": kept}, [
        f"allowedEnergyTransfer: left out {', '.join(dropped)} ({why})"
    ]
