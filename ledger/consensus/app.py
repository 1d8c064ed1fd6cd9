"""The ledger as consensus sees it: Algorithm 1's ``valid``, ``id`` and ``getValue``.

A consensus value is a block plus the certificate of the previous block that its header binds
(``last_commit_hash``), encoded canonically, as CometBFT blocks carry their ``LastCommit``:
validators gather different sets of precommits, so the proposer's certificate becomes the
canonical one, and every validator stores the previous block with it. ``valid_value`` checks
that certificate, every header field, every transaction and the resulting state hash, and
caches the state the block leads to. No I/O: the node replaces the state after each decision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.apply import apply_txs, select_valid
from ledger.blocks import build_block, verify_header
from ledger.canonical import scan, sha256
from ledger.checked import CheckedTxs
from ledger.codec import block_bytes, block_id, commit_bytes, commit_from_dict, read_block
from ledger.commit import verify_commit
from ledger.errors import EncodingError, LedgerError, TxError
from ledger.state import State, state_hash
from ledger.types import Block, Commit, Tx, ValidatorSet


def encode_value(block: Block, last_commit: Commit | None) -> bytes:
    """``encode({"block": block_to_dict(block), "last_commit": ...})``, spliced from parts."""
    commit = b"null" if last_commit is None else commit_bytes(last_commit)
    return b'{"block":' + block_bytes(block) + b',"last_commit":' + commit + b"}"


def decode_value(
    value: bytes, *, known: Callable[[str, int], int | None] | None = None
) -> tuple[Block, Commit | None]:
    """Raise ``LedgerError`` (an ``EncodingError``) unless ``value`` is a value's form.

    Its transactions are taken as they stand (``read_block``): validating the block checks
    that each is canonical. ``known``: transactions checked before, found without parsing.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"value: not UTF-8: {exc}") from exc
    if not text.startswith('{"block":'):
        raise EncodingError("value: expected an object with block and last_commit")
    block, pos = read_block(text, len('{"block":'), known=known)
    if not text.startswith(',"last_commit":', pos):
        raise EncodingError("value: expected an object with block and last_commit")
    pos += len(',"last_commit":')
    raw, end = scan(text, pos)
    if end != len(text) - 1 or not text.endswith("}"):
        raise EncodingError("value: trailing data after last_commit")
    commit = None if raw is None else commit_from_dict(raw)
    if (b"null" if commit is None else commit_bytes(commit)) != text[pos:end].encode("utf-8"):
        raise EncodingError("value: last_commit not in canonical form")
    return block, commit


DECODED_VALUES = 8  # a height sees a few values at most (one per round's proposer)


class LedgerApp:
    """Valid, id and getValue over the committed ``state`` (consensus ``Application``)."""

    def __init__(
        self,
        state: State,
        last_commit: Commit | None,
        *,
        proposer: str,
        clock_ms: Callable[[], int],
        pending: Callable[[int], Sequence[Tx]],
        max_block_txs: int = 500,
        checked: CheckedTxs | None = None,
        drop: Callable[[list[Tx]], None] | None = None,
    ) -> None:
        self.state = state
        self.last_commit = last_commit
        self.tip_validators: ValidatorSet | None = None
        self.proposer = proposer
        self._clock_ms = clock_ms
        self._pending = pending
        self._drop = drop  # told of pending transactions that no longer apply
        self._max = max_block_txs
        self._checked: dict[bytes, State] = {}  # by the value's bytes, not its id: a header
        # alone does not pin the transactions until its tx_root is checked
        self._decoded: dict[bytes, tuple[Block, Commit | None]] = {}
        self._txs = checked  # transactions verified before: not decoded or verified again

    def advance(
        self, state: State, last_commit: Commit | None, *, tip_validators: ValidatorSet | None
    ) -> None:
        """The tip moved: later values build on ``state``.

        ``tip_validators`` is the set that certified the tip when the tip is decided but not
        yet stored (any valid certificate for it may be bound); None means the tip is stored
        and the next block must bind exactly its stored certificate ``last_commit``.
        """
        self.state = state
        self.last_commit = last_commit
        self.tip_validators = tip_validators
        self._checked.clear()
        self._decoded.clear()

    def decode(self, value: bytes) -> tuple[Block, Commit | None]:
        """``decode_value``, once per value: a proposal arrives from every peer's gossip."""
        found = self._decoded.get(value)
        if found is None:
            known = None if self._txs is None else self._txs.end_of
            found = decode_value(value, known=known)
            self._remember(value, found)
        return found

    def _remember(self, value: bytes, decoded: tuple[Block, Commit | None]) -> None:
        if len(self._decoded) >= DECODED_VALUES:
            del self._decoded[next(iter(self._decoded))]
        self._decoded[value] = decoded

    def value_id(self, value: bytes) -> bytes:
        try:
            return block_id(self.decode(value)[0].header)
        except LedgerError:
            return sha256(value)  # no block: an id no valid header can have

    def valid_value(self, height: int, value: bytes) -> bool:
        return self.state_after(height, value) is not None

    def accepts_last_commit(self, commit: Commit | None) -> bool:
        if self.tip_validators is None:
            return commit == self.last_commit
        if commit is None or commit.height != self.state.height:
            return False
        if commit.block_id != self.state.last_block_id:
            return False
        try:
            verify_commit(commit, self.tip_validators, self.state.chain_id)
        except LedgerError:
            return False
        return True

    def state_after(self, height: int, value: bytes) -> State | None:
        """The state ``value`` leads to if it is a valid next block, else None."""
        if height != self.state.height + 1:
            return None
        if value in self._checked:
            return self._checked[value]
        try:
            block, last_commit = self.decode(value)
        except LedgerError:
            return None
        bid = block_id(block.header)
        if not self.accepts_last_commit(last_commit):
            return None
        try:
            verify_header(self.state, block, last_commit)
            after = apply_txs(
                self.state, block.txs, time=block.header.time, block_hash=bid, checked=self._txs
            )
        except LedgerError:
            return None
        if state_hash(after) != block.header.state_hash:
            return None
        self._checked[value] = after
        return after

    def get_value(self, height: int, round_: int) -> bytes:
        """A new block of pending transactions (those still valid on top of the state).

        Its state is kept, so validating one's own proposal applies nothing again.
        """
        time = max(self._clock_ms(), self.state.time)
        txs = list(self._pending(self._max))
        try:
            block, after = self._build(txs, time)
        except TxError:  # some no longer apply (settled meanwhile, duplicated, ...): drop them
            kept = select_valid(self.state, txs, time=time, checked=self._txs)
            if self._drop is not None:
                keep = set(kept)
                self._drop([tx for tx in txs if tx not in keep])
            block, after = self._build(kept, time)
        value = encode_value(block, self.last_commit)
        self._checked[value] = after
        self._remember(value, (block, self.last_commit))
        return value

    def _build(self, txs: list[Tx], time: int) -> tuple[Block, State]:
        return build_block(
            self.state,
            txs,
            time=time,
            proposer=self.proposer,
            last_commit=self.last_commit,
            checked=self._txs,
        )
