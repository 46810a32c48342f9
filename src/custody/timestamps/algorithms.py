"""The hash algorithms timestamps and evidence records may name: one table for all of them.

Owns :class:`HashAlgorithm` (custody's name, dotted OID, output size, the ``hashlib`` and
``cryptography`` implementations, and its DER ``AlgorithmIdentifier``) and the lookups by
name (:func:`algorithm`) and by OID (:func:`by_oid`). RFC 3161 requests and checks
(``tsa_client``, ``rfc3161``), CMS signature checks (``cms``) and RFC 4998 evidence records
(``ers``) all read this table, so an algorithm is added in one place.

``imprint`` marks the algorithms custody accepts for new message imprints and hash trees:
SHA-1 and SHA-224 are known here only to read what others made (old ESS certificate IDs,
old signatures), never to make new evidence.

May import: ``custody.errors``, ``custody.i18n``, ``custody.timestamps.der``,
``cryptography``, the standard library.

Followed: RFC 5754 §2 (SHA-2 AlgorithmIdentifiers; parameters absent when generated, NULL
or absent accepted), RFC 8702 and NIST CSOR for the SHA-3 OIDs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import hashes

from custody.errors import UsageError
from custody.i18n import _
from custody.timestamps.der import der_encode, encode_oid

__all__ = ["ALGORITHMS", "IMPRINT_ALGORITHMS", "HashAlgorithm", "algorithm", "by_oid"]


@dataclass(frozen=True, slots=True)
class HashAlgorithm:
    """A hash algorithm by its custody name, dotted OID and output size in bytes."""

    name: str
    oid: str
    size: int
    hashlib_name: str
    crypto: type[hashes.HashAlgorithm]
    imprint: bool = True  # acceptable for new imprints and hash trees

    def digest(self, data: bytes) -> bytes:
        return hashlib.new(self.hashlib_name, data).digest()

    def new(self) -> Any:  # hashlib objects have no public common type
        return hashlib.new(self.hashlib_name)

    @property
    def der(self) -> bytes:
        """``AlgorithmIdentifier`` with parameters absent (RFC 5754 §2: generated so)."""
        return der_encode(0x30, encode_oid(self.oid))

    @property
    def der_null(self) -> bytes:
        """``AlgorithmIdentifier`` with NULL parameters: what OpenSSL's ``ts -query`` and
        rfc3161-client put in a TimeStampReq, and every deployed TSA accepts."""
        return der_encode(0x30, encode_oid(self.oid) + b"\x05\x00")


ALGORITHMS: Final[dict[str, HashAlgorithm]] = {
    a.name: a
    for a in (
        HashAlgorithm("sha1", "1.3.14.3.2.26", 20, "sha1", hashes.SHA1, imprint=False),
        HashAlgorithm("sha224", "2.16.840.1.101.3.4.2.4", 28, "sha224", hashes.SHA224, False),
        HashAlgorithm("sha256", "2.16.840.1.101.3.4.2.1", 32, "sha256", hashes.SHA256),
        HashAlgorithm("sha384", "2.16.840.1.101.3.4.2.2", 48, "sha384", hashes.SHA384),
        HashAlgorithm("sha512", "2.16.840.1.101.3.4.2.3", 64, "sha512", hashes.SHA512),
        HashAlgorithm("sha3-256", "2.16.840.1.101.3.4.2.8", 32, "sha3_256", hashes.SHA3_256),
        HashAlgorithm("sha3-384", "2.16.840.1.101.3.4.2.9", 48, "sha3_384", hashes.SHA3_384),
        HashAlgorithm("sha3-512", "2.16.840.1.101.3.4.2.10", 64, "sha3_512", hashes.SHA3_512),
    )
}
IMPRINT_ALGORITHMS: Final = tuple(n for n, a in ALGORITHMS.items() if a.imprint)
_BY_OID: Final = {a.oid: a for a in ALGORITHMS.values()}


def algorithm(name: str) -> HashAlgorithm:
    """The algorithm called ``name`` (``sha256``, ``sha512``, ``sha3-512``, ...); UsageError
    naming the choices otherwise."""
    try:
        return ALGORITHMS[name.lower()]
    except KeyError:
        raise UsageError(
            _("unknown hash algorithm {name!r}; one of {choices}").format(
                name=name, choices=", ".join(IMPRINT_ALGORITHMS)
            )
        ) from None


def by_oid(oid: str) -> HashAlgorithm | None:
    """The algorithm with dotted OID ``oid``, or None if custody does not know it."""
    return _BY_OID.get(oid)
