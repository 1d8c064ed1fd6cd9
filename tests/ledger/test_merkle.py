from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import ProofError
from ledger.merkle import inclusion_proof, merkle_root, root_from_path, verify_inclusion

# An independent implementation: the recursive definitions of RFC 6962, section 2.1,
# transcribed directly (MTH and PATH), with no sharing of code with ledger.merkle.


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return _sha(b"")
    if n == 1:
        return _sha(b"\x00" + d[0])
    k = _split(n)
    return _sha(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def test_known_small_trees() -> None:
    assert merkle_root([]) == _sha(b"")
    assert merkle_root([b"a"]) == _sha(b"\x00a")
    ab = _sha(b"\x01" + _sha(b"\x00a") + _sha(b"\x00b"))
    assert merkle_root([b"a", b"b"]) == ab
    # three leaves: split at 2, the third leaf is not paired with itself
    assert merkle_root([b"a", b"b", b"c"]) == _sha(b"\x01" + ab + _sha(b"\x00c"))


leaf_lists = st.lists(st.binary(max_size=8), min_size=1, max_size=40)


@given(leaf_lists)
def test_root_matches_rfc_definition(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == rfc_mth(leaves)


@given(leaf_lists, st.data())
def test_proof_matches_rfc_and_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = inclusion_proof(leaves, index)
    assert path == rfc_path(index, leaves)
    root = rfc_mth(leaves)
    verify_inclusion(leaves[index], index, len(leaves), path, root)


@given(leaf_lists, st.data())
def test_wrong_leaf_index_or_path_fails(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = inclusion_proof(leaves, index)
    root = merkle_root(leaves)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index] + b"x", index, len(leaves), path, root)
    if path:
        bad = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, len(leaves), bad, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, len(leaves), path[:-1], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[index], index, len(leaves), [*path, root], root)


def test_index_out_of_range() -> None:
    with pytest.raises(ProofError):
        inclusion_proof([b"a"], 1)
    with pytest.raises(ProofError):
        root_from_path(b"a", 3, 3, [])
