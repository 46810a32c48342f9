"""The RFC 4998 structures in DER: ``EvidenceRecord``, ``ArchiveTimeStampSequence``,
``ArchiveTimeStampChain``, ``ArchiveTimeStamp`` with its ``reducedHashtree`` of
``PartialHashtree``s, ``CryptoInfos`` and ``EncryptionInfo`` (RFC 4998 §3-§5, Appendix A:
DEFINITIONS IMPLICIT TAGS).

Decoding uses ``asn1crypto``, which already defines every structure an evidence record
embeds (CMS ContentInfo/SignedData, TSTInfo, X.509, CRL, OCSP); encoding is direct DER
(``custody.timestamps.der``), and every decoded record is re-encoded and compared byte for
byte, so what is verified is exactly what is stored.

May import: ``custody.errors``, ``custody.timestamps.der``, ``asn1crypto``, the standard
library.

Sources: RFC 4998 Appendix A as transcribed in russhousley/pyasn1-alt-modules
``pyasn1_alt_modules/rfc4998.py``; Bouncy Castle r1rv72 ``org.bouncycastle.asn1.tsp``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos as a_algos
from asn1crypto import cms as a_cms
from asn1crypto import core as a_core
from asn1crypto import tsp as _a_tsp  # noqa: F401  (registers TSTInfo as a CMS content type)

from custody.errors import InputError, UsageError
from custody.i18n import _
from custody.timestamps.der import DerError, der_encode, der_uint, single

__all__ = [
    "ArchiveTimeStamp",
    "EvidenceRecord",
    "ats_algorithm_oid",
    "chain_der",
    "first_line",
    "sequence_der",
]


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
                der_encode(0x30, b"".join(der_encode(0x04, h) for h in part))
                for part in self.reduced_hashtree
            )
            body += der_encode(0xA2, lists)
        return der_encode(0x30, body + self.time_stamp)


def chain_der(chain: Sequence[ArchiveTimeStamp]) -> bytes:
    """DER ``ArchiveTimeStampChain``."""
    return der_encode(0x30, b"".join(a.to_der() for a in chain))


def sequence_der(chains: Sequence[Sequence[ArchiveTimeStamp]]) -> bytes:
    """DER ``ArchiveTimeStampSequence``: what RFC 4998 §5.2 step 3 calls atsc(i)."""
    return der_encode(0x30, b"".join(chain_der(c) for c in chains))


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
        body = der_uint(self.version) + der_encode(0x30, b"".join(self.digest_algorithms))
        if self.crypto_infos is not None:
            body += _retag(self.crypto_infos, 0xA0)
        if self.encryption_info is not None:
            body += _retag(self.encryption_info, 0xA1)
        return der_encode(0x30, body + sequence_der(self.chains))

    @classmethod
    def from_der(cls, data: bytes) -> EvidenceRecord:
        """Decode a DER EvidenceRecord; InputError (one line) if it is not one, or not DER."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UsageError(_("an evidence record is given as bytes"))
        data = bytes(data)
        try:
            single(data)  # definite, minimal lengths; no trailing bytes
            parsed = _Asn1EvidenceRecord.load(data, strict=True)
            record = cls._from_asn1(parsed)
        except (ValueError, TypeError, KeyError, IndexError, DerError) as err:
            raise InputError(
                _("not an RFC 4998 evidence record: {why}").format(why=first_line(err))
            ) from None
        if record.to_der() != data:
            raise InputError(_("the evidence record is not in DER (it would hash differently)"))
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
                raise ValueError(_("an ArchiveTimeStampChain is empty"))
            chains.append(tuple(atss))
        if not chains:
            raise ValueError(_("the ArchiveTimeStampSequence is empty"))
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
    return der_encode(tag, contents)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def token_imprint_oid(token: bytes) -> str | None:
    """The dotted OID of a TimeStampToken's imprint algorithm, or None if unreadable."""
    try:
        ci = a_cms.ContentInfo.load(token, strict=True)
        tst = ci["content"]["encap_content_info"]["content"].parsed
        return str(tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def ats_algorithm_oid(ats: ArchiveTimeStamp) -> str | None:
    """The hash algorithm of an ATS: its [0] field, else its token's imprint algorithm."""
    if ats.digest_algorithm is not None:
        try:
            return str(a_algos.DigestAlgorithm.load(ats.digest_algorithm)["algorithm"].dotted)
        except ValueError:
            return None
    return token_imprint_oid(ats.time_stamp)
