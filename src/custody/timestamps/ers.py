"""RFC 4998 Evidence Record Syntax: evidence that outlives its certificates.

Owns: the ASN.1 structures of RFC 4998 (``EvidenceRecord``, ``ArchiveTimeStampSequence``,
``ArchiveTimeStampChain``, ``ArchiveTimeStamp`` with its ``reducedHashtree`` of
``PartialHashtree``s, ``CryptoInfos``, ``EncryptionInfo``) in DER; hash trees and reduced
hash trees (§4.2, §4.3); the three operations that make and keep evidence -- an initial
archive timestamp over many data objects with one TSA request (§4.2), timestamp renewal
and hash-tree renewal (§5.2) -- and verification of a record against a data object
(§4.3, §5.3) with named problems.

Two shapes are offered:

* :class:`EvidenceRecord` -- the RFC 4998 structure for *one* data object (or data object
  group): what an examiner checks with Bouncy Castle or by hand;
* :class:`EvidenceSet` -- custody's compact store for *many* data objects stamped
  together: per chain, the hash algorithm, every object's leaf hash values and the
  timestamp tokens, each token once. ``EvidenceSet.evidence_record(i)`` derives object
  *i*'s RFC 4998 record deterministically (the tree rule below is part of the format).

The tree rule (identical to Bouncy Castle's ``BinaryTreeRootCalculator``, release 1.72,
bcgit/bc-java tag r1rv72, pkix/src/main/java/org/bouncycastle/tsp/ers/): each data object
is a leaf node (a group: the hash of its members' hash values sorted and concatenated,
§4.2 step 3); leaf nodes are sorted in binary ascending order and paired left to right,
each pair hashed as H(min || max) (§4.2 step 4); an odd node at the end of a level moves
up unchanged; repeat to one root. An object's reduced hash tree is its first list (itself
and its first sibling, or a group's members) followed by one list per further sibling;
a lone object gets no reduced hash tree and its hash is stamped directly (§4.2: "an
Archive Timestamp may consist ... only [of] a timestamp").

Readings of RFC 4998 where implementations differ, and what is done here:

* §4.3 step 3 with a *single* value in the first list: that value is carried up unhashed,
  as RFC 6283 §3.1.1 states and Bouncy Castle and DSS do (custody never writes such a list).
* §5.2 step 4 (hash-tree renewal): h(i)' = H(h(i) || ha(i)), the data hash first and
  *unsorted*, as the text says and Bouncy Castle, EU DSS (esig/dss
  ASN1ArchiveTimeStampSequenceDigestHelper: "All known ASN.1 ERs are not sorted for this
  hash") and BSI's ERVerifyTool do. Erratum 7411 (reported, not verified) proposes sorting;
  verification also accepts that form and says so in a note.
* Timestamp renewal covers the hash of *every* earlier timestamp of the chain (one list,
  §5.2 "one can collect a number of old Archive Timestamps"), so that Bouncy Castle's
  ``ERSEvidenceRecord.validate`` accepts it; with one earlier timestamp the new one stamps
  its hash directly (§5.2 "MAY not contain a reducedHashtree").
* Timestamps are hashed in DER (§5.2); tokens are stored with their certificate SET in DER
  order (see ``ers_token.der_sort_token_sets``).

Sources: RFC 4998 (section numbers as published; the stored corpus held its abstract and
the rfc-editor.org erratum page, erratum 7411, while §4.2/§4.3/§5.2 were checked against the
passages quoted in bcgit/bc-java issues #1164 and #1216 and in esig/dss); the ASN.1 module
as transcribed in russhousley/pyasn1-alt-modules ``pyasn1_alt_modules/rfc4998.py``;
Bouncy Castle r1rv72 ``ERSEvidenceRecord``, ``ERSArchiveTimeStamp``,
``ERSArchiveTimeStampGenerator``, ``BinaryTreeRootCalculator``, ``ERSUtil``; esig/dss
``dss-evidence-record-asn1`` ``ASN1ArchiveTimeStampSequenceDigestHelper``.

ASN.1 library: ``asn1crypto`` (1.5.1) decodes, because it already defines every structure
an evidence record embeds (CMS ContentInfo/SignedData, TSTInfo, X.509, CRL, OCSP) in one
dependency-free package that is the base of pyHanko's long-term-validation stack, and is
several times faster than pyasn1 at the sizes involved; encoding is done with a few lines
of direct DER (``ers_token.der_tlv``) because 100,000 records are built at once, and every
decoded record is re-encoded and compared byte for byte, so what is verified is exactly
what is stored.

May import: ``custody.errors``, ``custody.clock``, ``custody.timestamps.ers_token``,
``custody.timestamps.ers_material``, ``asn1crypto``, ``cryptography``, the standard library.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from typing import Any, Final, Literal

from asn1crypto import algos as a_algos
from asn1crypto import cms as a_cms
from asn1crypto import core as a_core
from cryptography import x509

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError, TimestampError, UsageError
from custody.timestamps.ers_material import (
    ValidationMaterial,
    revocation_status,
)
from custody.timestamps.ers_token import (
    TOKEN_NOT_VALID_AT_GENTIME,
    TOKEN_UNTRUSTED,
    DerError,
    HashAlgorithm,
    TokenCheck,
    Transport,
    algorithm,
    algorithm_by_oid,
    build_request,
    check_der,
    check_token,
    children,
    der_tlv,
    der_uint,
    read_token,
    single,
    token_from_response,
)

__all__ = [
    "DEFAULT_POLICY",
    "AlgorithmPolicy",
    "ArchiveTimeStamp",
    "AtsReport",
    "DataObject",
    "ErsProblem",
    "ErsVerification",
    "EvidenceRecord",
    "EvidenceSet",
    "RenewalAdvice",
    "SetChain",
    "initial_record",
    "renew_hashtree",
    "renew_timestamp",
    "renewal_due",
    "verify_record",
]

DataObject = bytes | Sequence[bytes]
"""A data object (its bytes), or a data object group (the bytes of each member)."""

_MAX_OBJECTS: Final = 10_000_000
# Two TSAs' clocks may differ by their accuracy; a renewal made right after the token it
# renews may carry a slightly earlier genTime without anything being wrong (custody's
# RFC 3161 checks allow the same 60 s, docs/timestamps.md §7.3).
_CLOCK_TOLERANCE: Final = _dt.timedelta(seconds=60)

# Problem codes (ErsProblem.code). Errors unless noted.
ERS_MALFORMED: Final = "ERS_MALFORMED"  # not a DER EvidenceRecord
ERS_VERSION: Final = "ERS_VERSION"  # version other than v1(1)
ERS_UNKNOWN_ALGORITHM: Final = "ERS_UNKNOWN_ALGORITHM"  # a hash algorithm custody cannot compute
ERS_ALGORITHM_MISMATCH: Final = "ERS_ALGORITHM_MISMATCH"  # field vs imprint, or within a chain
ERS_DIGEST_ALGORITHMS: Final = "ERS_DIGEST_ALGORITHMS"  # warning: digestAlgorithms not the union
ERS_DATA_NOT_COVERED: Final = "ERS_DATA_NOT_COVERED"  # data object's hash not in the first list
ERS_HASHTREE_MISMATCH: Final = "ERS_HASHTREE_MISMATCH"  # reduced tree does not lead to the imprint
ERS_RENEWAL_NOT_COVERED: Final = "ERS_RENEWAL_NOT_COVERED"  # renewal does not cover previous
ERS_CHAIN_NOT_COVERED: Final = "ERS_CHAIN_NOT_COVERED"  # new chain does not cover h(i)+ha(i)
ERS_TIME_ORDER: Final = "ERS_TIME_ORDER"  # a renewal dated before what it renews
ERS_TOKEN_INVALID: Final = "ERS_TOKEN_INVALID"  # unreadable, forged, altered token
ERS_TOKEN_UNTRUSTED: Final = "ERS_TOKEN_UNTRUSTED"  # no path to the trust roots
ERS_TOKEN_NOT_VALID_AT_GENTIME: Final = "ERS_TOKEN_NOT_VALID_AT_GENTIME"
ERS_TOKEN_REVOKED: Final = "ERS_TOKEN_REVOKED"  # a certificate revoked before the token's genTime
ERS_RENEWED_TOO_LATE: Final = "ERS_RENEWED_TOO_LATE"  # renewal after the previous cert expired
ERS_RENEWED_AFTER_REVOCATION: Final = "ERS_RENEWED_AFTER_REVOCATION"
ERS_ALGORITHM_WEAK: Final = "ERS_ALGORITHM_WEAK"  # relied on after the policy's end date
ERS_NOT_RENEWED: Final = "ERS_NOT_RENEWED"  # the last timestamp no longer valid at at_time
ERS_LAST_REVOKED: Final = "ERS_LAST_REVOKED"  # the last timestamp's certificate is revoked
ERS_REVOCATION_UNKNOWN: Final = "ERS_REVOCATION_UNKNOWN"  # warning: no material for that time
ERS_TOKEN_NOT_DER: Final = "ERS_TOKEN_NOT_DER"  # warning: other verifiers may hash it otherwise


# ============================================================== ASN.1 (RFC 4998 §3-§5)
# DEFINITIONS IMPLICIT TAGS (RFC 4998 Appendix A).


class PartialHashtree(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = a_core.OctetString


class _ReducedHashtree(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = PartialHashtree


class Attributes(a_core.SetOf):  # type: ignore[misc]
    _child_spec = a_cms.CMSAttribute


class _Asn1ArchiveTimeStamp(a_core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012  (asn1crypto's declarative form)
        ("digest_algorithm", a_algos.DigestAlgorithm, {"implicit": 0, "optional": True}),
        ("attributes", Attributes, {"implicit": 1, "optional": True}),
        ("reduced_hashtree", _ReducedHashtree, {"implicit": 2, "optional": True}),
        ("time_stamp", a_cms.ContentInfo),
    ]


class _Asn1ArchiveTimeStampChain(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Asn1ArchiveTimeStamp


class _Asn1ArchiveTimeStampSequence(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = _Asn1ArchiveTimeStampChain


class CryptoInfos(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = a_cms.CMSAttribute


class _Asn1EncryptionInfo(a_core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("encryption_info_type", a_core.ObjectIdentifier),
        ("encryption_info_value", a_core.Any),
    ]


class _DigestAlgorithms(a_core.SequenceOf):  # type: ignore[misc]
    _child_spec = a_algos.DigestAlgorithm


class _Asn1EvidenceRecord(a_core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", a_core.Integer),
        ("digest_algorithms", _DigestAlgorithms),
        ("crypto_infos", CryptoInfos, {"implicit": 0, "optional": True}),
        ("encryption_info", _Asn1EncryptionInfo, {"implicit": 1, "optional": True}),
        ("archive_time_stamp_sequence", _Asn1ArchiveTimeStampSequence),
    ]


def _retag(tlv_der: bytes, tag: int) -> bytes:
    """The same TLV under another tag octet (IMPLICIT tagging keeps length and content)."""
    return bytes([tag]) + tlv_der[1:]


@dataclass(frozen=True, slots=True)
class ArchiveTimeStamp:
    """RFC 4998 §4.1 ``ArchiveTimeStamp``.

    ``time_stamp`` is the DER ``ContentInfo`` (an RFC 3161 TimeStampToken);
    ``digest_algorithm`` the DER ``AlgorithmIdentifier`` of field [0] (None: absent, the
    token's imprint algorithm applies); ``attributes`` the DER ``SET OF Attribute`` of
    field [1] (kept verbatim); ``reduced_hashtree`` the lists of field [2].
    """

    time_stamp: bytes
    digest_algorithm: bytes | None = None
    attributes: bytes | None = None
    reduced_hashtree: tuple[tuple[bytes, ...], ...] | None = None

    def to_der(self) -> bytes:
        body = b""
        if self.digest_algorithm is not None:
            body += _retag(self.digest_algorithm, 0xA0)
        if self.attributes is not None:
            body += _retag(self.attributes, 0xA1)
        if self.reduced_hashtree is not None:
            lists = b"".join(
                der_tlv(0x30, b"".join(der_tlv(0x04, h) for h in part))
                for part in self.reduced_hashtree
            )
            body += der_tlv(0xA2, lists)
        return der_tlv(0x30, body + self.time_stamp)


def _chain_der(chain: Sequence[ArchiveTimeStamp]) -> bytes:
    return der_tlv(0x30, b"".join(a.to_der() for a in chain))


def _sequence_der(chains: Sequence[Sequence[ArchiveTimeStamp]]) -> bytes:
    """DER ``ArchiveTimeStampSequence``: what §5.2 step 3 calls atsc(i)."""
    return der_tlv(0x30, b"".join(_chain_der(c) for c in chains))


@dataclass(frozen=True)
class EvidenceRecord:
    """RFC 4998 §3 ``EvidenceRecord`` for one data object or data object group.

    ``digest_algorithms`` are DER ``AlgorithmIdentifier``s; ``crypto_infos`` the DER
    ``CryptoInfos`` SEQUENCE and ``encryption_info`` the DER ``EncryptionInfo`` SEQUENCE,
    both kept verbatim (RFC 4998 leaves their verification to other means).
    """

    chains: tuple[tuple[ArchiveTimeStamp, ...], ...]
    digest_algorithms: tuple[bytes, ...]
    crypto_infos: bytes | None = None
    encryption_info: bytes | None = None
    version: int = 1

    def to_der(self) -> bytes:
        body = der_uint(self.version) + der_tlv(0x30, b"".join(self.digest_algorithms))
        if self.crypto_infos is not None:
            body += _retag(self.crypto_infos, 0xA0)
        if self.encryption_info is not None:
            body += _retag(self.encryption_info, 0xA1)
        return der_tlv(0x30, body + _sequence_der(self.chains))

    @classmethod
    def from_der(cls, data: bytes) -> EvidenceRecord:
        """Decode a DER EvidenceRecord; InputError (one line) if it is not one, or not DER."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UsageError("an evidence record is given as bytes")
        data = bytes(data)
        try:
            single(data)  # definite, minimal lengths; no trailing bytes
            parsed = _Asn1EvidenceRecord.load(data, strict=True)
            record = cls._from_asn1(parsed)
        except (ValueError, TypeError, KeyError, IndexError, DerError) as err:
            raise InputError(f"not an RFC 4998 evidence record: {_first_line(err)}") from None
        if record.to_der() != data:
            raise InputError("the evidence record is not in DER (it would hash differently)")
        return record

    @classmethod
    def _from_asn1(cls, parsed: Any) -> EvidenceRecord:
        algs = tuple(_untagged(a, 0x30) for a in parsed["digest_algorithms"])
        chains = []
        for chain in parsed["archive_time_stamp_sequence"]:
            atss = []
            for ats in chain:
                alg = ats["digest_algorithm"]
                attrs = ats["attributes"]
                rht = ats["reduced_hashtree"]
                atss.append(
                    ArchiveTimeStamp(
                        time_stamp=ats["time_stamp"].dump(),
                        digest_algorithm=None if alg.native is None else _untagged(alg, 0x30),
                        attributes=None if attrs.native is None else _untagged(attrs, 0x31),
                        reduced_hashtree=None
                        if rht.native is None
                        else tuple(tuple(h.native for h in part) for part in rht),
                    )
                )
            if not atss:
                raise ValueError("an ArchiveTimeStampChain is empty")
            chains.append(tuple(atss))
        if not chains:
            raise ValueError("the ArchiveTimeStampSequence is empty")
        crypto = parsed["crypto_infos"]
        enc = parsed["encryption_info"]
        return cls(
            chains=tuple(chains),
            digest_algorithms=algs,
            crypto_infos=None if crypto.native is None else _untagged(crypto, 0x30),
            encryption_info=None if enc.native is None else _untagged(enc, 0x30),
            version=int(parsed["version"].native),
        )

    @property
    def archive_time_stamps(self) -> Iterator[tuple[int, int, ArchiveTimeStamp]]:
        """(chain index, index in chain, ATS) in chronological order."""
        for k, chain in enumerate(self.chains):
            for j, ats in enumerate(chain):
                yield k, j, ats


def _untagged(value: Any, tag: int) -> bytes:
    """DER of an asn1crypto value under its universal tag (undoing IMPLICIT tagging)."""
    contents: bytes = value.contents
    return der_tlv(tag, contents)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


# ================================================================ hash trees (§4.2)


def _branch(alg: HashAlgorithm, a: bytes, b: bytes) -> bytes:
    return alg.digest(a + b if a <= b else b + a)


def _list_hash(alg: HashAlgorithm, values: Sequence[bytes]) -> bytes:
    """§4.2 step 3/4: sort in binary ascending order, concatenate, hash."""
    return alg.digest(b"".join(sorted(values)))


def _leaf_node(alg: HashAlgorithm, members: Sequence[bytes]) -> bytes:
    return members[0] if len(members) == 1 else _list_hash(alg, members)


class _Tree:
    """The BC-compatible binary tree over leaf nodes, with each object's sibling path."""

    def __init__(self, alg: HashAlgorithm, objects: Sequence[Sequence[bytes]]) -> None:
        self.alg = alg
        nodes = [_leaf_node(alg, m) for m in objects]
        order = sorted(range(len(nodes)), key=nodes.__getitem__)
        self.position = [0] * len(nodes)
        for pos, index in enumerate(order):
            self.position[index] = pos
        level = [nodes[i] for i in order]
        self.levels = [level]
        while len(level) > 1:
            up = [_branch(alg, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
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
            if pos == len(level) - 1 and len(level) % 2:
                pass  # the odd node moves up unchanged: no sibling at this level
            else:
                siblings.append(level[pos ^ 1])
            pos //= 2
        members = self.objects[index]
        if len(members) > 1:
            first = tuple(sorted(members))
            rest = siblings
        elif siblings:
            first = tuple(sorted((members[0], siblings[0])))
            rest = siblings[1:]
        else:
            return None
        return (first, *((s,) for s in rest))


def _root_of(alg: HashAlgorithm, rht: Sequence[Sequence[bytes]]) -> bytes:
    """§4.3 step 3: hash each list with the value carried up from the list before."""
    carried: bytes | None = None
    for i, part in enumerate(rht):
        values = [*part, *([carried] if carried is not None else [])]
        if i == 0 and len(values) == 1:
            carried = values[0]  # RFC 6283 §3.1.1 / Bouncy Castle reading (see module doc)
            continue
        carried = _list_hash(alg, values)
    if carried is None:
        raise ValueError("empty reduced hash tree")
    return carried


# =============================================================== the evidence set


@dataclass(frozen=True)
class SetChain:
    """One ``ArchiveTimeStampChain`` shared by every object of an :class:`EvidenceSet`.

    ``objects[i]`` are object *i*'s leaf hash values in this chain (one value, or a
    group's members); ``time_stamps[0]`` stamps the tree root, each later one renews the
    chain (covering the hashes of all earlier ones).
    """

    algorithm: str  # custody name, see ers_token.ALGORITHMS
    objects: tuple[tuple[bytes, ...], ...]
    time_stamps: tuple[bytes, ...]

    @cached_property
    def tree(self) -> _Tree:
        return _Tree(algorithm(self.algorithm), self.objects)

    def archive_time_stamps(self, index: int) -> tuple[ArchiveTimeStamp, ...]:
        alg = algorithm(self.algorithm)
        rht = self.tree.reduced(index)
        first = ArchiveTimeStamp(
            time_stamp=self.time_stamps[0],
            digest_algorithm=alg.der if rht is not None else None,
            reduced_hashtree=rht,
        )
        return (first, *_renewal_atss(alg, self.time_stamps))


def _renewal_atss(alg: HashAlgorithm, time_stamps: Sequence[bytes]) -> list[ArchiveTimeStamp]:
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


def _renewal_imprint(alg: HashAlgorithm, time_stamps: Sequence[bytes]) -> bytes:
    hashes_ = [alg.digest(t) for t in time_stamps]
    return hashes_[0] if len(hashes_) == 1 else _list_hash(alg, hashes_)


@dataclass(frozen=True)
class EvidenceSet:
    """Evidence for many data objects stamped together (custody's compact store).

    Stored as DER (:meth:`to_der`)::

        CustodyEvidenceSet ::= SEQUENCE {
          version  INTEGER (1),
          chains   SEQUENCE OF SEQUENCE {
            digestAlgorithm AlgorithmIdentifier,
            objects         SEQUENCE OF SEQUENCE OF OCTET STRING,  -- leaf hash values
            timeStamps      SEQUENCE OF ContentInfo } }              -- RFC 3161 tokens
    """

    chains: tuple[SetChain, ...]

    def __len__(self) -> int:
        return len(self.chains[0].objects)

    def evidence_record(self, index: int) -> EvidenceRecord:
        """Object ``index``'s RFC 4998 EvidenceRecord (DER-stable: the same every time)."""
        if not 0 <= index < len(self):
            raise UsageError(f"no data object {index} in this evidence set of {len(self)}")
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
                der_tlv(0x30, b"".join(der_tlv(0x04, h) for h in members)) for members in c.objects
            )
            body = algorithm(c.algorithm).der + der_tlv(0x30, objects)
            body += der_tlv(0x30, b"".join(c.time_stamps))
            chains += der_tlv(0x30, body)
        return der_tlv(0x30, der_uint(1) + der_tlv(0x30, chains))

    @classmethod
    def from_der(cls, data: bytes) -> EvidenceSet:
        """Decode :meth:`to_der` output; InputError (one line) on anything else."""
        try:
            return cls._decode(bytes(data))
        except (DerError, ValueError, IndexError) as err:
            raise InputError(f"not a custody evidence set: {_first_line(err)}") from None

    @classmethod
    def _decode(cls, data: bytes) -> EvidenceSet:
        top = single(data)
        version, chains_tlv = children(data, top)
        if data[version.start : version.end] != der_uint(1):
            raise ValueError("unknown evidence set version; upgrade custody")
        chains = []
        for ch in children(data, chains_tlv):
            alg_tlv, objs_tlv, ts_tlv = children(data, ch)
            oid = a_algos.DigestAlgorithm.load(data[alg_tlv.start : alg_tlv.end])
            alg = algorithm_by_oid(oid["algorithm"].dotted)
            if alg is None or alg.der != data[alg_tlv.start : alg_tlv.end]:
                raise ValueError("unsupported or non-canonical digest algorithm")
            objects = []
            for obj in children(data, objs_tlv):
                members = []
                for h in children(data, obj):
                    if h.tag != 0x04 or h.end - h.body != alg.size:
                        raise ValueError(f"a leaf is not a {alg.name} hash value")
                    members.append(data[h.body : h.end])
                if not members:
                    raise ValueError("a data object without hash values")
                objects.append(tuple(members))
            stamps = tuple(data[t.start : t.end] for t in children(data, ts_tlv))
            if not objects or not stamps:
                raise ValueError("a chain without objects or timestamps")
            chains.append(SetChain(alg.name, tuple(objects), stamps))
        if not chains or len({len(c.objects) for c in chains}) != 1:
            raise ValueError("chains disagree on the number of data objects")
        result = cls(tuple(chains))
        if result.to_der() != data:
            raise ValueError("not in DER")
        return result


# ================================================================== operations


def _members(obj: DataObject) -> tuple[bytes, ...]:
    if isinstance(obj, bytes | bytearray | memoryview):
        return (bytes(obj),)
    if isinstance(obj, str):
        raise UsageError("data objects are bytes, not text")
    members = tuple(bytes(m) for m in obj)
    if not members:
        raise UsageError("a data object group needs at least one member")
    return members


def _stamp(
    digest: bytes, alg: HashAlgorithm, tsa: Transport, roots: Sequence[x509.Certificate] | None
) -> bytes:
    """One TSA request; the checked DER token. TimestampError if the TSA fails or lies."""
    request, nonce = build_request(digest, alg)
    source = getattr(tsa, "url", "the timestamp authority")
    token = token_from_response(tsa(request), digest=digest, alg=alg, nonce=nonce, source=source)
    check = check_token(token, roots=roots or [])
    bad = [p for p in check.problems if roots is not None or p[0] != TOKEN_UNTRUSTED]
    if bad:
        raise TimestampError(f"{source} sent an unusable token: {bad[0][0]}: {bad[0][1]}")
    return token


def initial_record(
    data_objects: Sequence[DataObject],
    alg: str,
    tsa: Transport,
    *,
    trust_roots: Sequence[x509.Certificate] | None = None,
) -> EvidenceSet:
    """§4.2: hash every data object with ``alg``, build one hash tree, and obtain one
    timestamp over its root from ``tsa``.

    ``data_objects`` are the objects' bytes (custody decides what they are: checkpoint
    lines, RFC 3161 token files, item digests), or tuples of bytes for data object groups.
    With ``trust_roots`` the token must chain to one of them. Raises UsageError for bad
    arguments, TimestampError when no usable token came back.
    """
    hash_alg = algorithm(alg)
    if hash_alg.name == "sha1":
        raise UsageError("sha1 is not acceptable for new evidence")
    if not data_objects or len(data_objects) > _MAX_OBJECTS:
        raise UsageError(f"between 1 and {_MAX_OBJECTS} data objects are needed")
    objects = tuple(tuple(hash_alg.digest(m) for m in _members(o)) for o in data_objects)
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
        token = _stamp(_renewal_imprint(alg, last.time_stamps), alg, tsa, trust_roots)
        renewed = SetChain(last.algorithm, last.objects, (*last.time_stamps, token))
        if "tree" in last.__dict__:
            renewed.__dict__["tree"] = last.__dict__["tree"]
        return EvidenceSet((*record.chains[:-1], renewed))
    chain = record.chains[-1]
    alg = _chain_algorithm(chain)
    stamps = [a.time_stamp for a in chain]
    token = _stamp(_renewal_imprint(alg, stamps), alg, tsa, trust_roots)
    new_ats = _renewal_atss(alg, [*stamps, token])[-1]
    return EvidenceRecord(
        chains=(*record.chains[:-1], (*chain, new_ats)),
        digest_algorithms=record.digest_algorithms,
        crypto_infos=record.crypto_infos,
        encryption_info=record.encryption_info,
        version=record.version,
    )


def _chain_algorithm(chain: Sequence[ArchiveTimeStamp]) -> HashAlgorithm:
    oid = _ats_algorithm_oid(chain[0])
    alg = algorithm_by_oid(oid) if oid else None
    if alg is None:
        raise InputError(f"the evidence record uses hash algorithm {oid}, unknown to custody")
    return alg


def _ats_algorithm_oid(ats: ArchiveTimeStamp) -> str | None:
    if ats.digest_algorithm is not None:
        return str(a_algos.DigestAlgorithm.load(ats.digest_algorithm)["algorithm"].dotted)
    try:
        _ci, tst = read_token(ats.time_stamp)
        return str(tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted)
    except ValueError:
        return None


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
    alg = algorithm(new_alg)
    if alg.name == "sha1":
        raise UsageError("sha1 is not acceptable for new evidence")
    if isinstance(record, EvidenceRecord):
        members = _members(data_objects)  # type: ignore[arg-type]
        first = record.chains[0][0]
        old = _chain_algorithm(record.chains[0])
        if not _first_ats_covers(first, [old.digest(m) for m in members]):
            raise UsageError("the data object given is not the one this evidence record covers")
        ha = alg.digest(_sequence_der(record.chains))
        leaves = tuple(alg.digest(alg.digest(m) + ha) for m in members)
        tree = _Tree(alg, (leaves,))
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
        raise UsageError("an evidence set is renewed with the list of all its data objects")
    objects_in: list[DataObject] = list(data_objects)
    if len(objects_in) != len(record):
        raise UsageError(
            f"{len(objects_in)} data objects given; the evidence set covers {len(record)}"
        )
    base = record.chains[0]
    old = algorithm(base.algorithm)
    leaves_out = []
    for i, obj in enumerate(objects_in):
        members = _members(obj)
        if tuple(old.digest(m) for m in members) != base.objects[i]:
            raise UsageError(f"data object {i} is not the one the evidence set covers")
        ha = alg.digest(_sequence_der([c.archive_time_stamps(i) for c in record.chains]))
        leaves_out.append(tuple(alg.digest(alg.digest(m) + ha) for m in members))
    chain = SetChain(alg.name, tuple(leaves_out), ())
    token = _stamp(chain.tree.root, alg, tsa, trust_roots)
    final = SetChain(alg.name, chain.objects, (token,))
    final.__dict__["tree"] = chain.tree
    return EvidenceSet((*record.chains, final))


def _first_ats_covers(ats: ArchiveTimeStamp, expected: Sequence[bytes]) -> bool:
    if ats.reduced_hashtree is None:
        return True  # checked by the imprint in verification; nothing to search here
    return all(h in ats.reduced_hashtree[0] for h in expected)


# ================================================================ verification


@dataclass(frozen=True)
class AlgorithmPolicy:
    """When each hash algorithm stops counting as secure (RFC 4998 §5.3 step 2).

    ``insecure_from`` maps a dotted OID to the first moment it may no longer be relied on;
    algorithms not listed count as secure. Unknown algorithms cannot be computed at all.
    """

    insecure_from: Mapping[str, _dt.datetime] = field(default_factory=dict)

    def secure_at(self, oid: str, when: _dt.datetime) -> bool:
        end = self.insecure_from.get(oid)
        return end is None or when < end

    def end_of(self, oid: str) -> _dt.datetime | None:
        return self.insecure_from.get(oid)


# SHA-1: collisions shown in 2017 (SHAttered); NIST disallowed it for new signatures from
# 2014. Evidence that still relies on SHA-1 after 2011 had years of warning.
DEFAULT_POLICY: Final = AlgorithmPolicy({"1.3.14.3.2.26": _dt.datetime(2011, 1, 1, tzinfo=_dt.UTC)})


@dataclass(frozen=True, slots=True)
class ErsProblem:
    """One named finding. ``chain``/``index`` locate the archive timestamp (0-based)."""

    code: str
    severity: Literal["error", "warning"]
    detail: str
    chain: int | None = None
    index: int | None = None

    def __str__(self) -> str:
        where = f" (chain {self.chain}, timestamp {self.index})" if self.chain is not None else ""
        return f"{self.code}{where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class AtsReport:
    """What one archive timestamp showed."""

    chain: int
    index: int
    algorithm: str | None  # dotted OID of the hash algorithm of this ATS
    gen_time: _dt.datetime | None
    tsa_name: str | None
    valid_until: _dt.datetime | None  # earliest end of its path / algorithm / revocation


@dataclass(frozen=True)
class ErsVerification:
    """The outcome of :func:`verify_record`. ``ok`` only when no error was found."""

    problems: tuple[ErsProblem, ...]
    timestamps: tuple[AtsReport, ...]
    at_time: _dt.datetime
    existence_time: _dt.datetime | None  # genTime of the initial ATS when ok
    renew_before: _dt.datetime | None  # when the last ATS stops proving anything
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[ErsProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[ErsProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    @property
    def summary(self) -> str:
        if self.ok:
            when = format_time(self.existence_time) if self.existence_time else "?"
            return f"valid: the data object existed at {when}"
        return str(self.errors[0])


@dataclass
class _Ats:
    chain: int
    index: int
    ats: ArchiveTimeStamp
    check: TokenCheck
    alg: HashAlgorithm | None = None
    path: list[x509.Certificate] = field(default_factory=list)


def verify_record(
    record: EvidenceRecord | bytes,
    data_object: DataObject,
    trust_roots: Sequence[x509.Certificate],
    validation_material: ValidationMaterial | None = None,
    at_time: _dt.datetime | None = None,
    *,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
    clock: Clock = utc_now,
) -> ErsVerification:
    """§4.3 and §5.3: does ``record`` prove that ``data_object`` existed, as of ``at_time``?

    Every archive timestamp is checked: its reduced hash tree leads to its token's
    imprint; its token is sound and chains to ``trust_roots`` with every certificate
    valid (and, as far as ``validation_material`` tells, unrevoked) at its own genTime;
    each renewal covers what it renews and was made before the renewed token's
    certificates expired or were revoked and while its hash algorithm was secure
    (``policy``); hash-tree renewals cover H(h(d) || H(earlier sequence)); and the last
    token is still valid at ``at_time`` (default: now), else ``ERS_NOT_RENEWED``.

    ``data_object`` is the object's bytes, or a sequence of the members' bytes for a data
    object group (every member must then be in the first list). Never raises for a bad
    record (``bytes`` that do not decode give ``ERS_MALFORMED``); raises UsageError for
    bad arguments (naive ``at_time``, an empty group).
    """
    at = at_time if at_time is not None else clock()
    if at.tzinfo is None:
        raise UsageError("at_time must be timezone-aware (UTC)")
    at = at.astimezone(_dt.UTC)
    members = _members(data_object)
    material = validation_material or ValidationMaterial()
    if not isinstance(record, EvidenceRecord):
        try:
            record = EvidenceRecord.from_der(bytes(record))
        except InputError as err:
            problem = ErsProblem(ERS_MALFORMED, "error", str(err))
            return ErsVerification((problem,), (), at, None, None)
    return _Verifier(record, members, list(trust_roots), material, at, policy).run()


class _Verifier:
    def __init__(
        self,
        record: EvidenceRecord,
        members: tuple[bytes, ...],
        roots: list[x509.Certificate],
        material: ValidationMaterial,
        at: _dt.datetime,
        policy: AlgorithmPolicy,
    ) -> None:
        self.record = record
        self.members = members
        self.roots = roots
        self.material = material
        self.at = at
        self.policy = policy
        self.problems: list[ErsProblem] = []
        self.notes: list[str] = []

    def add(
        self,
        code: str,
        detail: str,
        item: _Ats | None = None,
        severity: Literal["error", "warning"] = "error",
    ) -> None:
        self.problems.append(
            ErsProblem(
                code,
                severity,
                detail,
                None if item is None else item.chain,
                None if item is None else item.index,
            )
        )

    def run(self) -> ErsVerification:
        record = self.record
        if record.version != 1:
            self.add(ERS_VERSION, f"version {record.version}; only v1(1) is defined")
        items = [
            _Ats(
                k,
                j,
                ats,
                check_token(
                    ats.time_stamp, roots=self.roots, extra_certificates=self.material.certificates
                ),
            )
            for k, j, ats in record.archive_time_stamps
        ]
        for item in items:
            self._token(item)
        self._algorithms(items)
        self._digest_algorithms(items)
        for item in items:
            self._hash_links(item)
        self._times(items)
        renew_before = self._last_valid(items[-1])
        reports = tuple(
            AtsReport(
                chain=i.chain,
                index=i.index,
                algorithm=i.alg.oid if i.alg else None,
                gen_time=i.check.facts.gen_time if i.check.facts else None,
                tsa_name=i.check.facts.tsa_name if i.check.facts else None,
                valid_until=self._valid_until(i),
            )
            for i in items
        )
        errors = any(p.severity == "error" for p in self.problems)
        first = items[0].check.facts
        existence = first.gen_time if first is not None and not errors else None
        return ErsVerification(
            problems=tuple(self.problems),
            timestamps=reports,
            at_time=self.at,
            existence_time=existence,
            renew_before=renew_before,
            notes=tuple(self.notes),
        )

    # -- each token on its own terms ------------------------------------------------
    def _token(self, item: _Ats) -> None:
        codes = {
            TOKEN_UNTRUSTED: ERS_TOKEN_UNTRUSTED,
            TOKEN_NOT_VALID_AT_GENTIME: ERS_TOKEN_NOT_VALID_AT_GENTIME,
        }
        for code, detail in item.check.problems:
            self.add(codes.get(code, ERS_TOKEN_INVALID), detail, item)
        if item.check.facts is None:
            return
        try:
            check_der(item.ats.time_stamp)
        except DerError as err:
            # §5.2 hashes timestamps in DER; Bouncy Castle hashes its DER re-encoding,
            # custody the stored bytes: on a non-DER token the two would disagree.
            self.add(ERS_TOKEN_NOT_DER, f"the token is not DER ({err})", item, "warning")
        item.path = item.check.path_certificates()
        gen = item.check.facts.gen_time
        for cert, issuer in pairwise(item.path):
            status = revocation_status(cert, issuer, self.material, gen)
            if status.state == "revoked":
                self.add(
                    ERS_TOKEN_REVOKED,
                    f"{cert.subject.rfc4514_string()} was revoked at "
                    f"{format_time(status.revoked_at or gen)}, before genTime "
                    f"{format_time(gen)} ({status.source})",
                    item,
                )

    # -- hash algorithms -------------------------------------------------------------
    def _algorithms(self, items: list[_Ats]) -> None:
        for item in items:
            facts = item.check.facts
            field_oid = (
                str(a_algos.DigestAlgorithm.load(item.ats.digest_algorithm)["algorithm"].dotted)
                if item.ats.digest_algorithm is not None
                else None
            )
            imprint_oid = facts.imprint_algorithm if facts else None
            oid = field_oid or imprint_oid
            if field_oid and imprint_oid and field_oid != imprint_oid:
                self.add(
                    ERS_ALGORITHM_MISMATCH,
                    f"digestAlgorithm {field_oid} but the token's imprint uses {imprint_oid}",
                    item,
                )
            if oid is None:
                continue
            item.alg = algorithm_by_oid(oid)
            if item.alg is None:
                self.add(ERS_UNKNOWN_ALGORITHM, f"hash algorithm {oid} is unknown", item)
        for k in {i.chain for i in items}:
            chain = [i for i in items if i.chain == k]
            oids = {i.alg.oid for i in chain if i.alg}
            if len(oids) > 1:
                self.add(
                    ERS_ALGORITHM_MISMATCH,
                    f"the archive timestamps of chain {k} use several hash algorithms "
                    f"({', '.join(sorted(oids))}); §5.3 requires one",
                    chain[0],
                )

    def _digest_algorithms(self, items: list[_Ats]) -> None:
        listed = set()
        for der in self.record.digest_algorithms:
            try:
                listed.add(a_algos.DigestAlgorithm.load(der)["algorithm"].dotted)
            except ValueError:
                continue
        used = {i.alg.oid for i in items if i.alg}
        if used - listed:
            self.add(
                ERS_DIGEST_ALGORITHMS,
                f"digestAlgorithms omits {', '.join(sorted(used - listed))} (§3: the union)",
                severity="warning",
            )

    # -- hash links (§4.3, §5.3 steps 1-3) -----------------------------------------------
    def _hash_links(self, item: _Ats) -> None:
        facts, alg = item.check.facts, item.alg
        if facts is None or alg is None:
            return
        if item.index > 0:
            previous = self.record.chains[item.chain][item.index - 1]
            expected = [alg.digest(previous.time_stamp)]
            self._covers(
                item, alg, expected, ERS_RENEWAL_NOT_COVERED, "the hash of the timestamp it renews"
            )
            return
        data = [alg.digest(m) for m in self.members]
        if item.chain == 0:
            self._covers(item, alg, data, ERS_DATA_NOT_COVERED, "the data object's hash")
            return
        ha = alg.digest(_sequence_der(self.record.chains[: item.chain]))
        literal = [alg.digest(h + ha) for h in data]
        if self._covers(item, alg, literal, None, ""):
            return
        erratum = [alg.digest(min(h, ha) + max(h, ha)) for h in data]
        if self._covers(item, alg, erratum, None, ""):
            self.notes.append(
                f"chain {item.chain} joins data and earlier chains sorted (RFC 4998 erratum "
                "7411 reading); accepted"
            )
            return
        self._covers(
            item,
            alg,
            literal,
            ERS_CHAIN_NOT_COVERED,
            "H(h(d) || H(earlier ArchiveTimeStampSequence))",
        )

    def _covers(
        self,
        item: _Ats,
        alg: HashAlgorithm,
        expected: Sequence[bytes],
        code: str | None,
        what: str,
    ) -> bool:
        facts = item.check.facts
        assert facts is not None
        rht = item.ats.reduced_hashtree
        if rht is None:
            value = expected[0] if len(expected) == 1 else _list_hash(alg, expected)
            if value == facts.imprint:
                return True
            if code:
                self.add(code, f"the token's imprint is not {what}", item)
            return False
        if not rht or not all(h in rht[0] for h in expected):
            if code:
                self.add(code, f"the first hash value list does not contain {what}", item)
            return False
        try:
            root = _root_of(alg, rht)
        except ValueError as err:
            if code:
                self.add(ERS_HASHTREE_MISMATCH, str(err), item)
            return False
        if root != facts.imprint:
            if code:
                self.add(
                    ERS_HASHTREE_MISMATCH,
                    "the reduced hash tree does not lead to the timestamped root",
                    item,
                )
            return False
        return True

    # -- time (§5.3 step 2 and 3) -----------------------------------------------------------
    def _times(self, items: list[_Ats]) -> None:
        for prev, nxt in pairwise(items):
            if prev.check.facts is None or nxt.check.facts is None:
                continue
            t_prev, t_next = prev.check.facts.gen_time, nxt.check.facts.gen_time
            if t_next < t_prev - _CLOCK_TOLERANCE:
                self.add(
                    ERS_TIME_ORDER,
                    f"genTime {format_time(t_next)} is before the renewed timestamp's "
                    f"{format_time(t_prev)}",
                    nxt,
                )
                continue
            for code, detail, severity in self._still_valid(prev, t_next, last=False):
                self.add(code, detail, prev, severity)
            if (
                nxt.chain != prev.chain
                and prev.alg
                and not self.policy.secure_at(prev.alg.oid, t_next)
            ):
                self.add(
                    ERS_ALGORITHM_WEAK,
                    f"{prev.alg.name} was no longer secure when chain {nxt.chain} began "
                    f"({format_time(t_next)})",
                    prev,
                )

    def _still_valid(
        self, item: _Ats, when: _dt.datetime, *, last: bool
    ) -> list[tuple[str, str, Literal["error", "warning"]]]:
        """Problems if ``item``'s token was no longer valid at ``when``."""
        out: list[tuple[str, str, Literal["error", "warning"]]] = []
        at = format_time(when)
        expired_code = ERS_NOT_RENEWED if last else ERS_RENEWED_TOO_LATE
        revoked_code = ERS_LAST_REVOKED if last else ERS_RENEWED_AFTER_REVOCATION
        for cert in item.path:
            if when > cert.not_valid_after_utc:
                end = f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
                what = "was not renewed before" if last else "was renewed only after"
                out.append(
                    (
                        expired_code,
                        f"{what} {cert.subject.rfc4514_string()} expired ({end}); needed at {at}",
                        "error",
                    )
                )
        for cert, issuer in pairwise(item.path):
            status = revocation_status(cert, issuer, self.material, when)
            if status.state == "revoked":
                out.append(
                    (
                        revoked_code,
                        f"{cert.subject.rfc4514_string()} was revoked at "
                        f"{format_time(status.revoked_at or when)}, before {at} ({status.source})",
                        "error",
                    )
                )
            elif status.state == "unknown":
                out.append(
                    (
                        ERS_REVOCATION_UNKNOWN,
                        f"no CRL or OCSP answer kept shows {cert.subject.rfc4514_string()} "
                        f"unrevoked at {at}",
                        "warning",
                    )
                )
        if item.alg and not self.policy.secure_at(item.alg.oid, when):
            out.append((ERS_ALGORITHM_WEAK, f"{item.alg.name} is not secure at {at}", "error"))
        return out

    def _last_valid(self, item: _Ats) -> _dt.datetime | None:
        if item.check.facts is None:
            return None
        for code, detail, severity in self._still_valid(item, self.at, last=True):
            self.add(code, detail, item, severity)
        return self._valid_until(item)

    def _valid_until(self, item: _Ats) -> _dt.datetime | None:
        ends = [c.not_valid_after_utc for c in item.path]
        for cert, issuer in pairwise(item.path):
            status = revocation_status(cert, issuer, self.material, self.at)
            if status.revoked_at is not None:
                ends.append(status.revoked_at)
        if item.alg and (end := self.policy.end_of(item.alg.oid)):
            ends.append(end)
        return min(ends) if ends else None


# ================================================================ renewal policy


@dataclass(frozen=True)
class RenewalAdvice:
    """What ``custody renew`` should do now for one evidence set or record."""

    action: Literal["none", "timestamp", "hashtree"]
    reason: str
    deadline: _dt.datetime | None  # when the evidence lapses without renewal


def renewal_due(
    record: EvidenceSet | EvidenceRecord,
    trust_roots: Sequence[x509.Certificate],
    validation_material: ValidationMaterial | None = None,
    at_time: _dt.datetime | None = None,
    *,
    margin: _dt.timedelta = _dt.timedelta(days=180),
    policy: AlgorithmPolicy = DEFAULT_POLICY,
    preferred: str = "sha256",
    clock: Clock = utc_now,
) -> RenewalAdvice:
    """Renew when the last timestamp lapses within ``margin``: by hash-tree renewal when
    its algorithm is the one lapsing (or is not ``preferred``'s and ``preferred`` is now
    the policy), else by timestamp renewal. Certificates expire on a known date, so the
    margin only has to cover how long it may take to get a run done (TSA outages,
    offline archives): months, not days."""
    at = at_time if at_time is not None else clock()
    material = validation_material or ValidationMaterial()
    if isinstance(record, EvidenceSet):
        last_stamp = record.chains[-1].time_stamps[-1]
        oid = algorithm(record.chains[-1].algorithm).oid
    else:
        last_stamp = record.chains[-1][-1].time_stamp
        found = _ats_algorithm_oid(record.chains[-1][0])
        oid = found or ""
    check = check_token(last_stamp, roots=trust_roots, extra_certificates=material.certificates)
    if check.facts is None or not check.facts.path:
        return RenewalAdvice("timestamp", "the last timestamp cannot be validated", None)
    path = check.path_certificates()
    cert_end = min(c.not_valid_after_utc for c in path)
    revoked = [
        s.revoked_at
        for c, i in pairwise(path)
        if (s := revocation_status(c, i, material, at)).revoked_at is not None
    ]
    alg_end = policy.end_of(oid)
    deadline = min([cert_end, *revoked, *([alg_end] if alg_end else [])])
    if alg_end is not None and alg_end - margin <= at:
        return RenewalAdvice("hashtree", "the hash algorithm's end is near", deadline)
    if deadline - margin <= at:
        known = algorithm_by_oid(oid)
        # a chain on a non-preferred algorithm migrates at the same cost as a renewal
        same = known is not None and known.name == preferred
        action: Literal["timestamp", "hashtree"] = "timestamp" if same else "hashtree"
        return RenewalAdvice(
            action, f"the last timestamp lapses at {format_time(deadline)}", deadline
        )
    return RenewalAdvice("none", f"valid until {format_time(deadline)}", deadline)
