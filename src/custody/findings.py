"""Verification results: finding classes, findings, checks, and the overall result.

Shared by every verifier (ledger, files, timestamps, bundles). Findings are data with
named fields; nothing here prints or decides exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Code(StrEnum):
    TRUNCATED_RECORD = "TRUNCATED_RECORD"
    RECORD_MALFORMED = "RECORD_MALFORMED"
    RECORD_MISSING = "RECORD_MISSING"
    RECORDS_REORDERED = "RECORDS_REORDERED"
    RECORD_DUPLICATED = "RECORD_DUPLICATED"
    RECORD_ALTERED = "RECORD_ALTERED"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    NOT_APPEND_ONLY = "NOT_APPEND_ONLY"
    FILE_MISSING = "FILE_MISSING"
    FILE_MODIFIED = "FILE_MODIFIED"
    FILE_MOVED = "FILE_MOVED"
    FILE_UNEXPECTED = "FILE_UNEXPECTED"
    FILE_UNREADABLE = "FILE_UNREADABLE"
    NO_CHECKPOINT = "NO_CHECKPOINT"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"
    TIMESTAMP_UNTRUSTED = "TIMESTAMP_UNTRUSTED"
    TIMESTAMP_MISMATCH = "TIMESTAMP_MISMATCH"
    TIMESTAMP_PENDING = "TIMESTAMP_PENDING"
    CAPTURE_AFTER_TIMESTAMP = "CAPTURE_AFTER_TIMESTAMP"
    CATALOGUED_AFTER_TIMESTAMP = "CATALOGUED_AFTER_TIMESTAMP"
    CATALOGUE_TIME_FAR = "CATALOGUE_TIME_FAR"
    KEY_REVOKED = "KEY_REVOKED"
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    KEY_UNVOUCHED = "KEY_UNVOUCHED"
    KEY_NAME_REUSED = "KEY_NAME_REUSED"
    REFERENCE_INVALID = "REFERENCE_INVALID"
    BUNDLE_UNSAFE = "BUNDLE_UNSAFE"
    BUNDLE_MALFORMED = "BUNDLE_MALFORMED"
    PROOF_INVALID = "PROOF_INVALID"
    UNAUTHORISED_SIGNER = "UNAUTHORISED_SIGNER"
    UNTRUSTED_SIGNER = "UNTRUSTED_SIGNER"
    ORIGINAL_MISSING = "ORIGINAL_MISSING"
    HELD_CHECKPOINT_UNPROVEN = "HELD_CHECKPOINT_UNPROVEN"
    WITNESS_MISSING = "WITNESS_MISSING"
    COSIGNATURE_INVALID = "COSIGNATURE_INVALID"
    EXHIBIT_CONFLICT = "EXHIBIT_CONFLICT"
    # What a source proves of itself (a C2PA manifest, a ProofMode signature), re-checked.
    SOURCE_CHECK_FAILED = "SOURCE_CHECK_FAILED"
    SOURCE_CHECK_CHANGED = "SOURCE_CHECK_CHANGED"
    EVIDENCE_RECORD_INVALID = "EVIDENCE_RECORD_INVALID"
    TIMESTAMP_CHAIN_BROKEN = "TIMESTAMP_CHAIN_BROKEN"
    TIMESTAMP_RENEWAL_DUE = "TIMESTAMP_RENEWAL_DUE"
    VALIDATION_MATERIAL_INVALID = "VALIDATION_MATERIAL_INVALID"
    REVOCATION_UNKNOWN = "REVOCATION_UNKNOWN"
    CAPTURE_FOLDER_CHANGED = "CAPTURE_FOLDER_CHANGED"  # a web capture folder vs its record
    CAPTURE_ARCHIVE_INVALID = "CAPTURE_ARCHIVE_INVALID"  # its WACZ or WARC fails its own digests


class Verdict(StrEnum):
    """What a verification concludes, for people and for programs (docs/threat-model.md).

    ``verified``: no integrity finding, and every signer is one the verifier trusts (an
    anchor, or introduced by a chain of valid keys from one). ``unconfirmed``: intact, but
    at least one signer is not anchored - the result names each and how to confirm it.
    ``failed``: integrity findings.
    """

    VERIFIED = "verified"
    UNCONFIRMED = "unconfirmed"
    FAILED = "failed"


# Findings that describe a state worth knowing but not a failure of integrity. A pending
# timestamp becomes an error only when the verifier asks (--require-timestamps); a lapsed
# chain of timestamps only when the verifier asks for long-term validity at a date (--at).
WARNINGS = frozenset(
    {
        Code.NO_CHECKPOINT,
        Code.TIMESTAMP_PENDING,
        Code.CAPTURE_AFTER_TIMESTAMP,
        Code.CATALOGUED_AFTER_TIMESTAMP,
        Code.CATALOGUE_TIME_FAR,
        Code.KEY_UNVOUCHED,
        Code.KEY_NAME_REUSED,
        # The source's own proofs, not custody's chain: the ledger and file checks decide.
        Code.SOURCE_CHECK_FAILED,
        Code.SOURCE_CHECK_CHANGED,
        Code.TIMESTAMP_CHAIN_BROKEN,
        Code.TIMESTAMP_RENEWAL_DUE,
        Code.REVOCATION_UNKNOWN,
    }
)


@dataclass(frozen=True)
class Finding:
    code: Code
    item: str
    message: str
    seq: int | None = None
    expected: str | None = None
    found: str | None = None
    required: bool = False  # a warning class the verifier chose to treat as an error
    warning: bool = False  # an error class that, here, only limits what could be checked

    @property
    def severity(self) -> str:
        if self.warning:
            return "warning"
        return "warning" if self.code in WARNINGS and not self.required else "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": str(self.code),
            "severity": self.severity,
            "item": self.item,
            "seq": self.seq,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass(frozen=True)
class Check:
    """One named check, what it covered and whether it passed."""

    name: str
    passed: bool
    covered: int
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "covered": self.covered,
            "detail": self.detail,
        }


@dataclass
class VerificationResult:
    root: str
    checks: list[Check] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ledger_size: int = 0
    tree_root: str | None = None
    files_checked: int = 0
    bytes_hashed: int = 0
    timestamps: list[dict[str, Any]] = field(default_factory=list)
    clock: list[dict[str, Any]] = field(default_factory=list)
    signers: list[dict[str, Any]] = field(default_factory=list)
    # What the verifier trusted, in words ("trusted because: ..."), from the TrustPolicy.
    trust: list[str] = field(default_factory=list)
    # The ledger's identity (SHA-256 of its first line) and the checkpoint this verification
    # vouches for, for the verifier to remember (custody.trust.remembered).
    ledger_identity: str | None = None
    checkpoint: dict[str, Any] | None = None
    # Per item with provenance: its sources' claims and the checks re-run of their proofs
    # (custody.verify.provenance).
    provenance: list[dict[str, Any]] = field(default_factory=list)
    evidence_records: list[dict[str, Any]] = field(default_factory=list)  # RFC 4998 chains

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """Intact: checks ran and none found an integrity problem (says nothing of who signed)."""
        return bool(self.checks) and not self.errors

    @property
    def unconfirmed_signers(self) -> list[dict[str, Any]]:
        """Keys that signed what was checked and that the verifier does not trust (yet)."""
        return [s for s in self.signers if s.get("records", 0) and not s.get("anchored", False)]

    @property
    def verdict(self) -> Verdict:
        if not self.ok:
            return Verdict.FAILED
        if self.unconfirmed_signers or not any(s.get("records", 0) for s in self.signers):
            # Nobody identifiable signed what was checked: intact, but from whom is unknown.
            return Verdict.UNCONFIRMED
        return Verdict.VERIFIED

    def add_check(self, name: str, findings: Sequence[Finding], covered: int, detail: str) -> None:
        self.findings.extend(findings)
        self.checks.append(
            Check(name, not [f for f in findings if f.severity == "error"], covered, detail)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "verdict": str(self.verdict),
            "verified": self.verdict is Verdict.VERIFIED,
            "intact": self.ok,
            "ledger_size": self.ledger_size,
            "tree_root": self.tree_root,
            "files_checked": self.files_checked,
            "bytes_hashed": self.bytes_hashed,
            "checks": [c.to_json() for c in self.checks],
            "findings": [f.to_json() for f in self.findings],
            "timestamps": self.timestamps,
            "clock": self.clock,
            "signers": self.signers,
            "trust": self.trust,
            "ledger_identity": self.ledger_identity,
            "checkpoint": self.checkpoint,
            "provenance": self.provenance,
            "evidence_records": self.evidence_records,
        }
