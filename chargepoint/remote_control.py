"""CSMS-initiated Remote Control calls (OCPP 2.0.1 part F).

RequestStartTransaction, RequestStopTransaction and TriggerMessage: each returns the
answer and the follow-up that the client runs in a supervised task after answering.
TriggerMessage covers every MessageTriggerEnumType value but PublishFirmwareStatusNotification
(NotImplemented: that belongs to a local controller, which this station is not).
"""

from __future__ import annotations

from functools import partial

from ocpp.v201 import call, call_result

from chargepoint import certificates, diagnostics, firmware
from chargepoint.errors import StateError
from chargepoint.metering import ReadingContext
from chargepoint.payloads import meter_values_call
from chargepoint.sessions import run_session
from chargepoint.station import FollowUp, Station
from chargepoint.transaction import Evse, IdToken, StoppedReason, TriggerReason


def request_start(
    station: Station, token: IdToken, remote_start_id: int, evse_id: int | None
) -> tuple[call_result.RequestStartTransaction, FollowUp | None]:
    """F01/F02: start a session with the given idToken on the given (or first idle) EVSE.

    The EVSE is claimed (the simulated EV plugs in) before answering, so two requests
    cannot both get it; the session itself starts after the answer.
    """
    evse = _pick_evse(station, evse_id)
    if evse is None:
        info = {"reason_code": "NoIdleEvse" if evse_id is None else "EvseNotIdle"}
        return call_result.RequestStartTransaction(status="Rejected", status_info=info), None
    evse.plug_in()

    async def start() -> None:
        await station.send_status(evse)
        await run_session(
            station,
            evse,
            token,
            seconds=station.config.session_seconds,
            remote_start_id=remote_start_id,
        )

    return call_result.RequestStartTransaction(status="Accepted"), start


def _pick_evse(station: Station, evse_id: int | None) -> Evse | None:
    if evse_id is not None:
        evse = station.evses.get(evse_id)
        return evse if evse is not None and evse.idle else None
    return next((e for e in station.evses.values() if e.idle), None)


def request_stop(
    station: Station, transaction_id: str
) -> tuple[call_result.RequestStopTransaction, FollowUp | None]:
    """F03: stop a running transaction; Rejected if this station has no such transaction."""
    if transaction_id not in station.running_transactions():
        info = {"reason_code": "UnknownTransaction"}
        return call_result.RequestStopTransaction(status="Rejected", status_info=info), None

    async def stop() -> None:
        station.request_stop(transaction_id, TriggerReason.REMOTE_STOP, StoppedReason.REMOTE)

    return call_result.RequestStopTransaction(status="Accepted"), stop


def trigger_message(
    station: Station, requested: str, evse_id: int | None
) -> tuple[call_result.TriggerMessage, FollowUp | None]:
    """F06: send the requested message after answering; NotImplemented for the rest."""
    if evse_id is not None and evse_id not in station.evses:
        info = {"reason_code": "UnknownEvse"}
        return call_result.TriggerMessage(status="Rejected", status_info=info), None
    evses = [station.evses[evse_id]] if evse_id is not None else list(station.evses.values())
    follow_up: FollowUp | None = None
    if requested == "BootNotification":
        if station.boot_accepted:  # F06.FR.17: no re-boot once accepted
            return _trigger_rejected("AlreadyAccepted"), None
        follow_up = _request_boot(station)
    elif requested == "Heartbeat":
        follow_up = partial(send_checked, station, call.Heartbeat())
    elif requested == "StatusNotification":
        follow_up = partial(send_statuses, station, evses)
    elif requested == "MeterValues":
        follow_up = partial(_send_meter_values, station, evses)
    elif requested == "TransactionEvent":
        busy = [e for e in evses if e.transaction is not None]
        if not busy:
            return _trigger_rejected("NoTransaction"), None
        follow_up = partial(_send_transaction_updates, station, busy)
    elif requested == "LogStatusNotification":
        follow_up = partial(diagnostics.send_log_status, station)
    elif requested == "FirmwareStatusNotification":
        follow_up = partial(firmware.send_firmware_status, station)
    elif requested in certificates.TRIGGERS:
        use = certificates.TRIGGERS[requested]
        follow_up = partial(certificates.send_sign_request, station, use)
    else:
        return call_result.TriggerMessage(status="NotImplemented"), None
    return call_result.TriggerMessage(status="Accepted"), follow_up


def _trigger_rejected(reason: str) -> call_result.TriggerMessage:
    return call_result.TriggerMessage(status="Rejected", status_info={"reason_code": reason})


def _request_boot(station: Station) -> FollowUp:
    async def boot() -> None:
        station.boot_requested.set()

    return boot


async def send_checked(station: Station, payload: object) -> None:
    """Send a triggered message; a CALLERROR is reported, a lost link is not an error."""
    await station.notify(payload)


async def send_statuses(station: Station, evses: list[Evse]) -> None:
    """Send each EVSE's StatusNotification (a triggered message, 1.6 and 2.x alike)."""
    for evse in evses:
        await station.send_status(evse)


async def _send_meter_values(station: Station, evses: list[Evse]) -> None:
    for evse in evses:
        sample = station.sample(evse, ReadingContext.TRIGGER, "TxUpdatedMeasurands")
        await send_checked(station, meter_values_call(evse.evse_id, sample))


async def _send_transaction_updates(station: Station, evses: list[Evse]) -> None:
    for evse in evses:
        try:
            event = evse.update(
                now=station.clock.now(),
                trigger=TriggerReason.TRIGGER,
                meter=station.sample(evse, ReadingContext.TRIGGER, "TxUpdatedMeasurands"),
            )
        except StateError:
            continue  # the transaction ended between the answer and now
        await station.submit(event)
