"""One station that never answers does not hold back the dispatch pass of the others.

Real websocket stations against a real CSMS: the oldest session (the first one a pass
meets) is on a station that reads every CALL and answers none. Every other station must
get its SetChargingProfile before that station's call has timed out.
"""

from __future__ import annotations

import asyncio

from bench.bench_dispatch import dispatcher_for, fleet
from csms.app import CsmsApp

TIMEOUT_S = 2.0


async def test_a_silent_station_does_not_delay_the_others(csms: CsmsApp) -> None:
    async with fleet(csms, 8, silent=1) as stations:
        dispatcher = dispatcher_for(csms, concurrency=4, timeout=TIMEOUT_S)
        loop = asyncio.get_running_loop()
        began = loop.time()
        sent = await dispatcher.run_once()
        took = loop.time() - began
        answering = stations[1:]
        late = [
            s.station_id
            for s in answering
            if s.setpoint_at is None or s.setpoint_at - began >= TIMEOUT_S
        ]
        assert not late, f"setpoints after the silent station's timeout: {late}"
        assert sent == len(answering)
        assert stations[0].calls == ["SetChargingProfile"]  # asked once, no CostUpdated after
        assert took < 2 * TIMEOUT_S  # one timeout, not one per call of the silent station


async def test_a_pass_is_bounded_by_its_concurrency(csms: CsmsApp) -> None:
    # two silent stations and one slot: the answering ones wait for both timeouts
    async with fleet(csms, 4, silent=2) as stations:
        dispatcher = dispatcher_for(csms, concurrency=1, timeout=0.5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await dispatcher.run_once()
        firsts = [s.setpoint_at - began for s in stations[2:] if s.setpoint_at is not None]
        assert len(firsts) == 2 and min(firsts) >= 1.0, firsts
