"""Blocks: building one from a state and transactions, and checking one against a state.

Both are pure. ``build_block`` is what a proposer (or the single-process sealing tool)
runs; ``verify_block`` is what ``verify``, catching-up validators and consensus run on a
received block: every header field is recomputed and compared, the certificate (or the
proof of work) is checked, and the transactions are re-validated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ledger.apply import apply_txs
from ledger.checked import CheckedTxs
from ledger.codec import block_id, commit_hash, validators_hash
from ledger.commit import verify_commit
from ledger.errors import BlockError, CommitError, PowError, TxError
from ledger.merkle import merkle_root
from ledger.pow import leading_zero_bits, seal_pow
from ledger.state import State, state_hash
from ledger.types import Block, Commit, Header, Tx


def build_block(
    state: State,
    txs: Sequence[Tx],
    *,
    time: int,
    proposer: str,
    last_commit: Commit | None,
    nonce: int = 0,
    checked: CheckedTxs | None = None,
) -> tuple[Block, State]:
    """The next block after ``state`` holding ``txs``, and the state it leads to.

    Raises the ``TxError`` of the first invalid transaction. In PoW mode the header is
    sealed (its nonce searched) before it is returned.
    """
    tx_tuple = tuple(txs)
    after = apply_txs(state, tx_tuple, time=time, block_hash=bytes(32), checked=checked)
    header = Header(
        chain_id=state.chain_id,
        height=state.height + 1,
        time=time,
        prev_hash=state.last_block_id,
        tx_root=merkle_root([t.data for t in tx_tuple]),
        validators_hash=validators_hash(state.validators),
        last_commit_hash=commit_hash(last_commit),
        state_hash=state_hash(after),
        proposer=proposer,
        nonce=nonce,
    )
    if state.sealing == "pow":
        header = seal_pow(header, state.pow_bits)
    block = Block(header, tx_tuple)
    return block, dataclasses.replace(after, last_block_id=block_id(header))


def _expect(height: int, name: str, expected: object, received: object) -> None:
    if expected != received:
        if isinstance(expected, bytes) and isinstance(received, bytes):
            expected, received = expected.hex(), received.hex()
        raise BlockError(height, f"{name}: expected {expected}, received {received}")


def verify_header(state: State, block: Block, last_commit: Commit | None) -> None:
    """Check every header field that can be recomputed before applying the transactions."""
    h = state.height + 1
    header = block.header
    _expect(h, "header.chain_id", state.chain_id, header.chain_id)
    _expect(h, "header.height", h, header.height)
    if header.time < state.time:
        raise BlockError(h, f"header.time {header.time} is before the previous {state.time}")
    _expect(h, "header.prev_hash", state.last_block_id, header.prev_hash)
    _expect(h, "header.tx_root", merkle_root([t.data for t in block.txs]), header.tx_root)
    _expect(h, "header.validators_hash", validators_hash(state.validators), header.validators_hash)
    _expect(h, "header.last_commit_hash", commit_hash(last_commit), header.last_commit_hash)
    if state.sealing == "bft" and state.validators.get(header.proposer) is None:
        raise BlockError(h, f"header.proposer {header.proposer} is not a validator")


def verify_seal(state: State, block: Block, commit: Commit | None) -> None:
    """Check the block's certificate (BFT) or its proof of work (PoW)."""
    h = state.height + 1
    bid = block_id(block.header)
    if state.sealing == "pow":
        bits = leading_zero_bits(bid)
        if bits < state.pow_bits:
            raise PowError(h, f"block id has {bits} leading zero bits, expected {state.pow_bits}")
        return
    if commit is None:
        raise CommitError(h, "no commit certificate stored with the block")
    if commit.height != h:
        raise CommitError(h, f"commit.height: expected {h}, received {commit.height}")
    if commit.block_id != bid:
        raise CommitError(
            h, f"commit.block_id: expected {bid.hex()}, received {commit.block_id.hex()}"
        )
    verify_commit(commit, state.validators, state.chain_id)


def verify_block(
    state: State,
    block: Block,
    commit: Commit | None,
    *,
    last_commit: Commit | None,
    checked: CheckedTxs | None = None,
) -> State:
    """Check ``block`` (and its ``commit``) as the successor of ``state``; return the new state.

    ``last_commit`` is the certificate of the previous block (None at height 1 and in
    PoW mode). Any failure is a ``BlockError`` naming the height. ``checked``: transactions
    verified before (``apply_txs``).
    """
    h = state.height + 1
    verify_header(state, block, last_commit)
    verify_seal(state, block, commit)
    try:
        after = apply_txs(
            state,
            block.txs,
            time=block.header.time,
            block_hash=block_id(block.header),
            checked=checked,
        )
    except TxError as exc:
        where = "; ".join(getattr(exc, "__notes__", [])) or "a transaction"
        raise BlockError(h, f"{where}: {type(exc).__name__}: {exc}") from exc
    _expect(h, "header.state_hash", state_hash(after), block.header.state_hash)
    return after
