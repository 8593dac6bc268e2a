"""RFC 6962 / RFC 9162 Merkle trees: known answers, properties, and each way a proof can fail."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    MerkleErrorKind,
    MerkleVerificationError,
    RootMismatchError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)


def leaves(count: int) -> list[bytes]:
    return [leaf_hash(b"leaf-%d" % i) for i in range(count)]


def reference_root(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written exactly as the definition (recursive; small trees only)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(reference_root(hashes[:k]), reference_root(hashes[k:]))


def h(hex_digest: str) -> bytes:
    return bytes.fromhex(hex_digest)


def raises_kind(kind: MerkleErrorKind, action: Callable[[], object]) -> MerkleVerificationError:
    with pytest.raises(MerkleVerificationError) as caught:
        action()
    assert caught.value.kind == kind, str(caught.value)
    return caught.value


# --------------------------------------------------------------------------------------------
# Known answers
# --------------------------------------------------------------------------------------------

#: The leaf inputs of RFC 6962's reference tests (transparency-dev/merkle testonly/constants.go).
RFC6962_INPUTS = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC6962_HASHES = [leaf_hash(data) for data in RFC6962_INPUTS]
#: MTH of the first n inputs, n = 1..8 (testonly.RootHashes()).
RFC6962_ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaves([]) == EMPTY_ROOT


def test_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    assert leaf_hash(b"") == RFC6962_ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_rfc6962_reference_roots(size: int) -> None:
    assert root_from_leaves(RFC6962_HASHES[:size]) == RFC6962_ROOTS[size - 1]


def test_hand_computed_small_trees() -> None:
    a, b, c, d, e = leaves(5)
    assert root_from_leaves([a]) == a
    assert root_from_leaves([a, b]) == node_hash(a, b)
    assert root_from_leaves([a, b, c]) == node_hash(node_hash(a, b), c)
    assert root_from_leaves([a, b, c, d]) == node_hash(node_hash(a, b), node_hash(c, d))
    # Five leaves split at 4 (the largest power of two below 5), not at 3: left-balanced.
    assert root_from_leaves([a, b, c, d, e]) == node_hash(
        node_hash(node_hash(a, b), node_hash(c, d)), e
    )
    assert inclusion_proof([a, b, c, d, e], 2) == [d, node_hash(a, b), e]
    assert inclusion_proof([a, b, c, d, e], 4) == [node_hash(node_hash(a, b), node_hash(c, d))]
    assert consistency_proof([a, b, c, d, e], 3) == [c, d, node_hash(a, b), e]
    assert consistency_proof([a, b, c, d, e], 4) == [e]
    assert consistency_proof([a, b, c, d, e], 5) == []


def test_rfc6962_reference_proofs() -> None:
    """The proofs of transparency-dev/merkle cmd/proofgen (index there is 1-based)."""
    assert inclusion_proof(RFC6962_HASHES[:8], 0) == [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]
    assert inclusion_proof(RFC6962_HASHES[:5], 1) == [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]
    assert consistency_proof(RFC6962_HASHES[:8], 6) == [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]
    assert consistency_proof(RFC6962_HASHES[:7], 6) == [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]
    assert consistency_proof(RFC6962_HASHES[:5], 2) == [
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    size = draw(st.integers(min_value=1, max_value=300))
    return leaves(size), draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def tree_and_old_size(draw: st.DrawFn) -> tuple[list[bytes], int]:
    size = draw(st.integers(min_value=1, max_value=300))
    return leaves(size), draw(st.integers(min_value=1, max_value=size))


@given(st.integers(min_value=0, max_value=200))
def test_root_matches_the_recursive_definition(size: int) -> None:
    hashes = leaves(size)
    assert root_from_leaves(hashes) == reference_root(hashes)


@given(tree_and_index())
def test_inclusion_proofs_verify(case: tuple[list[bytes], int]) -> None:
    hashes, index = case
    root = root_from_leaves(hashes)
    proof = inclusion_proof(hashes, index)
    assert root_from_inclusion_proof(index, len(hashes), hashes[index], proof) == root
    verify_inclusion(index, len(hashes), hashes[index], proof, root)


@given(tree_and_index(), st.data())
def test_tampered_inclusion_proofs_fail(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    hashes, index = case
    size, root = len(hashes), root_from_leaves(hashes)
    proof = inclusion_proof(hashes, index)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        tampered = list(proof)
        tampered[position] = bytes([proof[position][0] ^ (1 << (bit % 8))]) + proof[position][1:]
        with pytest.raises(RootMismatchError):
            verify_inclusion(index, size, hashes[index], tampered, root)
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(MerkleVerificationError):
            verify_inclusion(other, size, hashes[index], proof, root)
    with pytest.raises(MerkleVerificationError):
        verify_inclusion(index, size, hashes[index], [*proof, EMPTY_ROOT], root)


@given(tree_and_old_size())
def test_consistency_proofs_verify(case: tuple[list[bytes], int]) -> None:
    hashes, old_size = case
    proof = consistency_proof(hashes, old_size)
    old_root, new_root = root_from_leaves(hashes[:old_size]), root_from_leaves(hashes)
    verify_consistency(old_size, len(hashes), old_root, new_root, proof)


@given(tree_and_old_size(), st.data())
def test_tampered_consistency_proofs_fail(
    case: tuple[list[bytes], int], data: st.DataObject
) -> None:
    hashes, old_size = case
    size = len(hashes)
    proof = consistency_proof(hashes, old_size)
    old_root, new_root = root_from_leaves(hashes[:old_size]), root_from_leaves(hashes)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1))
        tampered = list(proof)
        tampered[position] = bytes([proof[position][0] ^ 16]) + proof[position][1:]
        with pytest.raises(RootMismatchError):
            verify_consistency(old_size, size, old_root, new_root, tampered)
    if old_size < size:
        with pytest.raises(RootMismatchError):
            verify_consistency(old_size, size, new_root, old_root, proof)
    with pytest.raises(MerkleVerificationError):
        verify_consistency(old_size, size, old_root, new_root, [*proof, EMPTY_ROOT])


@settings(max_examples=25)
@given(st.integers(min_value=1, max_value=40), st.data())
def test_every_index_and_old_size_of_a_tree(size: int, data: st.DataObject) -> None:
    hashes = leaves(size)
    root = root_from_leaves(hashes)
    for index in range(size):
        verify_inclusion(index, size, hashes[index], inclusion_proof(hashes, index), root)
    for old_size in range(1, size + 1):
        old_root = root_from_leaves(hashes[:old_size])
        verify_consistency(old_size, size, old_root, root, consistency_proof(hashes, old_size))


def test_large_tree_needs_no_recursion() -> None:
    size = (1 << 17) + 5  # Far beyond any recursion limit if the build recursed per leaf.
    hashes = leaves(size)
    root = root_from_leaves(hashes)
    for index in (0, 1 << 16, size - 1):
        verify_inclusion(index, size, hashes[index], inclusion_proof(hashes, index), root)
    old_size = (1 << 16) + 3
    old_root = root_from_leaves(hashes[:old_size])
    verify_consistency(old_size, size, old_root, root, consistency_proof(hashes, old_size))


def test_interior_node_verifies_as_a_leaf_of_a_smaller_tree() -> None:
    """Why callers must compute ``leaf_hash(entry)`` themselves, never take a leaf hash on trust.

    Domain separation means no *entry* hashes to an interior node; but the verifier is given leaf
    hashes, and the level-1 nodes of a tree of 8 are the leaves of a tree of 4 with the same root.
    """
    hashes = leaves(8)
    pairs = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, 8, 2)]
    verify_inclusion(0, 4, pairs[0], inclusion_proof(pairs, 0), root_from_leaves(hashes))


# --------------------------------------------------------------------------------------------
# Each way a proof can fail
# --------------------------------------------------------------------------------------------

HASHES = leaves(7)
ROOT = root_from_leaves(HASHES)
PROOF_2 = inclusion_proof(HASHES, 2)


@pytest.mark.parametrize(("index", "size"), [(7, 7), (-1, 7), (0, 0), (3, 2)])
def test_inclusion_index_out_of_range(index: int, size: int) -> None:
    raises_kind(
        MerkleErrorKind.INDEX_OUT_OF_RANGE,
        lambda: root_from_inclusion_proof(index, size, HASHES[2], PROOF_2),
    )


@pytest.mark.parametrize("bad_leaf", [b"", HASHES[2][:31], HASHES[2] + b"\x00"])
def test_inclusion_leaf_hash_of_wrong_size(bad_leaf: bytes) -> None:
    raises_kind(
        MerkleErrorKind.WRONG_HASH_SIZE,
        lambda: verify_inclusion(2, 7, bad_leaf, PROOF_2, ROOT),
    )


@pytest.mark.parametrize(
    "bad_proof", [[], PROOF_2[:-1], [*PROOF_2, PROOF_2[0]], [EMPTY_ROOT, *PROOF_2]]
)
def test_inclusion_proof_of_wrong_length(bad_proof: list[bytes]) -> None:
    raises_kind(
        MerkleErrorKind.WRONG_PROOF_SIZE,
        lambda: verify_inclusion(2, 7, HASHES[2], bad_proof, ROOT),
    )


def test_inclusion_proof_hash_of_wrong_size() -> None:
    raises_kind(
        MerkleErrorKind.WRONG_HASH_SIZE,
        lambda: root_from_inclusion_proof(2, 7, HASHES[2], [PROOF_2[0][:16], *PROOF_2[1:]]),
    )


def test_inclusion_root_mismatch_carries_both_roots() -> None:
    wrong = root_from_leaves(HASHES[:6])
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(2, 7, HASHES[2], PROOF_2, wrong)
    assert caught.value.kind == MerkleErrorKind.ROOT_MISMATCH
    assert caught.value.expected == wrong
    assert caught.value.calculated == ROOT


OLD_ROOT = root_from_leaves(HASHES[:3])
PROOF_3_7 = consistency_proof(HASHES, 3)


@pytest.mark.parametrize(("size1", "size2"), [(4, 3), (1, 0), (0, 0), (0, 7), (-1, 7)])
def test_consistency_invalid_sizes(size1: int, size2: int) -> None:
    raises_kind(
        MerkleErrorKind.INVALID_SIZE,
        lambda: verify_consistency(size1, size2, EMPTY_ROOT, EMPTY_ROOT, []),
    )


def test_consistency_from_empty_tree_is_rejected_even_with_matching_roots() -> None:
    """transparency-dev/merkle at 417fb0c3: a proof from size 0 is meaningless, always an error."""
    raises_kind(
        MerkleErrorKind.INVALID_SIZE,
        lambda: verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
    )
    raises_kind(
        MerkleErrorKind.INVALID_SIZE,
        lambda: verify_consistency(0, 7, EMPTY_ROOT, ROOT, []),
    )


def test_consistency_equal_sizes() -> None:
    verify_consistency(7, 7, ROOT, ROOT, [])
    raises_kind(
        MerkleErrorKind.WRONG_PROOF_SIZE, lambda: verify_consistency(7, 7, ROOT, ROOT, [ROOT])
    )
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(7, 7, ROOT, OLD_ROOT, [])
    assert (caught.value.expected, caught.value.calculated) == (OLD_ROOT, ROOT)


@pytest.mark.parametrize(
    "bad_proof", [[], PROOF_3_7[:-1], [*PROOF_3_7, EMPTY_ROOT], [EMPTY_ROOT, *PROOF_3_7]]
)
def test_consistency_proof_of_wrong_length(bad_proof: list[bytes]) -> None:
    raises_kind(
        MerkleErrorKind.WRONG_PROOF_SIZE,
        lambda: verify_consistency(3, 7, OLD_ROOT, ROOT, bad_proof),
    )


def test_consistency_proof_hash_of_wrong_size() -> None:
    raises_kind(
        MerkleErrorKind.WRONG_HASH_SIZE,
        lambda: verify_consistency(3, 7, OLD_ROOT, ROOT, [b"", *PROOF_3_7[1:]]),
    )


def test_consistency_old_root_mismatch() -> None:
    wrong = leaf_hash(b"not the old root")
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(3, 7, wrong, ROOT, PROOF_3_7)
    assert caught.value.expected == wrong
    assert caught.value.calculated == OLD_ROOT


def test_consistency_new_root_mismatch() -> None:
    wrong = leaf_hash(b"not the new root")
    with pytest.raises(RootMismatchError) as caught:
        verify_consistency(3, 7, OLD_ROOT, wrong, PROOF_3_7)
    assert caught.value.expected == wrong
    assert caught.value.calculated == ROOT


# --------------------------------------------------------------------------------------------
# Builders reject misuse
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [-1, 7])
def test_inclusion_proof_index_out_of_range(index: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(HASHES, index)


@pytest.mark.parametrize("old_size", [0, -1, 8])
def test_consistency_proof_old_size_out_of_range(old_size: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(HASHES, old_size)


def test_builders_refuse_unhashed_leaves() -> None:
    with pytest.raises(ValueError, match="leaf_hash"):
        root_from_leaves([b"leaf-0", b"leaf-1"])
    with pytest.raises(ValueError, match="leaf_hash"):
        inclusion_proof([HASHES[0], b"raw entry"], 0)
    with pytest.raises(ValueError, match="leaf_hash"):
        consistency_proof([HASHES[0], b"raw entry"], 1)
