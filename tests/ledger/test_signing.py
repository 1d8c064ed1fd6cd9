from __future__ import annotations

import dataclasses
import hashlib

from ledger.keys import generate_key, key_id, key_id_of, public_bytes, sign, verify
from ledger.signing import sign_vote, verify_vote, vote_sign_bytes
from ledger.types import Vote, VoteKind


def make_vote(block_id: bytes | None = bytes(range(32))) -> Vote:
    return Vote(
        chain_id="test-chain",
        height=5,
        round=1,
        kind=VoteKind.PRECOMMIT,
        block_id=block_id,
        validator="",
    )


def test_vote_sign_bytes_golden() -> None:
    expected = (
        b'{"chain_id":"test-chain","domain":"v2g/vote/v1","payload":{"block_id":'
        b'"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
        b'"height":5,"kind":"precommit","round":1}}'
    )
    assert vote_sign_bytes(make_vote()) == expected


def test_nil_vote_sign_bytes_golden() -> None:
    expected = (
        b'{"chain_id":"test-chain","domain":"v2g/vote/v1","payload":{"block_id":null,'
        b'"height":5,"kind":"precommit","round":1}}'
    )
    assert vote_sign_bytes(make_vote(None)) == expected


def test_signed_vote_verifies_and_tampering_breaks_it() -> None:
    key = generate_key()
    vote = sign_vote(make_vote(), key)
    assert vote.validator == key_id_of(key)
    assert verify_vote(vote, public_bytes(key))
    for changed in (
        dataclasses.replace(vote, height=6),
        dataclasses.replace(vote, round=2),
        dataclasses.replace(vote, kind=VoteKind.PREVOTE),
        dataclasses.replace(vote, block_id=None),
        dataclasses.replace(vote, chain_id="other-chain"),
    ):
        assert not verify_vote(changed, public_bytes(key))
    assert not verify_vote(vote, public_bytes(generate_key()))


def test_key_id_is_truncated_sha256_of_public_key() -> None:
    key = generate_key()
    pub = public_bytes(key)
    assert key_id(pub) == hashlib.sha256(pub).hexdigest()[:40]


def test_rfc8032_vector_verifies() -> None:
    # RFC 8032 section 7.1, TEST 1 (empty message).
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert verify(pub, b"", sig)
    assert not verify(pub, b"x", sig)
    assert not verify(pub, b"", sig[:-1])


def test_sign_then_verify_raw() -> None:
    key = generate_key()
    assert verify(public_bytes(key), b"msg", sign(key, b"msg"))
