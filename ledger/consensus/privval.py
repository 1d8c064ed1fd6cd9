"""The private validator: signs votes and proposals, never two conflicting ones.

Before a signature is returned, the signed (height, round, step), the sign bytes, the signature
and the validator's lock are written durably (temp file, fsync, rename, directory fsync). So a
signature can only leave the process after the record of it is on disk; after a crash the
validator reloads the record and refuses anything that would conflict with what it signed or
regress to an earlier height, round or step (CometBFT's FilePV rule). Re-signing the identical
message returns the stored signature.

A validator node signs with ``sign_vote_async`` / ``sign_proposal_async``: the same rule, with
the durable write in a thread, so that the event loop (the other validators of an embedded
set, the CSMS beside them) is not held for the disk's sync; one signature at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledger.canonical import decode, encode, from_hex
from ledger.consensus.codec import lock_from_dict, lock_to_dict
from ledger.consensus.errors import DoubleSignRefused, SignerStateError
from ledger.consensus.messages import LockState, Proposal
from ledger.consensus.signing import Signer, proposal_sign_bytes
from ledger.errors import EncodingError
from ledger.signing import vote_sign_bytes
from ledger.types import Vote, VoteKind

STEP_PROPOSE = 1
STEP_PREVOTE = 2
STEP_PRECOMMIT = 3
_VOTE_STEP = {VoteKind.PREVOTE: STEP_PREVOTE, VoteKind.PRECOMMIT: STEP_PRECOMMIT}


@dataclass(frozen=True, slots=True)
class LastSigned:
    """What the validator signed last, and its lock at that moment."""

    height: int = 0
    round: int = -1
    step: int = 0
    sign_bytes: bytes = b""
    signature: bytes = b""
    lock: LockState | None = None


class SignerStateStore(Protocol):
    """Durable home of :class:`LastSigned`: ``save`` returns only once the state is durable."""

    def load(self) -> LastSigned | None: ...

    def save(self, state: LastSigned) -> None: ...


class MemoryStateStore:
    """In-memory twin for tests and simulations (it survives a simulated crash)."""

    def __init__(self) -> None:
        self.state: LastSigned | None = None

    def load(self) -> LastSigned | None:
        return self.state

    def save(self, state: LastSigned) -> None:
        self.state = state


class FileStateStore:
    """One JSON file, replaced atomically and synced (file and directory) on every save."""

    def __init__(self, path: Path, *, chain_id: str, address: str) -> None:
        self.path = path
        self.chain_id = chain_id
        self.address = address

    def load(self) -> LastSigned | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SignerStateError(f"{self.path}: cannot read: {exc.strerror}") from exc
        try:
            data = decode(raw)
            if data.get("chain_id") != self.chain_id or data.get("address") != self.address:
                raise SignerStateError(
                    f"{self.path}: state of {data.get('address')!r} on {data.get('chain_id')!r},"
                    f" expected {self.address!r} on {self.chain_id!r}"
                )
            lock = None if data["lock"] is None else lock_from_dict(data["lock"])
            return LastSigned(
                height=int(data["height"]),
                round=int(data["round"]),
                step=int(data["step"]),
                sign_bytes=from_hex(data["sign_bytes"], field="sign_bytes"),
                signature=from_hex(data["signature"], field="signature"),
                lock=lock,
            )
        except (EncodingError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SignerStateError(f"{self.path}: corrupt signer state: {exc}") from exc

    def save(self, state: LastSigned) -> None:
        data = encode(
            {
                "address": self.address,
                "chain_id": self.chain_id,
                "height": state.height,
                "lock": None if state.lock is None else lock_to_dict(state.lock),
                "round": state.round,
                "sign_bytes": state.sign_bytes.hex(),
                "signature": state.signature.hex(),
                "step": state.step,
            }
        )
        write_durably(self.path, data)


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that after a crash it holds the old or the new bytes."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PrivValidator:
    """Double-sign-safe signing for one validator key."""

    def __init__(self, signer: Signer, store: SignerStateStore) -> None:
        self._signer = signer
        self._store = store
        self._last = store.load() or LastSigned()
        self._signing = asyncio.Lock()  # one signature at a time while a write is under way

    @property
    def address(self) -> str:
        return self._signer.address

    @property
    def last_signed(self) -> LastSigned:
        return self._last

    def resume_point(self, height: int) -> tuple[int, LockState | None]:
        """Round and lock to restart ``height`` at: where this validator last signed there."""
        last = self._last
        if last.height != height:
            return 0, None
        lock = last.lock if last.lock is not None and last.lock.height == height else None
        return max(last.round, 0), lock

    def sign_vote(self, vote: Vote, lock: LockState) -> Vote:
        """Sign ``vote`` after durably recording it and ``lock``; refuse a conflict."""
        signed, record = self._vote(vote, lock)
        if record is not None:
            self._persist(record)
        return signed

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """Sign ``proposal`` after durably recording it; refuse a conflict."""
        signed, record = self._proposal(proposal)
        if record is not None:
            self._persist(record)
        return signed

    async def sign_vote_async(self, vote: Vote, lock: LockState) -> Vote:
        """``sign_vote`` with the durable write done in a thread: the event loop (other
        validators of the process, the CSMS) goes on while the disk syncs, and the signature
        is still handed out only once the write is done."""
        async with self._signing:
            signed, record = self._vote(vote, lock)
            if record is not None:
                await self._persist_async(record)
            return signed

    async def sign_proposal_async(self, proposal: Proposal) -> Proposal:
        """``sign_proposal`` with the durable write done in a thread (``sign_vote_async``)."""
        async with self._signing:
            signed, record = self._proposal(proposal)
            if record is not None:
                await self._persist_async(record)
            return signed

    def _vote(self, vote: Vote, lock: LockState) -> tuple[Vote, LastSigned | None]:
        """The signed vote and the record to make durable before it leaves (None: the
        identical vote was signed before)."""
        if vote.validator != self.address:
            raise DoubleSignRefused(f"vote names {vote.validator}, this key is {self.address}")
        unsigned = dataclasses.replace(vote, signature=b"")
        sign_bytes = vote_sign_bytes(unsigned)
        step = _VOTE_STEP[vote.kind]
        reused = self._check(vote.height, vote.round, step, sign_bytes)
        if reused is not None:
            return dataclasses.replace(unsigned, signature=reused), None
        signature = self._signer.vote_signature(unsigned)
        record = LastSigned(vote.height, vote.round, step, sign_bytes, signature, lock)
        return dataclasses.replace(unsigned, signature=signature), record

    def _proposal(self, proposal: Proposal) -> tuple[Proposal, LastSigned | None]:
        if proposal.proposer != self.address:
            raise DoubleSignRefused(f"proposal names {proposal.proposer}, key is {self.address}")
        unsigned = dataclasses.replace(proposal, signature=b"")
        sign_bytes = proposal_sign_bytes(unsigned)
        reused = self._check(proposal.height, proposal.round, STEP_PROPOSE, sign_bytes)
        if reused is not None:
            return dataclasses.replace(unsigned, signature=reused), None
        signature = self._signer.proposal_signature(unsigned)
        lock = self._last.lock if self._last.height == proposal.height else None
        record = LastSigned(
            proposal.height, proposal.round, STEP_PROPOSE, sign_bytes, signature, lock
        )
        return dataclasses.replace(unsigned, signature=signature), record

    def _check(self, height: int, round_: int, step: int, sign_bytes: bytes) -> bytes | None:
        """Refuse a regression or a conflict; return the old signature for an identical message."""
        last = self._last
        new, old = (height, round_, step), (last.height, last.round, last.step)
        if new < old:
            raise DoubleSignRefused(f"height/round/step {new} regresses from {old}")
        if new == old:
            if sign_bytes == last.sign_bytes:
                return last.signature
            raise DoubleSignRefused(f"conflicting message at height/round/step {new}")
        return None

    def _persist(self, state: LastSigned) -> None:
        self._store.save(state)  # durable before the signature is handed out
        self._last = state

    async def _persist_async(self, state: LastSigned) -> None:
        await asyncio.to_thread(self._store.save, state)
        self._last = state
