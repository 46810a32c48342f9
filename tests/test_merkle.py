"""Tests for custody.ledger.merkle: public vectors, an independent reference, properties, scale.

Test-vector provenance (transcribed, hex unchanged, into tests/vectors/rfc6962_merkle.json):

* leaves, node hashes and roots for sizes 0..8: github.com/transparency-dev/merkle,
  testonly/constants.go (LeafInputs, NodeHashes, RootHashes, EmptyRootHash),
  commit 77f1b57d7aa25fcd2e51273166b6b2b0e74923b1;
* inclusion and consistency proofs, the "some hash" filler and the corruptions applied to
  them below: github.com/transparency-dev/merkle, cmd/proofgen/main.go (inclusionProofs,
  consistencyProofs, corruptInclusionProof, corruptConsistencyProof,
  writeSingleEntryInclusionTestData), commit 428c4c0fea495ba87eaa7f7d5588d50b7cab772b.
  proofgen numbers leaves from 1; the JSON file stores 0-based indices.

docs/merkle.md records the same provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from custody.errors import CustodyError, ProofError
from custody.ledger.merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    MemoryTree,
    MerkleProofError,
    completed_nodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "rfc6962_merkle.json").read_text(encoding="utf-8")
)
H = bytes.fromhex
V_LEAVES = [H(x) for x in VECTORS["leaves"]]
V_ROOTS = [H(x) for x in VECTORS["roots"]]
SOME_HASH = H(VECTORS["some_hash"])


# --------------------------------------------------------------------------------------
# Independent reference: RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1 transcribed literally,
# over the leaf data, with hashlib directly (nothing from custody.ledger.merkle).
# --------------------------------------------------------------------------------------


def ref_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = ref_k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def path_shape(m: int, n: int) -> tuple[str, ...]:
    """Left/right turns of the PATH(m, D[n]) recursion, root first."""
    turns = []
    while n > 1:
        k = ref_k(n)
        if m < k:
            turns.append("L")
            n = k
        else:
            turns.append("R")
            m, n = m - k, n - k
    return tuple(turns)


def proof_shape(m: int, n: int) -> tuple[str, ...]:
    """Left/right turns of the SUBPROOF(m, D[n], true) recursion, root first."""
    turns = []
    while m != n:
        k = ref_k(n)
        if m <= k:
            turns.append("L")
            n = k
        else:
            turns.append("R")
            m, n = m - k, n - k
    return tuple(turns)


# A shared tree of distinct leaves. Prefixes of it are the trees of every smaller size.
# Distinct leaves matter: with two equal leaves a proof for one also proves the other.
SHARED_SIZE = 1100
SHARED_DATA = [b"custody test leaf %d" % i for i in range(SHARED_SIZE)]
SHARED = MemoryTree(SHARED_DATA)


def raises_proof_error(verify: Callable[..., None], *args: Any) -> bool:
    """True if verify(*args) raises MerkleProofError; any other exception propagates."""
    try:
        verify(*args)
    except MerkleProofError:
        return True
    return False


def flipped(proof: Sequence[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    element = bytearray(out[i])
    element[bit // 8] ^= 1 << (bit % 8)
    out[i] = bytes(element)
    return out


# --------------------------------------------------------------------------------------
# Hash primitives and the public vectors
# --------------------------------------------------------------------------------------


def test_hash_primitives() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    )
    assert root_hash(MemoryTree()) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_vector_roots(size: int) -> None:
    tree = MemoryTree(V_LEAVES)
    assert root_hash(tree, size) == V_ROOTS[size]
    assert root_hash(MemoryTree(V_LEAVES[:size])) == V_ROOTS[size]
    assert ref_mth(V_LEAVES[:size]) == V_ROOTS[size]


def test_vector_node_hashes() -> None:
    tree = MemoryTree(V_LEAVES)
    for level, hashes in enumerate(VECTORS["node_hashes"]):
        for index, h in enumerate(hashes):
            assert tree.node(level, index) == H(h), (level, index)


@pytest.mark.parametrize(
    "vec", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}@{v['tree_size']}"
)
def test_vector_inclusion(vec: dict[str, Any]) -> None:
    tree = MemoryTree(V_LEAVES)
    index, size, proof = vec["leaf_index"], vec["tree_size"], [H(p) for p in vec["proof"]]
    assert inclusion_proof(tree, index, size) == proof
    verify_inclusion(leaf_hash(V_LEAVES[index]), index, size, proof, V_ROOTS[size])


@pytest.mark.parametrize(
    "vec", VECTORS["consistency_proofs"], ids=lambda v: f"{v['old_size']}-{v['new_size']}"
)
def test_vector_consistency(vec: dict[str, Any]) -> None:
    tree = MemoryTree(V_LEAVES)
    old, new, proof = vec["old_size"], vec["new_size"], [H(p) for p in vec["proof"]]
    assert consistency_proof(tree, old, new) == proof
    verify_consistency(old, new, V_ROOTS[old], V_ROOTS[new], proof)


def _inclusion_corruptions(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple]:
    """transparency-dev/merkle cmd/proofgen corruptInclusionProof, 0-based indices."""
    probes: list[tuple] = [
        (index - 1, size, root, leaf, proof),
        (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof),
        (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof),
        (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, b""]),
        (index, size, root, leaf, [*proof, root]),
        (index, size, root, leaf, [b"", *proof]),
        (index, size, root, leaf, [root, *proof]),
    ]
    probes += [(index, size, root, leaf, flipped(proof, i, 3)) for i in range(len(proof))]
    if proof:
        probes.append((index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


@pytest.mark.parametrize(
    "vec", VECTORS["inclusion_proofs"], ids=lambda v: f"{v['leaf_index']}@{v['tree_size']}"
)
def test_vector_inclusion_corruptions_fail(vec: dict[str, Any]) -> None:
    index, size, proof = vec["leaf_index"], vec["tree_size"], [H(p) for p in vec["proof"]]
    for probe in _inclusion_corruptions(
        index, size, proof, V_ROOTS[size], leaf_hash(V_LEAVES[index])
    ):
        i, n, root, leaf, path = probe
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaf, i, n, path, root)


def _consistency_corruptions(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple]:
    """transparency-dev/merkle cmd/proofgen corruptConsistencyProof."""
    probes: list[tuple] = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [(old, new, r1, r2, flipped(proof, i, 4)) for i in range(len(proof))]
    # Not in proofgen: a well-formed but wrong root on either side.
    probes += [(old, new, SOME_HASH, r2, proof), (old, new, r1, SOME_HASH, proof)]
    return probes


@pytest.mark.parametrize(
    "vec", VECTORS["consistency_proofs"], ids=lambda v: f"{v['old_size']}-{v['new_size']}"
)
def test_vector_consistency_corruptions_fail(vec: dict[str, Any]) -> None:
    old, new, proof = vec["old_size"], vec["new_size"], [H(p) for p in vec["proof"]]
    if not proof:  # as upstream: only non-trivial proofs are corrupted
        return
    for probe in _consistency_corruptions(old, new, V_ROOTS[old], V_ROOTS[new], proof):
        with pytest.raises(MerkleProofError):
            verify_consistency(*probe)


def test_single_entry_probes() -> None:
    # proofgen writeSingleEntryInclusionTestData: for one leaf, root == leaf hash.
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)
    for root, leaf in [(h, b""), (b"", h), (b"", b"")]:
        with pytest.raises(MerkleProofError):
            verify_inclusion(leaf, 0, 1, [], root)
    # proofgen writeStaticInclusionTestData: impossible index/size pairs.
    for index, size in [(0, 0), (0, 1), (1, 0), (2, 1)]:
        with pytest.raises(MerkleProofError):
            verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_failure_reasons() -> None:
    """Each RFC 9162 failure step gives its own one-line reason."""
    tree = MemoryTree(V_LEAVES)
    leaf, root = leaf_hash(V_LEAVES[5]), V_ROOTS[7]
    proof = inclusion_proof(tree, 5, 7)
    cases = [
        ((leaf, 5, 7, [*proof, SOME_HASH], root), "too many hashes"),
        ((leaf, 5, 7, proof[:-1], root), "too few hashes"),
        ((leaf, 5, 7, proof, SOME_HASH), "does not lead to the root hash"),
        ((leaf, 7, 7, proof, root), "is not below tree size"),
        ((leaf, 5, 7, [b"x"], root), "inclusion proof element 0 is 1 bytes"),
        ((leaf, 5, 2**64, proof, root), "tree size"),
    ]
    for args, reason in cases:
        with pytest.raises(MerkleProofError, match=reason):
            verify_inclusion(*args)
    cproof = consistency_proof(tree, 3, 7)
    ccases = [
        ((3, 7, V_ROOTS[3], root, [*cproof, SOME_HASH]), "too many hashes"),
        ((3, 7, V_ROOTS[3], root, cproof[:-1]), "too few hashes"),
        ((3, 7, SOME_HASH, root, cproof), "does not match the old root hash"),
        ((3, 7, V_ROOTS[3], SOME_HASH, cproof), "does not match the new root hash"),
        ((7, 3, root, V_ROOTS[3], cproof), "is larger than new size"),
        ((3, 7, V_ROOTS[3], root, []), "is empty"),
    ]
    for cargs, reason in ccases:
        with pytest.raises(MerkleProofError, match=reason):
            verify_consistency(*cargs)


def test_trivial_consistency_cases() -> None:
    r = V_ROOTS[5]
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(5, 5, r, r, [])
    verify_consistency(0, 5, EMPTY_ROOT, r, [])
    bad = [
        (5, 5, r, V_ROOTS[4], []),  # same size, different roots
        (5, 5, r, r, [r]),  # same size, non-empty proof
        (0, 5, EMPTY_ROOT, r, [r]),  # from empty, non-empty proof
        (0, 5, r, r, []),  # size 0 but not the empty-tree root
        (5, 4, r, V_ROOTS[4], []),  # old larger than new
        (2, 5, V_ROOTS[2], r, []),  # empty proof for a real step
    ]
    for probe in bad:
        with pytest.raises(MerkleProofError):
            verify_consistency(*probe)


# --------------------------------------------------------------------------------------
# Module versus the reference, exhaustively for small trees
# --------------------------------------------------------------------------------------

REF_MAX = 70


def test_roots_match_reference() -> None:
    for n in range(REF_MAX + 1):
        assert root_hash(SHARED, n) == ref_mth(SHARED_DATA[:n]), n


def test_tree_built_at_once_holds_the_same_nodes_as_appending() -> None:
    for n in range(REF_MAX + 1):
        built = MemoryTree.from_leaf_hashes(b"".join(leaf_hash(d) for d in SHARED_DATA[:n]))
        appended = MemoryTree(SHARED_DATA[:n])
        assert built.size == n
        assert root_hash(built) == root_hash(appended) == ref_mth(SHARED_DATA[:n]), n
        for level in range(n.bit_length()):
            for index in range(n >> level):
                assert built.node(level, index) == appended.node(level, index), (n, level)


def test_inclusion_proofs_match_reference() -> None:
    for n in range(1, REF_MAX + 1):
        root = root_hash(SHARED, n)
        for m in range(n):
            proof = inclusion_proof(SHARED, m, n)
            assert proof == ref_path(m, SHARED_DATA[:n]), (m, n)
            verify_inclusion(leaf_hash(SHARED_DATA[m]), m, n, proof, root)


def test_consistency_proofs_match_reference() -> None:
    for n in range(REF_MAX + 1):
        new_root = root_hash(SHARED, n)
        assert consistency_proof(SHARED, 0, n) == []
        for m in range(1, n + 1):
            proof = consistency_proof(SHARED, m, n)
            assert proof == ref_proof(m, SHARED_DATA[:n]), (m, n)
            verify_consistency(m, n, root_hash(SHARED, m), new_root, proof)


def test_subtree_hash_matches_reference() -> None:
    for start in range(0, 64):
        for end in range(start, 65):
            n = end - start
            if n == 0 or start % (1 << (n - 1).bit_length()) == 0:
                assert subtree_hash(SHARED, start, end) == ref_mth(SHARED_DATA[start:end])
            else:
                with pytest.raises(ValueError):
                    subtree_hash(SHARED, start, end)


def test_wrong_size_accepted_only_for_identical_path_shape() -> None:
    # RFC 9162 verification binds index and size only through the shape of the path, so a
    # proof for leaf 0 of 4 also "verifies" as leaf 0 of 3 against the same root. This is
    # why the tree size must come from an authenticated tree head.
    proof = inclusion_proof(SHARED, 0, 4)
    verify_inclusion(leaf_hash(SHARED_DATA[0]), 0, 3, proof, root_hash(SHARED, 4))
    assert path_shape(0, 3) == path_shape(0, 4)


# --------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sizes = st.integers(min_value=1, max_value=SHARED_SIZE)
other_sizes = st.one_of(
    st.integers(min_value=0, max_value=SHARED_SIZE * 2),
    st.integers(min_value=0, max_value=MAX_TREE_SIZE),
)


@PROPS
@given(data=st.data(), size=sizes)
def test_inclusion_property(data: st.DataObject, size: int) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaf, root = SHARED.node(0, index), root_hash(SHARED, size)
    proof = inclusion_proof(SHARED, index, size)
    verify_inclusion(leaf, index, size, proof, root)

    # every single-bit flip of every element
    for i in range(len(proof)):
        for bit in range(256):
            bad = flipped(proof, i, bit)
            assert raises_proof_error(verify_inclusion, leaf, index, size, bad, root)

    # a wrong index in the same tree always fails
    if size > 1:
        wrong = data.draw(st.integers(min_value=0, max_value=size - 2), label="wrong")
        wrong += wrong >= index  # any index but the right one
        assert raises_proof_error(verify_inclusion, leaf, wrong, size, proof, root)
    for w in (index - 1, index + 1, size, MAX_TREE_SIZE):
        if w != index:
            assert raises_proof_error(verify_inclusion, leaf, w, size, proof, root)

    # a wrong size (and index) fails unless it gives the leaf the same path shape
    n2 = data.draw(other_sizes.filter(lambda s: s != size), label="wrong size")
    i2 = data.draw(
        st.sampled_from([index, min(index, max(n2 - 1, 0)), index ^ 1]), label="its index"
    )
    accepted = not raises_proof_error(verify_inclusion, leaf, i2, n2, proof, root)
    assert accepted == (i2 < n2 and path_shape(i2, n2) == path_shape(index, size))
    for n3 in (size - 1, size + 1, size * 2, size // 2):
        ok = not raises_proof_error(verify_inclusion, leaf, index, n3, proof, root)
        assert ok == (index < n3 and path_shape(index, n3) == path_shape(index, size))

    # truncated or extended proofs, and a wrong leaf or root
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    variants = [[*proof, extra], [extra, *proof], [*proof, root], [*proof, leaf]]
    if proof:
        variants += [proof[:-1], proof[1:], [proof[0], *proof]]
    for p in variants:
        assert raises_proof_error(verify_inclusion, leaf, index, size, p, root)
    assert raises_proof_error(verify_inclusion, extra, index, size, proof, root)
    assert raises_proof_error(verify_inclusion, leaf, index, size, proof, extra)


@PROPS
@given(data=st.data(), new=sizes)
def test_consistency_property(data: st.DataObject, new: int) -> None:
    old = data.draw(st.integers(min_value=0, max_value=new), label="old")
    r1, r2 = root_hash(SHARED, old), root_hash(SHARED, new)
    proof = consistency_proof(SHARED, old, new)
    verify_consistency(old, new, r1, r2, proof)
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")

    # extending any proof fails, including the empty ones
    for p in ([*proof, extra], [extra, *proof], [*proof, r1], [r2, *proof]):
        assert raises_proof_error(verify_consistency, old, new, r1, r2, p)
    assume(0 < old < new)  # the rest needs a non-trivial proof

    for i in range(len(proof)):
        for bit in range(256):
            bad = flipped(proof, i, bit)
            assert raises_proof_error(verify_consistency, old, new, r1, r2, bad)
    for p in (proof[:-1], proof[1:], [proof[0], *proof], []):
        assert raises_proof_error(verify_consistency, old, new, r1, r2, p)
    for a, b in ((r2, r1), (extra, r2), (r1, extra), (r1, r1)):
        assert raises_proof_error(verify_consistency, old, new, a, b, proof)

    # wrong sizes fail unless the SUBPROOF recursion takes exactly the same turns
    n2 = data.draw(
        st.one_of(other_sizes, st.sampled_from([new - 1, new + 1, new * 2, new // 2])), label="n2"
    )
    m2 = data.draw(
        st.one_of(
            st.integers(min_value=0, max_value=n2), st.sampled_from([old - 1, old + 1, old ^ 2])
        ),
        label="m2",
    )
    assume((m2, n2) != (old, new))
    accepted = not raises_proof_error(verify_consistency, m2, n2, r1, r2, proof)
    assert accepted == (0 < m2 < n2 and proof_shape(m2, n2) == proof_shape(old, new))


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.text(max_size=4),
    st.integers(),
    st.lists(st.integers(), max_size=2),
)
_hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40), _junk)
_ints = st.one_of(
    st.integers(min_value=-2, max_value=70),
    st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    st.sampled_from([MAX_TREE_SIZE, MAX_TREE_SIZE + 1, -(2**70)]),
    _junk,
)
_proofs = st.one_of(
    st.lists(st.binary(min_size=32, max_size=32), max_size=70),
    st.lists(_hashes, max_size=8).map(tuple),
    _junk,
    st.binary(max_size=64),
)


def _only_proof_errors(verify: Callable[..., None], *args: Any) -> None:
    try:
        verify(*args)
    except MerkleProofError as err:
        message = str(err)
        assert message and "\n" not in message


@settings(max_examples=400, deadline=None)
@given(leaf=_hashes, index=_ints, size=_ints, proof=_proofs, root=_hashes)
def test_verify_inclusion_raises_only_merkle_errors(
    leaf: Any, index: Any, size: Any, proof: Any, root: Any
) -> None:
    _only_proof_errors(verify_inclusion, leaf, index, size, proof, root)


@settings(max_examples=400, deadline=None)
@given(old=_ints, new=_ints, r1=_hashes, r2=_hashes, proof=_proofs)
def test_verify_consistency_raises_only_merkle_errors(
    old: Any, new: Any, r1: Any, r2: Any, proof: Any
) -> None:
    _only_proof_errors(verify_consistency, old, new, r1, r2, proof)


@settings(max_examples=200, deadline=None)
@given(size=sizes, index=_ints, claimed=_ints, data=st.data())
def test_real_proofs_with_arbitrary_claims_raise_only_merkle_errors(
    size: int, index: Any, claimed: Any, data: st.DataObject
) -> None:
    real_index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(SHARED, real_index, size)
    root = root_hash(SHARED, size)
    _only_proof_errors(verify_inclusion, SHARED.node(0, real_index), index, claimed, proof, root)
    cproof = consistency_proof(SHARED, real_index, size)
    _only_proof_errors(
        verify_consistency, index, claimed, root_hash(SHARED, real_index), root, cproof
    )


# --------------------------------------------------------------------------------------
# The store protocol: completed_nodes, MemoryTree, argument checking
# --------------------------------------------------------------------------------------


class DictStore:
    """A NodeStore kept as {(level, index): hash}, fed only through completed_nodes."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.size = 0

    def node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def append(self, data: bytes) -> None:
        entries = completed_nodes(self, leaf_hash(data))
        assert entries[0][:2] == (0, self.size)
        for level, index, h in entries:
            assert (level, index) not in self.nodes
            self.nodes[(level, index)] = h
        self.size += 1


