from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.errors import CallErrorReceived, CallTimeout, ChargePointError, Rejected
from chargepoint.metering import ReadingContext
from chargepoint.sessions import run_session
from chargepoint.transaction import IdToken, TriggerReason
from tests.chargepoint.fakes import FakeLink, default_answer, make_station

TOKEN = IdToken("04AA", "ISO14443")


def events(link: FakeLink) -> list[Any]:
    return [p for p in link.sent if type(p).__name__ == "TransactionEvent"]


async def test_session_sends_authorize_started_updates_ended_in_order() -> None:
    station = make_station(tx_updated_interval=60)
    link = FakeLink()
    await station.go_online(link)
    assert await run_session(station, station.evses[1], TOKEN, seconds=300) is True
    sent = events(link)
    assert [e.event_type for e in sent] == ["Started"] + ["Updated"] * 4 + ["Ended"]
    assert [e.seq_no for e in sent] == list(range(6))
    assert link.actions()[:3] == ["StatusNotification", "StatusNotification", "Authorize"]
    assert link.actions()[-1] == "StatusNotification"
    assert link.sent[-1].connector_status == "Available"
    assert station.sessions_completed == 1
    assert not station.running_transactions()


async def test_events_while_offline_are_queued_then_replayed_first_with_same_seq_no() -> None:
    station = make_station()
    link = FakeLink()
    await station.go_online(link)
    evse = station.evses[1]
    await station.authorize(TOKEN)

    def update() -> Any:
        return evse.update(
            now=station.clock.now(),
            trigger=TriggerReason.METER_VALUE_PERIODIC,
            meter=station.sample(evse, ReadingContext.SAMPLE_PERIODIC, "TxUpdatedMeasurands"),
        )

    await station.submit(
        evse.begin(
            now=station.clock.now(),
            transaction_id="tx-9",
            id_token=TOKEN,
            trigger=TriggerReason.AUTHORIZED,
            meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
        )
    )
    station.go_offline()
    await station.submit(update())
    await station.submit(update())
    assert [e.seq_no for e in station.queue.pending()] == [1, 2]
    fresh = FakeLink()
    await station.go_online(fresh)
    await station.submit(update())
    replay = events(fresh)
    assert [(e.seq_no, e.offline) for e in replay] == [(1, True), (2, True), (3, None)]
    assert len(station.queue) == 0


async def test_a_failed_send_keeps_the_event_at_the_head_marked_offline() -> None:
    station = make_station()

    def flaky(payload: Any) -> Any:
        if type(payload).__name__ == "TransactionEvent":
            raise CallTimeout("no answer")
        return default_answer(payload)

    await station.go_online(FakeLink(flaky))
    await run_session(station, station.evses[1], TOKEN, seconds=120)
    pending = station.queue.pending()
    assert [e.seq_no for e in pending] == list(range(len(pending)))
    assert all(e.offline for e in pending)
    ok = FakeLink()
    await station.go_online(ok)
    assert [e.seq_no for e in events(ok)] == list(range(len(pending)))
    assert all(e.offline for e in events(ok))


async def test_callerror_on_an_event_is_reported_and_not_retried() -> None:
    errors: list[ChargePointError] = []
    station = make_station(errors=errors)

    def refuse(payload: Any) -> Any:
        if type(payload).__name__ == "TransactionEvent":
            raise CallErrorReceived("TransactionEvent", "FormatViolation", "bad")
        return default_answer(payload)

    link = FakeLink(refuse)
    await station.go_online(link)
    await run_session(station, station.evses[1], TOKEN, seconds=60)
    assert len(station.queue) == 0
    assert errors and all(isinstance(e, CallErrorReceived) for e in errors)


async def test_invalid_token_raises_rejected_and_frees_the_evse() -> None:
    station = make_station()

    def invalid(payload: Any) -> Any:
        if type(payload).__name__ == "Authorize":
            return SimpleNamespace(id_token_info={"status": "Invalid"})
        return default_answer(payload)

    link = FakeLink(invalid)
    await station.go_online(link)
    try:
        await run_session(station, station.evses[1], TOKEN, seconds=60)
    except Rejected as exc:
        assert exc.status == "Invalid"
    else:
        raise AssertionError("an Invalid idToken must raise Rejected")
    assert station.evses[1].idle
    assert events(link) == []
    assert link.sent[-1].connector_status == "Available"


async def test_transaction_event_answer_with_invalid_token_is_reported() -> None:
    errors: list[ChargePointError] = []
    station = make_station(errors=errors)

    def deauthorize(payload: Any) -> Any:
        if type(payload).__name__ == "TransactionEvent":
            return SimpleNamespace(id_token_info={"status": "Blocked"})
        return default_answer(payload)

    link = FakeLink(deauthorize)
    await station.go_online(link)
    await run_session(station, station.evses[1], TOKEN, seconds=3600)
    assert any(isinstance(e, Rejected) and e.status == "Blocked" for e in errors)
    sent = events(link)
    assert [e.event_type for e in sent] == ["Started", "Ended"]  # stopped at once, no updates
    assert sent[-1].trigger_reason == "Deauthorized"
    assert sent[-1].transaction_info["stopped_reason"] == "DeAuthorized"


async def test_offline_session_cannot_start_without_authorize() -> None:
    station = make_station()
    assert await run_session(station, station.evses[1], TOKEN, seconds=60) is False
    assert station.evses[1].idle and len(station.queue) == 0


class ScriptedLink(FakeLink):
    """Acknowledges TransactionEvents unless told to fail the next ``failures`` sends."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.acked: list[Any] = []

    async def send(self, payload: Any) -> Any:
        result = await super().send(payload)
        if type(payload).__name__ == "TransactionEvent":
            if self.failures:
                self.failures -= 1
                raise CallTimeout("scripted failure")
            self.acked.append(payload)
        return result


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["event", "event", "drop", "up", "fail"]), max_size=40))
def test_any_mix_of_outages_delivers_each_event_once_in_order(ops: list[str]) -> None:
    async def scenario() -> None:
        station = make_station()
        evse = station.evses[1]
        links: list[ScriptedLink] = [ScriptedLink()]
        await station.go_online(links[-1])
        evse.begin(
            now=station.clock.now(),
            transaction_id="tx",
            id_token=TOKEN,
            trigger=TriggerReason.AUTHORIZED,
            meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
        )
        produced_offline: set[int] = set()
        for op in ops:
            if op == "event":
                event = evse.update(
                    now=station.clock.now(), trigger=TriggerReason.METER_VALUE_PERIODIC, meter=None
                )
                if not station.online.is_set():
                    produced_offline.add(event.seq_no)
                await station.submit(event)
            elif op == "drop":
                station.go_offline()
            elif op == "up" and not station.online.is_set():
                links.append(ScriptedLink())
                await station.go_online(links[-1])
            elif op == "fail":
                links[-1].failures += 1
        station.go_offline()
        links.append(ScriptedLink())
        await station.go_online(links[-1])
        delivered = [p for link in links for p in link.acked]
        assert [p.seq_no for p in delivered] == list(range(1, evse.transaction.next_seq_no))
        for payload in delivered:
            if payload.seq_no in produced_offline:
                assert payload.offline is True
        assert len(station.queue) == 0

    asyncio.run(scenario())
