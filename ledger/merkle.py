"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof construction and proof verification.

Pure functions over SHA-256 with the RFC 6962 domain separation (RFC 6962 §2.1, RFC 9162 §2.1.1):
a leaf hash is ``SHA-256(0x00 || data)`` and an interior node hash is ``SHA-256(0x01 || l || r)``,
so a leaf can never be passed off as an interior node (second-preimage resistance).

Compute and compare are split, as in transparency-dev/merkle ``proof/verify.go``:
:func:`root_from_inclusion_proof` returns the root a proof implies, and the ``verify_*`` functions
compare and raise a :class:`MerkleVerificationError` (a :class:`RootMismatchError` when the hashes
disagree, carrying the expected and the calculated value). Sizes, indices, proof lengths and hash
lengths are checked before any hashing.

Verification follows ``proof/verify.go`` at transparency-dev/merkle commit 417fb0c3 exactly,
edge cases included (see :func:`verify_consistency`); the shared test vectors of that commit are
checked by ``tests/unit/ledger/test_merkle_vectors.py``.

Nothing here recurses: roots are folded with a stack of perfect subtrees (memory O(log n)) and
proofs are built by walking down from the root, so trees of millions of leaves are fine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from enum import StrEnum

from signing.errors import LedgerError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "MerkleErrorKind",
    "MerkleVerificationError",
    "RootMismatchError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32
#: Domain-separation prefix of a leaf hash (RFC 6962 §2.1, RFC 9162 §2.1.1).
LEAF_PREFIX = b"\x00"
#: Domain-separation prefix of an interior node hash (RFC 6962 §2.1, RFC 9162 §2.1.1).
NODE_PREFIX = b"\x01"
#: Merkle Tree Hash of the empty list: ``MTH({}) = SHA-256()`` (RFC 6962 §2.1, RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleErrorKind(StrEnum):
    """Why a proof was rejected. The values are the ``wantErrKind`` strings of our vector files."""

    INDEX_OUT_OF_RANGE = "index out of range"
    INVALID_SIZE = "invalid size"
    WRONG_HASH_SIZE = "wrong hash size"
    WRONG_PROOF_SIZE = "wrong proof size"
    ROOT_MISMATCH = "root mismatch"


class MerkleVerificationError(LedgerError):
    """A Merkle proof did not verify; ``kind`` says why."""

    def __init__(self, kind: MerkleErrorKind, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class RootMismatchError(MerkleVerificationError):
    """The root computed from a proof differs from the root it was checked against."""

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            MerkleErrorKind.ROOT_MISMATCH,
            f"calculated root {calculated.hex()} does not match expected root {expected.hex()}",
        )
        self.expected = expected
        self.calculated = calculated


