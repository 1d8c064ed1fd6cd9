"""OCPP 1.6 Core profile, MeterValues: in a transaction an ``Updated`` event, else the station's.

A message naming a transaction becomes the next seqNo of that transaction, keyed by a digest
of its content so an identical resend maps to the same seqNo and is ignored. Readings for a
transaction already stopped are kept as the station's own and do not change the closed session
(REAL_HARDWARE.md: close sessions on the transaction's end).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from csms.blocks16.metering import parse_meter_values_16
from csms.blocks16.records import updated_record
from csms.blocks16.transactions import store_event
from csms.context import StationContext
from csms.ocpp.rpc import Handler
from csms.store.ocpp16 import Ocpp16Store
from csms.store.retention import METER_VALUES

log = logging.getLogger(__name__)


def content_key(payload: dict[str, Any]) -> str:
    """What identifies one MeterValues message across resends: a digest of what it says."""
    canonical = json.dumps(
        [payload["connectorId"], payload["meterValue"]], sort_keys=True, separators=(",", ":")
    )
    return "mv:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def on_meter_values(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    payload = {
        **payload,
        "meterValue": ctx.limit_sampled_values(payload["meterValue"], "MeterValues"),
    }
    transaction_id = payload.get("transactionId")
    store16 = Ocpp16Store(services.store)
    if transaction_id is not None and not await store16.is_stopped(ctx.station_id, transaction_id):
        # Convert before allocating a seqNo, so a rejected message leaves no gap behind.
        updated_record(ctx.station_id, transaction_id, 0, payload)
        key = content_key(payload)
        # past max_events_per_transaction a new message allocates nothing (a resend still
        # maps to its seqNo): refused for a strict station, not stored for a tolerant one
        if not await store16.event_allowed(
            ctx.station_id, transaction_id, key, services.sample_limit(tolerant=ctx.tolerant)
        ):
            ctx.events_past_limit(str(transaction_id), "MeterValues")
            return {}
        seq_no, _ = await store16.sequence_number(ctx.station_id, transaction_id, key)
        await store_event(ctx, updated_record(ctx.station_id, transaction_id, seq_no, payload))
        return {}
    if transaction_id is not None:
        log.info(
            "%s: MeterValues for stopped transaction %d kept as station readings",
            ctx.station_id,
            transaction_id,
        )
    samples = parse_meter_values_16(payload["meterValue"])
    removed = await services.store.record_meter_values(
        ctx.station_id, payload["connectorId"], samples, keep=services.keep(METER_VALUES)
    )
    services.pruned(ctx.station_id, METER_VALUES, removed)
    return {}


HANDLERS: dict[str, Handler[StationContext]] = {"MeterValues": on_meter_values}
