"""The decided tip: the last decided block, kept durably until the next block stores it.

A block's stored certificate must be the one the next block binds (``last_commit_hash``), so
a validator stores block ``h`` when block ``h + 1`` is decided, and meanwhile keeps block ``h``
with the certificate it gathered in one synced file. A restart re-verifies it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.blocks import verify_block
from ledger.canonical import scan
from ledger.codec import block_bytes, commit_bytes, commit_from_dict, expect_literal, read_block
from ledger.consensus.privval import write_durably
from ledger.errors import LedgerError
from ledger.state import State
from ledger.types import Block, Commit


@dataclass(frozen=True, slots=True)
class Tip:
    """The last decided block, its own certificate, and the state after it."""

    block: Block
    commit: Commit
    state: State

    @property
    def height(self) -> int:
        return self.block.header.height


def save_tip(path: Path, tip: Tip | None) -> None:
    """Replace the tip file durably (or remove it when the tip is stored)."""
    if tip is None:
        path.unlink(missing_ok=True)
        return
    data = b'{"block":' + block_bytes(tip.block) + b',"commit":' + commit_bytes(tip.commit) + b"}"
    write_durably(path, data)  # = encode({"block": block_to_dict, "commit": commit_to_dict})


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
