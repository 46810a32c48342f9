"""The report as plain data: what ``build`` gathers and ``html`` renders.

Nothing here reads files or runs tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from custody.errors import ExitCode, ToolMissingError
from custody.findings import Check, Finding
from custody.handling.case import CaseDetails
from custody.handling.history import Entry
from custody.i18n import _


class RenderError(ToolMissingError):
    """Chromium is installed but could not print the report."""

    exit_code = ExitCode.MISSING_TOOL


# --- the report as data ---------------------------------------------------------------------


@dataclass
class Thumbnail:
    data_uri: str | None  # data:image/jpeg;base64,...
    note: str  # how it was made, or why there is none

    def to_json(self) -> dict[str, Any]:
        return {"data_uri": self.data_uri, "note": self.note}


@dataclass
class ReportItem:
    seq: int
    path: str
    name: str
    size: int
    mime: str | None
    kind: str  # image, video, audio, document, file
    digests: dict[str, str]
    status: str  # "matches its record" or what is wrong
    intact: bool
    findings: list[Finding]
    thumbnail: Thumbnail
    capture_time: str | None
    gps: tuple[float, float] | None
    device: str | None
    highlights: dict[str, Any]
    collector: str | None
    source: str | None
    location: str | None
    note: str | None
    tags: list[str]
    acquired_from: str | None
    catalogued: str
    catalogued_by: str
    timestamps: list[dict[str, Any]]  # valid tokens whose checkpoint covers the item
    clock: dict[str, Any] | None
    events: list[Entry]
    # Identifying fields the record commits to but whose values this report does not have
    # (withheld from the bundle): collector, source_path, volume.
    withheld: list[str] = field(default_factory=list)
    exhibit: str | None = None  # its exhibit number, from an authentic exhibit record
    exhibit_record: int | None = None
    holder: str | None = None  # who holds it now, as the records say (``current_holder``)
    # What the sources it came from say of it (ledger.describe.provenance_view), each with
    # the checks of the source's own proofs re-run by verify (empty for a bundle).
    provenance: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "withheld": self.withheld,
            "seq": self.seq,
            "exhibit": self.exhibit,
            "exhibit_record": self.exhibit_record,
            "holder": self.holder,
            "path": self.path,
            "name": self.name,
            "size": self.size,
            "mime": self.mime,
            "kind": self.kind,
            "digests": self.digests,
            "status": self.status,
            "intact": self.intact,
            "findings": [f.to_json() for f in self.findings],
            "thumbnail": self.thumbnail.to_json(),
            "capture_time": self.capture_time,
            "gps": list(self.gps) if self.gps else None,
            "device": self.device,
            "highlights": self.highlights,
            "collector": self.collector,
            "source": self.source,
            "location": self.location,
            "note": self.note,
            "tags": self.tags,
            "acquired_from": self.acquired_from,
            "catalogued": self.catalogued,
            "catalogued_by": self.catalogued_by,
            "timestamps": self.timestamps,
            "clock": self.clock,
            "events": [e.to_json() for e in self.events],
            "provenance": self.provenance,
        }


@dataclass
class KeyInfo:
    fingerprint: str
    name: str
    role: str
    introduced_at: int | None
    records: int | None
    status: str
    holder: str | None = None
    anchored: bool = False
    trusted_because: tuple[str, ...] = ()
    confirm: str | None = None

    @classmethod
    def from_signer(cls, k: dict[str, Any]) -> KeyInfo:
        """From a verification result's signer entry (``custody.trust.signers``)."""
        # For people, in the language the report is built in.
        status = (
            _("compromised since record {record}").format(record=k["compromised_from"])
            if k.get("compromised_from") is not None
            else _("revoked at record {record}").format(record=k["revoked_at"])
            if k.get("revoked_at") is not None
            else _("retired at record {record}").format(record=k["retired_at"])
            if k.get("retired_at") is not None
            else _("valid")
        )
        return cls(
            k["fingerprint"],
            k["name"],
            k["role"],
            k.get("introduced_at"),
            k.get("records"),
            status,
            k.get("holder"),
            bool(k.get("anchored")),
            tuple(k.get("trusted_because") or ()),
            k.get("confirm"),
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TsaInfo:
    url: str
    name: str
    tokens: int
    gen_times: list[str]
    certificate_subject: str | None
    certificate_sha256: str | None
    trust: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SourceDigest:
    """What the report was made from, pinned: every file's SHA-256 in one digest (the
    "tree digest", ``custody.delivery.bundle_digest``), and a zip's own SHA-256."""

    kind: str  # "folder" or "zip"
    tree_sha256: str | None  # None: a zip member does not read back (no tree to digest)
    files: int
    bytes: int
    zip_sha256: str | None = None
    zip_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ToolInfo:
    """The custody that made the report: its version and the digest of its own files."""

    version: str
    sha256: str
    files: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Preparer:
    """Who prepared the report, when it is signed: the custody key that vouches for the PDF
    signing certificate."""

    name: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Command:
    purpose: str
    command: str

    def to_json(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "command": self.command}


@dataclass
class Report:
    kind: str  # "evidence root" or "evidence bundle"
    source: str
    generated: str
    tool: str
    verdict_code: str  # custody.findings.Verdict: "verified", "unconfirmed" or "failed"
    checks: list[Check]
    findings: list[Finding]
    items: list[ReportItem]
    keys: list[KeyInfo]
    tsas: list[TsaInfo]
    timestamps: list[dict[str, Any]]
    clock: list[dict[str, Any]]
    ledger_size: int
    tree_root: str | None
    reproduce: list[Command]
    case: CaseDetails | None = None
    bag_info: dict[str, str] = field(default_factory=dict)  # a bundle's bag-info.txt
    withheld_events: list[dict[str, Any]] = field(default_factory=list)
    # A bundle's ledger records below its checkpoint that it does not carry, derived from
    # the signed checkpoint and the records (never from the unsigned index).
    records_not_carried: list[int] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    timestamp_trust: str = "embedded"
    trust: list[str] = field(default_factory=list)  # what the preparer trusted, in words
    # Web captures among the items: record, time, signer, folder and capture_summary facts.
    captures: list[dict[str, Any]] = field(default_factory=list)
    source_digest: SourceDigest | None = None
    tool_info: ToolInfo | None = None
    preparer: Preparer | None = None
    selection: list[str] = field(default_factory=list)  # the --exhibit/--tag asked for
    items_total: int = 0  # items in the source, before any selection
    evidence_records: list[dict[str, Any]] = field(default_factory=list)  # RFC 4998 chains

    @property
    def verified(self) -> bool:
        return self.verdict_code == "verified"

    @property
    def verdict(self) -> str:
        return {
            "verified": "VERIFIED",
            "unconfirmed": "INTACT, SIGNER NOT CONFIRMED",
        }.get(self.verdict_code, "NOT VERIFIED")

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "generated": self.generated,
            "tool": self.tool,
            "verdict": self.verdict_code,
            "verified": self.verified,
            "trust": self.trust,
            "checks": [c.to_json() for c in self.checks],
            "findings": [f.to_json() for f in self.findings],
            "items": [i.to_json() for i in self.items],
            "keys": [k.to_json() for k in self.keys],
            "tsas": [t.to_json() for t in self.tsas],
            "timestamps": self.timestamps,
            "clock": self.clock,
            "ledger_size": self.ledger_size,
            "tree_root": self.tree_root,
            "reproduce": [c.to_json() for c in self.reproduce],
            "case": self.case.to_json() if self.case else None,
            "bag_info": self.bag_info,
            "withheld_events": self.withheld_events,
            "records_not_carried": self.records_not_carried,
            "checkpoint": self.checkpoint,
            "timestamp_trust": self.timestamp_trust,
            "captures": self.captures,
            "source_digest": self.source_digest.to_json() if self.source_digest else None,
            "tool_info": self.tool_info.to_json() if self.tool_info else None,
            "preparer": self.preparer.to_json() if self.preparer else None,
            "selection": self.selection,
            "items_total": self.items_total,
            "evidence_records": self.evidence_records,
        }


def media_kind(mime: str | None) -> str:
    if not mime:
        return "file"
    major = mime.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major
    if mime in ("application/pdf", "text/plain") or mime.startswith("application/vnd"):
        return "document"
    return "file"