def test_completed_nodes_builds_the_same_tree() -> None:
    store, tree = DictStore(), MemoryTree()
    for n in range(1, 300):
        store.append(SHARED_DATA[n - 1])
        tree.append(SHARED_DATA[n - 1])
        assert root_hash(store) == root_hash(tree) == root_hash(SHARED, n)
        # exactly the perfect subtrees: 2n - popcount(n) of them
        assert len(store.nodes) == 2 * n - bin(n).count("1")
    for (level, index), h in store.nodes.items():
        assert tree.node(level, index) == h
    assert inclusion_proof(store, 123, 299) == inclusion_proof(tree, 123, 299)
    assert consistency_proof(store, 77, 299) == consistency_proof(tree, 77, 299)


def test_completed_nodes_count() -> None:
    store = DictStore()
    for _ in range(7):
        store.append(b"x")
    # leaf 7 (0b111) completes three subtrees above itself
    assert [(lv, ix) for lv, ix, _ in completed_nodes(store, leaf_hash(b"y"))] == [
        (0, 7),
        (1, 3),
        (2, 1),
        (3, 0),
    ]


def test_memory_tree_basics() -> None:
    tree = MemoryTree()
    assert tree.size == 0
    assert tree.append(b"a") == 0
    assert tree.append_leaf_hash(leaf_hash(b"b")) == 1
    assert tree.size == 2
    assert root_hash(tree) == node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
    with pytest.raises(ValueError):
        tree.append_leaf_hash(b"short")
    with pytest.raises(ValueError):
        tree.node(0, 2)
    with pytest.raises(ValueError):
        tree.node(2, 0)


