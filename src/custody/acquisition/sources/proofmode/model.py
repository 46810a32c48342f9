"""What reading a ProofMode bundle returns: check states, named problems, and the frozen
records for signatures, proof records, OpenTimestamps proofs, keys, media and the bundle;
and the file names and field names ProofMode uses (``ProofMode.java``,
``ProofModeV1Constants.java``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from custody.acquisition.sources.c2pa import C2paReport

# ProofMode's file tags (ProofMode.java).
PROOF_CSV = ".proof.csv"


PROOF_JSON = ".proof.json"


SIGNATURE = ".asc"


OTS = ".ots"


GST = ".gst"


NOSTR = ".nostr"


PUBKEY_FILE = "pubkey.asc"


HOWTO_FILE = "HowToVerifyProofData.txt"


C2PA_CERT_FILE = "c2paidentity.cert"


HASH_FIELD = "File Hash SHA256"


PATH_FIELD = "File Path"


_HASH_NAMED = re.compile(r"^([0-9a-fA-F]{64})(\..+)$")


_CHUNK = 1024 * 1024


# Proof files are a few kilobytes; anything far larger is refused before parsing.
_MAX_SMALL_FILE = 4 * 1024 * 1024


_MAX_ENTRIES = 100_000


_DEFAULT_MAX_BYTES = 64 * 1024**3


_MEDIA_SUFFIXES = frozenset(
    {".heic", ".heif", ".dng", ".opus", ".m4a", ".3gp", ".webm", ".mkv", ".aac", ".amr"}
)


_HASH_ALGORITHMS = {
    1: "MD5",
    2: "SHA-1",
    3: "RIPEMD-160",
    8: "SHA-256",
    9: "SHA-384",
    10: "SHA-512",
    11: "SHA-224",
    12: "SHA3-256",
    14: "SHA3-512",
}


_PUBKEY_ALGORITHMS = {
    1: "RSA",
    3: "RSA (sign only)",
    17: "DSA",
    19: "ECDSA",
    22: "EdDSA",
    27: "Ed25519",
    28: "Ed448",
}


class CheckState(StrEnum):
    """``passed``: checked and it holds. ``failed``: checked and it does not, or the proof
    needed for the check is missing or defective. ``not_checkable``: custody cannot
    decide it offline; the reason says what would."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_CHECKABLE = "not_checkable"


class Problem(StrEnum):
    """Named problems: stable codes for records, reports and translations."""

    PROOF_MISSING = "PROOF_MISSING"
    PROOF_MALFORMED = "PROOF_MALFORMED"
    PROOF_HASH_MISMATCH = "PROOF_HASH_MISMATCH"
    PROOF_MEDIA_MISSING = "PROOF_MEDIA_MISSING"
    PROOF_SIGNATURE_MISSING = "PROOF_SIGNATURE_MISSING"
    PROOF_SIGNATURE_BAD = "PROOF_SIGNATURE_BAD"
    PROOF_SIGNATURE_WRONG_KEY = "PROOF_SIGNATURE_WRONG_KEY"
    PROOF_SIGNATURE_MALFORMED = "PROOF_SIGNATURE_MALFORMED"
    PROOF_SIGNATURE_UNSUPPORTED = "PROOF_SIGNATURE_UNSUPPORTED"
    PROOF_KEY_MISSING = "PROOF_KEY_MISSING"
    PROOF_KEY_UNUSABLE = "PROOF_KEY_UNUSABLE"
    PROOF_KEY_REVOKED = "PROOF_KEY_REVOKED"
    PROOF_KEY_UNCONFIRMED = "PROOF_KEY_UNCONFIRMED"
    PROOF_KEY_MISMATCH = "PROOF_KEY_MISMATCH"
    OTS_MALFORMED = "OTS_MALFORMED"
    OTS_DIGEST_MISMATCH = "OTS_DIGEST_MISMATCH"
    OTS_PENDING = "OTS_PENDING"
    OTS_NOT_VERIFIED_OFFLINE = "OTS_NOT_VERIFIED_OFFLINE"
    DEVICE_ATTESTATION_NOT_VERIFIED = "DEVICE_ATTESTATION_NOT_VERIFIED"
    NOSTR_NOT_VERIFIED = "NOSTR_NOT_VERIFIED"
    C2PA_INVALID = "C2PA_INVALID"
    C2PA_UNTRUSTED = "C2PA_UNTRUSTED"
    C2PA_TRUST_NOT_CHECKED = "C2PA_TRUST_NOT_CHECKED"
    C2PA_UNREADABLE = "C2PA_UNREADABLE"
    BUNDLE_UNSAFE_ENTRY = "BUNDLE_UNSAFE_ENTRY"
    BUNDLE_ENTRY_UNREADABLE = "BUNDLE_ENTRY_UNREADABLE"
    BUNDLE_SYMLINK_SKIPPED = "BUNDLE_SYMLINK_SKIPPED"
    BUNDLE_NAME_ENCODING_UNDECLARED = "BUNDLE_NAME_ENCODING_UNDECLARED"