# --------------------------------------------------------------------------------------------
# Hashing (RFC 6962 §2.1, RFC 9162 §2.1.1)
# --------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of a leaf entry (RFC 6962 §2.1, RFC 9162 §2.1.1)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node (RFC 6962 §2.1, RFC 9162 §2.1.1)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 6962 §2.1: the largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_leaf_hashes(leaf_hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(leaf_hashes):
        if len(value) != HASH_SIZE:
            raise ValueError(
                f"leaf hash {position} has {len(value)} bytes, want {HASH_SIZE} "
                "(pass leaf_hash(data), not the data)"
            )


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """``MTH(D[start:end])`` for ``start < end``, folded iteratively.

    Each leaf is pushed as a perfect subtree of height 0; equal-height neighbours merge as in a
    binary counter, leaving one perfect subtree per set bit of the size, largest first. Folding
    them from the right gives the left-balanced tree of RFC 6962 §2.1 (split at the largest power
    of two below the size).
    """
    stack: list[bytes] = []
    for offset in range(end - start):
        node = leaf_hashes[start + offset]
        merges = offset
        while merges & 1:
            node = node_hash(stack.pop(), node)
            merges >>= 1
        stack.append(node)
    root = stack.pop()
    while stack:
        root = node_hash(stack.pop(), root)
    return root


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash ``MTH(D[n])`` over leaf hashes (RFC 6962 §2.1, RFC 9162 §2.1.1).

    ``MTH({}) = SHA-256()``, ``MTH({d0}) = leaf hash``, and for ``n > 1`` with ``k`` the largest
    power of two below ``n``: ``MTH(D[n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.
    Raises ``ValueError`` if a leaf hash is not 32 bytes.
    """
    _check_leaf_hashes(leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


# --------------------------------------------------------------------------------------------
# Proof construction (RFC 6962 §2.1.1-2.1.2, RFC 9162 §2.1.3.1 and §2.1.4.1)
# --------------------------------------------------------------------------------------------


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path ``PATH(index, D[n])`` of RFC 6962 §2.1.1 / RFC 9162 §2.1.3.1, leaf to root.

    For ``n > 1`` and ``k`` the largest power of two below ``n``:
    ``PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])`` if ``m < k``, else
    ``PATH(m - k, D[k:n]) : MTH(D[0:k])``; ``PATH(0, {d0}) = {}``.
    Raises ``ValueError`` unless ``0 <= index < n``.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for a tree of {size} leaves")
    _check_leaf_hashes(leaf_hashes)
    siblings: list[bytes] = []  # Collected root first, returned leaf first.
    start, end = 0, size
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            siblings.append(_subtree_root(leaf_hashes, split, end))
            end = split
        else:
            siblings.append(_subtree_root(leaf_hashes, start, split))
            start = split
    siblings.reverse()
    return siblings


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """``PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`` (RFC 6962 §2.1.2, RFC 9162 §2.1.4.1).

    ``SUBPROOF(m, D[m], true) = {}``; ``SUBPROOF(m, D[m], false) = {MTH(D[m])}``; for ``m < n``
    and ``k`` the largest power of two below ``n``:
    ``SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])`` if ``m <= k``, else
    ``SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])``.
    The proof for ``m == n`` is empty. Raises ``ValueError`` unless ``0 < old_size <= n``: a
    consistency proof from the empty tree is meaningless and :func:`verify_consistency` rejects it.
    """
    size = len(leaf_hashes)
    if not 0 < old_size <= size:
        raise ValueError(f"old size {old_size} out of range for a tree of {size} leaves")
    _check_leaf_hashes(leaf_hashes)
    nodes: list[bytes] = []  # Collected root first, returned leaf first.
    start, end, old = 0, size, old_size
    old_is_whole_subtree = True  # The ``b`` of SUBPROOF.
    while old != end - start:
        split = _largest_power_of_two_below(end - start)
        if old <= split:
            nodes.append(_subtree_root(leaf_hashes, start + split, end))
            end = start + split
        else:
            nodes.append(_subtree_root(leaf_hashes, start, start + split))
            start += split
            old -= split
            old_is_whole_subtree = False
    if not old_is_whole_subtree:
        nodes.append(_subtree_root(leaf_hashes, start, end))
    nodes.reverse()
    return nodes


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2; transparency-dev/merkle proof/verify.go)
# --------------------------------------------------------------------------------------------


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Lengths of the inner and border parts of the inclusion proof of ``index`` in ``size``.

    Inner nodes lie below the level where the paths to ``index`` and ``size - 1`` diverge and
    can be left or right siblings; border nodes lie above it and are all left siblings.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for level, sibling in enumerate(proof):
        is_left_child = (index >> level) & 1 == 0
        seed = node_hash(seed, sibling) if is_left_child else node_hash(sibling, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like :func:`_chain_inner`, using only left siblings: the root of the earlier subtree."""
    for level, sibling in enumerate(proof):
        if (index >> level) & 1 == 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise MerkleVerificationError(
                MerkleErrorKind.WRONG_HASH_SIZE,
                f"proof hash {position} has {len(value)} bytes, want {HASH_SIZE}",
            )


