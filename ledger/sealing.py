"""Single-process sealing: produce certified blocks without running consensus.

Used by tests, benchmarks and demos, and as the sealer of a PoW chain. A BFT block is
certified by precommits signed with the given validator keys (those that are members
of the set at that height); the proposer is chosen round-robin by height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.blocks import build_block
from ledger.codec import block_id
from ledger.commit import make_commit
from ledger.keys import SigningKey, key_id_of
from ledger.state import State
from ledger.types import Block, Commit, Tx


@dataclass(frozen=True, slots=True)
class Sealed:
    block: Block
    commit: Commit | None
    state: State


def seal_block(
    state: State,
    txs: Sequence[Tx],
    keys: Sequence[SigningKey],
    *,
    time: int,
    last_commit: Commit | None,
    round: int = 0,
) -> Sealed:
    """Build the next block and, in BFT mode, certify it with ``keys``."""
    height = state.height + 1
    if state.sealing == "pow":
        block, after = build_block(state, txs, time=time, proposer="pow", last_commit=None)
        return Sealed(block, None, after)
    members = state.validators.validators
    proposer = members[height % len(members)].address
    block, after = build_block(state, txs, time=time, proposer=proposer, last_commit=last_commit)
    signers = [k for k in keys if state.validators.get(key_id_of(k)) is not None]
    commit = make_commit(
        chain_id=state.chain_id,
        height=height,
        block_id=block_id(block.header),
        keys=signers,
        round=round,
    )
    return Sealed(block, commit, after)
