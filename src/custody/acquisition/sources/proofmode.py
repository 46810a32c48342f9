"""ProofMode bundles: check what can be checked offline, record the rest as claims.

Owns ``read_proofmode``: a ProofMode share/export bundle (a folder or a zip) in, one
``ProofModeBundle`` out, listing per media file every check with its state (``passed``,
``failed``, ``not_checkable``), a reason and, where something is wrong, a named problem.
May import ``custody.errors``, its sibling ``custody.acquisition.sources.c2pa``, the
standard library, ``gnupg`` (python-gnupg, driving GnuPG's ``gpg``) and ``opentimestamps``.
It never writes into the bundle; a zip is unpacked into a private temporary folder.

The format, as ProofMode writes it
----------------------------------
Followed from guardianproject/proofmode-android at b2906d95d601ec5cfda36099bdc2f2f89f47d8a4:
``android-libproofmode/.../ProofMode.java`` (the file tags), ``service/MediaWatcher.kt``
(``writeProof``, ``buildProof``, ``writeMapToCSV``), ``service/ProofModeV1Constants.java``
(the field names), ``storage/DefaultStorageProvider.kt`` (text files are *appended*, one
line per write), ``storage/proofset/ProofSetMembershipPolicy.kt`` (the required files),
``crypto/pgp/PgpUtils.java`` and ``DetachedSignatureProcessor.java`` (the key and the
signatures), ``android-opentimestamps/.../OpenTimestampsNotarizationProvider.java``,
``app/.../share/ShareProofActivity.kt`` (``zipProof``, ``shareProofClassic``) and
``assets/HowToVerifyProofData.txt``, ``docs/verify.sh``.

For a media file whose SHA-256 (lower-case hex) is ``H`` a proof set is:

- ``H.proof.json``: ``JSONObject(map).toString()`` + newline: one JSON object per
  generation, all values strings, keys such as ``File Hash SHA256``, ``File Path``,
  ``File Created``, ``File Modified``, ``Proof Generated``, ``Location.Latitude`` …
  ``Hardware``, ``Manufacturer``, ``DeviceID``, ``SafetyCheck``, ``Notes``;
- ``H.proof.csv``: a header line of the same keys, then one line of values per
  generation (every field followed by a comma; commas in values were replaced by spaces);
- ``H.asc``, ``H.proof.json.asc``, ``H.proof.csv.asc``: ASCII-armoured OpenPGP detached
  signatures (binary document, SHA-256) over the media, the JSON and the CSV;
- optionally ``H.ots`` (OpenTimestamps proof of ``H``), ``H.gst`` (a Google SafetyNet
  JWS), ``H.nostr`` (a Nostr notarization);
- once per zip: ``pubkey.asc`` (the device's key: RSA 4096, user id
  ``noone@proofmode.witness.org``, self-signed with SHA-1) and
  ``HowToVerifyProofData.txt``; the media file keeps its own name.

The older "classic" layout names the files after the media instead (``IMG.jpg.asc``,
``IMG.jpg.proof.csv``, ``IMG.jpg.proof.csv.asc``); it is read too. A proof set may come
without its media (ProofMode can share proof only): its signatures over the proof files
are still checked and the media is reported missing.

What custody checks itself (offline)
------------------------------------
- the media's actual SHA-256 against every hash ProofMode recorded for it (the set's
  name, ``File Hash SHA256`` in each JSON and CSV line): ``PROOF_HASH_MISMATCH``;
- each detached signature with GnuPG (``gpg --verify``) against the bundle's key only,
  in a throw-away ``GNUPGHOME`` (no agent, no dirmngr, no key servers, a minimal
  environment): ``PROOF_SIGNATURE_BAD``, ``PROOF_SIGNATURE_WRONG_KEY``,
  ``PROOF_SIGNATURE_MALFORMED``, ``PROOF_SIGNATURE_MISSING``;
- that the proof files exist and parse: ``PROOF_MISSING``, ``PROOF_MALFORMED``;
- that an ``.ots`` file is a well-formed OpenTimestamps proof (header magic, version 1,
  file hash op, the operation tree, attestations; parsed with the reference
  ``opentimestamps`` library) and that it timestamps this media's SHA-256:
  ``OTS_MALFORMED``, ``OTS_DIGEST_MISMATCH``;
- a C2PA manifest embedded in the media (``custody.acquisition.sources.c2pa``).

What custody only records (``not_checkable``)
---------------------------------------------
- **whose key it is.** ``pubkey.asc`` travels inside the bundle, so a good signature
  proves only that the bundle is consistent with itself. The fingerprint must be
  confirmed out of band (with the person or organisation who made the recording); pass
  ``expected_fingerprints`` from the verifier's side and the check becomes real
  (``PROOF_KEY_MISMATCH`` when it differs, otherwise ``PROOF_KEY_UNCONFIRMED``);
- **the Bitcoin attestation of an .ots proof.** custody lists the calendars (pending)
  and the Bitcoin block heights with the Merkle root each attestation expects, but
  checking them needs the Bitcoin block headers. An expert runs
  ``ots verify -f MEDIA H.ots`` (opentimestamps-client, with a local Bitcoin Core node:
  ``ots --bitcoin-node http://USER:PASS@127.0.0.1:8332/ verify …``), or, for a pending
  proof, ``ots upgrade H.ots`` first (that contacts the calendars). By hand: the block at
  that height must have the listed Merkle root (``bitcoin-cli getblockhash N`` then
  ``getblockheader``);
- the sensor, device, network and location fields of the proof: what the phone said,
  kept as descriptive metadata;
- ``.gst`` SafetyNet attestations (decoded header and payload kept; the service is
  retired and its JWS chain is Google's, not checked here) and ``.nostr`` files.

How an expert confirms each check independently
-----------------------------------------------
``sha256sum MEDIA``; ``gpg --import pubkey.asc`` then ``gpg --verify H.asc MEDIA``,
``gpg --verify H.proof.json.asc H.proof.json``, ``gpg --verify H.proof.csv.asc
H.proof.csv`` (ProofMode's own ``HowToVerifyProofData.txt``), ``gpg --show-keys
pubkey.asc`` for the fingerprint; ``ots info H.ots`` and ``ots verify``; ``c2patool
MEDIA``. Sequoia's ``sqv`` 1.1 refuses ProofMode's keys outright because their
self-signatures use SHA-1 (its policy since 2023-02-01): that is the tool's policy, not
a bad signature.

Why GnuPG and not PGPy
----------------------
GnuPG is the reference OpenPGP implementation, maintained, packaged by Debian, and the
very tool ProofMode's instructions and an expert witness use; python-gnupg (maintained,
0.5.x) only runs it and parses ``--status-fd`` output, which custody reads itself. PGPy
0.6.0 (November 2022) has had no release since, imports ``imghdr`` (removed in Python
3.13), reads neither RFC 9580 (v6) keys nor Ed448, and depends on cipher APIs
``cryptography`` is retiring. The tests use PGPy only to make keys and signatures, so
what is verified was produced by another implementation than the one verifying it.
ProofMode's keys carry SHA-1 self-signatures: GnuPG 2.2.40 (tested here) accepts them;
should a GnuPG release refuse them, the key would not import and every signature would be
reported ``PROOF_KEY_UNUSABLE``, never passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import mimetypes
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import gnupg
from opentimestamps.core.serialize import StreamDeserializationContext
from opentimestamps.core.timestamp import DetachedTimestampFile

from custody.acquisition.sources.c2pa import C2paReport, ValidationState, read_c2pa
from custody.errors import CustodyError, InputError, ToolMissingError, UsageError
from custody.system.children import child_env

__all__ = [
    "BundleIssue",
    "BundleKey",
    "Check",
    "CheckState",
    "DeviceAttestation",
    "MediaProof",
    "OtsAttestation",
    "OtsProof",
    "Problem",
    "ProofModeBundle",
    "ProofRecord",
    "SignatureResult",
    "read_proofmode",
]

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
    BUNDLE_DUPLICATE_ENTRY = "BUNDLE_DUPLICATE_ENTRY"
    BUNDLE_ENTRY_UNREADABLE = "BUNDLE_ENTRY_UNREADABLE"
    BUNDLE_SYMLINK_SKIPPED = "BUNDLE_SYMLINK_SKIPPED"


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


# --- entry point ---------------------------------------------------------------------------------


def read_proofmode(
    path: str | os.PathLike[str],
    *,
    expected_fingerprints: Iterable[str] | None = None,
    trust_anchors_pem: bytes | None = None,
    gpg_binary: str = "gpg",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    work_dir: str | os.PathLike[str] | None = None,
) -> ProofModeBundle:
    """Read and check a ProofMode bundle (a folder, or a ``.zip`` as ProofMode shares it).

    ``expected_fingerprints``: OpenPGP fingerprints the verifier has confirmed out of
    band (hex, spaces allowed); without them the key check is ``not_checkable``.
    ``trust_anchors_pem``: the verifier's C2PA trust list, for media with a manifest.
    ``max_bytes`` caps how much a zip may expand to; ``work_dir`` is where a zip is
    unpacked (a private temporary folder inside it, removed afterwards).

    Raises ``InputError`` when the bundle cannot be read at all, ``UsageError`` for bad
    arguments, ``ToolMissingError`` when GnuPG is absent. Everything wrong *inside* the
    bundle is reported as checks and named problems, never raised.
    """
    source = Path(path)
    expected = _normalise_fingerprints(expected_fingerprints)
    binary = shutil.which(gpg_binary)
    if binary is None:
        raise ToolMissingError(
            f"GnuPG ({gpg_binary}) is not installed: install the 'gpg' package to check "
            "ProofMode signatures"
        )
    try:
        info = os.stat(source)
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    with tempfile.TemporaryDirectory(prefix="custody-proofmode-", dir=work_dir) as scratch:
        scratch_path = Path(scratch)
        issues: list[BundleIssue] = []
        if stat.S_ISDIR(info.st_mode):
            kind: Literal["folder", "zip"] = "folder"
            files = _walk_folder(source, issues)
        elif stat.S_ISREG(info.st_mode):
            kind = "zip"
            files = _unpack_zip(source, scratch_path / "unpacked", issues, max_bytes)
        else:
            raise InputError(f"{source}: neither a folder nor a zip file")
        verifier = _Verifier(binary, scratch_path / "gnupg")
        media, keys, others = _check_bundle(files, verifier, expected, trust_anchors_pem)
        return ProofModeBundle(
            source=str(source),
            kind=kind,
            media=media,
            keys=keys,
            issues=tuple(issues),
            other_files=others,
            gpg_version=verifier.version,
        )


def _normalise_fingerprints(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    cleaned = set()
    for value in values:
        text = "".join(str(value).split()).upper()
        if text.startswith("0X"):
            text = text[2:]
        if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", text):
            raise UsageError(
                f"expected fingerprint {value!r}: give the full 40 (v4) or 64 (v5/v6) hex digits"
            )
        cleaned.add(text)
    return frozenset(cleaned)


# --- collecting the bundle's files ---------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    rel: str  # POSIX relative path inside the bundle
    disk: Path
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.rel).name

    @property
    def folder(self) -> str:
        parent = str(PurePosixPath(self.rel).parent)
        return "" if parent == "." else parent


def _hash_file(handle_fd: int) -> tuple[int, str]:
    # The digest of what is on disk now: the bytes every later check compares against.
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with os.fdopen(handle_fd, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def _walk_folder(root: Path, issues: list[BundleIssue]) -> list[_File]:
    found: list[_File] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                issues.append(_symlink_issue(root, base / name))
        for name in sorted(names):
            disk = base / name
            rel = disk.relative_to(root).as_posix()
            try:
                info = os.lstat(disk)
            except OSError as exc:
                issues.append(_unreadable(rel, exc))
                continue
            if stat.S_ISLNK(info.st_mode):
                issues.append(_symlink_issue(root, disk))
                continue
            if not stat.S_ISREG(info.st_mode):
                issues.append(BundleIssue(Problem.BUNDLE_UNSAFE_ENTRY, rel, "not a regular file"))
                continue
            try:
                fd = os.open(disk, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                size, digest = _hash_file(fd)
            except OSError as exc:
                issues.append(_unreadable(rel, exc))
                continue
            found.append(_File(rel, disk, size, digest))
            if len(found) > _MAX_ENTRIES:
                raise InputError(f"{root}: more than {_MAX_ENTRIES} files; not a ProofMode bundle")
    return found


def _symlink_issue(root: Path, link: Path) -> BundleIssue:
    rel = link.relative_to(root).as_posix()
    return BundleIssue(Problem.BUNDLE_SYMLINK_SKIPPED, rel, "symbolic link: not followed")


def _unreadable(rel: str, exc: OSError) -> BundleIssue:
    return BundleIssue(Problem.BUNDLE_ENTRY_UNREADABLE, rel, exc.strerror or str(exc))


def _unsafe_name(name: str) -> str | None:
    """Why a zip entry name may not be unpacked, or ``None`` when it is safe."""
    if not name or "\x00" in name:
        return "empty name or NUL in the name"
    if "\\" in name:
        return "backslash in the name (a Windows path)"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "path escapes the bundle ('..', '.' or an empty part)"
    return None


def _unpack_zip(
    source: Path, target: Path, issues: list[BundleIssue], max_bytes: int
) -> list[_File]:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{source}: not a readable zip file ({exc})") from exc
    target.mkdir(mode=0o700)
    found: list[_File] = []
    seen: set[str] = set()
    expanded = 0
    with archive:
        entries = archive.infolist()
        if len(entries) > _MAX_ENTRIES:
            raise InputError(f"{source}: more than {_MAX_ENTRIES} entries; not a ProofMode bundle")
        for entry in entries:
            name = entry.filename
            if name.endswith("/"):
                continue
            why = _unsafe_name(name)
            mode = entry.external_attr >> 16
            if why is None and stat.S_ISLNK(mode):
                why = "symbolic link"
            if why is None and entry.flag_bits & 0x1:
                why = "encrypted entry"
            if why is not None:
                issues.append(
                    BundleIssue(Problem.BUNDLE_UNSAFE_ENTRY, name, f"not unpacked: {why}")
                )
                continue
            if name in seen:
                issues.append(
                    BundleIssue(Problem.BUNDLE_DUPLICATE_ENTRY, name, "a second entry of that name")
                )
                continue
            seen.add(name)
            disk = target.joinpath(*name.split("/"))
            try:
                disk.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(
                    disk, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
                )
            except OSError as exc:
                issues.append(
                    BundleIssue(Problem.BUNDLE_DUPLICATE_ENTRY, name, f"cannot be unpacked: {exc}")
                )
                continue
            try:
                size, digest, expanded = _copy_entry(archive, entry, fd, expanded, max_bytes)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                disk.unlink(missing_ok=True)
                issues.append(BundleIssue(Problem.BUNDLE_ENTRY_UNREADABLE, name, str(exc)))
                continue
            except _TooLarge:
                raise InputError(
                    f"{source}: expands past {max_bytes} bytes; refused (raise max_bytes if "
                    "the bundle is genuinely that large)"
                ) from None
            found.append(_File(name, disk, size, digest))
    return found


class _TooLarge(Exception):
    pass


def _copy_entry(
    archive: zipfile.ZipFile, entry: zipfile.ZipInfo, fd: int, expanded: int, max_bytes: int
) -> tuple[int, str, int]:
    # Counts the bytes actually inflated, not the sizes the zip's headers claim.
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out, archive.open(entry) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            expanded += len(chunk)
            if expanded > max_bytes:
                raise _TooLarge
            digest.update(chunk)
            out.write(chunk)
    return size, digest.hexdigest(), expanded


# --- GnuPG ----------------------------------------------------------------------------------------


class _Verifier:
    """One throw-away GNUPGHOME per key file, so a signature is checked against that key only."""

    def __init__(self, binary: str, home_root: Path) -> None:
        self._binary = binary
        self._root = home_root
        self._root.mkdir(mode=0o700)
        self._homes: dict[str, tuple[gnupg.GPG, BundleKey]] = {}
        probe = self._gpg(self._root / "probe")
        version = getattr(probe, "version", None)
        self.version = ".".join(str(v) for v in version) if version else "unknown"

    def _gpg(self, home: Path) -> gnupg.GPG:
        home.mkdir(mode=0o700, exist_ok=True)
        # Only what gpg needs: never the caller's environment (it may hold passphrases).
        env = child_env(home, program=self._binary, extra={"GNUPGHOME": str(home)})
        options = [
            "--no-options",
            "--no-autostart",
            "--disable-dirmngr",
            "--no-auto-key-retrieve",
            "--no-auto-key-locate",
        ]
        try:
            return gnupg.GPG(gpgbinary=self._binary, gnupghome=str(home), env=env, options=options)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ToolMissingError(f"GnuPG ({self._binary}) could not be started: {exc}") from exc

    def key(self, key_file: _File) -> BundleKey:
        return self._home_for(key_file)[1]

    def _home_for(self, key_file: _File) -> tuple[gnupg.GPG, BundleKey]:
        if key_file.rel in self._homes:
            return self._homes[key_file.rel]
        home = self._root / f"k{len(self._homes)}"
        gpg = self._gpg(home)
        error: str | None = None
        fingerprints: tuple[str, ...] = ()
        user_ids: list[str] = []
        if key_file.size > _MAX_SMALL_FILE:
            error = f"{key_file.size} bytes: too large to be a public key"
        else:
            result = gpg.import_keys(key_file.disk.read_bytes())
            fingerprints = tuple(dict.fromkeys(f.upper() for f in result.fingerprints if f))
            if not fingerprints:
                error = "no OpenPGP public key could be read from it"
            else:
                for listed in gpg.list_keys():
                    user_ids.extend(str(u) for u in listed.get("uids", []))
        bundle_key = BundleKey(
            file=key_file.rel,
            sha256=key_file.sha256,
            fingerprints=fingerprints,
            user_ids=tuple(user_ids),
            error=error,
        )
        self._homes[key_file.rel] = (gpg, bundle_key)
        return gpg, bundle_key

    def verify(self, key_file: _File, signature: _File, data: _File) -> SignatureResult:
        gpg, bundle_key = self._home_for(key_file)
        if bundle_key.error is not None:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_KEY_UNUSABLE,
                f"{key_file.rel} is unusable ({bundle_key.error}): nothing can be verified",
            )
        if signature.size > _MAX_SMALL_FILE:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_SIGNATURE_MALFORMED,
                f"{signature.size} bytes: too large to be a detached signature",
            )
        result = gpg.verify_file(str(signature.disk), data_filename=str(data.disk))
        lines = (result.stderr or "").splitlines()
        status = tuple(line[len("[GNUPG:] ") :] for line in lines if line.startswith("[GNUPG:] "))
        said = [line[len("gpg: ") :] for line in lines if line.startswith("gpg: ")]
        return _interpret(signature, data, status, bundle_key, said[-1] if said else None)


def _sig(
    signature: _File,
    data: _File | None,
    state: CheckState,
    problem: Problem | None,
    reason: str,
    **details: Any,
) -> SignatureResult:
    return SignatureResult(
        signature_file=signature.rel,
        signed_file=data.rel if data else None,
        state=state,
        problem=problem,
        reason=reason,
        **details,
    )


def _interpret(
    signature: _File, data: _File, status: tuple[str, ...], key: BundleKey, said: str | None
) -> SignatureResult:
    """Decide from GnuPG's status lines (doc/DETAILS in GnuPG) alone, conservatively."""
    words = [line.split() for line in status if line.strip()]
    keywords = [w[0] for w in words]
    signatures = keywords.count("NEWSIG")
    base: dict[str, Any] = {"gpg_status": status}
    what = f"{signature.rel} over {data.rel}"
    if signatures == 0 or "NODATA" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{signature.rel} is not a detached OpenPGP signature GnuPG can read"
            + (f" (gpg: {said})" if said else "")
            + "; this says nothing about whether the file was altered",
            **base,
        )
    if signatures > 1:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{signature.rel} holds {signatures} signatures; ProofMode writes one",
            **base,
        )
    if "PLAINTEXT" in keywords:
        # A signed message rather than a detached signature: gpg would check its embedded
        # text, not the file named beside it.
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{signature.rel} is a signed message, not a detached signature",
            **base,
        )
    if "BADSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_BAD,
            f"BAD signature: {what} does not verify; the file or the signature was "
            "changed after signing",
            **base,
        )
    if "REVKEYSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_KEY_REVOKED,
            f"{what}: made by a key its owner has revoked",
            **base,
        )
    if "EXPSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_BAD,
            f"{what}: the signature itself has expired",
            **base,
        )
    errsig = next((w for w in words if w[0] == "ERRSIG"), None)
    if errsig is not None:
        rc = errsig[6] if len(errsig) > 6 else "?"
        keyid = errsig[1] if len(errsig) > 1 else "?"
        if rc == "9" or "NO_PUBKEY" in keywords:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_SIGNATURE_WRONG_KEY,
                f"{what}: made by key {keyid}, which is not the bundle's key "
                f"({', '.join(key.fingerprints)})",
                **base,
            )
        if rc == "4":
            return _sig(
                signature,
                data,
                CheckState.NOT_CHECKABLE,
                Problem.PROOF_SIGNATURE_UNSUPPORTED,
                f"{what}: GnuPG does not support this signature's algorithm",
                **base,
            )
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{what}: GnuPG could not check it (error code {rc})",
            **base,
        )
    valid = next((w for w in words if w[0] == "VALIDSIG"), None)
    if valid is None or not ({"GOODSIG", "EXPKEYSIG"} & set(keywords)) or len(valid) < 10:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{what}: GnuPG gave no verdict",
            **base,
        )
    signer = valid[1].upper()
    primary = valid[10].upper() if len(valid) > 10 else signer
    details = {
        **base,
        "signer_fingerprint": signer,
        "primary_fingerprint": primary,
        "signature_created": _epoch_to_rfc3339(valid[3]),
        "hash_algorithm": _HASH_ALGORITHMS.get(_int(valid[8]), f"id {valid[8]}"),
        "pubkey_algorithm": _PUBKEY_ALGORITHMS.get(_int(valid[7]), f"id {valid[7]}"),
    }
    if primary not in key.fingerprints:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_WRONG_KEY,
            f"{what}: made by {primary}, not the bundle's key",
            **details,
        )
    if valid[9] not in ("00", "01"):
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            f"{what}: signature class {valid[9]} is not a document signature",
            **details,
        )
    note = ""
    if "EXPKEYSIG" in keywords:
        note = "; the key has expired since (the signature predates that)"
    if details["hash_algorithm"] in ("SHA-1", "MD5", "RIPEMD-160"):
        # GnuPG still accepts these; a court should know collisions are practical for them.
        note += f"; note: digest {details['hash_algorithm']} is weak against collisions"
    return _sig(
        signature,
        data,
        CheckState.PASSED,
        None,
        f"good signature over {data.rel} by the bundle's key {primary}, made "
        f"{details['signature_created']} by the signer's clock{note}",
        **details,
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _epoch_to_rfc3339(text: str) -> str | None:
    try:
        moment = datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the bundle's structure ----------------------------------------------------------------------


@dataclass
class _Folder:
    files: dict[str, _File] = field(default_factory=dict)  # by name


def _check_bundle(
    files: Sequence[_File],
    verifier: _Verifier,
    expected: frozenset[str] | None,
    anchors: bytes | None,
) -> tuple[tuple[MediaProof, ...], tuple[BundleKey, ...], tuple[str, ...]]:
    folders: dict[str, _Folder] = {}
    for item in files:
        folders.setdefault(item.folder, _Folder()).files[item.name] = item
    media: list[MediaProof] = []
    others: list[str] = []
    used_keys: dict[str, BundleKey] = {}
    for folder_name in sorted(folders):
        folder = folders[folder_name]
        key_file = _key_for(folder_name, folders)
        context = _Context(folder, key_file, verifier, expected, anchors)
        results, unrecognised = _check_folder(context)
        media.extend(results)
        others.extend(unrecognised)
        if key_file is not None and any(r.key_file == key_file.rel for r in results):
            used_keys[key_file.rel] = verifier.key(key_file)
    return tuple(media), tuple(used_keys.values()), tuple(sorted(others))


def _key_for(folder_name: str, folders: Mapping[str, _Folder]) -> _File | None:
    """``pubkey.asc`` in the same folder, else the nearest enclosing folder's."""
    current = PurePosixPath(folder_name) if folder_name else None
    while True:
        name = "" if current is None or str(current) == "." else str(current)
        candidate = folders.get(name)
        if candidate is not None and PUBKEY_FILE in candidate.files:
            return candidate.files[PUBKEY_FILE]
        if not name:
            return None
        current = PurePosixPath(name).parent


@dataclass(frozen=True)
class _Context:
    folder: _Folder
    key_file: _File | None
    verifier: _Verifier
    expected: frozenset[str] | None
    anchors: bytes | None


def _is_artefact_suffix(suffix: str) -> bool:
    """A proof set's own files, as opposed to media stored under its hash (``H.jpg``, which
    ProofMode's IPFS storage writes)."""
    lowered = suffix.lower()
    return (
        lowered in (SIGNATURE, OTS, GST, NOSTR, ".provider", ".uri")
        or lowered.startswith((".proof.", ".lp.", ".ipfs-cids"))
        or lowered.endswith(SIGNATURE)
        or not _is_media_name("x" + lowered)
    )


def _is_media_name(name: str) -> bool:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed and guessed.split("/")[0] in ("image", "video", "audio"):
        return True
    return PurePosixPath(name).suffix.lower() in _MEDIA_SUFFIXES


def _check_folder(ctx: _Context) -> tuple[list[MediaProof], list[str]]:
    files = ctx.folder.files
    proof_sets: dict[str, dict[str, _File]] = {}
    artefacts: set[str] = {PUBKEY_FILE, HOWTO_FILE, C2PA_CERT_FILE}
    for name, item in files.items():
        match = _HASH_NAMED.match(name)
        if match and _is_artefact_suffix(match.group(2)):
            proof_sets.setdefault(match.group(1).lower(), {})[match.group(2)] = item
            artefacts.add(name)
    candidates = sorted(n for n in files if n not in artefacts)
    # Media-named ("classic") artefacts belong to the file they are named after.
    legacy_suffixes = (
        PROOF_CSV + SIGNATURE,
        PROOF_JSON + SIGNATURE,
        PROOF_CSV,
        PROOF_JSON,
        SIGNATURE,
        OTS,
        GST,
        NOSTR,
    )
    legacy: dict[str, dict[str, _File]] = {}
    for name in candidates:
        for suffix in legacy_suffixes:
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and stem in files and stem not in artefacts:
                legacy.setdefault(stem, {})[suffix] = files[name]
                artefacts.add(name)
                break
    results: list[MediaProof] = []
    others: list[str] = []
    used_sets: set[str] = set()
    for name in (n for n in candidates if n not in artefacts):
        item = files[name]
        if item.sha256 in proof_sets:
            used_sets.add(item.sha256)
            results.append(
                _check_media(ctx, item, item.sha256, proof_sets[item.sha256], "hash-named")
            )
        elif name in legacy:
            results.append(_check_media(ctx, item, None, legacy[name], "media-named"))
        else:
            claimed = _set_claiming(name, proof_sets, used_sets)
            if claimed is not None:
                used_sets.add(claimed)
                results.append(_check_media(ctx, item, claimed, proof_sets[claimed], "hash-named"))
            elif _is_media_name(name):
                results.append(_no_proof(item))
            else:
                others.append(item.rel)
    for proof_hash in sorted(set(proof_sets) - used_sets):
        results.append(_check_media(ctx, None, proof_hash, proof_sets[proof_hash], "hash-named"))
    others.extend(f.rel for n, f in files.items() if n in (HOWTO_FILE, C2PA_CERT_FILE))
    return results, others


def _set_claiming(
    name: str, proof_sets: Mapping[str, Mapping[str, _File]], used: set[str]
) -> str | None:
    """The proof set whose recorded ``File Path`` names this file, when only one does."""
    matches = []
    for proof_hash, members in proof_sets.items():
        if proof_hash in used:
            continue
        for suffix in (PROOF_JSON, PROOF_CSV):
            item = members.get(suffix)
            if item is None:
                continue
            records, _ = _parse_proof(item, suffix, signature_ok=False)
            paths = {r.get(PATH_FIELD) for r in records}
            if any(p and PurePosixPath(p.replace("\\", "/")).name == name for p in paths):
                matches.append(proof_hash)
                break
    return matches[0] if len(matches) == 1 else None


def _no_proof(item: _File) -> MediaProof:
    check = Check(
        "proof_present",
        CheckState.FAILED,
        f"no ProofMode proof in the bundle for {item.rel} (SHA-256 {item.sha256})",
        Problem.PROOF_MISSING,
    )
    return MediaProof(
        media_file=item.rel,
        media_size=item.size,
        media_sha256=item.sha256,
        proof_hash=None,
        layout="none",
        checks=(check,),
        signatures=(),
        proofs=(),
        key_file=None,
        ots=None,
        device_attestation=None,
        nostr_file=None,
        c2pa=None,
        files=(item.rel,),
    )


# --- one media file ------------------------------------------------------------------------------


def _check_media(
    ctx: _Context,
    media: _File | None,
    proof_hash: str | None,
    members: Mapping[str, _File],
    layout: Literal["hash-named", "media-named"],
) -> MediaProof:
    checks: list[Check] = []
    signatures: list[SignatureResult] = []
    records: list[ProofRecord] = []
    label = media.rel if media else f"proof set {proof_hash}"

    # The three signatures: over the media, the JSON and the CSV.
    sig_results: dict[str, SignatureResult | None] = {}
    for target_suffix, sig_suffix, check_name in (
        (None, SIGNATURE, "media_signature"),
        (PROOF_JSON, PROOF_JSON + SIGNATURE, "proof_json_signature"),
        (PROOF_CSV, PROOF_CSV + SIGNATURE, "proof_csv_signature"),
    ):
        target = media if target_suffix is None else members.get(target_suffix)
        sig_file = members.get(sig_suffix)
        check, result = _signature_check(ctx, check_name, target, target_suffix, sig_file, label)
        checks.append(check)
        sig_results[check_name] = result
        if result is not None:
            signatures.append(result)

    # The proof files themselves.
    for suffix, sig_name in (
        (PROOF_JSON, "proof_json_signature"),
        (PROOF_CSV, "proof_csv_signature"),
    ):
        item = members.get(suffix)
        name = "proof_json" if suffix == PROOF_JSON else "proof_csv"
        if item is None:
            expected_name = (
                f"{proof_hash}{suffix}" if layout == "hash-named" else f"{label}{suffix}"
            )
            checks.append(
                Check(
                    name,
                    CheckState.FAILED,
                    f"{expected_name} is not in the bundle",
                    Problem.PROOF_MISSING,
                )
            )
            continue
        sig = sig_results.get(sig_name)
        parsed, error = _parse_proof(
            item, suffix, sig is not None and sig.state is CheckState.PASSED
        )
        records.extend(parsed)
        if error is not None:
            checks.append(
                Check(name, CheckState.FAILED, f"{item.rel}: {error}", Problem.PROOF_MALFORMED)
            )
        else:
            checks.append(
                Check(name, CheckState.PASSED, f"{item.rel}: {len(parsed)} proof record(s) read")
            )

    checks.append(_hash_check(media, proof_hash, layout, records))
    recorded = proof_hash or _recorded_hash(records)

    key_check = _key_check(ctx, signatures)
    if key_check is not None:
        checks.append(key_check)

    ots = None
    if OTS in members:
        ots = _read_ots(members[OTS])
        checks.extend(_ots_checks(ots, media, recorded))
    attestation = None
    if GST in members:
        attestation = _read_jws(members[GST])
        checks.append(
            Check(
                "device_attestation",
                CheckState.NOT_CHECKABLE,
                f"{members[GST].rel}: Google SafetyNet/Play Integrity attestation kept "
                "and decoded, not verified (Google's service, retired for SafetyNet)",
                Problem.DEVICE_ATTESTATION_NOT_VERIFIED,
            )
        )
    nostr = members.get(NOSTR)
    if nostr is not None:
        checks.append(
            Check(
                "nostr_notarization",
                CheckState.NOT_CHECKABLE,
                f"{nostr.rel}: Nostr notarization kept, not verified",
                Problem.NOSTR_NOT_VERIFIED,
            )
        )

    c2pa_report = None
    if media is not None:
        c2pa_report, c2pa_checks = _c2pa_checks(media, ctx.anchors)
        checks.extend(c2pa_checks)
    else:
        checks.append(
            Check(
                "media_present",
                CheckState.NOT_CHECKABLE,
                f"the media for proof set {proof_hash} is not in the bundle "
                "(ProofMode can share proof without media): check the media "
                "separately against this hash",
                Problem.PROOF_MEDIA_MISSING,
            )
        )

    used = [f.rel for f in members.values()]
    if media is not None:
        used.insert(0, media.rel)
    if ctx.key_file is not None:
        used.append(ctx.key_file.rel)
    return MediaProof(
        media_file=media.rel if media else None,
        media_size=media.size if media else None,
        media_sha256=media.sha256 if media else None,
        proof_hash=recorded,
        layout=layout,
        checks=tuple(checks),
        signatures=tuple(signatures),
        proofs=tuple(records),
        key_file=ctx.key_file.rel if ctx.key_file else None,
        ots=ots,
        device_attestation=attestation,
        nostr_file=nostr.rel if nostr else None,
        c2pa=c2pa_report,
        files=tuple(dict.fromkeys(used)),
    )


def _signature_check(
    ctx: _Context,
    name: str,
    target: _File | None,
    target_suffix: str | None,
    sig_file: _File | None,
    label: str,
) -> tuple[Check, SignatureResult | None]:
    what = "the media" if target_suffix is None else f"the {target_suffix} file"
    if sig_file is None:
        return Check(
            name,
            CheckState.FAILED,
            f"no signature over {what} of {label} in the bundle",
            Problem.PROOF_SIGNATURE_MISSING,
        ), None
    if target is None:
        if target_suffix is None:
            return Check(
                name,
                CheckState.NOT_CHECKABLE,
                f"{sig_file.rel} is kept; the media it signs is not in the bundle",
                Problem.PROOF_MEDIA_MISSING,
            ), None
        return Check(
            name,
            CheckState.FAILED,
            f"{sig_file.rel} is kept, but {what} it signs is not in the bundle",
            Problem.PROOF_MISSING,
        ), None
    if ctx.key_file is None:
        return Check(
            name,
            CheckState.FAILED,
            f"no {PUBKEY_FILE} in the bundle: {sig_file.rel} cannot be verified",
            Problem.PROOF_KEY_MISSING,
        ), None
    result = ctx.verifier.verify(ctx.key_file, sig_file, target)
    return Check(name, result.state, result.reason, result.problem), result


def _key_check(ctx: _Context, signatures: Sequence[SignatureResult]) -> Check | None:
    if ctx.key_file is None:
        return None
    key = ctx.verifier.key(ctx.key_file)
    signers = sorted({s.primary_fingerprint for s in signatures if s.primary_fingerprint})
    shown = ", ".join(signers or key.fingerprints) or "(none)"
    if ctx.expected is None:
        return Check(
            "signing_key_confirmed",
            CheckState.NOT_CHECKABLE,
            f"the signing key ({shown}) came with the bundle in {ctx.key_file.rel}: "
            "it proves only that the bundle agrees with itself; confirm the "
            "fingerprint out of band with whoever made the recording",
            Problem.PROOF_KEY_UNCONFIRMED,
        )
    if not signers:
        return Check(
            "signing_key_confirmed",
            CheckState.NOT_CHECKABLE,
            "no good signature, so no signing key to compare with the expected fingerprints",
            Problem.PROOF_KEY_UNCONFIRMED,
        )
    unexpected = [s for s in signers if s not in ctx.expected]
    if unexpected:
        return Check(
            "signing_key_confirmed",
            CheckState.FAILED,
            f"signed by {', '.join(unexpected)}, which is not among the fingerprints "
            "confirmed out of band",
            Problem.PROOF_KEY_MISMATCH,
        )
    return Check(
        "signing_key_confirmed",
        CheckState.PASSED,
        f"signed by {shown}, a fingerprint confirmed out of band",
    )


def _recorded_hash(records: Sequence[ProofRecord]) -> str | None:
    for record in records:
        value = record.get(HASH_FIELD)
        if value:
            return value.strip().lower()
    return None


def _hash_check(
    media: _File | None, proof_hash: str | None, layout: str, records: Sequence[ProofRecord]
) -> Check:
    recorded: dict[str, list[str]] = {}
    if proof_hash is not None and layout == "hash-named":
        recorded.setdefault(proof_hash.lower(), []).append("the proof files' names")
    for record in records:
        value = record.get(HASH_FIELD)
        if value is not None:
            where = f"{record.source_file} record {record.index + 1}"
            recorded.setdefault(value.strip().lower(), []).append(where)
    if not recorded:
        return Check(
            "recorded_hash", CheckState.NOT_CHECKABLE, "the proof records no SHA-256 for the media"
        )
    if media is None:
        if len(recorded) > 1:
            return Check(
                "recorded_hash",
                CheckState.FAILED,
                "the proof files disagree about the media's SHA-256: " + _describe_hashes(recorded),
                Problem.PROOF_HASH_MISMATCH,
            )
        return Check(
            "recorded_hash",
            CheckState.NOT_CHECKABLE,
            "the media is not in the bundle; recorded SHA-256 " + next(iter(recorded)),
        )
    wrong = {h: w for h, w in recorded.items() if h != media.sha256}
    if wrong:
        return Check(
            "recorded_hash",
            CheckState.FAILED,
            f"{media.rel} has SHA-256 {media.sha256}, but ProofMode recorded "
            + _describe_hashes(wrong),
            Problem.PROOF_HASH_MISMATCH,
        )
    return Check(
        "recorded_hash",
        CheckState.PASSED,
        f"{media.rel} has the SHA-256 ProofMode recorded ({media.sha256})",
    )


def _describe_hashes(recorded: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{h} (in {', '.join(where)})" for h, where in recorded.items())


# --- proof.json / proof.csv ----------------------------------------------------------------------


def _read_small(item: _File) -> bytes | None:
    if item.size > _MAX_SMALL_FILE:
        return None
    return item.disk.read_bytes()


def _parse_proof(
    item: _File, suffix: str, signature_ok: bool
) -> tuple[list[ProofRecord], str | None]:
    raw = _read_small(item)
    if raw is None:
        return [], f"{item.size} bytes: too large for a proof file"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [], "not UTF-8 text"
    if suffix == PROOF_JSON:
        return _parse_json(item, text, signature_ok)
    return _parse_csv(item, text, signature_ok)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def _parse_json(item: _File, text: str, signature_ok: bool) -> tuple[list[ProofRecord], str | None]:
    # One object per generation, each on its own line (the file is appended to).
    documents: list[object] = []
    try:
        documents.append(json.loads(text, object_pairs_hook=_reject_duplicates))
    except ValueError:
        documents = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                documents.append(json.loads(line, object_pairs_hook=_reject_duplicates))
            except (ValueError, RecursionError) as exc:
                return [], f"line {number} is not JSON ({exc})"
    except RecursionError:
        return [], "nested too deeply to be a ProofMode proof"
    if not documents:
        return [], "empty"
    records = []
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            return [], f"record {index + 1} is a JSON {type(document).__name__}, not an object"
        fields = tuple(
            (str(k), v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            for k, v in document.items()
        )
        records.append(ProofRecord(item.rel, "json", index, fields, signature_ok))
    return records, None


def _parse_csv(item: _File, text: str, signature_ok: bool) -> tuple[list[ProofRecord], str | None]:
    # ProofMode's writer: keys joined by ",", a trailing ",", no quoting (it replaced the
    # commas inside values by spaces), so a plain split is the faithful reader.
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return [], "needs a header line and at least one line of values"
    header = _csv_fields(lines[0])
    records: list[ProofRecord] = []
    for index, line in enumerate(lines[1:]):
        values = _csv_fields(line)
        if len(values) != len(header):
            return records, (
                f"line {index + 2} has {len(values)} values for {len(header)} column names"
            )
        records.append(
            ProofRecord(
                item.rel, "csv", index, tuple(zip(header, values, strict=True)), signature_ok
            )
        )
    return records, None


def _csv_fields(line: str) -> list[str]:
    parts = line.split(",")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


# --- OpenTimestamps ------------------------------------------------------------------------------


def _read_ots(item: _File) -> OtsProof:
    def broken(message: str) -> OtsProof:
        return OtsProof(item.rel, item.sha256, item.size, None, None, (), message)

    raw = _read_small(item)
    if raw is None:
        return broken(f"{item.size} bytes: too large for an OpenTimestamps proof")
    try:
        detached = DetachedTimestampFile.deserialize(StreamDeserializationContext(io.BytesIO(raw)))
        leaves = list(detached.timestamp.all_attestations())
    except Exception as exc:
        # Whatever the library raises on bad input is a malformed proof, not a crash.
        return broken(f"not a valid OpenTimestamps proof ({type(exc).__name__}: {exc})")
    attestations = tuple(sorted((_attestation(msg, att) for msg, att in leaves), key=_att_order))
    return OtsProof(
        file=item.rel,
        sha256=item.sha256,
        size=item.size,
        file_hash_algorithm=str(getattr(detached.file_hash_op, "TAG_NAME", None)),
        file_digest=bytes(detached.file_digest).hex(),
        attestations=attestations,
        error=None,
    )


def _att_order(att: OtsAttestation) -> tuple[str, int, str]:
    return (att.kind, att.block_height or 0, att.calendar_url or att.commitment)


def _attestation(msg: bytes, att: object) -> OtsAttestation:
    kind_name = type(att).__name__
    commitment = bytes(msg).hex()
    if kind_name == "PendingAttestation":
        return OtsAttestation("pending", commitment, calendar_url=str(getattr(att, "uri", "")))
    if kind_name in ("BitcoinBlockHeaderAttestation", "LitecoinBlockHeaderAttestation"):
        # The attested message is the block's Merkle root in internal byte order; explorers
        # and `ots info` show it reversed.
        return OtsAttestation(
            "bitcoin" if kind_name.startswith("Bitcoin") else "litecoin",
            commitment,
            block_height=int(getattr(att, "height", -1)),
            merkle_root=bytes(msg)[::-1].hex(),
        )
    if kind_name == "EthereumBlockHeaderAttestation":
        return OtsAttestation("ethereum", commitment, block_height=int(getattr(att, "height", -1)))
    tag = getattr(att, "TAG", b"")
    return OtsAttestation("unknown", commitment, tag=bytes(tag).hex() if tag else None)


def _ots_checks(ots: OtsProof, media: _File | None, recorded: str | None) -> list[Check]:
    if ots.error is not None:
        return [
            Check(
                "ots_digest", CheckState.FAILED, f"{ots.file}: {ots.error}", Problem.OTS_MALFORMED
            )
        ]
    checks: list[Check] = []
    target = media.sha256 if media is not None else recorded
    subject = media.rel if media is not None else "the recorded hash"
    if ots.file_hash_algorithm != "sha256":
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                f"{ots.file} timestamps a {ots.file_hash_algorithm} digest; ProofMode "
                "stamps the SHA-256",
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    elif target is None:
        checks.append(
            Check(
                "ots_digest",
                CheckState.NOT_CHECKABLE,
                f"{ots.file} timestamps {ots.file_digest}; no media or recorded hash "
                "to compare it with",
            )
        )
    elif ots.file_digest != target:
        checks.append(
            Check(
                "ots_digest",
                CheckState.FAILED,
                f"{ots.file} timestamps {ots.file_digest}, not the SHA-256 of {subject} ({target})",
                Problem.OTS_DIGEST_MISMATCH,
            )
        )
    else:
        checks.append(
            Check(
                "ots_digest", CheckState.PASSED, f"{ots.file} timestamps the SHA-256 of {subject}"
            )
        )
    blocks = [a for a in ots.attestations if a.kind in ("bitcoin", "litecoin")]
    unknown = [a for a in ots.attestations if a.kind in ("unknown", "ethereum")]
    extra = f"; {len(unknown)} attestation(s) of other kinds kept" if unknown else ""
    if blocks:
        described = ", ".join(
            f"{a.kind} block {a.block_height} (Merkle root {a.merkle_root})" for a in blocks
        )
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                f"complete: {described}; checking it needs that block's header: "
                f"run `ots verify` against a Bitcoin node{extra}",
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    elif ots.pending_calendars:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                "pending at "
                + ", ".join(ots.pending_calendars)
                + f": `ots upgrade` then `ots verify` complete it{extra}",
                Problem.OTS_PENDING,
            )
        )
    else:
        checks.append(
            Check(
                "ots_attestation",
                CheckState.NOT_CHECKABLE,
                f"no Bitcoin or calendar attestation custody knows{extra}",
                Problem.OTS_NOT_VERIFIED_OFFLINE,
            )
        )
    return checks


# --- SafetyNet JWS -------------------------------------------------------------------------------


def _read_jws(item: _File) -> DeviceAttestation:
    raw = _read_small(item)
    if raw is None:
        return DeviceAttestation(item.rel, item.sha256, None, None, "too large for a JWS")
    try:
        parts = raw.decode("ascii").strip().split(".")
        if len(parts) != 3:
            raise ValueError("not three dot-separated parts")
        header = _b64_json(parts[0])
        payload = _b64_json(parts[1])
    except (ValueError, UnicodeDecodeError, binascii.Error, RecursionError) as exc:
        return DeviceAttestation(item.rel, item.sha256, None, None, f"not a JWS ({exc})")
    return DeviceAttestation(item.rel, item.sha256, header, payload, None)


def _b64_json(part: str) -> str:
    decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    value = json.loads(decoded)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- C2PA -----------------------------------------------------------------------------------------


def _c2pa_checks(media: _File, anchors: bytes | None) -> tuple[C2paReport | None, list[Check]]:
    try:
        report = read_c2pa(media.disk, anchors)
    except CustodyError as exc:
        return None, [
            Check("c2pa_manifest", CheckState.NOT_CHECKABLE, str(exc), Problem.C2PA_UNREADABLE)
        ]
    if report is None:
        return None, []
    checks: list[Check] = []
    if report.validation_state is ValidationState.INVALID:
        codes = ", ".join(report.failure_codes) or "no code"
        checks.append(
            Check(
                "c2pa_integrity",
                CheckState.FAILED,
                f"the C2PA manifest in {media.rel} is invalid ({codes})",
                Problem.C2PA_INVALID,
            )
        )
        return report, checks
    checks.append(
        Check(
            "c2pa_integrity",
            CheckState.PASSED,
            f"the C2PA manifest in {media.rel} is intact (signature and bindings)",
        )
    )
    signer = (
        report.signer.certificate.subject
        if report.signer and report.signer.certificate
        else (report.signer.common_name if report.signer else None)
    )
    if report.validation_state is ValidationState.TRUSTED:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.PASSED,
                f"signer {signer} chains to a supplied trust anchor",
            )
        )
    elif report.trust_anchors_supplied:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.FAILED,
                f"signer {signer} does not chain to any supplied trust anchor",
                Problem.C2PA_UNTRUSTED,
            )
        )
    else:
        checks.append(
            Check(
                "c2pa_signer_trusted",
                CheckState.NOT_CHECKABLE,
                f"signer {signer}: no trust anchors were supplied",
                Problem.C2PA_TRUST_NOT_CHECKED,
            )
        )
    return report, checks
