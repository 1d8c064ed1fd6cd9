"""Blocks on demand: when a validator starts its next height (CometBFT's
``create_empty_blocks = false``).

After a block the validator rests. The next height starts once there is something to commit
(a transaction or evidence in the mempool, a validator-set change being a transaction too)
and the block interval has passed since the last height started, or at once when a peer has
started it, or when ``max_idle_interval_ms`` (0: never) has passed without a block.

The interval is counted from a height's start, not from its decision: transactions gather
while the height is agreed, so a steady flow meets one block per interval (fewer when
agreeing takes longer) and a transaction waits at most the interval plus one height for
its block, not the interval plus two.

The cadence only schedules: what counts as work and what starting a height means are the
node's (``has_work`` and ``start``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class BlockCadence:
    """When the next height starts, given ``height()`` (of the last block), ``has_work()``
    (something to commit) and ``start()`` (start the next height)."""

    def __init__(
        self,
        *,
        block_interval_ms: int,
        max_idle_interval_ms: int,
        height: Callable[[], int],
        has_work: Callable[[], bool],
        start: Callable[[], None],
    ) -> None:
        self._interval_s = block_interval_ms / 1000
        self._idle_s = max_idle_interval_ms / 1000
        self._height = height
        self._has_work = has_work
        self._start = start
        self.waiting = False  # the next height is not started yet (nothing to commit)
        self._ready = False  # the block interval since the last height began has passed
        self._last_block_at = 0.0
        self._began_at: float | None = None  # when the last height started here

    def rest(self, *, ready: bool) -> None:
        """After a block: wait for work (and what is left of the block interval since the
        height began, unless ``ready``)."""
        self.waiting = True
        self._ready = False
        loop = asyncio.get_running_loop()
        self._last_block_at = loop.time()
        height = self._height() + 1
        began = self._last_block_at if self._began_at is None else self._began_at
        delay = began + self._interval_s - self._last_block_at
        if ready or delay <= 0:
            self._wake(height)
        else:
            loop.call_later(delay, self._wake, height)

    def work_arrived(self) -> None:
        """Something to commit arrived: start the next height if the interval has passed."""
        if self.waiting and self._ready:
            self._start()

    def begin(self) -> bool:
        """Leave the rest to start the next height; False if it is already under way."""
        if not self.waiting:
            return False
        self.waiting = self._ready = False
        self._began_at = asyncio.get_running_loop().time()
        return True

    def _wake(self, height: int) -> None:
        if not self.waiting or height != self._height() + 1:
            return  # a stale timer: that height has started or passed
        self._ready = True
        if self._has_work():
            self._start()
            return
        if self._idle_s <= 0:
            return
        loop = asyncio.get_running_loop()
        remaining = self._last_block_at + self._idle_s - loop.time()
        if remaining <= 0:
            self._start()
        else:
            loop.call_later(remaining, self._wake, height)
