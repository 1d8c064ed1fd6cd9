"""Station-initiated reports the CSMS keeps without acting on them (2.0.1 and 2.1).

NotifyEvent (N07), NotifyChargingLimit (K12), ClearedChargingLimit (K13),
ReportChargingProfiles (K09) and NotifyEVChargingSchedule (K17) on 2.0.1; on 2.1 also
NotifyPriorityCharging, NotifySettlement and the DER control messages (NotifyDERAlarm,
NotifyDERStartStop, ReportDERControl). Each is validated by the router, stored with a
one-line summary (``csms.store.station_events``, the newest ``keep_station_events`` per
station) and acknowledged; operators read them with ``GET /api/stations/{id}/events`` and
``v2g stations events``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler
from csms.store.retention import STATION_EVENTS
from csms.store.station_events import StationEventsStore

log = logging.getLogger(__name__)

Summary = Callable[[dict[str, Any]], str]


def _event_data(payload: dict[str, Any]) -> str:
    events = payload["eventData"]
    first = events[0]
    where = first["component"]["name"]
    evse = first["component"].get("evse")
    if evse is not None:
        where += f"[{evse['id']}]"
    what = f"{where}.{first['variable']['name']}={first['actualValue']!s:.40}"
    more = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
    return f"{first['trigger']} {first['eventNotificationType']}: {what}{more}"


def _charging_limit(payload: dict[str, Any]) -> str:
    limit = payload["chargingLimit"]
    grid = " grid-critical" if limit.get("isGridCritical") else ""
    schedules = len(payload.get("chargingSchedule") or ())
    return f"limit from {limit['chargingLimitSource']}{grid}, {schedules} schedule(s)"


def _profiles(payload: dict[str, Any]) -> str:
    count = len(payload["chargingProfile"])
    more = " (more follow)" if payload.get("tbc") else ""
    return (
        f"request {payload['requestId']}: {count} profile(s) from"
        f" {payload['chargingLimitSource']}{more}"
    )


def _ev_schedule(payload: dict[str, Any]) -> str:
    periods = len(payload["chargingSchedule"]["chargingSchedulePeriod"])
    return f"EV schedule from {payload['timeBase']}, {periods} period(s)"


def _priority(payload: dict[str, Any]) -> str:
    state = "activated" if payload["activated"] else "deactivated"
    return f"priority charging {state} for transaction {payload['transactionId']}"


def _settlement(payload: dict[str, Any]) -> str:
    return (
        f"payment {payload['pspRef']} {payload['status']}:"
        f" {payload['settlementAmount']} at {payload['settlementTime']}"
    )


def _der_alarm(payload: dict[str, Any]) -> str:
    ended = " ended" if payload.get("alarmEnded") else ""
    fault = payload.get("gridEventFault")
    return f"DER alarm {payload['controlType']}{'' if fault is None else ' ' + fault}{ended}"


def _der_start_stop(payload: dict[str, Any]) -> str:
    state = "started" if payload["started"] else "stopped"
    return f"DER control {payload['controlId']} {state}"


def _der_report(payload: dict[str, Any]) -> str:
    kinds = [k for k, v in payload.items() if k not in ("requestId", "tbc") and v]
    return f"request {payload['requestId']}: {', '.join(kinds) or 'no controls'}"


def _cleared(payload: dict[str, Any]) -> str:
    return f"limit from {payload['chargingLimitSource']} cleared"


def stored(action: str, summary: Summary, answer: dict[str, Any]) -> Handler[StationContext]:
    """A handler that keeps ``action``'s payload with its summary and answers ``answer``."""

    async def handle(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            text = summary(payload)
        except (KeyError, IndexError, TypeError):  # a schema-valid shape the summary missed
            text = action
        log.info("%s: %s %s", ctx.station_id, action, text)
        services = ctx.services
        events = StationEventsStore(services.store, keep=services.keep(STATION_EVENTS))
        removed = await events.record(
            ctx.station_id, action, payload, summary=text, received_at=services.now_text()
        )
        services.pruned(ctx.station_id, STATION_EVENTS, removed)
        return dict(answer)

    handle.__name__ = f"on_{action}"
    return handle


HANDLERS: dict[str, Handler[StationContext]] = {
    "NotifyEvent": stored("NotifyEvent", _event_data, {}),
    "NotifyChargingLimit": stored("NotifyChargingLimit", _charging_limit, {}),
    "ClearedChargingLimit": stored("ClearedChargingLimit", _cleared, {}),
    "ReportChargingProfiles": stored("ReportChargingProfiles", _profiles, {}),
    "NotifyEVChargingSchedule": stored(
        "NotifyEVChargingSchedule", _ev_schedule, {"status": "Accepted"}
    ),
}

HANDLERS_21_ONLY: dict[str, Handler[StationContext]] = {
    "NotifyPriorityCharging": stored("NotifyPriorityCharging", _priority, {}),
    "NotifySettlement": stored("NotifySettlement", _settlement, {}),
    "NotifyDERAlarm": stored("NotifyDERAlarm", _der_alarm, {}),
    "NotifyDERStartStop": stored("NotifyDERStartStop", _der_start_stop, {}),
    "ReportDERControl": stored("ReportDERControl", _der_report, {}),
}
