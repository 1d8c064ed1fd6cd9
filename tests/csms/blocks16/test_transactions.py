"""1.6 transaction handlers on the session model, driven without sockets.

Whatever a station resends (StartTransaction after a lost answer, MeterValues twice, a duplicate
StopTransaction after a reboot, readings after the stop), the session ends with the register
deltas of what it actually measured, numbered Started 0 .. Ended highest, with no gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csms.blocks16 import HANDLERS_16
from csms.blocks16.core import accept_data, data_transfer_handler
from csms.config import CsmsConfig
from csms.context import CsmsServices, StationContext
from csms.errors import PropertyConstraintViolation
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP16
from csms.store.ocpp16 import Ocpp16Store
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SCHEMAS = SchemaSet(OCPP16)


async def open_context() -> StationContext:
    store = await CsmsStore.open(":memory:")
    services = CsmsServices(store=store, config=CsmsConfig(), clock=lambda: T0)
    return StationContext("CS-16", services)


@pytest.fixture
async def ctx() -> AsyncIterator[StationContext]:
    context = await open_context()
    try:
        yield context
    finally:
        await context.services.store.close()


async def handle(
    ctx: StationContext, action: str, payload: dict[str, Any], *, validate: bool = True
) -> dict[str, Any]:
    """Validate both ways like the dispatcher does (unless told: a tolerated request), and run
    the 1.6 handler."""
    if validate:
        SCHEMAS.validate_request(action, payload)
    result = await HANDLERS_16[action](ctx, payload)
    SCHEMAS.validate_response(action, result)
    return result


def registers(at: datetime, import_wh: int, export_wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": format_timestamp(at),
        "sampledValue": [
            {"value": str(import_wh), "context": context},
            {
                "value": f"{export_wh / 1000:.3f}",
                "measurand": "Energy.Active.Export.Register",
                "unit": "kWh",
                "context": context,
            },
        ],
    }


steps = st.lists(
    st.tuples(st.integers(0, 4_000), st.integers(0, 4_000), st.integers(1, 3)), max_size=6
)


@settings(max_examples=40, deadline=None)
@given(
    steps=steps,
    first_import=st.integers(0, 10**7),
    first_export=st.integers(0, 10**6),
    start_copies=st.integers(1, 2),
    stop_copies=st.integers(1, 2),
    late_reading=st.booleans(),
)
def test_resends_never_change_what_the_session_measured(
    steps: list[tuple[int, int, int]],
    first_import: int,
    first_export: int,
    start_copies: int,
    stop_copies: int,
    late_reading: bool,
) -> None:
    asyncio.run(
        scenario(steps, first_import, first_export, start_copies, stop_copies, late_reading)
    )


async def scenario(
    steps: list[tuple[int, int, int]],
    first_import: int,
    first_export: int,
    start_copies: int,
    stop_copies: int,
    late_reading: bool,
) -> None:
    ctx = await open_context()
    try:
        await run_session(
            ctx, steps, first_import, first_export, start_copies, stop_copies, late_reading
        )
    finally:
        await ctx.services.store.close()


async def run_session(
    ctx: StationContext,
    steps: list[tuple[int, int, int]],
    first_import: int,
    first_export: int,
    start_copies: int,
    stop_copies: int,
    late_reading: bool,
) -> None:
    store = ctx.services.store
    start = {
        "connectorId": 1,
        "idTag": "TAG",
        "meterStart": first_import,
        "timestamp": format_timestamp(T0),
    }
    ids = {(await handle(ctx, "StartTransaction", start))["transactionId"]}
    for _ in range(start_copies - 1):
        ids.add((await handle(ctx, "StartTransaction", start))["transactionId"])
    assert len(ids) == 1
    (transaction_id,) = ids
    imported, exported = first_import, first_export
    at = T0
    for import_inc, export_inc, copies in steps:
        imported += import_inc
        exported += export_inc
        at += timedelta(minutes=5)
        message = {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [registers(at, imported, exported, "Sample.Periodic")],
        }
        for _ in range(copies):
            assert await handle(ctx, "MeterValues", message) == {}
    at += timedelta(minutes=5)
    stop = {
        "transactionId": transaction_id,
        "meterStop": imported,
        "timestamp": format_timestamp(at),
        "transactionData": [
            registers(T0, first_import, first_export, "Transaction.Begin"),
            registers(at, imported, exported, "Transaction.End"),
        ],
    }
    for _ in range(stop_copies):
        await handle(ctx, "StopTransaction", stop)
    if late_reading:
        late = {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [registers(at, imported + 999, exported + 999, "Sample.Periodic")],
        }
        await handle(ctx, "MeterValues", late)
    session = await store.get_session("CS-16", str(transaction_id))
    assert session is not None and session.state == "ended"
    assert session.import_wh == imported - first_import
    assert session.export_wh == exported - first_export
    events = await store.transaction_events("CS-16", str(transaction_id))
    kinds = [e["event_type"] for e in events]
    assert kinds == ["Started", *["Updated"] * len(steps), "Ended"]
    assert [e["seq_no"] for e in events] == list(range(len(steps) + 2))


async def test_a_refused_stop_leaves_the_transaction_open(ctx: StationContext) -> None:
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-11-25T10:00:00Z"}
    transaction_id = (await handle(ctx, "StartTransaction", start))["transactionId"]
    zoneless = {"transactionId": transaction_id, "meterStop": 9, "timestamp": "2026-11-25T11:00:00"}
    with pytest.raises(PropertyConstraintViolation):
        await handle(ctx, "StopTransaction", zoneless, validate=False)
    assert not await Ocpp16Store(ctx.services.store).is_stopped("CS-16", transaction_id)
    fixed = {**zoneless, "timestamp": "2026-11-25T11:00:00Z"}
    await handle(ctx, "StopTransaction", fixed)
    session = await ctx.services.store.get_session("CS-16", str(transaction_id))
    assert session is not None and session.state == "ended" and session.last_seq_no == 1


async def test_a_refused_start_assigns_no_id(ctx: StationContext) -> None:
    zoneless = {
        "connectorId": 1,
        "idTag": "TAG",
        "meterStart": 0,
        "timestamp": "2026-11-25T10:00:00",
    }
    with pytest.raises(PropertyConstraintViolation):
        await handle(ctx, "StartTransaction", zoneless, validate=False)
    assert await Ocpp16Store(ctx.services.store).active_transaction("CS-16", 1) is None


async def test_meter_values_outside_a_transaction_are_the_stations(ctx: StationContext) -> None:
    message = {"connectorId": 0, "meterValue": [registers(T0, 500, 0, "Sample.Clock")]}
    await handle(ctx, "MeterValues", message)
    assert await ctx.services.store.count("meter_samples") == 2
    assert await ctx.services.store.count("sessions") == 0


async def test_data_transfer_answers_configured_vendors_only(ctx: StationContext) -> None:
    transfer = {"vendorId": "com.example", "messageId": "hello", "data": "x"}
    assert await handle(ctx, "DataTransfer", transfer) == {"status": "UnknownVendorId"}
    configured = data_transfer_handler({"com.example": accept_data})
    assert await configured(ctx, transfer) == {"status": "Accepted"}
    assert await configured(ctx, {**transfer, "vendorId": "org.other"}) == {
        "status": "UnknownVendorId"
    }


def test_every_16_handler_has_a_16_schema() -> None:
    for action in HANDLERS_16:
        assert OCPP16.request_schema(action).is_file(), action
        assert OCPP16.response_schema(action).is_file(), action
