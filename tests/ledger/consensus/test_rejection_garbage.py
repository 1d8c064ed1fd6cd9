"""A rejected submission leaves no cyclic garbage behind, on the validator or in its client.

A validator process freezes what survives each tick of its collector (``gc_ticks``), so a
cycle still alive at a tick would wait for the next full collection, half an hour later: a
submitter sending bad transactions would grow the process meanwhile. Each rejection used to
leave one (the future's exception held the awaiting frame in its traceback, and that frame
held the future): about 28 objects a rejection.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

from ledger.codec import tx_record
from ledger.consensus.client import ValidatorSession
from ledger.consensus.errors import SubmitRejected
from ledger.consensus.runner import Tuning, start_embedded
from ledger.consensus.state import TimeoutConfig
from ledger.home import init_data_dir
from ledger.keys import read_key_file
from ledger.tx import sign_tx
from ledger.types import Tx
from tests.ledger.builders import T0, settlement_body

CHAIN = "garbage-chain"
FAST = Tuning(
    TimeoutConfig(400, 100, 300, 100, 300, 100), block_interval_ms=50, gossip_interval_ms=100
)


@contextlib.contextmanager
def saving_garbage() -> Iterator[list[object]]:
    """Within the block, what the collector finds unreachable is kept (``gc.garbage``)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_rejected_submissions_leave_no_cycles(tmp_path: Path) -> None:
    init_data_dir(tmp_path, validators=4, chain_id=CHAIN, genesis_time=T0)
    csms = read_key_file(tmp_path / "keys" / "csms.key")
    embedded = await start_embedded(tmp_path, tuning=FAST)
    try:
        async with ValidatorSession(embedded.urls[0], key=csms) as session:
            await session.submit(sign_tx(settlement_body("warm-up"), csms, CHAIN))
            txs = [sign_tx(settlement_body(f"bad-{i}"), csms, CHAIN) for i in range(50)]
            forged = [Tx(t.data.replace(tx_record(t)["sig"].encode(), b"00" * 64)) for t in txs]
            with saving_garbage() as garbage:
                outcomes = await asyncio.gather(
                    *(session.submit(tx) for tx in forged), return_exceptions=True
                )
                assert all(isinstance(o, SubmitRejected) for o in outcomes)
                del outcomes
                gc.collect()
                left = [type(o).__name__ for o in garbage if isinstance(o, BaseException)]
            assert left == []
    finally:
        await embedded.stop()
