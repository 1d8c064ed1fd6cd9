"""The one writer connection serialises units of work from concurrent stations."""

from __future__ import annotations

import asyncio

from csms.model import TransactionEventRecord
from csms.store.sqlite import CsmsStore
from tests.csms.records import numbered_event


def event(station: str, seq_no: int, event_type: str) -> TransactionEventRecord:
    return numbered_event(station, seq_no, event_type, wh_per_seq=1000)


async def test_concurrent_units_of_work_all_land(database: str) -> None:
    store = await CsmsStore.open(database)
    stations = [f"CS-{i}" for i in range(20)]
    kinds = ["Started", "Updated", "Updated", "Ended"]
    results = await asyncio.gather(
        *(
            store.record_transaction_event(event(s, n, kind), "2026-11-25T10:00:00Z")
            for n, kind in enumerate(kinds)
            for s in stations
        ),
        *(store.log_connection(s, "connected", "2026-11-25T10:00:00Z", keep=10) for s in stations),
    )
    assert all(result is not False for result in results)
    sessions = await store.list_sessions()
    assert len(sessions) == 20
    assert {(s.state, s.event_count, s.import_wh) for s in sessions} == {("ended", 4, 3000)}
    await store.close()
