"""Events per transaction (``max_events_per_transaction``): past the limit a strict station's
Started or Updated is refused with OccurrenceConstraintViolation naming it, a tolerant one's is
acknowledged, not stored, logged and counted; an Ended is always stored, a resend is answered
as before. Real CSMS (SQLite file, or PostgreSQL) and stations over real websockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from tests.csms.builders import transaction_event
from tests.csms.conftest import PASSWORD, STATION, open_client

OCCURRENCE_201 = "OccurenceConstraintViolation"  # as OCPP 1.6 and 2.0.1 spell it
EVENTS = 3


@pytest.fixture
async def app(tmp_path: Path, database: str) -> AsyncIterator[CsmsApp]:
    on = database if is_postgresql_url(database) else ""
    config = CsmsConfig(
        port=0, close_timeout=0.3, call_timeout=5, database=on,
        max_events_per_transaction=EVENTS,
    )  # fmt: skip
    csms = await start_csms(tmp_path / "data", config)
    await csms.store.add_station(STATION, hash_password(PASSWORD), "2026-11-25T09:00:00.000Z")
    yield csms
    await csms.stop()


def event(kind: str, seq: int, wh: int) -> dict[str, Any]:
    return transaction_event(kind, seq, timestamp=f"2026-11-25T10:{seq:02d}:00.000Z", import_wh=wh)


async def test_strict_station_past_the_events_limit_gets_occurrence_violation(
    app: CsmsApp,
) -> None:
    client = await open_client(app)
    try:
        for seq in range(EVENTS):
            kind = "Started" if seq == 0 else "Updated"
            assert (await client.call("TransactionEvent", event(kind, seq, 1000 + seq)))[0] == 3
        answer = await client.call("TransactionEvent", event("Updated", EVENTS, 1100))
        assert answer[0] == 4 and answer[2] == OCCURRENCE_201, answer
        assert "max_events_per_transaction" in answer[3] and str(EVENTS) in answer[3]
        resend = await client.call("TransactionEvent", event("Updated", 1, 1001))
        assert resend[0] == 3  # a resend of a stored event is answered as before
        ended = await client.call("TransactionEvent", event("Ended", EVENTS + 1, 1200))
        assert ended[0] == 3, ended
    finally:
        await client.ws.close()
    stored = [e["seq_no"] for e in await app.store.transaction_events(STATION, "tx-1")]
    assert stored == [0, 1, 2, EVENTS + 1]
    session = await app.store.get_session(STATION, "tx-1")
    assert session is not None and session.state == "ended" and session.import_wh == 200


async def test_tolerant_station_past_the_events_limit_is_not_stored_but_counted(
    app: CsmsApp,
) -> None:
    await app.store.set_tolerance(STATION, "tolerant")
    client = await open_client(app)
    try:
        for seq in range(EVENTS + 4):
            kind = "Started" if seq == 0 else "Updated"
            assert (await client.call("TransactionEvent", event(kind, seq, 1000 + seq)))[0] == 3
    finally:
        await client.ws.close()
    stored = [e["seq_no"] for e in await app.store.transaction_events(STATION, "tx-1")]
    assert stored == [0, 1, 2]
    assert app.server.tolerated[STATION]["events_per_transaction"] == 4


@pytest.mark.parametrize("tolerance", ["strict", "tolerant"])
async def test_ocpp16_meter_values_past_the_events_limit_allocate_nothing(
    app: CsmsApp, tolerance: str
) -> None:
    await app.store.set_tolerance(STATION, tolerance)
    client = await open_client(app, subprotocols=["ocpp1.6"])
    start = {"connectorId": 1, "idTag": "TAG-16", "meterStart": 1000,
             "timestamp": "2026-11-25T10:00:00Z"}  # fmt: skip
    try:
        answer = await client.call("StartTransaction", start)
        assert answer[0] == 3, answer
        tx = answer[2]["transactionId"]
        answers = []
        for minute in range(1, 8):
            values = {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": f"2026-11-25T10:{minute:02d}:00Z",
                        "sampledValue": [{"value": str(1000 + 100 * minute)}],
                    }
                ],
            }
            answers.append(await client.call("MeterValues", values))
    finally:
        await client.ws.close()
    kinds = [a[0] for a in answers]
    # the Started and two MeterValues fill the three events; the other five are past it
    assert kinds == [3, 3] + ([4] * 5 if tolerance == "strict" else [3] * 5), answers
    keys = await app.store.fetchone(
        "SELECT COUNT(*) FROM ocpp16_event_keys WHERE station_id = ? AND transaction_id = ?",
        (STATION, tx),
    )
    assert keys[0] == EVENTS  # nothing allocated for the messages past the limit
    if tolerance == "tolerant":
        assert app.server.tolerated[STATION]["events_per_transaction"] == 5