def _verify_match(calculated: bytes, expected: bytes) -> None:
    if calculated != expected:
        raise RootMismatchError(expected=expected, calculated=calculated)


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2; ``RootFromInclusionProof``).

    Checks, before hashing, that ``0 <= index < size``, that ``leaf_hash`` is 32 bytes, that the
    proof has exactly the length the shape of the tree requires, and that each proof hash is 32
    bytes; raises :class:`MerkleVerificationError` otherwise. The leaf hash is the RFC 6962 leaf
    hash (:func:`leaf_hash`), not the entry itself.
    """
    if not 0 <= index < size:
        raise MerkleVerificationError(
            MerkleErrorKind.INDEX_OUT_OF_RANGE, f"index {index} is not in [0, {size})"
        )
    if len(leaf_hash) != HASH_SIZE:
        raise MerkleVerificationError(
            MerkleErrorKind.WRONG_HASH_SIZE,
            f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}",
        )
    inner, border = _decompose_inclusion_proof(index, size)
    if len(proof) != inner + border:
        raise MerkleVerificationError(
            MerkleErrorKind.WRONG_PROOF_SIZE,
            f"proof has {len(proof)} hashes, want {inner + border}",
        )
    _check_proof_hashes(proof)
    root = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(root, proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is at ``index`` in the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2; transparency-dev/merkle ``VerifyInclusion``. Raises
    :class:`MerkleVerificationError` for a malformed proof and :class:`RootMismatchError` (with
    ``expected=root``) when the proof leads elsewhere.
    """
    calculated = root_from_inclusion_proof(index, size, leaf_hash, proof)
    _verify_match(calculated, root)


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``size2``, ``root2``) is an extension of (``size1``, ``root1``).

    RFC 9162 §2.1.4.2, with the semantics of transparency-dev/merkle ``VerifyConsistency`` at
    commit 417fb0c3, in this order:

    1. ``size2 < size1`` is an error (``invalid size``).
    2. ``size1 == 0`` is an error (``invalid size``), whatever the proof and roots, even when
       ``size2 == 0``: a consistency proof from the empty tree is meaningless (older releases of
       transparency-dev/merkle accepted it with an empty proof; the vectors now expect an error).
    3. ``size1 == size2`` requires an empty proof (``wrong proof size``) and ``root1 == root2``
       (``root mismatch``). The roots are compared as given, not length-checked (as in Go).
    4. ``size1 < size2`` requires a non-empty proof of exactly the required length
       (``wrong proof size``) made of 32-byte hashes (``wrong hash size``); then the proof must
       rebuild ``root1`` (unless ``size1`` is a power of two, where ``root1`` itself seeds the
       proof) and ``root2`` (``RootMismatchError``, expected being the given root).
    """
    if size2 < size1:
        raise MerkleVerificationError(
            MerkleErrorKind.INVALID_SIZE, f"size2 ({size2}) < size1 ({size1})"
        )
    if size1 < 0:
        raise MerkleVerificationError(MerkleErrorKind.INVALID_SIZE, f"size1 ({size1}) < 0")
    if size1 == 0:
        raise MerkleVerificationError(
            MerkleErrorKind.INVALID_SIZE, "consistency proof from the empty tree is meaningless"
        )
    if size1 == size2:
        if proof:
            raise MerkleVerificationError(
                MerkleErrorKind.WRONG_PROOF_SIZE,
                f"size1 == size2 but the proof has {len(proof)} hashes, want 0",
            )
        _verify_match(root1, root2)
        return
    if not proof:
        raise MerkleVerificationError(
            MerkleErrorKind.WRONG_PROOF_SIZE, "empty proof for size1 < size2"
        )

    # The paths to leaves size1-1 and size2-1 diverge at level ``fork``; the proof starts at the
    # level ``shift`` of the rightmost perfect subtree of the old tree.
    fork, border = _decompose_inclusion_proof(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # Trailing zero bits of size1.
    inner = fork - shift
    # The proof begins with the root of that perfect subtree, unless it is the whole old tree,
    # whose root the verifier already has.
    seed_is_root1 = size1 == 1 << shift
    start = 0 if seed_is_root1 else 1
    if len(proof) != start + inner + border:
        raise MerkleVerificationError(
            MerkleErrorKind.WRONG_PROOF_SIZE,
            f"proof has {len(proof)} hashes, want {start + inner + border}",
        )
    _check_proof_hashes(proof)
    seed = root1 if seed_is_root1 else proof[0]
    path = proof[start:]  # A suffix of the inclusion proof of leaf size1-1 in the new tree.
    mask = (size1 - 1) >> shift

    hash1 = _chain_inner_right(seed, path[:inner], mask)
    hash1 = _chain_border_right(hash1, path[inner:])
    _verify_match(hash1, root1)

    hash2 = _chain_inner(seed, path[:inner], mask)
    hash2 = _chain_border_right(hash2, path[inner:])
    _verify_match(hash2, root2)
