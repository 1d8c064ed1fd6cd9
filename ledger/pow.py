"""Proof of work, the paper's alternative sealing for a single open node.

A PoW-sealed block is valid when SHA-256 of its canonical header (its block id) has at
least ``bits`` leading zero bits; the header's ``nonce`` is what the sealer varies.
``solve_puzzle`` is the paper's own demonstration: the first nonce for which
SHA-256(text + nonce), written in hex, starts with ``zeros`` zeros.
"""

from __future__ import annotations

import dataclasses
import hashlib

from ledger.codec import block_id
from ledger.types import Header


def leading_zero_bits(data: bytes) -> int:
    """Number of leading zero bits of ``data``."""
    bits = 0
    for byte in data:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def meets_target(header: Header, bits: int) -> bool:
    return leading_zero_bits(block_id(header)) >= bits


def seal_pow(header: Header, bits: int, *, max_tries: int = 1 << 32) -> Header:
    """Return ``header`` with the first nonce (from its own) that meets the target."""
    nonce = header.nonce
    for nonce in range(header.nonce, header.nonce + max_tries):
        sealed = dataclasses.replace(header, nonce=nonce)
        if meets_target(sealed, bits):
            return sealed
    raise ValueError(f"no nonce in {max_tries} tries meets {bits} zero bits")


def solve_puzzle(
    text: str, zeros: int, *, start: int = 0, max_tries: int = 1 << 40
) -> tuple[int, str]:
    """First nonce >= ``start`` whose hex SHA-256(text + nonce) starts with ``zeros`` zeros."""
    prefix = "0" * zeros
    base = hashlib.sha256(text.encode("utf-8"))
    for nonce in range(start, start + max_tries):
        h = base.copy()
        h.update(str(nonce).encode("ascii"))
        hexdigest = h.hexdigest()
        if hexdigest.startswith(prefix):
            return nonce, hexdigest
    raise ValueError(f"no nonce in {max_tries} tries gives {zeros} leading hex zeros")
