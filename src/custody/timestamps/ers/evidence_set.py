"""custody's compact store of evidence for many data objects stamped together.

An :class:`EvidenceSet` holds, per ``ArchiveTimeStampChain``, the hash algorithm, every
object's leaf hash values and the timestamp tokens, each token once. Object *i*'s standard
RFC 4998 ``EvidenceRecord`` is derived from it deterministically
(:meth:`EvidenceSet.evidence_record`): the tree rule of ``trees`` is part of the format.
Stored as 100,000 separate RFC 4998 records, each timestamp renewal would add a token to
every one of them; the set adds it once.

How renewals appear in the derived records (RFC 4998 §5.2; the readings are Bouncy
Castle's, so that ``ERSEvidenceRecord.validate`` accepts them): a timestamp renewal covers
the hash of *every* earlier timestamp of its chain (one list: §5.2 "one can collect a
number of old Archive Timestamps"); with one earlier timestamp the new one stamps its hash
directly (§5.2 "MAY not contain a reducedHashtree"). Timestamps are hashed in DER.

May import: ``custody.errors``, ``custody.timestamps.der``, ``custody.timestamps.algorithms``,
``custody.timestamps.ers.syntax``, ``custody.timestamps.ers.trees``, the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

from custody.errors import InputError, UsageError
from custody.i18n import _
from custody.timestamps.algorithms import HashAlgorithm, algorithm, by_oid
from custody.timestamps.der import DerError, children, der_encode, der_oid, der_uint, single
from custody.timestamps.ers.syntax import ArchiveTimeStamp, EvidenceRecord, first_line
from custody.timestamps.ers.trees import Tree, list_hash

__all__ = ["EvidenceSet", "SetChain", "renewal_atss", "renewal_imprint"]


@dataclass(frozen=True)
class SetChain:
    """One ``ArchiveTimeStampChain`` shared by every object of an :class:`EvidenceSet`.

    ``objects[i]`` are object *i*'s leaf hash values in this chain (one value, or a
    group's members); ``time_stamps[0]`` stamps the tree root, each later one renews the
    chain (covering the hashes of all earlier ones).
    """

    algorithm: str  # custody name, see custody.timestamps.algorithms
    objects: tuple[tuple[bytes, ...], ...]
    time_stamps: tuple[bytes, ...]

    @cached_property
    def tree(self) -> Tree:
        return Tree(algorithm(self.algorithm), self.objects)

    def archive_time_stamps(self, index: int) -> tuple[ArchiveTimeStamp, ...]:
        alg = algorithm(self.algorithm)
        rht = self.tree.reduced(index)
        first = ArchiveTimeStamp(
            time_stamp=self.time_stamps[0],
            digest_algorithm=alg.der if rht is not None else None,
            reduced_hashtree=rht,
        )
        return (first, *renewal_atss(alg, self.time_stamps))


def renewal_atss(alg: HashAlgorithm, time_stamps: Sequence[bytes]) -> list[ArchiveTimeStamp]:
    """The renewal ATSs of a chain whose tokens are ``time_stamps`` (all but the first)."""
    out = []
    for j in range(1, len(time_stamps)):
        covered = tuple(sorted(alg.digest(t) for t in time_stamps[:j]))
        if j == 1:
            out.append(ArchiveTimeStamp(time_stamp=time_stamps[j]))
        else:
            out.append(
                ArchiveTimeStamp(
                    time_stamp=time_stamps[j], digest_algorithm=alg.der, reduced_hashtree=(covered,)
                )
            )
    return out


def renewal_imprint(alg: HashAlgorithm, time_stamps: Sequence[bytes]) -> bytes:
    """What a timestamp renewal of a chain with these tokens must stamp."""
    hashes = [alg.digest(t) for t in time_stamps]
    return hashes[0] if len(hashes) == 1 else list_hash(alg, hashes)


@dataclass(frozen=True)
class EvidenceSet:
    """Evidence for many data objects stamped together (custody's compact store).

    Stored as DER (:meth:`to_der`)::

        CustodyEvidenceSet ::= SEQUENCE {
          version  INTEGER (1),
          chains   SEQUENCE OF SEQUENCE {
            digestAlgorithm AlgorithmIdentifier,                     -- parameters absent
            objects         SEQUENCE OF SEQUENCE OF OCTET STRING,    -- leaf hash values
            timeStamps      SEQUENCE OF ContentInfo } }              -- RFC 3161 tokens
    """

    chains: tuple[SetChain, ...]

    def __len__(self) -> int:
        return len(self.chains[0].objects)

    def evidence_record(self, index: int) -> EvidenceRecord:
        """Object ``index``'s RFC 4998 EvidenceRecord (DER-stable: the same every time)."""
        if not 0 <= index < len(self):
            raise UsageError(
                _("no data object {index} in this evidence set of {n}").format(
                    index=index, n=len(self)
                )
            )
        algs = tuple(dict.fromkeys(algorithm(c.algorithm).der for c in self.chains))
        return EvidenceRecord(
            chains=tuple(c.archive_time_stamps(index) for c in self.chains),
            digest_algorithms=algs,
        )

    def evidence_records(self) -> Iterator[EvidenceRecord]:
        for i in range(len(self)):
            yield self.evidence_record(i)

    def to_der(self) -> bytes:
        chains = b""
        for c in self.chains:
            objects = b"".join(
                der_encode(0x30, b"".join(der_encode(0x04, h) for h in hashes))
                for hashes in c.objects
            )
            body = algorithm(c.algorithm).der + der_encode(0x30, objects)
            body += der_encode(0x30, b"".join(c.time_stamps))
            chains += der_encode(0x30, body)
        return der_encode(0x30, der_uint(1) + der_encode(0x30, chains))

    @classmethod
    def from_der(cls, data: bytes) -> EvidenceSet:
        """Decode :meth:`to_der` output; InputError (one line) on anything else."""
        try:
            return cls._decode(bytes(data))
        except (DerError, ValueError, IndexError) as err:
            raise InputError(
                _("not a custody evidence set: {why}").format(why=first_line(err))
            ) from None

    @classmethod
    def _decode(cls, data: bytes) -> EvidenceSet:
        top = single(data)
        version, chains_tlv = children(data, top)
        if data[version.start : version.end] != der_uint(1):
            raise ValueError(_("unknown evidence set version; upgrade custody"))
        chains = []
        for ch in children(data, chains_tlv):
            alg_tlv, objs_tlv, ts_tlv = children(data, ch)
            alg = by_oid(der_oid(data, children(data, alg_tlv)[0]))
            if alg is None or not alg.imprint or alg.der != data[alg_tlv.start : alg_tlv.end]:
                raise ValueError(_("unsupported or non-canonical digest algorithm"))
            objects = []
            for obj in children(data, objs_tlv):
                hashes = []
                for h in children(data, obj):
                    if h.tag != 0x04 or h.end - h.body != alg.size:
                        raise ValueError(
                            _("a leaf is not a {algorithm} hash value").format(algorithm=alg.name)
                        )
                    hashes.append(data[h.body : h.end])
                if not hashes:
                    raise ValueError(_("a data object without hash values"))
                objects.append(tuple(hashes))
            stamps = tuple(data[t.start : t.end] for t in children(data, ts_tlv))
            if not objects or not stamps:
                raise ValueError(_("a chain without objects or timestamps"))
            chains.append(SetChain(alg.name, tuple(objects), stamps))
        if not chains or len({len(c.objects) for c in chains}) != 1:
            raise ValueError(_("chains disagree on the number of data objects"))
        result = cls(tuple(chains))
        if result.to_der() != data:
            raise ValueError(_("not in DER"))
        return result
