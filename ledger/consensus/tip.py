"""The decided tip: the last decided block, kept durably until the next block stores it.

A block's stored certificate must be the one the next block binds (``last_commit_hash``), so
a validator stores block ``h`` when block ``h + 1`` is decided, and meanwhile keeps block ``h``
with the certificate it gathered in one synced file. A restart re-verifies it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.blocks import verify_block
from ledger.canonical import decode, encode
from ledger.codec import block_from_dict, block_to_dict, commit_from_dict, commit_to_dict
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
    write_durably(
        path, encode({"block": block_to_dict(tip.block), "commit": commit_to_dict(tip.commit)})
    )


def load_tip(path: Path, base: State, base_commit: Commit | None) -> Tip | None:
    """The tip in ``path`` if it verifies as the block after ``base``; else None (refetch)."""
    if not path.exists():
        return None
    try:
        data = decode(path.read_bytes())
        block, commit = block_from_dict(data["block"]), commit_from_dict(data["commit"])
        after = verify_block(base, block, commit, last_commit=base_commit)
    except (LedgerError, OSError, KeyError, TypeError):
        return None
    return Tip(block, commit, after)
