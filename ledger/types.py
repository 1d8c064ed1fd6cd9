"""Pure ledger data: votes, validators and validator sets (more types join as the ledger grows).

Frozen dataclasses with checks and no I/O (STYLE.md, CometBFT row). Quorum is integer
arithmetic: a set of validators holding power ``w`` out of ``P`` is a quorum iff ``3*w > 2*P``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class VoteKind(StrEnum):
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"


@dataclass(frozen=True, slots=True)
class Vote:
    """A signed prevote or precommit; ``block_id`` None is a vote for nil."""

    chain_id: str
    height: int
    round: int
    kind: VoteKind
    block_id: bytes | None
    validator: str  # the validator's address: its key id
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Validator:
    """A member of the validator set: its address (key id), Ed25519 public key and power."""

    address: str
    public_key: bytes
    power: int

    def __post_init__(self) -> None:
        if self.power <= 0:
            raise ValueError(f"validator {self.address}: power must be positive, got {self.power}")


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """An ordered set of validators; the order is by address, so it is canonical."""

    validators: tuple[Validator, ...]
    _by_address: dict[str, Validator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.validators, key=lambda v: v.address))
        object.__setattr__(self, "validators", ordered)
        by_address = {v.address: v for v in ordered}
        if len(by_address) != len(ordered):
            raise ValueError("duplicate validator address")
        object.__setattr__(self, "_by_address", by_address)

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    def get(self, address: str) -> Validator | None:
        return self._by_address.get(address)

    def power_of(self, addresses: Iterable[str]) -> int:
        """Power held by the distinct known addresses given."""
        return sum(self._by_address[a].power for a in set(addresses) if a in self._by_address)

    def is_quorum(self, power: int) -> bool:
        """More than two thirds of the total power."""
        return 3 * power > 2 * self.total_power

    def is_one_third_plus(self, power: int) -> bool:
        """More than one third of the total power (enough to skip to a higher round)."""
        return 3 * power > self.total_power


ZERO_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class Tx:
    """A committed transaction: the canonical bytes of its signed record (a Merkle leaf)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """A block header; ``block_id`` is SHA-256 of its canonical encoding.

    ``time`` is Unix time in milliseconds (an integer, like everything hashed).
    ``prev_hash`` is the previous block id (the genesis hash at height 1);
    ``last_commit_hash`` binds the previous block's certificate (zeros at height 1);
    ``state_hash`` is the state after applying this block's transactions.
    """

    chain_id: str
    height: int
    time: int
    prev_hash: bytes
    tx_root: bytes
    validators_hash: bytes
    last_commit_hash: bytes
    state_hash: bytes
    proposer: str
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[Tx, ...] = ()


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's precommit signature inside a commit certificate."""

    validator: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """A commit certificate: precommits for ``block_id`` by more than 2/3 of the power."""

    height: int
    round: int
    block_id: bytes
    signatures: tuple[CommitSig, ...]
