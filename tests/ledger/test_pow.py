from __future__ import annotations

import hashlib

from ledger.pow import leading_zero_bits, solve_puzzle


def test_leading_zero_bits() -> None:
    assert leading_zero_bits(b"\x80") == 0
    assert leading_zero_bits(b"\x01") == 7
    assert leading_zero_bits(b"\x00\x10") == 11
    assert leading_zero_bits(b"\x00\x00") == 16


def test_paper_vector() -> None:
    # the paper's example: SHA-256("blockchain10730895") starts with six hex zeros
    assert hashlib.sha256(b"blockchain10730895").hexdigest().startswith("000000")
    nonce, digest = solve_puzzle("blockchain", 6, start=10_730_000)
    assert nonce == 10_730_895
    assert digest == hashlib.sha256(b"blockchain10730895").hexdigest()


def test_puzzle_finds_the_first_nonce() -> None:
    nonce, digest = solve_puzzle("abc", 2)
    assert digest.startswith("00")
    assert all(
        not hashlib.sha256(f"abc{n}".encode()).hexdigest().startswith("00") for n in range(nonce)
    )
