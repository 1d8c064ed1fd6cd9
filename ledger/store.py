"""The block store: a small interface, and its in-memory twin for tests.

A store holds committed blocks in height order, each with the commit certificate that
made it final, an index from settlement id to (height, transaction index) for receipts, and
the heights of the blocks that change the validator set (every receipt carries those). The
state is not stored: it is rebuilt by replaying (and so re-verifying) the blocks from
genesis (``ledger.chain.replay``).

``get`` raises ``BlockError`` naming the height when stored bytes cannot be read back
(corruption), so tools report it like any other bad block.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ledger.codec import block_id
from ledger.errors import StoreError
from ledger.tx import CREDIT, SETTLEMENT, VALIDATOR_UPDATE
from ledger.types import Block, Commit


@dataclass(frozen=True, slots=True)
class StoredBlock:
    block: Block
    commit: Commit | None


# The canonical bytes of a validator update hold exactly this (and no other record's do).
VALIDATOR_UPDATE_MARKER = b'"type":"' + VALIDATOR_UPDATE.encode() + b'"'


def changes_validators(block: Block) -> bool:
    """Whether a block may hold a validator update (a cheap look at the bytes)."""
    return any(VALIDATOR_UPDATE_MARKER in tx.data for tx in block.txs)


def settlement_ids(block: Block) -> list[tuple[str, int]]:
    """(settlement_id, tx index) of the settlements and credits in a block."""
    found = []
    for index, tx in enumerate(block.txs):
        try:  # plain JSON: a block is validated (canonical) before it is indexed
            record = json.loads(tx.data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict):
            continue
        if record.get("type") in (SETTLEMENT, CREDIT) and isinstance(
            record.get("settlement_id"), str
        ):
            found.append((record["settlement_id"], index))
    return found


def check_commit_for(block: Block, commit: Commit) -> None:
    """Refuse to store a certificate that names another block."""
    if commit.height != block.header.height or commit.block_id != block_id(block.header):
        raise StoreError(
            f"certificate for height {commit.height} block {commit.block_id.hex()[:16]} "
            f"does not match block {block.header.height}"
        )


class BlockStore(ABC):
    """Committed blocks with their certificates. Heights start at 1 and have no gaps."""

    @abstractmethod
    async def height(self) -> int:
        """The height of the last stored block (0 when empty)."""

    @abstractmethod
    async def append(
        self,
        block: Block,
        commit: Commit | None,
        *,
        last_commit: Commit | None = None,
        settlements: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Store the next block and its certificate atomically (one unit of work).

        ``settlements``: the block's (settlement id, tx index) pairs when the caller has
        its records decoded already (a validator that just checked the block); else the
        store reads them from the transactions (``settlement_ids``).

        A validator stores a block the moment it is decided, with the certificate it holds;
        the next block's header binds the canonical one (``last_commit_hash``), which may hold
        other precommits. ``last_commit``, when given, is that canonical certificate of the
        block below: it replaces the stored one in the same unit of work, so every stored
        block but the top carries the certificate its successor binds.

        Raises ``StoreError`` unless ``block.header.height == height() + 1``, or when
        ``last_commit`` names another block than the one below.
        """

    @abstractmethod
    async def replace_commit(self, height: int, commit: Commit) -> None:
        """Replace the certificate of the top block (``height`` must be the top).

        Validators gather different sets of precommits; the one the next header binds
        (``last_commit_hash``) is the canonical one, and this stores it in place of the
        validator's own before the next block is appended. Raises ``StoreError`` for any
        height but the top, or a certificate of another block.
        """

    @abstractmethod
    async def get(self, height: int) -> StoredBlock | None:
        """The block at ``height`` with its certificate, or None past the end."""

    @abstractmethod
    async def find_settlement(self, settlement_id: str) -> tuple[int, int] | None:
        """(height, tx index) of a committed settlement or credit, or None."""

    @abstractmethod
    async def close(self) -> None:
        """Release resources."""

    async def heights_containing(self, needle: bytes, up_to: int) -> list[int]:
        """Heights ``<= up_to`` with a transaction whose bytes contain ``needle``, ascending.

        A cheap first filter over canonical bytes (e.g. for the blocks that change the
        validator set); callers decode what it finds. Stores may answer without loading
        every block.
        """
        found = []
        for height in range(1, min(up_to, await self.height()) + 1):
            stored = await self.get(height)
            if stored is not None and any(needle in tx.data for tx in stored.block.txs):
                found.append(height)
        return found

    async def change_heights(self, up_to: int) -> list[int]:
        """Heights ``<= up_to`` of the blocks that may hold a validator update, ascending
        (``changes_validators``). Stores keep them as they append, so a receipt does not
        look through every block."""
        return await self.heights_containing(VALIDATOR_UPDATE_MARKER, up_to)

    async def blocks(self, start: int = 1) -> AsyncIterator[StoredBlock]:
        """Every block from ``start`` to the top, in order."""
        top = await self.height()
        for h in range(start, top + 1):
            stored = await self.get(h)
            if stored is None:
                raise StoreError(f"block {h} missing below the top {top}")
            yield stored


class MemoryBlockStore(BlockStore):
    """The in-memory twin: same contract, no persistence."""

    def __init__(self) -> None:
        self._blocks: list[StoredBlock] = []
        self._settlements: dict[str, tuple[int, int]] = {}
        self._changes: list[int] = []

    async def height(self) -> int:
        return len(self._blocks)

    async def append(
        self,
        block: Block,
        commit: Commit | None,
        *,
        last_commit: Commit | None = None,
        settlements: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        expected = len(self._blocks) + 1
        if block.header.height != expected:
            raise StoreError(f"append: expected height {expected}, got {block.header.height}")
        if last_commit is not None and self._blocks:
            below = self._blocks[-1]
            check_commit_for(below.block, last_commit)
            self._blocks[-1] = StoredBlock(below.block, last_commit)
        for sid, index in settlement_ids(block) if settlements is None else settlements:
            self._settlements.setdefault(sid, (expected, index))
        if changes_validators(block):
            self._changes.append(expected)
        self._blocks.append(StoredBlock(block, commit))

    async def change_heights(self, up_to: int) -> list[int]:
        return [h for h in self._changes if h <= up_to]

    async def replace_commit(self, height: int, commit: Commit) -> None:
        top = len(self._blocks)
        if height != top or top == 0:
            raise StoreError(f"replace_commit: height {height} is not the top {top}")
        check_commit_for(self._blocks[-1].block, commit)
        self._blocks[-1] = StoredBlock(self._blocks[-1].block, commit)

    async def get(self, height: int) -> StoredBlock | None:
        if 1 <= height <= len(self._blocks):
            return self._blocks[height - 1]
        return None

    async def find_settlement(self, settlement_id: str) -> tuple[int, int] | None:
        return self._settlements.get(settlement_id)

    async def close(self) -> None:
        return None
