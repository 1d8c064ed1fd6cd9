"""Whole-chain verification: replay every block from genesis and name the first bad height.

This is what ``v2g ledger verify`` runs, and how a store's state is rebuilt: every hash,
link, Merkle root, transaction signature and commit certificate is re-checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger.blocks import verify_block, verify_seal
from ledger.errors import BlockError, StoreError
from ledger.genesis import Genesis
from ledger.state import State, genesis_state
from ledger.store import BlockStore, StoredBlock
from ledger.types import Block, Commit


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of a successful verification."""

    height: int
    tx_count: int
    state: State
    block_ids: tuple[bytes, ...] = ()  # index h-1 holds the id of block h


def first_divergence(a: ChainReport, b: ChainReport) -> int | None:
    """The first height at which two verified chains hold different blocks, if any."""
    for height, (x, y) in enumerate(zip(a.block_ids, b.block_ids, strict=False), start=1):
        if x != y:
            return height
    return None


@dataclass(slots=True)
class ChainVerifier:
    """Incremental verification: feed blocks in order, each checked against the last."""

    state: State
    last_commit: Commit | None = None
    previous: State | None = None  # the state before the last block fed
    _last_block: Block | None = None
    tx_count: int = 0
    block_ids: list[bytes] = field(default_factory=list)

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ChainVerifier:
        return cls(genesis_state(genesis))

    def feed(self, stored: StoredBlock) -> State:
        """Verify the next block; raise ``BlockError`` naming its height if it is bad."""
        self.previous = self.state
        self._last_block = stored.block
        self.state = verify_block(
            self.state, stored.block, stored.commit, last_commit=self.last_commit
        )
        self.last_commit = stored.commit
        self.tx_count += len(stored.block.txs)
        self.block_ids.append(self.state.last_block_id)
        return self.state

    def rebind(self, commit: Commit | None) -> None:
        """Take another certificate for the last block fed: a validator stores a block with
        the quorum it decided on and replaces it with the canonical one once the next block
        binds that. Either is accepted if it certifies the block under the set that did.
        Raises ``BlockError`` (a ``CommitError``) naming the height otherwise."""
        if commit == self.last_commit or self.previous is None or self._last_block is None:
            return
        verify_seal(self.previous, self._last_block, commit)
        self.last_commit = commit

    def report(self) -> ChainReport:
        return ChainReport(self.state.height, self.tx_count, self.state, tuple(self.block_ids))


def verify_blocks(genesis: Genesis, blocks: Iterable[StoredBlock]) -> ChainReport:
    """Verify a sequence of blocks from height 1."""
    verifier = ChainVerifier.from_genesis(genesis)
    for stored in blocks:
        verifier.feed(stored)
    return verifier.report()


async def verify_store(store: BlockStore, genesis: Genesis) -> ChainReport:
    """Verify every block of ``store`` from genesis; raise ``BlockError`` at the first bad one."""
    return (await _verified(store, genesis)).report()


async def _verified(store: BlockStore, genesis: Genesis) -> ChainVerifier:
    verifier = ChainVerifier.from_genesis(genesis)
    top = await store.height()
    for height in range(1, top + 1):
        try:
            stored = await store.get(height)
        except StoreError as exc:
            raise BlockError(height, str(exc)) from exc
        if stored is None:
            raise BlockError(height, "block missing from the store")
        verifier.feed(stored)
    return verifier


async def replay_top(store: BlockStore, genesis: Genesis) -> tuple[State | None, State]:
    """The states before and after the store's top block (None before: an empty store),
    rebuilt by verified replay."""
    verifier = await _verified(store, genesis)
    return verifier.previous, verifier.state


async def replay(store: BlockStore, genesis: Genesis) -> State:
    """The state after the store's last block (rebuilt by verified replay)."""
    return (await verify_store(store, genesis)).state
