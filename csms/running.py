"""Running costs of the transactions in progress, advanced by each event's own readings.

The cost of an Updated event is O(1) in the samples the transaction already has: the last
register readings and the amount so far are kept per transaction (``RunningCost``) and each new
event folds in only its own readings. After a restart, the first event of a transaction rebuilds
its state once from the stored samples. At most ``capacity`` transactions are kept (the oldest
is dropped and rebuilt on its next event); an Ended event drops its transaction.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime

from csms.model import MeterSample
from csms.settlement import RunningCost
from csms.store.sqlite import CsmsStore
from csms.tariffs import Tariff

IMPORT = "Energy.Active.Import.Register"
EXPORT = "Energy.Active.Export.Register"


def register_readings(
    samples: Iterable[MeterSample],
) -> list[tuple[datetime, int | None, int | None]]:
    """An event's register readings, one per timestamp, in time order (phase totals only)."""
    by_time: dict[datetime, list[int | None]] = {}
    for sample in samples:
        if sample.phase is not None or sample.measurand not in (IMPORT, EXPORT):
            continue
        pair = by_time.setdefault(sample.timestamp, [None, None])
        slot = 0 if sample.measurand == IMPORT else 1
        current = pair[slot]
        pair[slot] = sample.value if current is None else max(current, sample.value)
    return [(at, pair[0], pair[1]) for at, pair in sorted(by_time.items())]


class RunningCosts:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._states: OrderedDict[tuple[str, str], RunningCost] = OrderedDict()

    async def advance(
        self,
        store: CsmsStore,
        station_id: str,
        transaction_id: str,
        samples: Iterable[MeterSample],
        tariff: Tariff,
        *,
        is_new: bool,
    ) -> int:
        """The cost so far (micro-units) after an event with ``samples`` (already stored)."""
        key = (station_id, transaction_id)
        state = self._states.get(key)
        if state is None:
            state = await self._replay(store, station_id, transaction_id, tariff)
        elif is_new:
            for at, import_wh, export_wh in register_readings(samples):
                state = state.advance(at, import_wh, export_wh, tariff)
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return state.amount

    async def current(
        self, store: CsmsStore, station_id: str, transaction_id: str, tariff: Tariff
    ) -> int:
        """The cost so far (micro-units); computed from the stored samples if not kept.

        Only TransactionEvents keep a state (they advance it); a transaction not kept (an OCPP
        1.6 one, or one with no event since a restart) is computed afresh and not kept, since
        nothing would advance it.
        """
        state = self._states.get((station_id, transaction_id))
        if state is not None:
            return state.amount
        return (await self._replay(store, station_id, transaction_id, tariff)).amount

    @staticmethod
    async def _replay(
        store: CsmsStore, station_id: str, transaction_id: str, tariff: Tariff
    ) -> RunningCost:
        state = RunningCost()
        for reading in await store.register_samples(station_id, transaction_id):
            state = state.advance(reading.at, reading.import_wh, reading.export_wh, tariff)
        return state

    def forget(self, station_id: str, transaction_id: str) -> None:
        self._states.pop((station_id, transaction_id), None)
