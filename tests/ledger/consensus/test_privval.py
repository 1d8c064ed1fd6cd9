from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from ledger.consensus.errors import DoubleSignRefused, SignerStateError
from ledger.consensus.messages import LockState, Proposal
from ledger.consensus.privval import (
    FileStateStore,
    LastSigned,
    MemoryStateStore,
    PrivValidator,
)
from ledger.consensus.signing import Ed25519Signer, Ed25519Verifier
from ledger.keys import generate_key, key_id_of, public_bytes
from ledger.types import Validator, Vote, VoteKind
from tests.ledger.consensus.fakes import CHAIN, HmacSigner

A = b"\x0a" * 32
B = b"\x0b" * 32
NO_LOCK = LockState(5)


def vote(kind: VoteKind, round_: int, block_id: bytes | None, height: int = 5) -> Vote:
    return Vote(CHAIN, height, round_, kind, block_id, "v0")


def file_pv(path: Path) -> PrivValidator:
    return PrivValidator(HmacSigner("v0"), FileStateStore(path, chain_id=CHAIN, address="v0"))


def test_refuses_a_second_vote_for_another_block_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "pv.json"
    pv = file_pv(path)
    first = pv.sign_vote(vote(VoteKind.PREVOTE, 2, A), NO_LOCK)
    assert first.signature
    restarted = file_pv(path)  # a new process reading the same file
    with pytest.raises(DoubleSignRefused):
        restarted.sign_vote(vote(VoteKind.PREVOTE, 2, B), NO_LOCK)
    with pytest.raises(DoubleSignRefused):
        restarted.sign_vote(vote(VoteKind.PREVOTE, 2, None), NO_LOCK)
    # The identical vote is re-signed with the stored signature (a resend is safe).
    assert restarted.sign_vote(vote(VoteKind.PREVOTE, 2, A), NO_LOCK) == first


@pytest.mark.parametrize(
    ("height", "round_", "kind"),
    [(4, 9, VoteKind.PRECOMMIT), (5, 1, VoteKind.PRECOMMIT), (5, 2, VoteKind.PREVOTE)],
)
def test_refuses_to_regress(tmp_path: Path, height: int, round_: int, kind: VoteKind) -> None:
    pv = file_pv(tmp_path / "pv.json")
    pv.sign_vote(vote(VoteKind.PRECOMMIT, 2, A), LockState(5, 2, b"value"))
    with pytest.raises(DoubleSignRefused):
        pv.sign_vote(vote(kind, round_, A, height=height), NO_LOCK)


def test_allows_progress_and_persists_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "pv.json"
    pv = file_pv(path)
    pv.sign_vote(vote(VoteKind.PREVOTE, 0, A), NO_LOCK)
    pv.sign_vote(vote(VoteKind.PRECOMMIT, 0, A), LockState(5, 0, b"value-a"))
    pv.sign_vote(vote(VoteKind.PREVOTE, 1, None), LockState(5, 0, b"value-a"))
    restarted = file_pv(path)
    assert restarted.resume_point(5) == (1, LockState(5, 0, b"value-a"))
    assert restarted.resume_point(6) == (0, None)
    restarted.sign_vote(vote(VoteKind.PREVOTE, 0, A, height=6), LockState(6))
    assert path.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "pv.json.tmp").exists()


def test_nothing_is_signed_when_the_state_cannot_be_saved(tmp_path: Path) -> None:
    class FailingStore(MemoryStateStore):
        def save(self, state: LastSigned) -> None:
            raise OSError("disk full")

    pv = PrivValidator(HmacSigner("v0"), FailingStore())
    with pytest.raises(OSError):
        pv.sign_vote(vote(VoteKind.PREVOTE, 0, A), NO_LOCK)
    assert pv.last_signed == LastSigned()  # nothing recorded, nothing handed out


def test_proposal_then_votes_in_the_same_round(tmp_path: Path) -> None:
    pv = file_pv(tmp_path / "pv.json")
    p = Proposal(CHAIN, 5, 0, b"v", A, -1, "v0")
    signed = pv.sign_proposal(p)
    assert pv.sign_proposal(p) == signed
    with pytest.raises(DoubleSignRefused):
        pv.sign_proposal(Proposal(CHAIN, 5, 0, b"w", B, -1, "v0"))
    pv.sign_vote(vote(VoteKind.PREVOTE, 0, A), NO_LOCK)
    with pytest.raises(DoubleSignRefused):
        pv.sign_proposal(Proposal(CHAIN, 5, 0, b"v", A, -1, "v0"))


