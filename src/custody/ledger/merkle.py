"""RFC 9162 §2.1 Merkle trees over an abstract node store.

This module owns the Merkle tree arithmetic of custody and nothing else: leaf and node
hashing, tree heads (root hashes), inclusion and consistency proofs, and their
verification. The tree is exactly the one of RFC 9162 §2.1 (identical to RFC 6962 §2.1):

* leaf hash ``SHA-256(0x00 || data)``, interior node hash ``SHA-256(0x01 || left || right)``;
* a list of n > 1 leaves splits at k, the largest power of two strictly less than n;
* the tree of no leaves has the root ``SHA-256("")``.

Leaves are opaque byte strings here; which bytes they are (ledger lines) is decided by the
caller and documented in docs/merkle.md. The algorithms read hashes only through the
``NodeStore`` protocol, so they run unchanged over ``MemoryTree`` or a persistent store.
Generators raise ``ValueError`` for out-of-range arguments (programming errors); verifiers
raise ``MerkleProofError`` and nothing else, whatever they are given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from custody.errors import ProofError
from custody.i18n import _

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "MemoryTree",
    "MerkleProofError",
    "NodeStore",
    "completed_nodes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# RFC 9162 carries tree sizes and leaf indices as uint64; a claim beyond that is malformed.
MAX_TREE_SIZE = 2**64 - 1

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class MerkleProofError(ProofError):
    """An inclusion or consistency proof is malformed or does not verify."""


class NodeStore(Protocol):
    """Read access to the perfect subtrees of an append-only Merkle tree."""

    @property
    def size(self) -> int:
        """Number of leaves stored."""
        ...

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree at ``level`` covering leaves
        ``[index << level, (index + 1) << level)``; level 0 holds leaf hashes.

        Callers only ask for subtrees lying entirely within the first ``size`` leaves.
        """
        ...


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def completed_nodes(store: NodeStore, new_leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
    """The ``(level, index, hash)`` entries a store must add when appending leaf ``store.size``.

    The first entry is the leaf itself at level 0; each further one is a perfect subtree that
    the new leaf completes. Leaf ``i`` completes one subtree per trailing one bit of ``i``, so
    this is amortised O(1) and at worst O(log n).
    """
    if len(new_leaf_hash) != HASH_SIZE:
        raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(new_leaf_hash)}")
    index = store.size
    current = bytes(new_leaf_hash)
    entries = [(0, index, current)]
    level = 0
    # An odd index is a right child: its left sibling is already stored, so the parent is
    # complete. Climb while that keeps holding.
    while index & 1:
        current = node_hash(store.node(level, index - 1), current)
        index >>= 1
        level += 1
        entries.append((level, index, current))
    return entries


class MemoryTree:
    """An in-memory ``NodeStore``.

    Each level is one bytearray of concatenated 32-byte hashes rather than a list of bytes
    objects, so a million leaves cost about 64 MB (two hashes per leaf) instead of several
    times that in per-object overhead.
    """

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for data in leaves:
            self.append(data)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def node(self, level: int, index: int) -> bytes:
        if not 0 <= level < len(self._levels) or index < 0:
            raise ValueError(f"no stored node at level {level}, index {index}")
        start = index * HASH_SIZE
        if start + HASH_SIZE > len(self._levels[level]):
            raise ValueError(f"no stored node at level {level}, index {index}")
        return bytes(self._levels[level][start : start + HASH_SIZE])

    @classmethod
    def from_leaf_hashes(cls, leaves: bytes | bytearray, *, adopt: bool = False) -> MemoryTree:
        """Build a whole tree at once from concatenated 32-byte leaf hashes.

        Level by level, each perfect pair hashed once: the same nodes as appending the
        leaves one by one, at a fraction of the interpreter overhead. ``adopt``: a
        bytearray of leaves becomes the tree's lowest level without a copy (the caller
        gives it up): at 10,000,000 records a copy is 320 MB.
        """
        if len(leaves) % HASH_SIZE:
            raise ValueError("leaf hashes must be a multiple of 32 bytes")
        tree = cls()
        tree._levels = [leaves if adopt and isinstance(leaves, bytearray) else bytearray(leaves)]
        level = tree._levels[0]
        pair = 2 * HASH_SIZE
        sha256 = hashlib.sha256
        while len(level) >= pair:
            # node_hash(left, right) with the pair read as one slice: left and right lie
            # side by side in the level.
            upper = bytearray()
            for start in range(0, len(level) - pair + 1, pair):
                upper += sha256(_NODE_PREFIX + level[start : start + pair]).digest()
            tree._levels.append(upper)
            level = upper
        return tree

    def append(self, data: bytes) -> int:
        """Append a leaf given its data; return its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append a leaf given its leaf hash; return its index."""
        index = self.size
        for level, _index, node in completed_nodes(self, h):
            if level == len(self._levels):
                self._levels.append(bytearray())
            # Nodes complete left to right, so each one lands at the end of its level.
            self._levels[level] += node
        return index


