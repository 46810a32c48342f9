"""The three RFC 4998 operations that make and keep evidence: an initial archive timestamp
over many data objects with one TSA request (§4.2), timestamp renewal and hash-tree
renewal (§5.2).

Each works on an :class:`~custody.timestamps.ers.evidence_set.EvidenceSet` (many objects,
one request) or on a single :class:`~custody.timestamps.ers.syntax.EvidenceRecord`, and
asks the TSA through a ``tsa_client.Transport``; every token is checked by
``rfc3161.stamp_digest`` (our imprint, our nonce, a sound signature, a chain to the given
roots valid at genTime) before it is used.

§5.2 step 4 (hash-tree renewal) is done as the text says: h(i)' = H(h(i) || ha(i)), the
data hash first and *unsorted*, as Bouncy Castle, EU DSS (esig/dss
ASN1ArchiveTimeStampSequenceDigestHelper: "All known ASN.1 ERs are not sorted for this
hash") and BSI's ERVerifyTool do; erratum 7411 (reported, not verified) proposes sorting.

May import: ``custody.errors``, ``custody.timestamps.algorithms``, ``custody.timestamps.rfc3161``,
``custody.timestamps.tsa_client`` (its Transport type), ``custody.timestamps.ers.*``,
``cryptography``, the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from cryptography import x509

from custody.errors import InputError, UsageError
from custody.i18n import _, ngettext
from custody.timestamps.algorithms import HashAlgorithm, algorithm, by_oid
from custody.timestamps.ers.evidence_set import (
    EvidenceSet,
    SetChain,
    renewal_atss,
    renewal_imprint,
)
from custody.timestamps.ers.syntax import (
    ArchiveTimeStamp,
    EvidenceRecord,
    ats_algorithm_oid,
    sequence_der,
)
from custody.timestamps.ers.trees import DataObject, Tree, members
from custody.timestamps.rfc3161 import stamp_digest

if TYPE_CHECKING:  # a type only: reading evidence records needs no TSA client
    from custody.timestamps.tsa_client import Transport

__all__ = [
    "MAX_OBJECTS",
    "chain_algorithm",
    "initial_record",
    "renew_hashtree",
    "renew_timestamp",
]

MAX_OBJECTS: Final = 10_000_000


def _stamp(
    digest: bytes, alg: HashAlgorithm, tsa: Transport, roots: Sequence[x509.Certificate] | None
) -> bytes:
    """One TSA request; the checked DER token. TimestampError if the TSA fails or lies."""
    source = getattr(tsa, "url", None)
    token, _check = stamp_digest(digest, alg.name, tsa, roots=roots or (), source=source)
    return token


def _new_algorithm(name: str) -> HashAlgorithm:
    alg = algorithm(name)
    if not alg.imprint:
        raise UsageError(
            _("{algorithm} is not acceptable for new evidence").format(algorithm=alg.name)
        )
    return alg


def initial_record(
    data_objects: Sequence[DataObject],
    alg: str,
    tsa: Transport,
    *,
    trust_roots: Sequence[x509.Certificate] | None = None,
) -> EvidenceSet:
    """§4.2: hash every data object with ``alg``, build one hash tree, and obtain one
    timestamp over its root from ``tsa``.

    ``data_objects`` are the objects' bytes, or tuples of bytes for data object groups
    (custody's ledger uses one group per checkpoint: its line and its token files). With
    ``trust_roots`` the token must chain to one of them. Raises UsageError for bad
    arguments, TimestampError when no usable token came back.
    """
    hash_alg = _new_algorithm(alg)
    if not data_objects or len(data_objects) > MAX_OBJECTS:
        raise UsageError(_("between 1 and {most} data objects are needed").format(most=MAX_OBJECTS))
    objects = tuple(tuple(hash_alg.digest(m) for m in members(o)) for o in data_objects)
    chain = SetChain(hash_alg.name, objects, ())
    token = _stamp(chain.tree.root, hash_alg, tsa, trust_roots)
    final = SetChain(hash_alg.name, objects, (token,))
    final.__dict__["tree"] = chain.tree  # same objects, same tree: do not build it twice
    return EvidenceSet((final,))


def renew_timestamp(
    record: EvidenceSet | EvidenceRecord,
    tsa: Transport,
    *,
    trust_roots: Sequence[x509.Certificate] | None = None,
) -> EvidenceSet | EvidenceRecord:
    """§5.2 timestamp renewal: a new archive timestamp, in the same chain and with the
    same hash algorithm, over the timestamps of the last chain. One TSA request, whatever
    the number of objects; every object's record gains the same new ATS."""
    if isinstance(record, EvidenceSet):
        last = record.chains[-1]
        alg = algorithm(last.algorithm)
        token = _stamp(renewal_imprint(alg, last.time_stamps), alg, tsa, trust_roots)
        renewed = SetChain(last.algorithm, last.objects, (*last.time_stamps, token))
        if "tree" in last.__dict__:
            renewed.__dict__["tree"] = last.__dict__["tree"]
        return EvidenceSet((*record.chains[:-1], renewed))
    chain = record.chains[-1]
    alg = chain_algorithm(chain)
    stamps = [a.time_stamp for a in chain]
    token = _stamp(renewal_imprint(alg, stamps), alg, tsa, trust_roots)
    new_ats = renewal_atss(alg, [*stamps, token])[-1]
    return EvidenceRecord(
        chains=(*record.chains[:-1], (*chain, new_ats)),
        digest_algorithms=record.digest_algorithms,
        crypto_infos=record.crypto_infos,
        encryption_info=record.encryption_info,
        version=record.version,
    )


def chain_algorithm(chain: Sequence[ArchiveTimeStamp]) -> HashAlgorithm:
    """The hash algorithm of an ``ArchiveTimeStampChain`` (that of its first ATS)."""
    oid = ats_algorithm_oid(chain[0])
    alg = by_oid(oid) if oid else None
    if alg is None:
        raise InputError(
            _("the evidence record uses hash algorithm {oid}, unknown to custody").format(oid=oid)
        )
    return alg


def renew_hashtree(
    record: EvidenceSet | EvidenceRecord,
    new_alg: str,
    data_objects: Sequence[DataObject] | DataObject,
    tsa: Transport,
    *,
    trust_roots: Sequence[x509.Certificate] | None = None,
) -> EvidenceSet | EvidenceRecord:
    """§5.2 hash-tree renewal (algorithm migration), step by step:

    1. ``new_alg`` is the new secure hash algorithm H;
    2. h(i) = H(d(i)) for every data object (every member of a group);
    3. ha(i) = H(atsc(i)), atsc(i) the DER ArchiveTimeStampSequence of object i so far;
    4. h(i)' = H(h(i) || ha(i)) (the text's order; see the module docstring);
    5. one new hash tree over the h(i)' and one timestamp over its root;
    6. a new ArchiveTimeStampChain holding that ATS is appended to the sequence.

    ``data_objects`` must be the same objects, in the same order, as first stamped (for
    an EvidenceRecord: its one object or group); each is checked against the first chain
    before anything is requested. Raises UsageError/InputError if they differ.
    """
    alg = _new_algorithm(new_alg)
    if isinstance(record, EvidenceRecord):
        found = members(data_objects)  # type: ignore[arg-type]
        first = record.chains[0][0]
        old = chain_algorithm(record.chains[0])
        if not _first_ats_covers(first, [old.digest(m) for m in found]):
            raise UsageError(_("the data object given is not the one this evidence record covers"))
        ha = alg.digest(sequence_der(record.chains))
        leaves = tuple(alg.digest(alg.digest(m) + ha) for m in found)
        tree = Tree(alg, (leaves,))
        token = _stamp(tree.root, alg, tsa, trust_roots)
        rht = tree.reduced(0)
        ats = ArchiveTimeStamp(
            time_stamp=token,
            digest_algorithm=alg.der if rht is not None else None,
            reduced_hashtree=rht,
        )
        algs = tuple(dict.fromkeys([*record.digest_algorithms, alg.der]))
        return EvidenceRecord(
            chains=(*record.chains, (ats,)),
            digest_algorithms=algs,
            crypto_infos=record.crypto_infos,
            encryption_info=record.encryption_info,
            version=record.version,
        )
    if isinstance(data_objects, bytes | bytearray | memoryview):
        raise UsageError(_("an evidence set is renewed with the list of all its data objects"))
    objects_in: list[DataObject] = list(data_objects)
    if len(objects_in) != len(record):
        raise UsageError(
            ngettext(
                "{n} data objects given; the evidence set covers {covered}",
                "{n} data objects given; the evidence set covers {covered}",
                len(objects_in),
            ).format(n=len(objects_in), covered=len(record))
        )
    base = record.chains[0]
    old = algorithm(base.algorithm)
    leaves_out = []
    for i, obj in enumerate(objects_in):
        found = members(obj)
        if tuple(old.digest(m) for m in found) != base.objects[i]:
            raise UsageError(
                _("data object {index} is not the one the evidence set covers").format(index=i)
            )
        ha = alg.digest(sequence_der([c.archive_time_stamps(i) for c in record.chains]))
        leaves_out.append(tuple(alg.digest(alg.digest(m) + ha) for m in found))
    chain = SetChain(alg.name, tuple(leaves_out), ())
    token = _stamp(chain.tree.root, alg, tsa, trust_roots)
    final = SetChain(alg.name, chain.objects, (token,))
    final.__dict__["tree"] = chain.tree
    return EvidenceSet((*record.chains, final))


def _first_ats_covers(ats: ArchiveTimeStamp, expected: Sequence[bytes]) -> bool:
    if ats.reduced_hashtree is None:
        return True  # checked by the imprint in verification; nothing to search here
    return all(h in ats.reduced_hashtree[0] for h in expected)
