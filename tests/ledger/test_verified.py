"""Consensus signatures a process verified are not verified again; forgeries never pass."""

from __future__ import annotations

import pytest

import ledger.verified
from ledger.keys import generate_key, public_bytes, sign
from ledger.verified import VerifiedSignatures


def count_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = ledger.verified.verify

    def counting(key: bytes, message: bytes, sig: bytes) -> bool:
        calls[0] += 1
        return real(key, message, sig)

    monkeypatch.setattr(ledger.verified, "verify", counting)
    return calls


def test_a_triple_that_verified_is_answered_from_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_checks(monkeypatch)
    key = generate_key()
    pub, message = public_bytes(key), b"vote at height 7"
    signature = sign(key, message)
    seen = VerifiedSignatures()
    assert seen.verify(pub, message, signature)
    assert seen.verify(pub, message, signature)
    assert calls[0] == 1 and seen.checks == 1 and seen.hits == 1


def test_forgeries_are_checked_every_time_and_never_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_checks(monkeypatch)
    key, other = generate_key(), generate_key()
    pub, message = public_bytes(key), b"vote at height 7"
    signature = sign(key, message)
    seen = VerifiedSignatures()
    assert seen.verify(pub, message, signature)
    # the same signature over another message, under another key, or altered: checked, false
    assert not seen.verify(pub, b"vote at height 8", signature)
    assert not seen.verify(public_bytes(other), message, signature)
    altered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not seen.verify(pub, message, altered)
    assert not seen.verify(pub, message, altered)
    assert calls[0] == 5 and len(seen) == 1


def test_memory_is_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_checks(monkeypatch)
    key = generate_key()
    pub = public_bytes(key)
    messages = [f"m{i}".encode() for i in range(4)]
    signed = [(m, sign(key, m)) for m in messages]
    seen = VerifiedSignatures(limit=3)
    for m, s in signed:
        assert seen.verify(pub, m, s)
    assert len(seen) == 3 and calls[0] == 4
    assert seen.verify(pub, *signed[3])  # kept
    assert calls[0] == 4
    assert seen.verify(pub, *signed[0])  # the oldest went: checked again
    assert calls[0] == 5
