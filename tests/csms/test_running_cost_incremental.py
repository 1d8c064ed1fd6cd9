"""The running cost answered to Updated events: kept per transaction, advanced by each event's
own readings, and exact when readings share a timestamp (chargers with 1-second clocks)."""

from __future__ import annotations

from datetime import UTC, datetime

from csms.app import CsmsApp
from csms.model import RegisterReading
from csms.running import RunningCosts
from csms.settlement import RunningCost, running_cost, total_cost
from csms.tariffs import Tariff, parse_tariff
from tests.csms.builders import transaction_event
from tests.csms.conftest import STATION, open_client

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
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
    services, store = csms.server.services, csms.store

    async def cost() -> float:
        return total_cost(await services.running_costs.current(store, STATION, "tx-1", TARIFF))

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
    # after a restart (state lost) the state is rebuilt from the stored samples: same amount
    csms.server.services.running_costs = RunningCosts()
    event = transaction_event("Updated", 4, timestamp=SAME_SECOND, import_wh=5000)
    assert (await client.call("TransactionEvent", event))[0] == 3
    assert await cost() == expected(tariff, 4000)
    # an Ended drops the kept state; the cost is then computed from the stored samples
    ended = transaction_event("Ended", 5, timestamp=SAME_SECOND, import_wh=5000)
    assert (await client.call("TransactionEvent", ended))[0] == 3
    assert await cost() == expected(tariff, 4000)
    await client.ws.close()


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
