"""Block E, Transactions: TransactionEvent (E01-E15).

Idempotent on (station, transactionId, seqNo): a duplicate is acknowledged and changes nothing;
offline-queued and out-of-order events are stored once and folded into the session by rules
that do not depend on arrival order. An Ended for a transaction never seen is acknowledged and
recorded as a session of its own.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from csms.blocks.authorization import authorize_token
from csms.context import StationContext
from csms.errors import PropertyConstraintViolation
from csms.metering import parse_meter_values
from csms.model import TransactionEventRecord
from csms.ocpp.rpc import Handler
from csms.settlement import total_cost
from csms.timeutil import parse_timestamp

log = logging.getLogger(__name__)


def to_record(station_id: str, payload: dict[str, Any]) -> TransactionEventRecord:
    """Convert a TransactionEventRequest into the CSMS's own record (at the boundary)."""
    info = payload["transactionInfo"]
    evse = payload.get("evse") or {}
    token = payload.get("idToken") or {}
    try:
        timestamp = parse_timestamp(payload["timestamp"])
    except ValueError as exc:
        raise PropertyConstraintViolation(f"timestamp: {exc}") from None
    return TransactionEventRecord(
        station_id=station_id,
        transaction_id=info["transactionId"],
        seq_no=payload["seqNo"],
        event_type=payload["eventType"],
        trigger_reason=payload["triggerReason"],
        offline=bool(payload.get("offline", False)),
        timestamp=timestamp,
        evse_id=evse.get("id"),
        connector_id=evse.get("connectorId"),
        id_token=token.get("idToken"),
        id_token_type=token.get("type"),
        stopped_reason=info.get("stoppedReason"),
        charging_state=info.get("chargingState"),
        raw=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        samples=parse_meter_values(payload.get("meterValue", [])),
    )


async def on_transaction_event(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    if payload.get("eventType") != "Ended" and "meterValue" in payload:
        # an Ended is always stored (its session closes); its samples are held to the
        # per-transaction limit when stored
        meter_values = ctx.limit_sampled_values(payload["meterValue"], "TransactionEvent")
        payload = {**payload, "meterValue": meter_values}
    record = to_record(ctx.station_id, payload)
    is_new = await ctx.record_event(record)  # its running cost is kept with it
    if not is_new:
        log.info(
            "%s: duplicate TransactionEvent %s seqNo %d ignored",
            ctx.station_id,
            record.transaction_id,
            record.seq_no,
        )
    response: dict[str, Any] = {}
    cost = await _cost(ctx, record)
    if cost is not None:
        response["totalCost"] = cost
    if record.id_token is not None and record.id_token_type is not None:
        response["idTokenInfo"] = await authorize_token(
            services, record.id_token, record.id_token_type
        )
    return response


async def _cost(ctx: StationContext, record: TransactionEventRecord) -> float | None:
    """``totalCost``: the settled amount, on Ended only.

    The schema says totalCost "SHALL only be sent when charging has ended"; while a session runs
    its cost goes to the station in CostUpdated (``csms.dispatching``).
    """
    if record.event_type != "Ended":
        return None
    settlement = await ctx.services.store.settlement_for_session(
        ctx.station_id, record.transaction_id
    )
    if settlement is None or settlement.amount is None:
        return None
    return total_cost(settlement.amount)


HANDLERS: dict[str, Handler[StationContext]] = {"TransactionEvent": on_transaction_event}
