"""The top block a validator holds (``StoredTop``), and the decided-tip file of earlier versions.

A validator stores each block the moment it is decided, with the quorum of precommits it
decided on; the next block binds the canonical certificate (``last_commit_hash``), which
replaces that one when the next block is stored. Earlier versions kept the last decided
block in ``decided_tip.json`` until the next one was decided: ``load_tip`` reads such a
file once at start-up so its block moves into the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.blocks import verify_block
from ledger.canonical import scan
from ledger.chain import replay_top
from ledger.codec import commit_from_dict, expect_literal, read_block
from ledger.commit import verify_commit
from ledger.errors import CommitError, LedgerError
from ledger.genesis import Genesis
from ledger.state import State, genesis_state
from ledger.store import BlockStore
from ledger.types import Block, Commit


@dataclass(frozen=True, slots=True)
class Tip:
    """The top block, the certificate stored with it, and the state after it."""

    block: Block
    commit: Commit
    state: State

    @property
    def height(self) -> int:
        return self.block.header.height


def load_tip(path: Path, base: State, base_commit: Commit | None) -> Tip | None:
    """The tip in ``path`` if it verifies as the block after ``base``; else None (refetch)."""
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        block, pos = read_block(text, expect_literal(text, 0, '{"block":'))
        raw, end = scan(text, expect_literal(text, pos, ',"commit":'))
        if text[end:] != "}":
            return None
        commit = commit_from_dict(raw)
        after = verify_block(base, block, commit, last_commit=base_commit)
    except (LedgerError, OSError, UnicodeDecodeError, KeyError, TypeError):
        return None
    return Tip(block, commit, after)


class StoredTop:
    """The top block of a validator's store and the states around it: ``state`` after it
    (the genesis state on an empty store) and ``prev_state`` before it."""

    def __init__(self, store: BlockStore, genesis: Genesis, legacy_path: Path) -> None:
        self._store = store
        self._genesis = genesis
        self._legacy_path = legacy_path
        self.genesis_state = genesis_state(genesis)
        self.prev_state: State | None = None  # before the top stored block
        self.top: Tip | None = None  # the top stored block (None: an empty store)

    @property
    def state(self) -> State:
        return self.top.state if self.top is not None else self.genesis_state

    async def load(self) -> None:
        """Rebuild the states around the top stored block (verifying the store); a decided
        tip left in a file by an earlier version moves into the store."""
        self.prev_state, after = await replay_top(self._store, self._genesis)
        height = await self._store.height()
        stored = await self._store.get(height) if height else None
        if stored is not None and stored.commit is not None:
            self.top = Tip(stored.block, stored.commit, after)
        legacy = load_tip(self._legacy_path, after, stored.commit if stored is not None else None)
        if legacy is not None:
            await self._store.append(legacy.block, legacy.commit)
            self.prev_state, self.top = after, legacy
        self._legacy_path.unlink(missing_ok=True)

    def check_certifies(self, commit: Commit) -> None:
        """Raise ``LedgerError`` unless ``commit`` is a valid certificate of the top block."""
        assert self.top is not None and self.prev_state is not None
        tip = self.state
        if commit.height != tip.height or commit.block_id != tip.last_block_id:
            raise CommitError(commit.height, "certificate of the block below names another block")
        verify_commit(commit, self.prev_state.validators, tip.chain_id)

    async def append(
        self,
        block: Block,
        commit: Commit,
        after: State,
        last_commit: Commit | None,
        *,
        settlements: Sequence[tuple[str, int]] | None,
    ) -> None:
        """Store ``block`` (binding ``last_commit`` to the block below when it is not the
        certificate stored with it) and make it the top."""
        top = self.top
        bound = last_commit if top is not None and last_commit != top.commit else None
        await self._store.append(block, commit, last_commit=bound, settlements=settlements)
        self.prev_state, self.top = self.state, Tip(block, commit, after)