def test_generators_reject_bad_arguments() -> None:
    tree = MemoryTree(V_LEAVES)
    for index, size in [(0, 0), (8, 8), (-1, 5), (0, 9), (3, -1)]:
        with pytest.raises(ValueError):
            inclusion_proof(tree, index, size)
    for old, new in [(5, 4), (0, 9), (-1, 3), (9, 9)]:
        with pytest.raises(ValueError):
            consistency_proof(tree, old, new)
    for size in (-1, 9):
        with pytest.raises(ValueError):
            root_hash(tree, size)
    for start, end in [(-1, 3), (3, 2), (0, 9), (1, 3), (2, 5)]:
        with pytest.raises(ValueError):
            subtree_hash(tree, start, end)


def test_error_hierarchy() -> None:
    assert issubclass(MerkleProofError, ProofError)
    assert issubclass(MerkleProofError, CustodyError)


# --------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------


class CountingStore:
    def __init__(self, inner: MemoryTree) -> None:
        self.inner = inner
        self.lookups = 0

    @property
    def size(self) -> int:
        return self.inner.size

    def node(self, level: int, index: int) -> bytes:
        self.lookups += 1
        return self.inner.node(level, index)


def test_large_tree() -> None:
    n = 200_003  # not a power of two, so the right edge is ragged
    data = [b"ledger line %d" % i for i in range(n)]
    tree = MemoryTree(data)
    assert tree.size == n
    # memory layout: one 32-byte slot per perfect subtree, nothing else
    assert sum(len(level) for level in tree._levels) == 32 * (2 * n - bin(n).count("1"))
    root = root_hash(tree)
    assert root == ref_mth(data)

    counting = CountingStore(tree)
    budget = 2 * n.bit_length() + 2  # O(log n): no recomputation from leaves
    for index in (0, 1, 65_535, 131_072, 199_999, n - 1):
        counting.lookups = 0
        proof = inclusion_proof(counting, index, n)
        assert counting.lookups <= budget
        verify_inclusion(leaf_hash(data[index]), index, n, proof, root)
    for old in (1, 2, 1000, 65_536, 150_001, n - 1):
        counting.lookups = 0
        proof = consistency_proof(counting, old, n)
        assert counting.lookups <= budget
        verify_consistency(old, n, root_hash(tree, old), root, proof)
    counting.lookups = 0
    root_hash(counting)
    assert counting.lookups == bin(n).count("1")
