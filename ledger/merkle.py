"""RFC 6962 Merkle trees: the root over a block's transactions and inclusion proofs.

Leaves are hashed as ``SHA-256(0x00 || data)`` and inner nodes as
``SHA-256(0x01 || left || right)``, so a leaf can never pass for a node. The tree is
built level by level, carrying an odd last node up unchanged, which yields the same root
as the RFC's recursive split at the largest power of two. Proofs are verified with the
algorithm of RFC 9162, section 2.1.3.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.errors import ProofError

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first, the root's level last."""
    level = [leaf_hash(d) for d in leaves]
    levels = [level]
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of ``leaves`` (SHA-256 of nothing for no leaves)."""
    if not leaves:
        return EMPTY_ROOT
    return _levels(leaves)[-1][0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index``: sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise ProofError(f"leaf index {index} outside a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf and its audit path (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside a tree of {size} leaves")
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise ProofError("audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("audit path is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofError`` unless ``leaf`` is leaf ``index`` of the tree with ``root``."""
    computed = root_from_path(leaf, index, size, path)
    if computed != root:
        raise ProofError(f"Merkle root mismatch: expected {root.hex()}, computed {computed.hex()}")
