"""The running cost of a transaction: stored with each event, advanced by the event's own
readings, exact when readings share a timestamp (chargers with 1-second clocks), and read
back after a restart without rereading the samples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.metering import parse_meter_values
from csms.model import RegisterReading
from csms.passwords import hash_password
from csms.running import TransactionProgress
from csms.settlement import RunningCost, running_cost, total_cost
from csms.store import progress as stored_progress
from csms.store.sqlite import CsmsStore
from csms.tariffs import Tariff, parse_tariff
from tests.csms.builders import energy_sample, transaction_event
from tests.csms.conftest import PASSWORD, STATION, open_client

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def csms_database(database: str) -> str:
    """The ``csms`` tests here run on SQLite and on PostgreSQL."""
    return database


SAME_SECOND = "2026-11-25T10:00:01.000Z"


TARIFF = parse_tariff(
    b"id: t\ncurrency: EUR\ntimezone: UTC\ndaily:\n"
    b'  - {start: "00:00", import_price: 250000, export_price: 80000}\n'
    b'  - {start: "10:30", import_price: 410000, export_price: 120000}\n',
    source="t.yaml",
)


def expected(tariff: Tariff, import_wh: int) -> float:
    price = tariff.price_at(T0).import_price
    return float(import_wh * price // 1000) / 1_000_000


async def test_updates_sharing_a_timestamp_all_count(csms: CsmsApp) -> None:
    csms.server.services.tariff = tariff = TARIFF
    client = await open_client(csms)
    start = transaction_event("Started", 0, timestamp="2026-11-25T10:00:00.000Z", import_wh=1000)
    assert (await client.call("TransactionEvent", start))[0] == 3
    store = csms.store

    async def cost() -> float:
        return total_cost((await store.transaction_progress(STATION, "tx-1")).amount)

    costs = []
    for seq, wh in ((1, 2000), (2, 3000), (3, 4000)):
        event = transaction_event("Updated", seq, timestamp=SAME_SECOND, import_wh=wh)
        assert (await client.call("TransactionEvent", event))[0] == 3
        costs.append(await cost())
    # each Updated's 1000 Wh counts, although the three share one timestamp
    assert costs == [expected(tariff, 1000), expected(tariff, 2000), expected(tariff, 3000)]
    # a duplicate adds nothing
    again = transaction_event("Updated", 3, timestamp=SAME_SECOND, import_wh=4000)
    assert (await client.call("TransactionEvent", again))[0] == 3
    assert await cost() == costs[-1]
    ended = transaction_event("Ended", 4, timestamp=SAME_SECOND, import_wh=5000)
    assert (await client.call("TransactionEvent", ended))[0] == 3
    assert await cost() == expected(tariff, 4000)
    assert (await store.transaction_progress(STATION, "tx-1")).energy_wh == (4000, 0)
    await client.ws.close()


def _no_rereading(store: CsmsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every way of reading a transaction's samples back fail."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a transaction's samples were read back")

    def refuse_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a transaction's samples were read back")

    monkeypatch.setattr(store, "register_samples", refuse)
    monkeypatch.setattr(store, "meter_samples", refuse)
    monkeypatch.setattr(stored_progress, "_rebuild", refuse_sync)


async def test_after_a_restart_the_next_updated_continues_from_the_stored_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CsmsConfig(port=0, close_timeout=0.3, call_timeout=5)
    app = await start_csms(tmp_path / "data", config)
    app.server.services.tariff = TARIFF
    try:
        await app.store.add_station(STATION, hash_password(PASSWORD), "2026-11-25T09:00:00.000Z")
        client = await open_client(app)
        at = "2026-11-25T10:00:00.000Z"
        start = transaction_event("Started", 0, timestamp=at, import_wh=1000)
        assert (await client.call("TransactionEvent", start))[0] == 3
        for seq in range(1, 4):
            at = f"2026-11-25T10:0{seq}:00.000Z"
            event = transaction_event("Updated", seq, timestamp=at, import_wh=1000 + 500 * seq)
            assert (await client.call("TransactionEvent", event))[0] == 3
        await client.ws.close()
    finally:
        await app.stop()

    app = await start_csms(tmp_path / "data", config)
    app.server.services.tariff = TARIFF
    try:
        _no_rereading(app.store, monkeypatch)
        client = await open_client(app)
        event = transaction_event(
            "Updated", 4, timestamp="2026-11-25T10:04:00.000Z", import_wh=3500
        )
        answer = await client.call("TransactionEvent", event)
        assert answer[0] == 3, answer
        progress = await app.store.transaction_progress(STATION, "tx-1")
        assert total_cost(progress.amount) == expected(TARIFF, 2500)
        assert progress.samples == 10 and progress.energy_wh == (2500, 0)
        assert await app.store.latest_state(STATION, "tx-1") == (
            datetime(2026, 11, 25, 10, 4, tzinfo=UTC),
            None,
        )
        await client.ws.close()
    finally:
        await app.stop()


async def test_a_transaction_stored_without_progress_is_rebuilt_once(csms: CsmsApp) -> None:
    """Transactions stored by a CSMS that kept no progress continue where they stand."""
    csms.server.services.tariff = TARIFF
    client = await open_client(csms)
    for seq, wh in enumerate((1000, 1600, 2400)):
        kind = "Started" if seq == 0 else "Updated"
        at = f"2026-11-25T10:0{seq}:00.000Z"
        event = transaction_event(kind, seq, timestamp=at, import_wh=wh)
        assert (await client.call("TransactionEvent", event))[0] == 3
    kept = await csms.store.transaction_progress(STATION, "tx-1")
    await csms.store.execute_write("DELETE FROM transaction_progress")
    assert await csms.store.transaction_progress(STATION, "tx-1", TARIFF) == kept
    event = transaction_event("Updated", 3, timestamp="2026-11-25T10:03:00.000Z", import_wh=3000)
    assert (await client.call("TransactionEvent", event))[0] == 3
    progress = await csms.store.transaction_progress(STATION, "tx-1")
    assert progress.samples == 8 and progress.energy_wh == (2000, 0)
    assert total_cost(progress.amount) == expected(TARIFF, 2000)
    await client.ws.close()


def test_progress_keeps_what_the_dispatcher_reads() -> None:
    """Latest and first readings, the step, the newest time and SoC, whatever the order."""

    def samples(minute: int, wh: int, soc: int | None = None) -> list[Any]:
        at = f"2026-11-25T10:{minute:02d}:00.000Z"
        values = [energy_sample(at, wh, 10 * minute, "Sample.Periodic")]
        if soc is not None:
            values[0]["sampledValue"].append({"value": soc, "measurand": "SoC"})
        return list(parse_meter_values(values))

    progress = TransactionProgress()
    for minute, wh, soc in ((0, 1000, 40), (10, 2000, 50), (20, 3000, None), (5, 1500, 45)):
        progress = progress.advance(samples(minute, wh, soc), TARIFF)
    assert progress.samples == 11
    assert progress.latest == RegisterReading(T0.replace(minute=20), 3000, 200)
    assert progress.first == RegisterReading(T0, 1000, 0)
    assert progress.previous_at == T0.replace(minute=10)  # the late 10:05 reading is older
    assert progress.energy_wh == (2000, 200)
    assert (progress.latest_at, progress.soc) == (T0.replace(minute=20), 50)
    row = stored_progress.to_params(STATION, "tx-1", stored_progress.StoredProgress(progress, 3))
    assert stored_progress.from_row(row[2:]) == stored_progress.StoredProgress(progress, 3)


def test_incremental_equals_recomputing() -> None:
    tariff = TARIFF
    readings = [
        RegisterReading(T0.replace(minute=m), 1000 + 37 * m * m, 5 * m) for m in range(0, 60, 3)
    ]
    state = RunningCost()
    for r in readings:
        state = state.advance(r.at, r.import_wh, r.export_wh, tariff)
    assert state.amount == running_cost(readings, tariff) != 0
    # a late, lower reading adds nothing and does not move the registers back
    late = state.advance(T0, 0, 0, tariff)
    assert (late.amount, late.import_wh) == (state.amount, state.import_wh)
