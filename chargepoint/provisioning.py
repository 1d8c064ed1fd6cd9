"""CSMS-initiated Provisioning calls (OCPP 2.0.1 part B): GetVariables, SetVariables, Reset.

Each function takes the station and the converted arguments and returns the result
dataclass plus, where the call has consequences, a follow-up to run after the answer is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ocpp.v201 import call_result

from chargepoint.device_model import GetRequest, SetRequest
from chargepoint.payloads import get_variables_result, set_variables_result
from chargepoint.station import FollowUp, Station
from chargepoint.transaction import StoppedReason, TriggerReason


def get_variables(station: Station, requests: Sequence[GetRequest]) -> call_result.GetVariables:
    """B06: one result per requested variable, in request order."""
    return get_variables_result([station.device_model.get(r) for r in requests])


def set_variables(station: Station, requests: Sequence[SetRequest]) -> call_result.SetVariables:
    """B05: apply each element on its own; HeartbeatInterval/TxUpdatedInterval act on next use."""
    return set_variables_result([station.device_model.set(r) for r in requests])


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
