"""Station16: events go out as StartTransaction / MeterValues / StopTransaction, in order,
under the CSMS's integer transactionId, also when they were queued offline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.errors import ChargePointError, Rejected
from chargepoint.metering import ReadingContext
from chargepoint.transaction import IdToken, StoppedReason, TriggerReason, TxEvent
from chargepoint.v16.station import Station16
from tests.chargepoint.fakes import FakeLink
from tests.chargepoint.v16.builders import make

TOKEN = IdToken("TAG1")


def answers(transaction_id: int = 42, status: str = "Accepted") -> FakeLink:
    def answer(payload: Any) -> Any:
        name = type(payload).__name__
        if name == "StartTransaction":
            return SimpleNamespace(transaction_id=transaction_id, id_tag_info={"status": status})
        if name in ("Authorize", "StopTransaction"):
            return SimpleNamespace(id_tag_info={"status": status})
        return SimpleNamespace()

    return FakeLink(answer)


def session_events(station: Station16, updates: int = 1) -> list[TxEvent]:
    """Started, ``updates`` Updated and Ended events of one session on EVSE 1."""
    evse = station.evses[1]
    events = [
        evse.begin(
            now=station.clock.now(),
            transaction_id="tx-1",
            id_token=TOKEN,
            trigger=TriggerReason.AUTHORIZED,
            meter=station.sample(
                evse,
                ReadingContext.TRANSACTION_BEGIN,
                "TxStartedMeasurands",
                starting=("tx-1", TOKEN),
            ),
        )
    ]
    for _ in range(updates):
        meter = station.sample(evse, ReadingContext.SAMPLE_PERIODIC, "TxUpdatedMeasurands")
        events.append(
            evse.update(
                now=station.clock.now(), trigger=TriggerReason.METER_VALUE_PERIODIC, meter=meter
            )
        )
    meter = station.sample(evse, ReadingContext.TRANSACTION_END, "TxEndedMeasurands")
    events.append(
        evse.end(
            now=station.clock.now(),
            trigger=TriggerReason.STOP_AUTHORIZED,
            reason=StoppedReason.LOCAL,
            meter=meter,
        )
    )
    return events


async def test_a_session_maps_onto_start_meter_values_and_stop() -> None:
    station = make(Station16)
    link = answers(transaction_id=42)
    await station.go_online(link)
    for event in session_events(station, updates=2):
        await station.submit(event)
    assert link.actions() == [
        "StatusNotification",
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    start, *values, stop = link.sent[1:]
    assert start.id_tag == "TAG1" and start.connector_id == 1
    assert all(v.transaction_id == 42 for v in values)
    assert stop.transaction_id == 42 and stop.id_tag == "TAG1"
    assert stop.meter_stop > start.meter_start
    contexts = [m["sampled_value"][0]["context"] for m in stop.transaction_data]
    assert contexts == ["Transaction.Begin", "Transaction.End"]
    assert station.csms_ids == {}  # forgotten once stopped


async def test_events_queued_offline_go_out_in_order_once_online() -> None:
    station = make(Station16)
    for event in session_events(station, updates=1):
        await station.submit(event)  # no link yet
    link = answers(transaction_id=7)
    await station.go_online(link)
    assert link.actions()[1:] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert link.sent[-1].transaction_id == 7
    assert len(station.queue) == 0


async def test_start_not_accepted_stops_the_transaction_and_is_reported() -> None:
    errors: list[ChargePointError] = []
    station = make(Station16, errors=errors)
    await station.go_online(answers(status="Invalid"))
    stop = station.register_stop("tx-1")
    await station.submit(session_events(station, updates=0)[0])
    assert stop.event.is_set() and stop.reason is StoppedReason.DE_AUTHORIZED
    assert isinstance(errors[0], Rejected) and errors[0].status == "Invalid"


async def test_csms_ids_lead_back_to_running_transactions_only() -> None:
    station = make(Station16)
    evse = station.evses[1]
    started = evse.begin(
        now=station.clock.now(),
        transaction_id="tx-1",
        id_token=TOKEN,
        trigger=TriggerReason.AUTHORIZED,
        meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
    )
    link = answers(transaction_id=42)
    await station.go_online(link)
    await station.submit(started)
    assert link.actions()[-2:] == ["StartTransaction", "StatusNotification"]
    assert link.sent[-1].status == "Charging" and link.sent[-1].connector_id == 1
    assert station.transaction_for(42) == "tx-1"
    assert station.csms_id_of(evse) == 42
    assert station.transaction_for(43) is None
    evse.end(
        now=station.clock.now(),
        trigger=TriggerReason.STOP_AUTHORIZED,
        reason=StoppedReason.LOCAL,
        meter=station.sample(evse, ReadingContext.TRANSACTION_END, "TxEndedMeasurands"),
    )
    assert station.transaction_for(42) is None  # no longer running here


async def test_authorize_sends_a_16_id_tag() -> None:
    station = make(Station16)
    link = answers(status="Blocked")
    await station.go_online(link)
    try:
        await station.authorize(TOKEN)
    except Rejected as exc:
        assert exc.status == "Blocked"
    else:
        raise AssertionError("a Blocked idTag must be rejected")
    assert link.sent[-1].id_tag == "TAG1"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=4))
def test_every_session_is_one_start_its_values_and_one_stop(updates: list[int]) -> None:
    """Whatever the number of sessions and samples, each Stop names its own Start's id."""
    import asyncio

    async def run() -> None:
        ids = iter(range(100, 200))

        def answer(payload: Any) -> Any:
            if type(payload).__name__ == "StartTransaction":
                return SimpleNamespace(transaction_id=next(ids), id_tag_info={"status": "Accepted"})
            return SimpleNamespace(id_tag_info=None)

        station = make(Station16)
        link = FakeLink(answer)
        await station.go_online(link)
        for count in updates:
            for event in session_events(station, updates=count):
                await station.submit(event)
        sent = link.sent[1:]
        current = None
        for payload in sent:
            name = type(payload).__name__
            if name == "StartTransaction":
                assert current is None
                current = 100 + sum(
                    1 for p in sent[: sent.index(payload)] if type(p).__name__ == name
                )
            elif name == "MeterValues":
                assert payload.transaction_id == current
            else:
                assert payload.transaction_id == current
                current = None
        assert current is None
        assert sum(type(p).__name__ == "StopTransaction" for p in sent) == len(updates)

    asyncio.run(run())
