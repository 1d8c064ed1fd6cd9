"""Transactions a validator has already checked, so that it checks each one once.

A validator meets a transaction when a client submits it or a peer gossips it, again when it
proposes a block holding it, and again when it validates a peer's proposal. Decoding, the
schema and the Ed25519 signature depend only on the transaction's bytes and the key it is
checked against, so their outcome is kept here, by the bytes: later checks reuse the decoded
record and skip the signature when the key is the same. Rules that depend on the state
(duplicates, balances, an authorised signer) are checked every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledger.tx import CREDIT, SETTLEMENT
from ledger.types import Block


@dataclass(frozen=True, slots=True)
class Checked:
    """A transaction's decoded, schema-checked record and the key its signature verified
    under (None when it carries no single signature, as evidence does). Never mutated."""

    record: Mapping[str, Any]
    signer_key: bytes | None


class CheckedTxs:
    """A bounded map from transaction bytes to ``Checked``; the oldest entries go first."""

    def __init__(self, limit: int = 200_000) -> None:
        self._entries: dict[bytes, Checked] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, data: bytes) -> bool:
        return data in self._entries

    def get(self, data: bytes) -> Checked | None:
        return self._entries.get(data)

    def put(self, data: bytes, checked: Checked) -> None:
        if data not in self._entries and len(self._entries) >= self._limit:
            del self._entries[next(iter(self._entries))]
        self._entries[data] = checked


def settlement_index(block: Block, checked: CheckedTxs) -> list[tuple[str, int]] | None:
    """A block's (settlement id, tx index) pairs from the records checked on the way in, for
    the store's index without parsing the block again; None if one is not at hand."""
    found = []
    for index, tx in enumerate(block.txs):
        hit = checked.get(tx.data)
        if hit is None:
            return None
        if hit.record["type"] in (SETTLEMENT, CREDIT):
            found.append((hit.record["settlement_id"], index))
    return found
