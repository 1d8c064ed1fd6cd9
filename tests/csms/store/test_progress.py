"""A transaction's stored progress and its bounded reads, on SQLite and on PostgreSQL: the
progress row written with each event, a page of samples, the downsampled chart, the counts,
the sample limit, and a station's rated power."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.errors import OccurrenceConstraintViolation
from csms.model import MeterSample, TransactionEventRecord
from csms.sample_limits import SampleLimit
from csms.store.sqlite import CsmsStore
from csms.tariffs import parse_tariff

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
IMPORT = "Energy.Active.Import.Register"
TARIFF = parse_tariff(
    b'id: t\ncurrency: EUR\ntimezone: UTC\ndaily:\n  - {start: "00:00", import_price: 250000,'
    b" export_price: 80000}\n",
    source="t.yaml",
)


def event(seq: int, samples: list[MeterSample], kind: str = "Updated") -> TransactionEventRecord:
    return TransactionEventRecord(
        station_id="CS-P", transaction_id="tx-p", seq_no=seq, event_type=kind,
        trigger_reason="MeterValuePeriodic", offline=False, timestamp=samples[-1].timestamp,
        evse_id=1, connector_id=1, id_token=None, id_token_type=None, stopped_reason=None,
        charging_state=None, raw="{}", samples=tuple(samples),
    )  # fmt: skip


def registers(start: int, count: int) -> list[MeterSample]:
    return [
        MeterSample(T0 + timedelta(seconds=i), IMPORT, 1000 + 10 * i, "Wh")
        for i in range(start, start + count)
    ]


async def test_progress_pages_and_chart(database: str) -> None:
    store = await CsmsStore.open(database)
    try:
        await store.add_station("CS-P", "scrypt$x", "2026-11-25T00:00:00.000Z")
        limit = SampleLimit(max_samples=3_000, reserve=10)
        write = await store.store_transaction_event(
            event(0, registers(0, 1), "Started"), "r", tariff=TARIFF, limit=limit
        )
        assert write.is_new and write.dropped == 0
        await store.store_transaction_event(
            event(1, registers(1, 2_999)), "r", tariff=TARIFF, limit=limit
        )
        with pytest.raises(OccurrenceConstraintViolation):
            await store.store_transaction_event(
                event(2, registers(3_000, 1)), "r", tariff=TARIFF, limit=limit
            )
        progress = await store.transaction_progress("CS-P", "tx-p")
        assert progress.samples == 3_000 and progress.energy_wh == (29_990, 0)
        assert progress.amount == 29_990 * 250_000 // 1000  # the whole session at one price
        assert await store.sample_counts("CS-P", "tx-p") == (3_000, 0)
        page = await store.meter_samples_page("CS-P", "tx-p", offset=2_990, limit=50)
        assert [s.value for s in page] == [1000 + 10 * i for i in range(2_990, 3_000)]
        chart = await store.chart_samples("CS-P", "tx-p", (IMPORT,), 100)
        assert 90 <= len(chart) <= 101
        assert chart[0].value == 1000 and chart[-1].value == 1000 + 10 * 2_999
        at = await store.register_reading_at("CS-P", "tx-p", T0 + timedelta(seconds=10))
        assert at is not None and (at.at, at.import_wh) == (T0 + timedelta(seconds=10), 1100)
        await store.set_max_power("CS-P", 11_000)
        station = await store.get_station("CS-P")
        assert station is not None and station.max_power_w == 11_000
    finally:
        await store.close()
