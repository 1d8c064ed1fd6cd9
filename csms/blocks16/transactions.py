"""OCPP 1.6 Core profile, transactions: StartTransaction and StopTransaction.

Both become events of the one session model (see ``records``) through
``CsmsStore.record_transaction_event``, so a 1.6 session is stored, closed and settled like a
2.0.1 one. The CSMS assigns the integer transactionId; a resent StartTransaction gets the same
id, a resent StopTransaction the same seqNo, and the session model ignores the duplicate. A
StopTransaction for a transaction the CSMS never saw is acknowledged and kept as its own session.
"""

from __future__ import annotations

import logging
from typing import Any

from csms.blocks16.authorization import authorize_id_tag
from csms.blocks16.records import ended_record, started_record
from csms.context import StationContext
from csms.model import TransactionEventRecord
from csms.ocpp.rpc import Handler
from csms.store.ocpp16 import START_KEY, STOP_KEY, Ocpp16Store

log = logging.getLogger(__name__)


async def store_event(ctx: StationContext, record: TransactionEventRecord) -> bool:
    """Fold one event into the session model, once (its running cost kept with it)."""
    is_new = await ctx.record_event(record)
    if not is_new:
        log.info(
            "%s: duplicate 1.6 %s of transaction %s (seqNo %d) ignored",
            record.station_id,
            record.event_type,
            record.transaction_id,
            record.seq_no,
        )
        return False
    return True


async def on_start_transaction(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    info, token_type = await authorize_id_tag(services, payload["idTag"])
    # Convert before an id is assigned, so a refused message leaves nothing behind.
    started_record(ctx.station_id, 0, payload, id_token_type=token_type)
    store16 = Ocpp16Store(services.store)
    transaction_id, _ = await store16.start_transaction(
        ctx.station_id,
        connector_id=payload["connectorId"],
        id_tag=payload["idTag"],
        meter_start=payload["meterStart"],
        started_at=payload["timestamp"],
        reservation_id=payload.get("reservationId"),
        created_at=services.now_text(),
    )
    record = started_record(ctx.station_id, transaction_id, payload, id_token_type=token_type)
    await store16.sequence_number(ctx.station_id, transaction_id, START_KEY)
    await store_event(ctx, record)
    return {"idTagInfo": info, "transactionId": transaction_id}


async def on_stop_transaction(ctx: StationContext, payload: dict[str, Any]) -> dict[str, Any]:
    services = ctx.services
    store16 = Ocpp16Store(services.store)
    transaction_id = payload["transactionId"]
    started = await store16.get_transaction(ctx.station_id, transaction_id)
    if started is None:
        log.warning(
            "%s: StopTransaction for unknown transaction %d", ctx.station_id, transaction_id
        )
    id_tag = payload.get("idTag")
    info: dict[str, Any] | None = None
    token_type: str | None = None
    if id_tag is not None:
        info, token_type = await authorize_id_tag(services, id_tag)
    connector_id = None if started is None else started.connector_id
    # Convert before the stop is numbered, so a refused message does not mark it stopped.
    ended_record(
        ctx.station_id, transaction_id, 0, payload, connector_id=connector_id, id_token_type=None
    )
    seq_no, _ = await store16.sequence_number(ctx.station_id, transaction_id, STOP_KEY)
    record = ended_record(
        ctx.station_id,
        transaction_id,
        seq_no,
        payload,
        connector_id=connector_id,
        id_token_type=token_type,
    )
    await store_event(ctx, record)
    return {} if info is None else {"idTagInfo": info}


HANDLERS: dict[str, Handler[StationContext]] = {
    "StartTransaction": on_start_transaction,
    "StopTransaction": on_stop_transaction,
}