def subtree_hash(store: NodeStore, start: int, end: int) -> bytes:
    """MTH(D[start:end]) from at most log2(n) + 1 perfect-node lookups.

    The range must be a (possibly incomplete) subtree of the log's tree, i.e. ``start`` must
    be a multiple of the smallest power of two >= ``end - start``; every range used by the
    proof algorithms is. Other ranges would need the leaves re-hashed and are refused.
    """
    if not 0 <= start <= end <= store.size:
        raise ValueError(f"range [{start}, {end}) is outside a tree of {store.size} leaves")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if start % (1 << (n - 1).bit_length()):
        raise ValueError(f"range [{start}, {end}) is not a subtree of the tree")
    # Applying the split rule repeatedly to the right part cuts the range into one perfect
    # subtree per set bit of n, largest first; fold them back up from the right.
    parts: list[bytes] = []
    position = start
    for level in reversed(range(n.bit_length())):
        if (n >> level) & 1:
            parts.append(store.node(level, position >> level))
            position += 1 << level
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root_hash(store: NodeStore, size: int | None = None) -> bytes:
    """Root hash of the tree of the first ``size`` leaves (default: all of them)."""
    if size is None:
        size = store.size
    if not 0 <= size <= store.size:
        raise ValueError(f"tree size {size} is outside 0..{store.size}")
    return subtree_hash(store, 0, size)


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), ordered from the leaf up to the root."""
    if not 0 <= size <= store.size:
        raise ValueError(f"tree size {size} is outside 0..{store.size}")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down the RFC recursion; each level contributes the hash of the other half. Only
    # the first left turn inside an imperfect subtree can meet an imperfect sibling, so the
    # whole walk costs O(log n) lookups.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_hash(store, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(store, start, start + k))
            start += k
    path.reverse()  # the RFC lists the deepest sibling first
    return path


def consistency_proof(store: NodeStore, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]); empty if old_size is 0 or new_size."""
    if not 0 <= new_size <= store.size:
        raise ValueError(f"tree size {new_size} is outside 0..{store.size}")
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old tree size {old_size} is outside 0..{new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end = 0, new_size
    # SUBPROOF(m, D[start:end], b); b stays True while the current subtree starts at 0 and
    # so is the old tree's left edge, whose root the verifier already holds.
    known_to_verifier = True
    while end != old_size:
        k = _split(end - start)
        if old_size - start <= k:
            proof.append(subtree_hash(store, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(store, start, start + k))
            start += k
            known_to_verifier = False
    if not known_to_verifier:
        proof.append(subtree_hash(store, start, end))
    proof.reverse()
    return proof


def _check_size(name: str, value: object) -> int:
    if not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise MerkleProofError(
            _("{name} {value!r} is not an integer in 0..2**64-1").format(name=name, value=value)
        )
    return value


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        if isinstance(value, bytes | bytearray):
            message = _("{name} is {n} bytes, expected a {size}-byte SHA-256 hash").format(
                name=name, n=len(value), size=HASH_SIZE
            )
        else:
            message = _("{name} is not bytes, expected a {size}-byte SHA-256 hash").format(
                name=name, size=HASH_SIZE
            )
        raise MerkleProofError(message)
    return bytes(value)


def _check_proof(name: str, proof: object) -> list[bytes]:
    if not isinstance(proof, Sequence) or isinstance(proof, str | bytes | bytearray):
        raise MerkleProofError(_("{name} is not a list of hashes").format(name=name))
    return [_check_hash(f"{name} element {i}", p) for i, p in enumerate(proof)]


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof by RFC 9162 §2.1.3.2; raise ``MerkleProofError`` if it fails."""
    leaf = _check_hash("leaf hash", leaf_hash)
    fn = _check_size("leaf index", index)
    sn = _check_size("tree size", size)
    path = _check_proof("inclusion proof", proof)
    expected_root = _check_hash("root hash", root)
    if fn >= sn:
        raise MerkleProofError(
            _("leaf index {index} is not below tree size {size}").format(index=index, size=size)
        )
    sn -= 1
    r = leaf
    for p in path:
        if sn == 0:
            raise MerkleProofError(
                _(
                    "inclusion proof for leaf {index} of a {size}-leaf tree has too many hashes"
                ).format(index=index, size=size)
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A right-edge node with no sibling is promoted unchanged; skip those levels.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError(
            _("inclusion proof for leaf {index} of a {size}-leaf tree has too few hashes").format(
                index=index, size=size
            )
        )
    if r != expected_root:
        raise MerkleProofError(
            _(
                "inclusion proof for leaf {index} of a {size}-leaf tree does not lead to the root "
                "hash"
            ).format(index=index, size=size)
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof by RFC 9162 §2.1.4.2; raise ``MerkleProofError`` if it fails.

    RFC 9162 defines the check for 0 < old_size < new_size. Outside that: equal sizes need an
    empty proof and equal roots; old_size 0 needs an empty proof and the empty-tree root.
    """
    fn = _check_size("old tree size", old_size)
    sn = _check_size("new tree size", new_size)
    first = _check_hash("old root hash", old_root)
    second = _check_hash("new root hash", new_root)
    path = _check_proof("consistency proof", proof)
    if fn > sn:
        raise MerkleProofError(
            _("old tree size {old_size} is larger than new size {new_size}").format(
                old_size=old_size, new_size=new_size
            )
        )
    if fn == sn or fn == 0:
        if path:
            raise MerkleProofError(
                _(
                    "consistency proof from size {old_size} to {new_size} must be empty, got "
                    "{n} hashes"
                ).format(old_size=old_size, new_size=new_size, n=len(path))
            )
        if fn == sn and first != second:
            raise MerkleProofError(
                _("root hashes differ for the same tree size {old_size}").format(old_size=old_size)
            )
        if fn == 0 and first != EMPTY_ROOT:
            raise MerkleProofError(_("old root hash is not the empty-tree hash for tree size 0"))
        return
    if not path:
        raise MerkleProofError(
            _("consistency proof from size {old_size} to {new_size} is empty").format(
                old_size=old_size, new_size=new_size
            )
        )
    # When the old tree is perfect its root is itself a node of the new tree, so the
    # proof omits it and the verifier supplies it.
    if (fn & (fn - 1)) == 0:
        path.insert(0, first)
    fn -= 1
    sn -= 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MerkleProofError(
                _(
                    "consistency proof from size {old_size} to {new_size} has too many hashes"
                ).format(old_size=old_size, new_size=new_size)
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MerkleProofError(
            _("consistency proof from size {old_size} to {new_size} has too few hashes").format(
                old_size=old_size, new_size=new_size
            )
        )
    if fr != first:
        raise MerkleProofError(
            _(
                "consistency proof from size {old_size} to {new_size} does not match the old root "
                "hash"
            ).format(old_size=old_size, new_size=new_size)
        )
    if sr != second:
        raise MerkleProofError(
            _(
                "consistency proof from size {old_size} to {new_size} does not match the new root "
                "hash"
            ).format(old_size=old_size, new_size=new_size)
        )
