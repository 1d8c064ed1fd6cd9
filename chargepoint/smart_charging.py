"""Smart Charging (OCPP 2.0.1 part K) and the running cost (part I, CostUpdated).

SetChargingProfile (K01), ClearChargingProfile (K10), GetChargingProfiles (K09) keep the
station's ``ProfileStore`` and GetCompositeSchedule (K08) reads it; :func:`apply_limits`
turns it into each running transaction's EV setpoint now (positive charges, negative
discharges, clamped by the EV itself) and arms a timer for the schedule's next change, so a
multi-period schedule is followed on the station clock. CostUpdated stores the running cost
the CSMS reports.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from itertools import groupby

from ocpp.v201 import call, call_result

from chargepoint.charging_profiles import (
    DEFAULT_PHASES,
    NOMINAL_VOLTAGE,
    ChargingProfile,
    Criteria,
    ProfileError,
    Purpose,
    check_profile,
)
from chargepoint.clock import format_timestamp
from chargepoint.errors import CallErrorReceived, CallFailed, NotConnected
from chargepoint.metering import ControllableMeterSource
from chargepoint.payloads import charging_profile_payload, status_info
from chargepoint.station import FollowUp, Station
from chargepoint.transaction import Evse

LOG = logging.getLogger(__name__)


def set_charging_profile(
    station: Station, evse_id: int, profile: ChargingProfile
) -> tuple[call_result.SetChargingProfile, FollowUp | None]:
    """K01: install ``profile`` for ``evse_id`` (0: the station) and apply it at once."""
    if evse_id != 0 and evse_id not in station.evses:
        return _set_rejected("UnknownEvse"), None
    try:
        check_profile(profile, evse_id)
    except ProfileError as exc:
        LOG.info("%s: profile %s rejected: %s", station.station_id, profile.id, exc)
        return _set_rejected(exc.reason), None
    if profile.purpose is Purpose.TX:
        tx = station.evses[evse_id].transaction
        if tx is None or tx.transaction_id != profile.transaction_id:
            return _set_rejected("TxNotFound"), None
    station.profiles.install(evse_id, profile)
    apply_limits(station)
    station.profile_installed(profile)
    return call_result.SetChargingProfile(status="Accepted"), None


def _set_rejected(reason: str) -> call_result.SetChargingProfile:
    return call_result.SetChargingProfile(status="Rejected", status_info=status_info(reason))


def clear_charging_profile(
    station: Station, criteria: Criteria
) -> tuple[call_result.ClearChargingProfile, FollowUp | None]:
    """K10: remove the matching profiles; Unknown when none matched."""
    removed = station.profiles.clear(criteria)
    apply_limits(station)
    return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown"), None


def get_charging_profiles(
    station: Station, request_id: int, criteria: Criteria
) -> tuple[call_result.GetChargingProfiles, FollowUp | None]:
    """K09: NoProfiles, or Accepted and then ReportChargingProfiles, one per EVSE."""
    found = sorted(station.profiles.find(criteria), key=lambda i: i.evse_id)
    if not found:
        return call_result.GetChargingProfiles(status="NoProfiles"), None
    groups = [
        (evse_id, [i.profile for i in items])
        for evse_id, items in groupby(found, lambda i: i.evse_id)
    ]

    async def report() -> None:
        for n, (evse_id, profiles) in enumerate(groups):
            payload = call.ReportChargingProfiles(
                request_id=request_id,
                charging_limit_source="CSO",
                evse_id=evse_id,
                charging_profile=[charging_profile_payload(p) for p in profiles],
                tbc=n < len(groups) - 1 or None,
            )
            try:
                await station.send(payload)
            except CallErrorReceived as exc:
                station.report(exc)
            except (CallFailed, NotConnected):
                return

    return call_result.GetChargingProfiles(status="Accepted"), report


def get_composite_schedule(
    station: Station, evse_id: int, duration: int, unit: str | None
) -> tuple[call_result.GetCompositeSchedule, FollowUp | None]:
    """K08: the limits the installed profiles (and the EVSE's rating) set for the next
    ``duration`` seconds, in W or (3 phases at the nominal voltage) A."""
    if evse_id != 0 and evse_id not in station.evses:
        info = status_info("UnknownEvse")
        return call_result.GetCompositeSchedule(status="Rejected", status_info=info), None
    rate = unit or "W"
    if rate not in ("W", "A"):
        info = status_info("UnsupportedRateUnit")
        return call_result.GetCompositeSchedule(status="Rejected", status_info=info), None
    now = station.clock.now()
    tx = station.evses[evse_id].transaction if evse_id else None
    periods = station.profiles.composite(
        evse_id,
        None if tx is None else tx.transaction_id,
        None if tx is None else tx.started_at,
        now,
        duration,
    )
    watts_per_amp = NOMINAL_VOLTAGE * DEFAULT_PHASES
    schedule = {
        "evse_id": evse_id,
        "duration": duration,
        "schedule_start": format_timestamp(now),
        "charging_rate_unit": rate,
        "charging_schedule_period": [
            {"start_period": start, "limit": watts}
            if rate == "W"
            else {
                "start_period": start,
                "limit": round(watts / watts_per_amp, 1),
                "number_phases": DEFAULT_PHASES,
            }
            for start, watts in periods
        ],
    }
    return call_result.GetCompositeSchedule(status="Accepted", schedule=schedule), None


def cost_updated(
    station: Station, transaction_id: str, total_cost: float
) -> tuple[call_result.CostUpdated, FollowUp | None]:
    """I03: remember the running cost of a transaction (currency units, as the CSMS sent it)."""
    station.running_costs[transaction_id] = total_cost
    LOG.info("%s: transaction %s costs %s so far", station.station_id, transaction_id, total_cost)
    return call_result.CostUpdated(), None


def apply_limits(station: Station, now: datetime | None = None) -> None:
    """Set every running transaction's EV to what the profiles say now; arm the next change."""
    moment = station.clock.now() if now is None else now
    for evse in station.evses.values():
        apply_limit(station, evse, moment)


def apply_limit(station: Station, evse: Evse, now: datetime) -> None:
    """Set ``evse``'s EV to the profiles' limit at ``now`` (None: the EV's own maximum)."""
    timer = station.profile_timers.pop(evse.evse_id, None)
    if timer is not None and timer is not asyncio.current_task():
        timer.cancel()
    tx = evse.transaction
    meter = station.meters.get(evse.evse_id)
    if tx is None or not isinstance(meter, ControllableMeterSource):
        return
    limit = station.profiles.limit(evse.evse_id, tx.transaction_id, tx.started_at, now)
    meter.set_limit(limit, now)
    change = station.profiles.next_change(evse.evse_id, tx.transaction_id, tx.started_at, now)
    if change is not None:
        station.profile_timers[evse.evse_id] = station.spawn(
            _apply_at(station, evse, change), name=f"profile-evse-{evse.evse_id}"
        )


async def _apply_at(station: Station, evse: Evse, moment: datetime) -> None:
    """Wait for ``moment`` on the station clock, then apply the limit as of that instant."""
    await station.clock.sleep((moment - station.clock.now()).total_seconds())
    apply_limit(station, evse, moment)
