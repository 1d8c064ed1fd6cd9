"""Samples per message and per transaction: refused for strict stations with the CALLERROR the
specification names, cut for tolerant ones (logged and counted in /metrics)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.errors import OccurrenceConstraintViolation
from csms.metering import parse_meter_values
from csms.metrics import MetricsSnapshot, render_metrics
from csms.passwords import hash_password
from csms.sample_limits import SampleLimit, keep_samples, limit_sampled_values
from tests.csms.builders import energy_sample, transaction_event
from tests.csms.conftest import PASSWORD, STATION, open_client

OCCURRENCE_201 = "OccurenceConstraintViolation"  # as OCPP 1.6 and 2.0.1 spell it
LIMIT = 6  # samples per transaction in these tests (each energy_sample holds two)


def meter_values(n: int, wh: int = 1000) -> list[dict[str, Any]]:
    """``n`` meterValues of one import and one export register each, a minute apart."""
    return [energy_sample(f"2026-11-25T10:{m:02d}:00.000Z", wh + 100 * m) for m in range(n)]


def test_per_message_strict_refuses_naming_the_limit() -> None:
    with pytest.raises(OccurrenceConstraintViolation, match="max_sampled_values"):
        limit_sampled_values(meter_values(3), 5, tolerant=False)
    assert limit_sampled_values(meter_values(2), 5, tolerant=False) == (meter_values(2), 0)


def test_per_message_tolerant_keeps_the_first_values() -> None:
    kept, dropped = limit_sampled_values(meter_values(3), 5, tolerant=True)
    assert dropped == 1
    assert [len(mv["sampledValue"]) for mv in kept] == [2, 2, 1]
    assert kept[:2] == meter_values(2)
    kept, dropped = limit_sampled_values(meter_values(3), 2, tolerant=True)
    assert (len(kept), dropped) == (1, 4)  # a meterValue left with no value is dropped


def test_per_transaction_keeps_end_readings_first() -> None:
    samples = parse_meter_values(
        [
            energy_sample("2026-11-25T10:00:00.000Z", 1000, 0, "Sample.Periodic"),
            energy_sample("2026-11-25T10:05:00.000Z", 2000, 0, "Transaction.End"),
        ]
    )
    strict = SampleLimit(max_samples=10, reserve=2)
    with pytest.raises(OccurrenceConstraintViolation, match="max_samples_per_transaction"):
        keep_samples(strict, 9, samples, ended=False, transaction_id="tx")
    kept, dropped = keep_samples(strict, 10, samples, ended=True, transaction_id="tx")
    assert dropped == 2 and {s.context for s in kept} == {"Transaction.End"}
    tolerant = SampleLimit(max_samples=10, reserve=2, tolerant=True)
    kept, dropped = keep_samples(tolerant, 7, samples, ended=False, transaction_id="tx")
    assert (kept, dropped) == (samples[:3], 1)


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    config = CsmsConfig(
        port=0, close_timeout=0.3, call_timeout=5, max_samples_per_transaction=LIMIT,
        max_sampled_values=4,
    )  # fmt: skip
    app = await start_csms(tmp_path / "data", config)
    await app.store.add_station(STATION, hash_password(PASSWORD), "2026-11-25T09:00:00.000Z")
    yield app
    await app.stop()


def updated(seq: int, minute: int, wh: int) -> dict[str, Any]:
    return transaction_event(
        "Updated", seq, timestamp=f"2026-11-25T10:{minute:02d}:00.000Z", import_wh=wh
    )


def tolerated_metrics(app: CsmsApp) -> str:
    snapshot = MetricsSnapshot(
        connected_stations=0,
        messages={},
        call_errors={},
        tolerated=app.server.tolerated[STATION],
        rate_limited=0,
        settlements={},
        ledger_height=None,
    )
    return render_metrics(snapshot)


async def test_strict_station_past_the_transaction_limit_gets_occurrence_violation(
    small: CsmsApp,
) -> None:
    client = await open_client(small)
    start = transaction_event("Started", 0, timestamp="2026-11-25T10:00:00.000Z", import_wh=1000)
    assert (await client.call("TransactionEvent", start))[0] == 3
    assert (await client.call("TransactionEvent", updated(1, 1, 1100)))[0] == 3
    assert (await client.call("TransactionEvent", updated(2, 2, 1200)))[0] == 3
    answer = await client.call("TransactionEvent", updated(3, 3, 1300))
    assert answer[0] == 4 and answer[2] == OCCURRENCE_201, answer
    assert "max_samples_per_transaction" in answer[3] and str(LIMIT) in answer[3]
    # nothing of the refused event is stored: not the event, not its samples
    assert [e["seq_no"] for e in await small.store.transaction_events(STATION, "tx-1")] == [0, 1, 2]
    assert (await small.store.transaction_progress(STATION, "tx-1")).samples == LIMIT
    # the Ended is never refused; its end readings are kept beyond the limit
    ended = transaction_event("Ended", 4, timestamp="2026-11-25T10:04:00.000Z", import_wh=1400)
    assert (await client.call("TransactionEvent", ended))[0] == 3
    session = await small.store.get_session(STATION, "tx-1")
    assert session is not None and session.state == "ended" and session.import_wh == 400
    await client.ws.close()


async def test_tolerant_station_is_cut_logged_and_counted(
    small: CsmsApp, caplog: pytest.LogCaptureFixture
) -> None:
    await small.store.set_tolerance(STATION, "tolerant")
    client = await open_client(small)
    start = transaction_event("Started", 0, timestamp="2026-11-25T10:00:00.000Z", import_wh=1000)
    assert (await client.call("TransactionEvent", start))[0] == 3
    with caplog.at_level(logging.WARNING, logger="csms.context"):
        # 3 meterValues of 2 values: one past max_sampled_values (4), cut in the message
        big = updated(1, 1, 1100)
        big["meterValue"] = meter_values(3, 1100)
        assert (await client.call("TransactionEvent", big))[0] == 3
        # the transaction holds 6 now: the next Updated's samples are dropped, it is stored
        assert (await client.call("TransactionEvent", updated(2, 9, 1900)))[0] == 3
    progress = await small.store.transaction_progress(STATION, "tx-1")
    assert progress.samples == LIMIT and progress.energy_wh == (200, 0)
    events = await small.store.transaction_events(STATION, "tx-1")
    assert [e["seq_no"] for e in events] == [0, 1, 2]
    assert len(events[1]["raw"]["meterValue"]) == 2  # what was kept is what is stored
    counted = small.server.tolerated[STATION]
    assert counted == {"sampled_values_per_message": 1, "samples_per_transaction": 1}
    logged = [r.getMessage() for r in caplog.records]
    assert any("max_sampled_values (4)" in line and STATION in line for line in logged)
    assert any("2 samples past max_samples_per_transaction (6)" in line for line in logged)
    metrics = tolerated_metrics(small)
    assert 'v2g_ocpp_tolerated_total{kind="samples_per_transaction"} 1' in metrics
    assert 'v2g_ocpp_tolerated_total{kind="sampled_values_per_message"} 1' in metrics
    await client.ws.close()


async def test_ocpp16_meter_values_are_held_to_the_transaction_limit(small: CsmsApp) -> None:
    client = await open_client(small, subprotocols=["ocpp1.6"])
    start = {
        "connectorId": 1,
        "idTag": "TAG-16",
        "meterStart": 1000,
        "timestamp": "2026-11-25T10:00:00Z",
    }
    answer = await client.call("StartTransaction", start)
    assert answer[0] == 3, answer
    tx = answer[2]["transactionId"]
    refused = None
    for minute in range(1, 10):
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
        answer = await client.call("MeterValues", values)
        if answer[0] == 4:
            refused = minute
            break
    assert refused is not None and answer[2] == OCCURRENCE_201, answer
    progress = await small.store.transaction_progress(STATION, str(tx))
    assert progress.samples == LIMIT
    await client.ws.close()
