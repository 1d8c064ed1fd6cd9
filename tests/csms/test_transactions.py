"""TransactionEvents are idempotent on (station, transactionId, seqNo) over real sockets."""

from __future__ import annotations

import random

import pytest

from csms.app import CsmsApp
from csms.model import TokenRecord
from tests.csms.builders import transaction_event
from tests.csms.conftest import STATION, open_client


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


def session_events(transaction_id: str = "tx-1") -> list[dict[str, object]]:
    return [
        transaction_event(
            "Started", 0, transaction_id, timestamp="2026-11-25T10:00:00.000Z", import_wh=1000
        ),
        transaction_event(
            "Updated", 1, transaction_id, timestamp="2026-11-25T10:15:00.000Z", import_wh=3500
        ),
        transaction_event(
            "Updated",
            2,
            transaction_id,
            timestamp="2026-11-25T10:30:00.000Z",
            import_wh=3500,
            export_wh=1200,
        ),
        transaction_event(
            "Ended",
            3,
            transaction_id,
            timestamp="2026-11-25T10:45:00.000Z",
            import_wh=6000,
            export_wh=1200,
        ),
    ]


async def test_full_session_is_recorded(csms: CsmsApp) -> None:
    client = await open_client(csms)
    for event in session_events():
        answer = await client.call("TransactionEvent", event)
        assert answer[0] == 3, answer
    session = await csms.store.get_session(STATION, "tx-1")
    assert session is not None
    assert session.state == "ended"
    assert session.started_at == "2026-11-25T10:00:00.000Z"
    assert session.ended_at == "2026-11-25T10:45:00.000Z"
    assert (session.import_wh, session.export_wh) == (5000, 1200)
    assert session.event_count == 4 and session.last_seq_no == 3
    assert session.stopped_reason == "Local"
    await client.ws.close()


async def test_duplicates_offline_and_out_of_order_never_double_count(csms: CsmsApp) -> None:
    events = session_events()
    # every event twice, the later copies marked offline, in a shuffled order
    replay = events + [{**event, "offline": True} for event in events]
    random.Random(7).shuffle(replay)
    client = await open_client(csms)
    for event in replay:
        answer = await client.call("TransactionEvent", event)
        assert answer[0] == 3, answer  # always acknowledged
    session = await csms.store.get_session(STATION, "tx-1")
    assert session is not None
    assert session.event_count == 4
    assert (session.import_wh, session.export_wh) == (5000, 1200)
    assert session.state == "ended"
    assert session.started_at == "2026-11-25T10:00:00.000Z"
    assert await csms.store.count("transaction_events") == 4
    assert await csms.store.count("meter_samples") == 8
    await client.ws.close()


async def test_ended_before_updates_keeps_the_session_ended(csms: CsmsApp) -> None:
    events = session_events()
    client = await open_client(csms)
    for event in [events[0], events[3], events[1], events[2]]:
        await client.call("TransactionEvent", event)
    session = await csms.store.get_session(STATION, "tx-1")
    assert session is not None and session.state == "ended"
    assert session.ended_at == "2026-11-25T10:45:00.000Z"
    await client.ws.close()


async def test_ended_for_unknown_transaction_is_acknowledged_and_recorded(csms: CsmsApp) -> None:
    client = await open_client(csms)
    answer = await client.call(
        "TransactionEvent", transaction_event("Ended", 9, "tx-never-seen", import_wh=42)
    )
    assert answer[0] == 3 and answer[2] == {}
    session = await csms.store.get_session(STATION, "tx-never-seen")
    assert session is not None
    assert session.state == "ended" and not session.started_seen
    await client.ws.close()


async def test_token_status_comes_back_in_the_response(csms: CsmsApp) -> None:
    await csms.store.add_token(
        TokenRecord("TOKEN-OK", "ISO14443", "Accepted", "invoice", None, "2026-01-01T00:00:00Z")
    )
    client = await open_client(csms)
    known = await client.call(
        "TransactionEvent", transaction_event("Started", 0, "tx-a", id_token="TOKEN-OK")
    )
    assert known[2]["idTokenInfo"]["status"] == "Accepted"
    unknown = await client.call(
        "TransactionEvent", transaction_event("Started", 0, "tx-b", id_token="NOPE")
    )
    assert unknown[2]["idTokenInfo"]["status"] == "Unknown"
    auth = await client.call("Authorize", {"idToken": {"idToken": "NOPE", "type": "ISO14443"}})
    assert auth[2]["idTokenInfo"]["status"] == "Unknown"
    await client.ws.close()


async def test_expired_token_is_reported_expired(csms: CsmsApp) -> None:
    await csms.store.add_token(
        TokenRecord(
            "TEMP-1", "Central", "Accepted", "ledger", "2000-01-01T00:00:00.000Z", "2000-01-01"
        )
    )
    client = await open_client(csms)
    auth = await client.call("Authorize", {"idToken": {"idToken": "TEMP-1", "type": "Central"}})
    assert auth[2]["idTokenInfo"]["status"] == "Expired"
    await client.ws.close()


async def test_meter_values_and_other_notifications_are_stored(csms: CsmsApp) -> None:
    client = await open_client(csms)
    mv = await client.call(
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": "2026-11-25T10:00:00Z",
                    "sampledValue": [{"value": 1.5, "unitOfMeasure": {"unit": "kWh"}}],
                }
            ],
        },
    )
    assert mv[0] == 3
    sec = await client.call(
        "SecurityEventNotification",
        {"type": "FirmwareUpdated", "timestamp": "2026-11-25T10:00:00Z"},
    )
    assert sec[0] == 3
    report = await client.call(
        "NotifyReport",
        {"requestId": 1, "generatedAt": "2026-11-25T10:00:00Z", "seqNo": 0, "tbc": False},
    )
    assert report[0] == 3
    assert await csms.store.count("security_events") == 1
    assert await csms.store.count("reports") == 1
    assert await csms.store.count("meter_samples") == 1
    status = await client.call(
        "StatusNotification",
        {
            "timestamp": "2026-11-25T10:00:00Z",
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 1,
        },
    )
    assert status[0] == 3
    assert await csms.store.connector_statuses(STATION) == {(1, 1): "Occupied"}
    await client.ws.close()