@dataclass(frozen=True)
class Check:
    """One check on one media file's proof."""

    name: str
    state: CheckState
    reason: str
    problem: Problem | None = None


@dataclass(frozen=True)
class SignatureResult:
    """What GnuPG said of one detached signature (all fields from its status lines)."""

    signature_file: str
    signed_file: str | None
    state: CheckState
    problem: Problem | None
    reason: str
    signer_fingerprint: str | None = None  # the (sub)key that made the signature
    primary_fingerprint: str | None = None
    signature_created: str | None = None  # RFC 3339 UTC, as the signer's clock said
    hash_algorithm: str | None = None
    pubkey_algorithm: str | None = None
    gpg_status: tuple[str, ...] = ()  # the raw [GNUPG:] lines, for the record


@dataclass(frozen=True)
class ProofRecord:
    """One generation of ProofMode's proof (one JSON object or one CSV line): claims."""

    source_file: str
    kind: Literal["json", "csv"]
    index: int
    fields: tuple[tuple[str, str], ...]
    signature_verified: bool  # the file it came from carries a good signature

    def get(self, key: str) -> str | None:
        for name, value in self.fields:
            if name == key:
                return value
        return None


@dataclass(frozen=True)
class OtsAttestation:
    """One leaf of an OpenTimestamps proof."""

    kind: Literal["pending", "bitcoin", "litecoin", "ethereum", "unknown"]
    commitment: str  # hex: the message the attestation is about
    calendar_url: str | None = None  # pending
    block_height: int | None = None  # bitcoin / litecoin / ethereum
    merkle_root: str | None = None  # bitcoin/litecoin: block-explorer byte order
    tag: str | None = None  # unknown: the 8-byte tag, hex


@dataclass(frozen=True)
class OtsProof:
    """An ``.ots`` file, kept byte for byte (by its digest) and parsed."""

    file: str
    sha256: str
    size: int
    file_hash_algorithm: str | None
    file_digest: str | None
    attestations: tuple[OtsAttestation, ...]
    error: str | None

    @property
    def complete(self) -> bool:
        """Holds a block-header attestation (which custody still cannot check offline)."""
        return any(a.kind in ("bitcoin", "litecoin") for a in self.attestations)

    @property
    def pending_calendars(self) -> tuple[str, ...]:
        return tuple(a.calendar_url for a in self.attestations if a.calendar_url)


@dataclass(frozen=True)
class DeviceAttestation:
    """A ``.gst`` SafetyNet/Play Integrity JWS: decoded, never verified here."""

    file: str
    sha256: str
    header_json: str | None
    payload_json: str | None
    error: str | None


@dataclass(frozen=True)
class BundleKey:
    """The OpenPGP key shipped in the bundle: the bundle's own claim of who signed."""

    file: str
    sha256: str
    fingerprints: tuple[str, ...]
    user_ids: tuple[str, ...]
    error: str | None
    note: str = "the key came with the bundle: confirm its fingerprint out of band"


@dataclass(frozen=True)
class MediaProof:
    """One media file (or one proof set whose media is absent) and every check on it."""

    media_file: str | None
    media_size: int | None
    media_sha256: str | None
    proof_hash: str | None  # the hash the proof set is named after / records
    layout: Literal["hash-named", "media-named", "none"]
    checks: tuple[Check, ...]
    signatures: tuple[SignatureResult, ...]
    proofs: tuple[ProofRecord, ...]
    key_file: str | None
    ots: OtsProof | None
    device_attestation: DeviceAttestation | None
    nostr_file: str | None
    c2pa: C2paReport | None
    files: tuple[str, ...]  # the bundle files this result used

    @property
    def problems(self) -> tuple[Problem, ...]:
        return tuple(c.problem for c in self.checks if c.problem is not None)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.state is CheckState.FAILED)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


@dataclass(frozen=True)
class BundleIssue:
    """A problem with the bundle itself rather than one media file's proof."""

    problem: Problem
    entry: str
    reason: str


@dataclass(frozen=True)
class ProofModeBundle:
    """Everything read from one bundle."""

    source: str
    kind: Literal["folder", "zip"]
    media: tuple[MediaProof, ...]
    keys: tuple[BundleKey, ...]
    issues: tuple[BundleIssue, ...]
    other_files: tuple[str, ...]
    gpg_version: str

    @property
    def problems(self) -> tuple[Problem, ...]:
        found = [p for m in self.media for p in m.problems]
        found.extend(i.problem for i in self.issues)
        return tuple(found)

    @property
    def any_failed(self) -> bool:
        return bool(self.issues) or any(m.failed for m in self.media)
