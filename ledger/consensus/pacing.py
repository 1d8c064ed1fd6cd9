"""When a validator asks peers for blocks, and how it batches the transactions it gossips.

Both are small policies kept apart from the node so they can be tested without sockets:
``FetchPolicy`` is pure (the caller passes the time); ``TxBatcher`` only schedules a flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ledger.types import Tx

FETCH_TIMEOUT_S = 2.0  # a block request unanswered this long may be sent again
TX_BATCH_DELAY_S = 0.005  # submitted transactions gossiped together within this delay
TX_BATCH_MAX = 500


class FetchPolicy:
    """Ask a peer that is ahead for blocks: one request at a time (again after a timeout or
    once blocks arrive), and when only one height behind, only after ``patience_s``: the
    consensus messages of that height usually arrive first, and a block costs far more."""

    def __init__(self, *, patience_s: float, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._patience = patience_s
        self._timeout = timeout_s
        self._behind: tuple[int, float] | None = None  # (own height, since when)
        self._until = 0.0  # no new request before this time

    def should_fetch(self, own_height: int, peer_height: int, now: float) -> bool:
        if peer_height <= own_height:
            self._behind = None
            return False
        if self._behind is None or self._behind[0] != own_height:
            self._behind = (own_height, now)
        if peer_height == own_height + 1 and now - self._behind[1] < self._patience:
            return False
        if now < self._until:
            return False
        self._until = now + self._timeout
        return True

    def progressed(self) -> None:
        """Blocks arrived: the next status from a peer ahead may ask for more at once."""
        self._until = 0.0


class TxBatcher:
    """Collect transactions and hand them to ``send`` together, a few milliseconds' worth
    (or ``max_batch``) at a time: one frame per batch instead of one per transaction."""

    def __init__(
        self,
        send: Callable[[tuple[Tx, ...]], None],
        *,
        delay_s: float = TX_BATCH_DELAY_S,
        max_batch: int = TX_BATCH_MAX,
    ) -> None:
        self._send = send
        self._delay = delay_s
        self._max = max_batch
        self._pending: list[Tx] = []

    def add(self, tx: Tx) -> None:
        self._pending.append(tx)
        if len(self._pending) >= self._max:
            self.flush()
        elif len(self._pending) == 1:
            asyncio.get_running_loop().call_later(self._delay, self.flush)

    def flush(self) -> None:
        txs, self._pending = tuple(self._pending), []
        if txs:
            self._send(txs)
