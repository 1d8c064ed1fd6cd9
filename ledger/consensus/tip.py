"""The top block a validator holds, and the decided-tip file of earlier versions.

A validator stores each block the moment it is decided, with the quorum of precommits it
decided on; the next block binds the canonical certificate (``last_commit_hash``), which
replaces that one when the next block is stored. Earlier versions kept the last decided
block in ``decided_tip.json`` until the next one was decided: ``load_tip`` reads such a
file once at start-up so its block moves into the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.blocks import verify_block
from ledger.canonical import scan
from ledger.codec import commit_from_dict, expect_literal, read_block
from ledger.errors import LedgerError
from ledger.state import State
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
