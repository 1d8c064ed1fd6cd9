"""CSMS-initiated Provisioning calls (OCPP 2.0.1 part B): Get/SetVariables, GetBaseReport, Reset.

Each function takes the station and the converted arguments and returns the result
dataclass plus, where the call has consequences, a follow-up to run after the answer is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ocpp.v201 import call_result

from chargepoint.device_model import GetRequest, SetRequest
from chargepoint.errors import CallErrorReceived, CallFailed, NotConnected
from chargepoint.payloads import (
    get_variables_result,
    notify_report_calls,
    set_variables_result,
)
from chargepoint.station import FollowUp, Station
from chargepoint.transaction import StoppedReason, TriggerReason


def get_variables(station: Station, requests: Sequence[GetRequest]) -> call_result.GetVariables:
    """B06: one result per requested variable, in request order."""
    return get_variables_result([station.device_model.get(r) for r in requests])


def set_variables(station: Station, requests: Sequence[SetRequest]) -> call_result.SetVariables:
    """B05: apply each element on its own; HeartbeatInterval/TxUpdatedInterval act on next use."""
    return set_variables_result([station.device_model.set(r) for r in requests])


def get_base_report(
    station: Station, request_id: int, report_base: str
) -> tuple[call_result.GetBaseReport, FollowUp | None]:
    """B07: Accepted, then the report follows as NotifyReport pages after the answer."""
    variables = station.device_model.report(report_base)
    if variables is None:
        return call_result.GetBaseReport(status="NotSupported"), None
    if not variables:
        return call_result.GetBaseReport(status="EmptyResultSet"), None
    per_message = station.device_model.read_int("DeviceDataCtrlr", "ItemsPerMessage")

    async def send_report() -> None:
        # asked right after boot, the answer may leave before the station is online
        try:
            await asyncio.wait_for(station.online.wait(), station.config.response_timeout)
        except TimeoutError:
            return  # offline: the CSMS asks again
        pages = notify_report_calls(
            request_id=request_id,
            now=station.clock.now(),
            variables=variables,
            per_message=per_message,
        )
        for page in pages:
            try:
                await station.send(page)
            except CallErrorReceived as exc:
                station.report(exc)
                return
            except (CallFailed, NotConnected):
                return  # the link dropped: the CSMS asks again

    return call_result.GetBaseReport(status="Accepted"), send_report


def reset(
    station: Station, reset_type: str, evse_id: int | None
) -> tuple[call_result.Reset, FollowUp | None]:
    """B11/B12: Immediate stops transactions and reboots; OnIdle waits for them to end."""
    if evse_id is not None:
        return call_result.Reset(
            status="Rejected", status_info={"reason_code": "EvseResetNotSupp"}
        ), None
    running = station.running_transactions()
    if reset_type == "OnIdle" and running:
        station.reset_pending = True
        return call_result.Reset(status="Scheduled"), None
    return call_result.Reset(status="Accepted"), lambda: perform_reset(station)


async def perform_reset(station: Station, poll: float = 0.01) -> None:
    """End every transaction (ImmediateReset), flush what can be sent, then ask for a reboot."""
    station.reset_pending = False  # this reset supersedes a scheduled one: reboot only once
    for transaction_id in station.running_transactions():
        station.request_stop(
            transaction_id, TriggerReason.RESET_COMMAND, StoppedReason.IMMEDIATE_RESET
        )
    while station.running_transactions():
        await asyncio.sleep(poll)
    if station.online.is_set():
        await station.flush()
    station.reboot.set()
