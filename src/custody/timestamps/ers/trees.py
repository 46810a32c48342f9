"""RFC 4998 hash trees (§4.2) and reduced hash trees (§4.3): the tree rule both custody and
Bouncy Castle use, so both compute the same root over the same data objects.

The rule (Bouncy Castle's ``BinaryTreeRootCalculator``, release 1.72, bcgit/bc-java tag
r1rv72, pkix/src/main/java/org/bouncycastle/tsp/ers/): each data object is a leaf node (a
group: the hash of its members' hash values sorted and concatenated, §4.2 step 3); leaf
nodes are sorted in binary ascending order and paired left to right, each pair hashed as
H(min || max) (§4.2 step 4); an odd node at the end of a level moves up unchanged; repeat
to one root. An object's reduced hash tree is its first list (itself and its first
sibling, or a group's members) followed by one list per further sibling; a lone single
object gets no reduced hash tree and its hash is stamped directly (§4.2: "an Archive
Timestamp may consist ... only [of] a timestamp").

One reading where implementations differ: §4.3 step 3 with a *single* value in the first
list carries that value up unhashed, as RFC 6283 §3.1.1 states and Bouncy Castle and DSS
do (custody never writes such a list).

May import: ``custody.errors``, ``custody.timestamps.algorithms``, the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence

from custody.errors import UsageError
from custody.i18n import _
from custody.timestamps.algorithms import HashAlgorithm

__all__ = ["DataObject", "Tree", "list_hash", "members", "root_of"]

DataObject = bytes | Sequence[bytes]
"""A data object (its bytes), or a data object group (the bytes of each member)."""


def members(obj: DataObject) -> tuple[bytes, ...]:
    """The members of a data object (one) or group (at least one); UsageError otherwise."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return (bytes(obj),)
    if isinstance(obj, str):
        raise UsageError(_("data objects are bytes, not text"))
    found = tuple(bytes(m) for m in obj)
    if not found:
        raise UsageError(_("a data object group needs at least one member"))
    return found


def branch(alg: HashAlgorithm, a: bytes, b: bytes) -> bytes:
    return alg.digest(a + b if a <= b else b + a)


def list_hash(alg: HashAlgorithm, values: Sequence[bytes]) -> bytes:
    """§4.2 step 3/4: sort in binary ascending order, concatenate, hash."""
    return alg.digest(b"".join(sorted(values)))


def leaf_node(alg: HashAlgorithm, hashes: Sequence[bytes]) -> bytes:
    """The leaf of one object (its hash) or group (the list hash of its members')."""
    return hashes[0] if len(hashes) == 1 else list_hash(alg, hashes)


class Tree:
    """The binary tree over leaf nodes, with each object's sibling path.

    ``objects[i]`` are object *i*'s hash values (one, or a group's members').
    """

    def __init__(self, alg: HashAlgorithm, objects: Sequence[Sequence[bytes]]) -> None:
        self.alg = alg
        nodes = [leaf_node(alg, m) for m in objects]
        order = sorted(range(len(nodes)), key=nodes.__getitem__)
        self.position = [0] * len(nodes)
        for pos, index in enumerate(order):
            self.position[index] = pos
        level = [nodes[i] for i in order]
        self.levels = [level]
        while len(level) > 1:
            up = [branch(alg, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                up.append(level[-1])
            self.levels.append(up)
            level = up
        self.objects = objects

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def reduced(self, index: int) -> tuple[tuple[bytes, ...], ...] | None:
        """§4.2 reduced hash tree of object ``index`` (None for a lone single object)."""
        siblings = []
        pos = self.position[index]
        for level in self.levels[:-1]:
            if not (pos == len(level) - 1 and len(level) % 2):
                siblings.append(level[pos ^ 1])  # (an odd last node has no sibling here)
            pos //= 2
        hashes = self.objects[index]
        if len(hashes) > 1:
            first = tuple(sorted(hashes))
            rest = siblings
        elif siblings:
            first = tuple(sorted((hashes[0], siblings[0])))
            rest = siblings[1:]
        else:
            return None
        return (first, *((s,) for s in rest))


def root_of(alg: HashAlgorithm, rht: Sequence[Sequence[bytes]]) -> bytes:
    """§4.3 step 3: hash each list with the value carried up from the list before."""
    carried: bytes | None = None
    for i, part in enumerate(rht):
        values = [*part, *([carried] if carried is not None else [])]
        if i == 0 and len(values) == 1:
            carried = values[0]  # RFC 6283 §3.1.1 / Bouncy Castle reading (module doc)
            continue
        carried = list_hash(alg, values)
    if carried is None:
        raise ValueError(_("empty reduced hash tree"))
    return carried