def test_refuses_another_validators_vote(tmp_path: Path) -> None:
    pv = file_pv(tmp_path / "pv.json")
    with pytest.raises(DoubleSignRefused):
        pv.sign_vote(Vote(CHAIN, 1, 0, VoteKind.PREVOTE, A, "v1"), LockState(1))


def test_state_file_of_another_key_or_corrupt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pv.json"
    file_pv(path).sign_vote(vote(VoteKind.PREVOTE, 0, A), NO_LOCK)
    with pytest.raises(SignerStateError):
        FileStateStore(path, chain_id=CHAIN, address="v1").load()
    with pytest.raises(SignerStateError):
        FileStateStore(path, chain_id="other", address="v0").load()
    data = json.loads(path.read_text())
    del data["step"]
    path.write_text(json.dumps(data))
    with pytest.raises(SignerStateError):
        file_pv(path)


def test_ed25519_signatures_verify(tmp_path: Path) -> None:
    key = generate_key()
    address = key_id_of(key)
    validator = Validator(address, public_bytes(key), 1)
    pv = PrivValidator(
        Ed25519Signer(key), FileStateStore(tmp_path / "pv.json", chain_id=CHAIN, address=address)
    )
    v = pv.sign_vote(Vote(CHAIN, 1, 0, VoteKind.PRECOMMIT, A, address), LockState(1, 0, b"x"))
    p = pv.sign_proposal(Proposal(CHAIN, 2, 0, b"x", A, -1, address))
    verifier = Ed25519Verifier()
    assert verifier.verify_vote(v, validator)
    assert verifier.verify_proposal(p, validator)
    assert not verifier.verify_vote(
        Vote(CHAIN, 1, 0, VoteKind.PRECOMMIT, B, address, v.signature), validator
    )
    forged = Proposal(CHAIN, 2, 0, b"x", A, 0, address, p.signature)  # pol_round is signed too
    assert not verifier.verify_proposal(forged, validator)


class SlowStore(MemoryStateStore):
    """A store whose durable write takes a while (as an fsync does), noting when it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.saved_at: list[float] = []

    def save(self, state: LastSigned) -> None:
        time.sleep(0.2)
        super().save(state)
        self.saved_at.append(time.monotonic())


async def test_async_signing_writes_off_the_event_loop_and_before_handing_out() -> None:
    """While the signer state syncs, the event loop runs on (other validators of the
    process, the CSMS); the signature is handed out only after the write."""
    store = SlowStore()
    pv = PrivValidator(HmacSigner("v0"), store)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        signed = await pv.sign_vote_async(vote(VoteKind.PREVOTE, 2, A), NO_LOCK)
        returned = time.monotonic()
    finally:
        ticker.cancel()
    assert ticks >= 5  # the loop was not held for the 0.2 s write
    assert store.state is not None and store.state.signature == signed.signature
    assert store.saved_at[0] <= returned
    with pytest.raises(DoubleSignRefused):
        await pv.sign_vote_async(vote(VoteKind.PREVOTE, 2, B), NO_LOCK)
    proposal = Proposal(CHAIN, 6, 0, b"value", A, -1, "v0")
    assert (await pv.sign_proposal_async(proposal)).signature
    assert store.state.height == 6


async def test_async_signings_of_one_validator_are_one_at_a_time() -> None:
    """Two conflicting votes asked for at once: the second waits for the first's write
    and is then refused, never both signed."""
    pv = PrivValidator(HmacSigner("v0"), SlowStore())
    results = await asyncio.gather(
        pv.sign_vote_async(vote(VoteKind.PREVOTE, 2, A), NO_LOCK),
        pv.sign_vote_async(vote(VoteKind.PREVOTE, 2, B), NO_LOCK),
        return_exceptions=True,
    )
    assert isinstance(results[0], Vote) and isinstance(results[1], DoubleSignRefused)
