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

from ledger.tx import CREDIT, SETTLEMENT, CanonicalRecord
from ledger.types import Block


@dataclass(frozen=True, slots=True)
class Checked:
    """A transaction's decoded, schema-checked record and the key its signature verified
    under (None when it carries no single signature, as evidence does). Never mutated."""

    record: Mapping[str, Any]
    signer_key: bytes | None


SIG_MEMBER = '"sig":"'
SIG_HEX_CHARS = 128
MAX_SIG_DISTANCE = 64 * 1024  # a transaction's bytes are bounded (validation.MAX_TX_BYTES)


class CheckedTxs:
    """A bounded map from transaction bytes to ``Checked``; the oldest entries go first.

    Also by signature, so that a checked transaction is found in a proposal's text without
    parsing it (``end_of``). So are the transactions still waiting to be checked whose records
    a frame reader parsed (``waiting``): a proposal that holds one before its turn comes is
    then neither scanned nor parsed again for it (under load, about a quarter of a peer's
    proposal)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._entries: dict[bytes, Checked] = {}
        self._by_sig: dict[str, bytes] = {}
        self._limit = limit
        self._waiting: dict[bytes, CanonicalRecord] = {}
        self._waiting_by_sig: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, data: bytes) -> bool:
        return data in self._entries

    def get(self, data: bytes) -> Checked | None:
        return self._entries.get(data)

    def put(self, data: bytes, checked: Checked) -> None:
        if data not in self._entries and len(self._entries) >= self._limit:
            oldest = next(iter(self._entries))
            gone = self._entries.pop(oldest)
            sig = gone.record.get("sig")
            if isinstance(sig, str) and self._by_sig.get(sig) == oldest:
                del self._by_sig[sig]
        self._entries[data] = checked
        sig = checked.record.get("sig")
        if isinstance(sig, str):
            self._by_sig[sig] = data
        if self._waiting:
            self.done_waiting(data)

    def wait(self, data: bytes, record: Mapping[str, Any]) -> None:
        """``data``, parsed by a frame reader to ``record``, waits to be checked (bounded by
        the caller's backlog; ``done_waiting`` when its turn has come)."""
        if isinstance(record, CanonicalRecord) and record.raw == data and data not in self._entries:
            sig = record.get("sig")
            if isinstance(sig, str):
                self._waiting[data] = record
                self._waiting_by_sig[sig] = data

    def waiting(self, data: bytes) -> CanonicalRecord | None:
        """The parsed record of ``data`` if it waits to be checked."""
        return self._waiting.get(data)

    def done_waiting(self, data: bytes) -> None:
        record = self._waiting.pop(data, None)
        if record is not None:
            sig = record["sig"]  # a string: ``wait`` keeps no other
            if self._waiting_by_sig.get(sig) == data:
                del self._waiting_by_sig[sig]

    def clear_waiting(self) -> None:
        self._waiting.clear()
        self._waiting_by_sig.clear()

    def end_of(self, text: str, pos: int) -> int | None:
        """Where a checked (or waiting) transaction ends if one starts at ``text[pos]``, else
        None.

        Its candidate is the checked transaction with the signature that follows ``pos``
        (every signed kind has a top-level ``sig``), compared whole with the text: an end is
        only ever given where those very bytes, a whole JSON object, end. One look-up and
        one comparison, where trying each place a transaction may end cost a slice and a
        hash per place, many for a transaction not checked yet."""
        at = text.find(SIG_MEMBER, pos, pos + MAX_SIG_DISTANCE)
        if at < 0:
            return None
        start = at + len(SIG_MEMBER)
        sig = text[start : start + SIG_HEX_CHARS]
        data = self._by_sig.get(sig)
        if data is None:
            data = self._waiting_by_sig.get(sig)
        if data is None:
            return None
        known = data.decode("utf-8")
        return pos + len(known) if text.startswith(known, pos) else None


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
