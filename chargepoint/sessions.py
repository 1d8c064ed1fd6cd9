"""One charging session from plug-in to unplug (OCPP 2.0.1 E01-E07, E06 stop, C01 Authorize).

Authorize (local start) -> Started with Transaction.Begin readings -> Updated every
TxUpdatedInterval station seconds (Sample.Periodic) and at every AlignedDataCtrlr.Interval
instant (Sample.Clock, signed Intermediate readings) -> Ended with Transaction.End readings,
early if a remote stop or reset asks. Events go through ``Station.submit``, so a session keeps
running while the link is down and its events are replayed later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from chargepoint.clock import Hold, next_aligned
from chargepoint.errors import CallTimeout, NotConnected
from chargepoint.metering import DepartingMeterSource, ReadingContext
from chargepoint.provisioning import perform_reset
from chargepoint.session_report import session_report
from chargepoint.smart_charging import apply_limits
from chargepoint.station import Station, StopRequest
from chargepoint.transaction import ChargingState, Evse, IdToken, TriggerReason

LOG = logging.getLogger(__name__)


async def run_session(
    station: Station,
    evse: Evse,
    token: IdToken,
    *,
    seconds: float,
    remote_start_id: int | None = None,
    hold: Hold | None = None,
) -> bool:
    """Run one session on ``evse``; True once it ended, False if it could not start.

    A local session plugs in, authorizes if AuthCtrlr.Enabled (Rejected propagates) and starts
    with trigger Authorized; a remote one (``remote_start_id`` given) has been plugged in by
    the caller and authorizes only if AuthCtrlr.AuthorizeRemoteStart. A Reset OnIdle that was
    Scheduled is carried out when the last transaction ends.

    With ``hold`` (the session driver's hold on the station clock, taken) the clock runs from
    the Begin to the End only: plug-in, authorization and unplugging take no station time, so
    a simulated EV begins the instant it arrives and the next one the instant it left.
    """
    remote = remote_start_id is not None
    if not remote:
        evse.plug_in()
        await station.send_status(evse)
    try:
        setting = "AuthorizeRemoteStart" if remote else "Enabled"
        if station.device_model.read("AuthCtrlr", setting) == "true":
            await station.authorize(token)
    except (CallTimeout, NotConnected) as exc:
        LOG.info("%s: EVSE %s: cannot authorize now: %s", station.station_id, evse.evse_id, exc)
        await _unplug(station, evse)
        return False
    except BaseException:
        await _unplug(station, evse)
        raise

    transaction_id = station.new_transaction_id()
    stop = station.register_stop(transaction_id)
    try:
        now = station.clock.now()  # one instant for the event and its Begin reading
        begin_sample = station.sample(
            evse,
            ReadingContext.TRANSACTION_BEGIN,
            "TxStartedMeasurands",
            starting=(transaction_id, token),
            at=now,
        )
        started = evse.begin(
            now=now,
            transaction_id=transaction_id,
            id_token=token,
            trigger=TriggerReason.REMOTE_START if remote else TriggerReason.AUTHORIZED,
            meter=begin_sample,
            remote_start_id=remote_start_id,
        )
        apply_limits(station)  # a TxDefaultProfile governs the new EV from the start
        await station.submit(started)
        begin = started.timestamp
        if hold is not None:
            hold.give()
        end = begin + timedelta(seconds=seconds)  # at the latest; earlier if the EV leaves
        if (departure := _departure(station, evse)) is not None and begin < departure < end:
            end = departure
        await _sample_until(station, evse, stop, begin, end, hold)
        if hold is not None:
            hold.take()  # until the EV is gone: the next one arrives at this instant
        # a session that ran its course ends at its exact instant, however late the wake-up
        end_sample = station.sample(
            evse,
            ReadingContext.TRANSACTION_END,
            "TxEndedMeasurands",
            at=None if stop.event.is_set() else end,
        )
        ended = evse.end(
            now=end_sample.timestamp,
            trigger=stop.trigger,
            reason=stop.reason,
            meter=end_sample,
            earlier=station.held_samples(evse),  # every signed reading goes out, at the latest now
        )
        apply_limits(station)  # the EV is idle now: no timer for its profiles
        await station.submit(ended)
        if station.on_session is not None:
            station.on_session(
                session_report(
                    station_id=station.station_id,
                    evse_id=evse.evse_id,
                    transaction_id=transaction_id,
                    begin=begin_sample,
                    end=end_sample,
                    reason=str(stop.reason),
                )
            )
    finally:
        station.forget_stop(transaction_id)
        station.profiles.clear_transaction(transaction_id)  # TxProfiles end with it
        station.tx_profile_at.pop(transaction_id, None)
    await _unplug(station, evse)
    station.sessions_completed += 1
    if station.reset_pending and not station.running_transactions():
        station.spawn(perform_reset(station), name="reset-on-idle")
    return True


async def _sample_until(
    station: Station,
    evse: Evse,
    stop: StopRequest,
    begin: datetime,
    end: datetime,
    hold: Hold | None = None,
) -> None:
    """Updated events until ``end`` or a stop request.

    Periodic samples fall on a fixed grid from the start (a slow link delays them but never
    changes how many a session has); clock-aligned samples fall on AlignedDataCtrlr.Interval
    instants and carry that exact instant, with the meter's signed Intermediate record, so
    every tariff boundary on the grid has a signed reading. Both intervals are re-read each
    time (SetVariables). When both fall together the clock-aligned one goes first.
    With ``hold`` the station clock stands still from each wake-up until its events are
    through: signing and a slow round trip do not carry station time past the instants due.
    """
    periodic = begin
    aligned_done = begin
    while True:
        periodic_due = periodic + timedelta(
            seconds=station.device_model.read_int("SampledDataCtrlr", "TxUpdatedInterval")
        )
        aligned = next_aligned(aligned_done, station.aligned_interval())
        due = periodic_due if aligned is None else min(periodic_due, aligned)
        if due >= end:
            await station.clock.wait(stop.event, _until(station, end))
            return
        if await station.clock.wait(stop.event, _until(station, due)):
            return
        if hold is not None:
            hold.take()
        try:
            await _sample_at(station, evse, due, aligned, periodic_due)
        finally:
            if hold is not None:
                hold.give()
        if due == aligned:
            aligned_done = aligned
        if due == periodic_due:
            periodic = periodic_due


async def _sample_at(
    station: Station, evse: Evse, due: datetime, aligned: datetime | None, periodic_due: datetime
) -> None:
    """The Updated events due at ``due``: the clock-aligned one first, then the periodic one."""
    if due == aligned:
        earlier = station.held_samples(evse, before=aligned)
        sample = station.sample(evse, ReadingContext.SAMPLE_CLOCK, "Measurands", at=aligned)
        event = evse.update(
            now=aligned,
            trigger=TriggerReason.METER_VALUE_CLOCK,
            meter=sample,
            earlier=earlier,
            charging_state=charging_state(station, evse),
        )
        await station.submit(event)
    if due == periodic_due:
        earlier = station.held_samples(evse, before=periodic_due)
        sample = station.sample(
            evse, ReadingContext.SAMPLE_PERIODIC, "TxUpdatedMeasurands", at=periodic_due
        )
        event = evse.update(
            now=sample.timestamp,
            trigger=TriggerReason.METER_VALUE_PERIODIC,
            meter=sample,
            earlier=earlier,
            charging_state=charging_state(station, evse),
        )
        await station.submit(event)


def charging_state(station: Station, evse: Evse) -> ChargingState | None:
    """What the EV is doing, as its meter sees it: no power flowing is SuspendedEV (the EV
    refused or finished), any flow is Charging; None for a meter that does not say."""
    power = getattr(station.meters.get(evse.evse_id), "power_w", None)
    if not isinstance(power, int):
        return None
    return ChargingState.CHARGING if power != 0 else ChargingState.SUSPENDED_EV


def _departure(station: Station, evse: Evse) -> datetime | None:
    """The departure the EV of ``evse`` declared, if its meter knows one."""
    meter = station.meters[evse.evse_id]
    return meter.departure() if isinstance(meter, DepartingMeterSource) else None


def _until(station: Station, moment: datetime) -> float:
    """Station seconds from now until ``moment`` (negative when it has passed)."""
    return (moment - station.clock.now()).total_seconds()


async def _unplug(station: Station, evse: Evse) -> None:
    if evse.plugged and evse.transaction is None:
        evse.unplug()
        await station.send_status(evse)
