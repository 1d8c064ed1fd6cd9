"""Pending transactions waiting for a block, oldest first, deduplicated by their bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ledger.types import Tx


class Mempool:
    """A bounded FIFO of transactions; the node validates them before adding."""

    def __init__(self, max_size: int = 100_000) -> None:
        # by the bytes themselves (Python keeps a bytes object's hash): a SHA-256 of each
        # transaction on every add, look-up and removal cost more than the rest of the pool
        self._txs: dict[bytes, Tx] = {}
        self._max = max_size

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx: Tx) -> bool:
        return tx.data in self._txs

    def add(self, tx: Tx) -> bool:
        """Keep ``tx``; False if it is already pending or the pool is full."""
        key = tx.data
        if key in self._txs or len(self._txs) >= self._max:
            return False
        self._txs[key] = tx
        return True

    def take(self, limit: int) -> list[Tx]:
        """Up to ``limit`` oldest transactions (they stay pending until committed)."""
        out: list[Tx] = []
        for tx in self._txs.values():
            if len(out) >= limit:
                break
            out.append(tx)
        return out

    def oldest(self) -> Iterator[Tx]:
        """The pending transactions, oldest first, read as they are walked (the pool must not
        change meanwhile)."""
        return iter(self._txs.values())

    def remove(self, txs: Iterable[Tx]) -> None:
        for tx in txs:
            self._txs.pop(tx.data, None)
