"""Chain-of-custody reports a judge can read: HTML, and PDF through headless Chromium.

``build_report`` gathers everything about an evidence root or a received bundle into a
``Report`` (plain data): the verdict and every check and finding of ``verify_root`` /
``verify_bundle`` (verification is not redone here), then each item - name, size, type,
digests, a thumbnail or video still, what its metadata claims (capture time, GPS,
device), who collected it and from where, when it was catalogued, the trusted
timestamps covering it and every custody event in ledger order (``custody.handling.history`` for
a root; the same descriptions over the bundle's records for a bundle) - and the keys and
timestamp authorities relied on, the tool version and the exact commands with which an
independent expert reproduces each check.

``render_html`` turns a ``Report`` into one self-contained page: inline CSS, images as
``data:`` URIs, a content security policy that forbids fetching anything, A4 print
rules, and ``dir="auto"``/``lang`` on every text that came from people or file names so
that Arabic (and any right-to-left script) is shown right to left. Everything is
escaped. ``write_pdf`` prints that page with Debian's ``chromium`` in headless mode.

Thumbnails are made with ffmpeg (images scaled to at most 240 px, a still from videos),
with the demuxer chosen from the recorded MIME type and only the ``file``/``pipe``
protocols allowed, so a hostile file cannot make ffmpeg open anything else; for HEIC and
raw files exiftool's embedded preview is the fallback. A file that does not match its
record gets no thumbnail, and whenever none can be made the report says why.

Nothing here prints; the CLI renders and writes.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custody import __version__
from custody.errors import CustodyError, ExitCode, RecordError, ToolMissingError
from custody.findings import Check, Finding, VerificationResult
from custody.handling.history import Entry, describe_event, describe_item
from custody.ledger.describe import highlights
from custody.ledger.records import (
    CheckpointBody,
    EventBody,
    ItemBody,
    KeyBody,
    SignedRecord,
    TimestampBody,
)

THUMBNAIL_PX = 240
TOOL_TIMEOUT = 60.0
PDF_TIMEOUT = 300.0
MAX_THUMBNAIL_SOURCE = 1 << 34  # a payload larger than 16 GiB is not copied out of a zip

# The demuxer ffmpeg must use for each recorded MIME type; anything else is not probed.
_IMAGE_DEMUXERS = {
    "image/jpeg": "jpeg_pipe",
    "image/png": "png_pipe",
    "image/webp": "webp_pipe",
    "image/gif": "gif",
    "image/bmp": "bmp_pipe",
    "image/x-ms-bmp": "bmp_pipe",
    "image/tiff": "tiff_pipe",
}
_VIDEO_DEMUXERS = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "video/3gpp2": "mov",
    "video/x-m4v": "mov",
    "video/x-msvideo": "avi",
    "video/avi": "avi",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/mpeg": "mpeg",
    "video/mp2t": "mpegts",
}
_HEIF = {"image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif"}
# EXIF orientation -> ffmpeg filters that show the picture upright.
_ORIENTATION = {2: "hflip", 3: "hflip,vflip", 4: "vflip", 5: "transpose=0", 6: "transpose=1",
                7: "transpose=3", 8: "transpose=2"}  # fmt: skip


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

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
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
        }


@dataclass
class KeyInfo:
    fingerprint: str
    name: str
    role: str
    introduced_at: int | None
    records: int | None
    status: str

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
    verified: bool
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
    case: dict[str, str] = field(default_factory=dict)
    withheld_events: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    timestamp_trust: str = "embedded"

    @property
    def verdict(self) -> str:
        return "VERIFIED" if self.verified else "NOT VERIFIED"

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
            "verdict": self.verdict,
            "verified": self.verified,
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
            "case": self.case,
            "withheld_events": self.withheld_events,
            "checkpoint": self.checkpoint,
            "timestamp_trust": self.timestamp_trust,
        }


# --- building -------------------------------------------------------------------------------


def is_bundle(path: Path) -> bool:
    """A bundle folder (with bagit.txt) or a file (a zip, or something to be refused)."""
    return (path.is_dir() and (path / "bagit.txt").is_file()) or path.is_file()


def build_report(source: Path, *, tsa_trust: Any = None) -> Report:
    """Verify ``source`` (an evidence root, or a bundle folder or zip) and gather the report.

    ``tsa_trust`` is a ``custody.timestamps.stamping.Trust`` (``load_trust``) of TSA roots to check
    tokens against; without it tokens are checked against the certificates they carry and
    the report says so. Raises what verification raises for input that cannot be checked
    at all (not a root, not a bundle, a zip bomb); every other problem is a finding.
    """
    source = Path(source)
    if is_bundle(source):
        return _from_bundle(source, tsa_trust)
    return _from_root(source, tsa_trust)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _kind(mime: str | None) -> str:
    if not mime:
        return "file"
    major = mime.split("/", 1)[0]
    if major in ("image", "video", "audio"):
        return major
    if mime in ("application/pdf", "text/plain") or mime.startswith("application/vnd"):
        return "document"
    return "file"


def _gps(found: dict[str, Any]) -> tuple[float, float] | None:
    try:
        lat, lon = float(found["gps_latitude"]), float(found["gps_longitude"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _device(found: dict[str, Any]) -> str | None:
    make, model = str(found.get("make") or "").strip(), str(found.get("model") or "").strip()
    if model.lower().startswith(make.lower()):
        make = ""
    text = " ".join(p for p in (make, model) if p)
    return text or None


def _item_findings(findings: Iterable[Finding], seq: int, path: str) -> list[Finding]:
    names = {path, "data/" + path, f"record {seq}"}
    return [f for f in findings if f.seq == seq or f.item in names]


def _status(found: list[Finding]) -> tuple[str, bool]:
    files = [f for f in found if str(f.code).startswith("FILE_") and f.severity == "error"]
    others = [f for f in found if f.severity == "error" and f not in files]
    if files:
        return f"{files[0].code}: {files[0].message}", False
    if others:
        return f"the file matches its record, but {others[0].code}: {others[0].message}", True
    return "the file matches its record exactly (size and every digest)", True


def _covering(timestamps: Sequence[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    return sorted(
        (t for t in timestamps if int(t["tree_size"]) > seq or int(t["checkpoint"]) == seq),
        key=lambda t: str(t["gen_time"]),
    )


def _make_item(
    signed: SignedRecord,
    result: VerificationResult,
    names: dict[str, str],
    events: list[Entry],
    clock: dict[str, Any] | None,
    file_path: Path | None,
    tmp: Path,
) -> ReportItem:
    body: ItemBody = signed.record.typed_body()
    found = _item_findings(result.findings, signed.seq, body.path)
    status, intact = _status(found)
    facts = highlights(body.metadata)
    mime = body.mime
    kind = _kind(mime)
    if not intact:
        thumb = Thumbnail(None, "no thumbnail: the file does not match its record")
    elif file_path is None:
        thumb = Thumbnail(None, "no thumbnail: the file could not be read")
    else:
        thumb = thumbnail(file_path, mime, body.metadata, tmp)
    return ReportItem(
        seq=signed.seq,
        path=body.path,
        name=body.path.rsplit("/", 1)[-1],
        size=body.size,
        mime=mime,
        kind=kind,
        digests=dict(body.digests),
        status=status,
        intact=intact,
        findings=found,
        thumbnail=thumb,
        capture_time=body.capture_time,
        gps=_gps(facts),
        device=_device(facts),
        highlights=facts,
        collector=body.collector,
        source=body.source,
        location=body.location,
        note=body.note,
        tags=list(body.tags),
        acquired_from=body.acquisition.source_path if body.acquisition else None,
        catalogued=signed.record.time,
        catalogued_by=names.get(signed.record.signer, "an unknown key"),
        timestamps=_covering(result.timestamps, signed.seq),
        clock=clock,
        events=events,
    )


def _trust_words(mode: str) -> str:
    return (
        "checked against the TSA root certificates the verifier supplied"
        if mode == "roots"
        else "checked only against the certificates inside each token (weaker: anyone can "
        "make a root certificate; supply the TSA's root to establish whose timestamps these are)"
    )


def _tsas(
    stamps: Sequence[tuple[TimestampBody, bytes | None]], valid: Sequence[dict[str, Any]]
) -> list[TsaInfo]:
    from custody.timestamps import rfc3161 as timestamps

    by_url: dict[str, TsaInfo] = {}
    for body, raw in stamps:
        info = by_url.get(body.tsa)
        if info is None:
            subject = fingerprint = None
            if raw is not None:
                check = timestamps.check_response(
                    raw, digest=bytes.fromhex(body.imprint), nonce=None, roots=(),
                    trust="embedded",
                )  # fmt: skip
                if check.signer_certificate:
                    from cryptography import x509

                    cert = x509.load_der_x509_certificate(check.signer_certificate)
                    subject = cert.subject.rfc4514_string()
                    fingerprint = _sha256(check.signer_certificate)
            trust = next((str(t["trust"]) for t in valid if t["tsa"] == body.tsa), "not valid here")
            info = TsaInfo(body.tsa, body.tsa_name or body.tsa, 0, [], subject, fingerprint, trust)
            by_url[body.tsa] = info
        info.tokens += 1
        info.gen_times.append(body.gen_time)
    for info in by_url.values():
        info.gen_times.sort()
    return list(by_url.values())


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _from_root(path: Path, tsa_trust: Any) -> Report:
    from custody.handling.history import history
    from custody.handling.vault import current_items
    from custody.ledger.backends import open_ledger
    from custody.root import find_root
    from custody.verify.roots import verify_root

    root = find_root(explicit=str(path))
    result = verify_root(root, tsa_trust=tsa_trust)
    clock = {int(row["seq"]): row for row in result.clock}
    names = {k["fingerprint"]: f"{k['name']} ({k['role']})" for k in result.signers}
    items: list[ReportItem] = []
    stamps: list[tuple[TimestampBody, bytes | None]] = []
    with open_ledger(root) as ledger, tempfile.TemporaryDirectory(prefix="custody-report-") as tmp:
        for seq in ledger.index.records_of_type("key"):
            key = KeyBody.from_json(ledger.read(seq).record.body)
            names.setdefault(key.fingerprint, f"{key.name} ({key.role})")
        for ref in current_items(ledger):
            signed = ledger.read(ref.seq)
            body: ItemBody = signed.record.typed_body()
            entries = history(ledger, ref.seq).entries
            file_path = Path(os.fsdecode(os.fsencode(root.path) + b"/" + body.name_bytes))
            items.append(
                _make_item(
                    signed,
                    result,
                    names,
                    entries,
                    clock.get(ref.seq),
                    file_path if file_path.is_file() else None,
                    Path(tmp),
                )
            )
        for seq in ledger.index.records_of_type("timestamp"):
            stamp = TimestampBody.from_json(ledger.read(seq).record.body)
            try:
                raw: bytes | None = (root.state / stamp.token_file).read_bytes()
            except OSError:
                raw = None
            stamps.append((stamp, raw))
        checkpoints = ledger.index.records_of_type("checkpoint")
        last = ledger.read(checkpoints[-1]) if checkpoints else None
    keys = [
        KeyInfo(
            k["fingerprint"],
            k["name"],
            k["role"],
            k["introduced_at"],
            k["records"],
            f"revoked at record {k['revoked_at']}"
            if k["revoked_at"] is not None
            else f"retired at record {k['retired_at']}"
            if k["retired_at"] is not None
            else "valid",
        )
        for k in result.signers
    ]
    trust = str(result.timestamps[0]["trust"]) if result.timestamps else "embedded"
    case = {k: str(v) for k, v in root.config().case.items() if isinstance(v, str | int)}
    report = Report(
        kind="evidence root",
        source=str(root.path),
        generated=_now(),
        tool=f"custody {__version__}",
        verified=result.ok,
        checks=list(result.checks),
        findings=list(result.findings),
        items=items,
        keys=keys,
        tsas=_tsas(stamps, result.timestamps),
        timestamps=list(result.timestamps),
        clock=list(result.clock),
        ledger_size=result.ledger_size,
        tree_root=result.tree_root,
        reproduce=[],
        case=case,
        checkpoint=(
            {"record": last.seq, **CheckpointBody.from_json(last.record.body).to_json()}
            if last
            else None
        ),
        timestamp_trust=trust,
    )
    report.reproduce = _root_commands(root.path, report, stamps)
    return report


def _bundle_history(
    seq: int, parsed: dict[int, SignedRecord], names: dict[str, str], valid: set[int]
) -> list[Entry]:
    """The item's entries from the bundle's records, as ``custody.handling.history`` does."""
    entries: list[Entry] = []
    signed = parsed[seq]
    item: ItemBody = signed.record.typed_body()

    def add(record: SignedRecord, kind: str, summary: str, detail: dict[str, Any]) -> None:
        signer = record.record.signer
        entries.append(
            Entry(record.seq, record.record.time, kind, signer,
                  names.get(signer, "unknown key"), summary, detail)
        )  # fmt: skip

    add(signed, *describe_item(seq, item, item, seq))
    covering: list[int] = []
    for other_seq, record in sorted(parsed.items()):
        kind = record.record.type
        if kind == "event":
            body = EventBody.from_json(record.record.body)
            named = {ref.seq for ref in body.items} | ({body.output.seq} if body.output else set())
            if seq in named:
                add(record, *describe_event(body, {seq}))
        elif kind == "checkpoint":
            checkpoint = CheckpointBody.from_json(record.record.body)
            if checkpoint.tree_size > seq:
                covering.append(other_seq)
                statement = f": {checkpoint.statement}" if checkpoint.statement else ""
                add(record, "checkpoint",
                    f"checkpoint of {checkpoint.tree_size} records covers it{statement}",
                    {"tree_size": checkpoint.tree_size, "root": checkpoint.root})  # fmt: skip
        elif kind == "timestamp" and other_seq in valid:
            stamp = TimestampBody.from_json(record.record.body)
            if stamp.checkpoint in covering:
                add(record, "timestamp",
                    f"trusted time {stamp.gen_time} from {stamp.tsa_name or stamp.tsa} "
                    f"over checkpoint {stamp.checkpoint}",
                    {"gen_time": stamp.gen_time, "tsa": stamp.tsa,
                     "checkpoint": stamp.checkpoint})  # fmt: skip
    entries.sort(key=lambda e: e.seq)
    return entries


def _from_bundle(path: Path, tsa_trust: Any) -> Report:
    from custody.delivery.bundle_check import BundleSource, verify_bundle
    from custody.timestamps.stamping import ValidToken, reconcile

    result = verify_bundle(path, tsa_trust=tsa_trust)
    source = BundleSource(path)
    try:
        try:
            index = json.loads(source.read("custody/index.json", limit=1 << 26))
        except (ValueError, FileNotFoundError):
            index = {}
        parsed: dict[int, SignedRecord] = {}
        try:
            raw_records = source.read("custody/records.jsonl")
        except FileNotFoundError:
            raw_records = b""
        for line in raw_records.split(b"\n"):
            try:
                signed = SignedRecord.parse(line)
                signed.record.typed_body()
            except RecordError:
                continue
            parsed.setdefault(signed.seq, signed)
        names: dict[str, str] = {}
        key_records: dict[str, SignedRecord] = {}
        for signed in parsed.values():
            if signed.record.type == "key":
                key = KeyBody.from_json(signed.record.body)
                names.setdefault(key.fingerprint, f"{key.name} ({key.role})")
                key_records.setdefault(key.fingerprint, signed)
        valid_records = {int(t["record"]) for t in result.timestamps}
        tokens = [
            ValidToken(
                int(t["record"]),
                int(t["checkpoint"]),
                int(t["tree_size"]),
                datetime.strptime(str(t["gen_time"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
                str(t["tsa"]),
            )
            for t in result.timestamps
        ]
        items: list[ReportItem] = []
        clock_rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="custody-report-") as tmp:
            for seq, signed in sorted(parsed.items()):
                if signed.record.type != "item":
                    continue
                body: ItemBody = signed.record.typed_body()
                row = reconcile(seq, body.path, body.capture_time, signed.record.time, tokens)
                clock_rows.append(row.to_json())
                file_path = _payload_copy(source, "data/" + body.path, Path(tmp))
                items.append(
                    _make_item(
                        signed,
                        result,
                        names,
                        _bundle_history(seq, parsed, names, valid_records),
                        row.to_json(),
                        file_path,
                        Path(tmp),
                    )
                )
        stamps: list[tuple[TimestampBody, bytes | None]] = []
        for signed in parsed.values():
            if signed.record.type == "timestamp":
                stamp = TimestampBody.from_json(signed.record.body)
                rel = "custody/timestamps/" + stamp.token_file.rsplit("/", 1)[-1]
                try:
                    raw: bytes | None = source.read(rel, limit=1 << 22)
                except (FileNotFoundError, CustodyError):
                    raw = None
                stamps.append((stamp, raw))
        top = source.prefix.rstrip("/")
    finally:
        source.close()
    signed_count: dict[str, int] = {}
    for signed in parsed.values():
        signed_count[signed.record.signer] = signed_count.get(signed.record.signer, 0) + 1
    revoked = {
        str(s.record.body.get("key")): s.seq
        for s in parsed.values()
        if s.record.type == "revocation"
    }
    keys = [
        KeyInfo(
            fingerprint,
            KeyBody.from_json(record.record.body).name,
            KeyBody.from_json(record.record.body).role,
            record.seq,
            signed_count.get(fingerprint, 0),
            f"revoked at record {revoked[fingerprint]}" if fingerprint in revoked else "valid",
        )
        for fingerprint, record in sorted(key_records.items(), key=lambda kv: kv[1].seq)
    ]
    info = index.get("checkpoint") if isinstance(index.get("checkpoint"), dict) else None
    trust = str(result.timestamps[0]["trust"]) if result.timestamps else "embedded"
    report = Report(
        kind="evidence bundle",
        source=str(path.resolve()),
        generated=_now(),
        tool=f"custody {__version__}",
        verified=result.ok,
        checks=list(result.checks),
        findings=list(result.findings),
        items=items,
        keys=keys,
        tsas=_tsas(stamps, result.timestamps),
        timestamps=list(result.timestamps),
        clock=clock_rows,
        ledger_size=result.ledger_size,
        tree_root=result.tree_root,
        reproduce=[],
        case=_bag_info(path),
        withheld_events=[w for w in index.get("withheld_events", []) if isinstance(w, dict)],
        checkpoint=info,
        timestamp_trust=trust,
    )
    report.reproduce = _bundle_commands(path.resolve(), top, report, parsed, stamps)
    return report


def _bag_info(path: Path) -> dict[str, str]:
    from custody.delivery.bundle_check import BundleSource

    source = BundleSource(path)
    try:
        text = source.read("bag-info.txt", limit=1 << 20).decode("utf-8", "replace")
    except (FileNotFoundError, CustodyError):
        return {}
    finally:
        source.close()
    wanted = ("Source-Organization", "Contact-Name", "External-Identifier",
              "External-Description", "Bagging-Date", "Bag-Software-Agent")  # fmt: skip
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in wanted and value.strip():
            found[key] = value.strip()
    return found


def _payload_copy(source: Any, rel: str, tmp: Path) -> Path | None:
    """A payload file as a path ffmpeg and exiftool can open (copied out of a zip)."""
    if rel not in source.files or source.files[rel] > MAX_THUMBNAIL_SOURCE:
        return None
    if source.zip is None:
        return Path(source.path) / rel
    suffix = Path(rel).suffix[:16]
    target = tmp / f"payload-{len(list(tmp.iterdir()))}{suffix}"
    with source.open(rel) as handle, open(target, "wb") as out:
        shutil.copyfileobj(handle, out, 1 << 20)
    return target


# --- thumbnails -----------------------------------------------------------------------------


def _run(argv: Sequence[str], data: bytes | None = None) -> bytes | None:
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            stdin=None if data is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 and proc.stdout else None


def _ffmpeg_still(ffmpeg: str, demuxer: str, path: Path | None, data: bytes | None,
                  seek: float, rotate: str | None) -> bytes | None:  # fmt: skip
    box = THUMBNAIL_PX  # fit in a box, never enlarged
    scale = f"scale='min({box},iw)':'min({box},ih)':force_original_aspect_ratio=decrease"
    filters = f"{rotate},{scale}" if rotate else scale
    argv = [ffmpeg, "-nostdin", "-v", "error", "-protocol_whitelist",
            "pipe" if path is None else "file", "-f", demuxer]  # fmt: skip
    if seek > 0:
        argv += ["-ss", f"{seek:.2f}"]
    argv += ["-i", "pipe:0" if path is None else f"file:{path}", "-frames:v", "1", "-an",
             "-vf", filters, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4",
             "pipe:1"]  # fmt: skip
    out = _run(argv, data)
    return out if out and out.startswith(b"\xff\xd8") else None


def _duration(metadata: dict[str, Any] | None) -> float:
    value = highlights(metadata).get("duration_s")
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def thumbnail(path: Path, mime: str | None, metadata: Any, tmp: Path) -> Thumbnail:
    """A JPEG thumbnail (images) or still (videos) of at most 240 px, as a data: URI."""
    kind = _kind(mime)
    if kind == "audio":
        return Thumbnail(None, "no thumbnail: an audio recording has no picture")
    if kind == "document":
        return Thumbnail(None, "no thumbnail: documents are not previewed; see the file itself")
    if kind not in ("image", "video"):
        return Thumbnail(None, "no thumbnail: not an image or a video")
    ffmpeg = shutil.which("ffmpeg")
    meta = metadata if isinstance(metadata, dict) else None
    orientation = (meta or {}).get("IFD0:Orientation")
    rotate = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    jpeg: bytes | None = None
    note = ""
    if ffmpeg and kind == "image" and mime in _IMAGE_DEMUXERS:
        jpeg = _ffmpeg_still(ffmpeg, _IMAGE_DEMUXERS[mime], path, None, 0, rotate)
        note = f"thumbnail made from the file with ffmpeg ({THUMBNAIL_PX} px)"
    elif ffmpeg and kind == "video" and mime in _VIDEO_DEMUXERS:
        duration = _duration(meta)
        seek = 1.0 if duration > 2 else 0.0
        jpeg = _ffmpeg_still(ffmpeg, _VIDEO_DEMUXERS[mime], path, None, seek, None)
        if jpeg is None and seek:
            seek = 0.0
            jpeg = _ffmpeg_still(ffmpeg, _VIDEO_DEMUXERS[mime], path, None, 0, None)
        note = f"still from the video at {seek:.0f} s, made with ffmpeg"
    if jpeg is None and ffmpeg and mime in _HEIF:
        decoded = _heif_decode(path, tmp)
        if decoded is not None:
            jpeg = _ffmpeg_still(ffmpeg, "jpeg_pipe", None, decoded, 0, None)
            note = "thumbnail decoded with libheif's heif-convert, scaled with ffmpeg"
    if jpeg is None:
        preview = _embedded_preview(path)
        if preview is not None and ffmpeg:
            jpeg = _ffmpeg_still(ffmpeg, "jpeg_pipe", None, preview, 0, rotate)
            note = "the preview picture embedded in the file (read with exiftool), scaled"
    if jpeg is None:
        if not ffmpeg:
            return Thumbnail(None, "no thumbnail: ffmpeg is not installed")
        what = "picture" if kind == "image" else "still"
        return Thumbnail(None, f"no {what} could be made from this file (damaged or unsupported)")
    return Thumbnail("data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"), note)


def _heif_decode(path: Path, tmp: Path) -> bytes | None:
    """HEIC/HEIF/AVIF decoded to JPEG by libheif (ffmpeg cannot read HEIF stills)."""
    tool = shutil.which("heif-convert")
    if not tool:
        return None
    with tempfile.TemporaryDirectory(dir=tmp) as work:
        target = Path(work) / "still.jpg"
        _run([tool, "-q", "85", str(path), str(target)])
        made = sorted(Path(work).glob("still*.jpg"))
        data = made[0].read_bytes() if made else b""
    return data if data.startswith(b"\xff\xd8") else None


def _embedded_preview(path: Path) -> bytes | None:
    exiftool = shutil.which("exiftool")
    if not exiftool:
        return None
    for tag in ("PreviewImage", "ThumbnailImage", "JpgFromRaw", "OtherImage"):
        data = _run([exiftool, "-b", f"-{tag}", str(path.absolute())])
        if data and data.startswith(b"\xff\xd8"):
            return data
    return None


# --- reproducing the checks -------------------------------------------------------------------


_SIGNATURE_LOOP = """while IFS= read -r line; do
  signer=$(printf '%s' "$line" | sed 's/.*"signer":"\\([0-9a-f]*\\)".*/\\1/')
  printf '%s' "$line" | sed 's/^{"sig":"[^"]*","signed"://; s/}$//' > msg.bin
  printf '%s' "$line" | sed 's/^{"sig":"\\([^"]*\\)".*/\\1/' | base64 -d > sig.bin
  openssl pkeyutl -verify -pubin -inkey {keys}/"$signer".pem -rawin -in msg.bin -sigfile sig.bin
done < {lines}"""


def _manifest_heredoc(root: Path, items: Sequence[ReportItem]) -> str:
    lines = [f"{i.digests['sha256']}  {i.path}" for i in items if "\n" not in i.path]
    return f"cd {shlex.quote(str(root))} && sha256sum -c <<'EOF'\n" + "\n".join(lines) + "\nEOF"


def _token_commands(
    base: str, stamps: Sequence[tuple[TimestampBody, bytes | None]], token_dir: str
) -> list[Command]:
    from custody.timestamps.rfc3161 import openssl_verify_command

    commands = []
    for stamp, _ in stamps:
        token = f"{token_dir}/{stamp.token_file.rsplit('/', 1)[-1]}"
        argv = openssl_verify_command(
            token=token, digest=stamp.imprint, ca_file="TSA-ROOT.pem", untrusted=None
        )
        commands.append(
            Command(
                f"the RFC 3161 token of record over checkpoint {stamp.checkpoint} (genTime "
                f"{stamp.gen_time}, {stamp.tsa_name or stamp.tsa}); the digest is the SHA-256 "
                "of the checkpoint line; TSA-ROOT.pem is the TSA's root certificate, obtained "
                "from the TSA itself (add -untrusted with its intermediates if the token does "
                "not carry them)",
                f"cd {shlex.quote(base)} && " + shlex.join(argv),
            )
        )
    return commands


def _root_commands(
    root: Path, report: Report, stamps: Sequence[tuple[TimestampBody, bytes | None]]
) -> list[Command]:
    q = shlex.quote(str(root))
    commands = [
        Command("every check at once, with custody installed", f"custody verify --root {q}"),
        Command(
            "each file against the SHA-256 recorded for it (every line must say OK)",
            _manifest_heredoc(root, report.items),
        ),
        Command(
            "the signature of every ledger record, with the public keys kept beside the ledger "
            "(every line must say 'Signature Verified Successfully')",
            f"cd {q}/.custody && "
            + _SIGNATURE_LOOP.replace("{keys}", "keys").replace("{lines}", "ledger.jsonl"),
        ),
        Command(
            "the Merkle root of the whole ledger (RFC 9162), to compare with the latest "
            "checkpoint's root",
            f"cd {q}/.custody && python3 -c '\nimport hashlib\n"
            "def root(h):\n"
            "    if len(h) == 1: return h[0]\n"
            "    k = 1\n"
            "    while k * 2 < len(h): k *= 2\n"
            '    return hashlib.sha256(b"\\x01" + root(h[:k]) + root(h[k:])).digest()\n'
            'lines = open("ledger.jsonl", "rb").read().split(b"\\n")[:-1]\n'
            'print(root([hashlib.sha256(b"\\x00" + l).digest() for l in lines]).hex())\'',
        ),
    ]
    commands += _token_commands(str(root / ".custody"), stamps, "timestamps")
    return commands


def _bundle_commands(
    path: Path,
    top: str,
    report: Report,
    parsed: dict[int, SignedRecord],
    stamps: Sequence[tuple[TimestampBody, bytes | None]],
) -> list[Command]:
    commands: list[Command] = []
    if path.is_file():
        folder = str(path.parent / top) if top else str(path.parent / path.stem)
        if top:
            unpack = f"cd {shlex.quote(str(path.parent))} && unzip {shlex.quote(path.name)}"
        else:
            unpack = f"unzip {shlex.quote(str(path))} -d {shlex.quote(folder)}"
        commands.append(Command("unpack the bundle (the checks below run on the folder)", unpack))
    else:
        folder = str(path)
    q = shlex.quote(folder)
    commands += [
        Command(
            "every check at once, with custody installed",
            f"custody verify {shlex.quote(str(path))}",
        ),
        Command(
            "the BagIt bag is complete and valid (RFC 8493), with the independent bagit-python",
            f"bagit.py --validate {q}",
        ),
        Command(
            "each evidence file against the SHA-256 payload manifest (every line must say OK)",
            f"cd {q} && sha256sum -c manifest-sha256.txt",
        ),
        Command(
            "the signature of every record in the bundle (every line must say 'Signature "
            "Verified Successfully')",
            f"cd {q} && "
            + _SIGNATURE_LOOP.replace("{keys}", "custody/keys").replace(
                "{lines}", "custody/records.jsonl"
            ),
        ),
        Command(
            "each record's inclusion proof against the checkpoint's Merkle root (RFC 9162 "
            "section 2.1.3.2; prints the root, which must equal the checkpoint's)",
            f"cd {q} && for p in custody/proofs/record-*.json; do python3 -c '\n"
            "import hashlib, json, sys\n"
            "p = json.load(open(sys.argv[1]))\n"
            'fn, sn = p["leaf_index"], p["tree_size"] - 1\n'
            'r = hashlib.sha256(b"\\x00" + p["record_line"].encode()).digest()\n'
            'for h in map(bytes.fromhex, p["audit_path"]):\n'
            "    if fn & 1 or fn == sn:\n"
            '        r = hashlib.sha256(b"\\x01" + h + r).digest()\n'
            "        while not fn & 1 and fn: fn, sn = fn >> 1, sn >> 1\n"
            "    else:\n"
            '        r = hashlib.sha256(b"\\x01" + r + h).digest()\n'
            "    fn, sn = fn >> 1, sn >> 1\n"
            'print(sys.argv[1], r.hex(), "OK" if sn == 0 and r.hex() == p["root"] else "FAILED")'
            '\' "$p"; done',
        ),
    ]
    commands += _token_commands(folder, stamps, "custody/timestamps")
    del parsed
    return commands


# --- HTML -----------------------------------------------------------------------------------


_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _t(value: object, tag: str = "span", cls: str = "") -> str:
    """Text from people or file names: escaped, its direction found by the browser."""
    text = unicodedata.normalize("NFC", str(value))
    lang = ' lang="ar"' if _ARABIC.search(text) else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<{tag} dir="auto"{lang}{klass}>{_e(text)}</{tag}>'


def _path(value: str) -> str:
    """A path: each segment isolated so that right-to-left names keep their own order."""
    parts = unicodedata.normalize("NFC", value).split("/")
    inner = '<span class="sep">/</span>'.join(
        ('<bdi lang="ar">' if _ARABIC.search(p) else "<bdi>") + _e(p) + "</bdi>" for p in parts
    )
    return f'<span class="path" dir="ltr">{inner}</span>'


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            text = f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({n:,} bytes)"
            return text
        value /= 1024
    return f"{n:,} bytes"


def _gps_text(gps: tuple[float, float]) -> str:
    lat, lon = gps
    text = (
        f"{lat:.5f}, {lon:.5f} ({abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, "
        f"{abs(lon):.5f}° {'E' if lon >= 0 else 'W'})"
    )
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        text += ": latitude and longitude exactly zero, which devices write when they had no fix"
    return text


_CSS = """
@page { size: A4; margin: 16mm 15mm 18mm 15mm;
  @bottom-right { content: "Page " counter(page) " of " counter(pages);
                  font: 8pt "DejaVu Sans", sans-serif; color: #555; }
  @bottom-left { content: "custody chain-of-custody report"; font: 8pt "DejaVu Sans", sans-serif;
                 color: #555; } }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Noto Sans", "Noto Sans Arabic", "Noto Naskh Arabic",
       sans-serif; font-size: 10pt; color: #111; line-height: 1.35; }
body { margin: 0 auto; max-width: 180mm; padding: 0; }
:lang(ar) { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", sans-serif; }
h1 { font-size: 18pt; margin: 0 0 2mm 0; }
h2 { font-size: 13pt; margin: 7mm 0 2mm 0; border-bottom: 1.5pt solid #333; padding-bottom: 1mm;
     break-after: avoid; }
h3 { font-size: 11.5pt; margin: 0 0 2mm 0; break-after: avoid; }
p { margin: 1.5mm 0; }
.meta { color: #444; font-size: 9pt; }
.verdict { border: 2.5pt solid; padding: 4mm 5mm; margin: 4mm 0; break-inside: avoid; }
.verdict.ok { border-color: #1b6e20; background: #eef7ee; }
.verdict.bad { border-color: #a11; background: #fbeeee; }
.verdict .word { font-size: 20pt; font-weight: bold; letter-spacing: 0.5pt; }
.verdict.ok .word { color: #1b6e20; } .verdict.bad .word { color: #a11; }
table { border-collapse: collapse; width: 100%; margin: 1.5mm 0 3mm 0; font-size: 8.8pt; }
th, td { border: 0.6pt solid #999; padding: 1mm 1.5mm; text-align: start; vertical-align: top;
         overflow-wrap: break-word; }
table.fixed { table-layout: fixed; }
th { background: #eee; }
tr { break-inside: avoid; }
table.facts th { width: 34%; font-weight: normal; color: #333; background: #f5f5f5; }
.hash, .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt;
               overflow-wrap: anywhere; word-break: break-all; }
.path { overflow-wrap: anywhere; }
.sep { color: #777; padding: 0 0.3pt; }
.item { border-top: 1pt solid #bbb; padding-top: 3mm; margin-top: 5mm; }
.item-head { display: flex; gap: 5mm; align-items: flex-start; break-inside: avoid; }
.item-head .facts-wrap { flex: 1 1 auto; min-width: 0; }
figure { margin: 0; flex: 0 0 64mm; text-align: center; }
figure img { max-width: 64mm; max-height: 64mm; border: 0.6pt solid #888; }
figure .none { width: 64mm; border: 0.6pt dashed #999; padding: 8mm 3mm; color: #555;
               font-size: 8.5pt; }
figcaption { font-size: 7.5pt; color: #555; margin-top: 1mm; }
.pass { color: #1b6e20; font-weight: bold; } .fail { color: #a11; font-weight: bold; }
.warn { color: #8a5a00; font-weight: bold; }
pre { font-family: "DejaVu Sans Mono", monospace; font-size: 7.6pt; background: #f6f6f6;
      border: 0.6pt solid #ccc; padding: 2mm; white-space: pre-wrap; overflow-wrap: anywhere;
      break-inside: avoid; margin: 1mm 0 3mm 0; }
.cmd { break-inside: avoid; }
.small { font-size: 8.5pt; color: #333; }
@media screen { body { padding: 8mm; } }
"""


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (see module docstring)."""
    out: list[str] = []
    w = out.append
    title = f"Chain-of-custody report: {report.kind}"
    w("<!DOCTYPE html>")
    w('<html lang="en" dir="ltr"><head><meta charset="utf-8">')
    w(
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
    )
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>")
    w(f"<h1>{_e(title)}</h1>")
    w(f'<p class="meta">Source: {_t(report.source, cls="mono")}<br>')
    w(f"Report made {_e(report.generated)} by {_e(report.tool)}.</p>")
    if report.case:
        w('<table class="facts">')
        for key, value in report.case.items():
            w(f"<tr><th>{_e(key)}</th><td>{_t(value)}</td></tr>")
        w("</table>")
    _verdict(report, w)
    _overview(report, w)
    w("<h2>The evidence, item by item</h2>")
    for number, item in enumerate(report.items, 1):
        _item(item, number, len(report.items), w)
    _checks(report, w)
    _keys_and_tsas(report, w)
    _reproduce(report, w)
    w("</body></html>")
    return "\n".join(out) + "\n"


def _verdict(report: Report, w: Any) -> None:
    errors, warnings = report.errors, report.warnings
    ok = report.verified
    w(f'<section class="verdict {"ok" if ok else "bad"}" id="verdict">')
    w(f'<div class="word">{_e(report.verdict)}</div>')
    if ok:
        w(
            f"<p><b>Every check passed.</b> The {len(report.items)} evidence file(s) below are "
            "exactly the files that were catalogued: the same size and the same digests. "
            "Every record about them is signed, and the records are linked so that none can "
            "be changed, removed or reordered without detection.</p>"
        )
    else:
        w(
            f"<p><b>{len(errors)} integrity finding(s).</b> Something in this "
            f"{_e(report.kind)} is not as it was recorded; each finding is listed under "
            "&ldquo;Checks performed&rdquo; and beside the item it concerns.</p>"
        )
    stamped = sorted(str(t["gen_time"]) for t in report.timestamps)
    if stamped:
        w(
            f"<p>Trusted time: {len(stamped)} RFC 3161 timestamp token(s) prove the records "
            f"existed by {_e(stamped[0])} (earliest); tokens were "
            f"{_e(_trust_words(report.timestamp_trust))}.</p>"
        )
    else:
        w("<p>No trusted timestamp is available: the times shown come from the "
          "cataloguing computer's clock only.</p>")  # fmt: skip
    if warnings:
        w(f'<p class="warn">{len(warnings)} warning(s): see &ldquo;Checks performed&rdquo;.</p>')
    if report.checkpoint:
        cp = report.checkpoint
        w(
            f'<p class="small">Ledger of {_e(report.ledger_size)} records; checkpoint record '
            f"{_e(cp.get('record'))} commits to the first {_e(cp.get('tree_size'))} records with "
            f'Merkle root <span class="hash">{_e(cp.get("root"))}</span>.</p>'
        )
    w("</section>")


def _overview(report: Report, w: Any) -> None:
    w("<h2>Items in this report</h2>")
    w('<table class="fixed"><colgroup><col style="width:5%"><col style="width:27%">'
      '<col style="width:13%"><col style="width:15%"><col style="width:26%">'
      '<col style="width:14%"></colgroup>')  # fmt: skip
    w("<thead><tr><th>#</th><th>Name</th><th>Type</th><th>Size</th>"
      "<th>SHA-256</th><th>State</th></tr></thead><tbody>")  # fmt: skip
    for number, item in enumerate(report.items, 1):
        if not item.intact:
            state = '<span class="fail">NOT INTACT</span>'
        elif any(f.severity == "error" for f in item.findings):
            state = '<span class="fail">records in doubt</span>'
        else:
            state = '<span class="pass">intact</span>'
        w(
            f"<tr><td>{number}</td><td>{_t(item.name)}</td><td>{_e(item.mime or 'unknown')}</td>"
            f'<td>{_e(_size(item.size))}</td><td class="hash">{_e(item.digests["sha256"])}</td>'
            f"<td>{state}</td></tr>"
        )
    w("</tbody></table>")
    if report.withheld_events:
        listing = ", ".join(str(int(e.get("record", -1))) for e in report.withheld_events)
        w(
            f'<p class="small">Withheld from this bundle: event record(s) {_e(listing)}, '
            "which also name items outside it (selective disclosure). The sender can provide "
            "them; nothing about the items withheld is in the bundle.</p>"
        )


def _row(label: str, value_html: str) -> str:
    return f"<tr><th>{_e(label)}</th><td>{value_html}</td></tr>"


def _item(item: ReportItem, number: int, total: int, w: Any) -> None:
    w(f'<section class="item" id="item-{item.seq}">')
    w('<div class="item-head"><div class="facts-wrap">')
    w(f"<h3>Item {number} of {total}: {_t(item.name)}</h3>")
    w('<table class="facts">')
    w(_row("Path", _path(item.path)))
    w(_row("Size", _e(_size(item.size))))
    w(_row("Type", _e(item.mime or "unknown (exiftool could not tell)")))
    for algorithm in sorted(item.digests, key=lambda a: (a != "sha256", a)):
        w(_row(algorithm.upper(), f'<span class="hash">{_e(item.digests[algorithm])}</span>'))
    errors = any(f.severity == "error" for f in item.findings)
    cls = "fail" if not item.intact or errors else "warn" if item.findings else "pass"
    w(_row("State", f'<span class="{cls}">{_e(item.status)}</span>'))
    w(_row("Ledger record", f"record {item.seq}"))
    w("</table></div>")
    w("<figure>")
    if item.thumbnail.data_uri:
        w(f'<img src="{_e(item.thumbnail.data_uri)}" alt="{_e("picture of " + item.name)}">')
    else:
        w(f'<div class="none">{_e(item.thumbnail.note)}</div>')
    if item.thumbnail.data_uri:
        w(f"<figcaption>{_e(item.thumbnail.note)}</figcaption>")
    w("</figure></div>")
    w("<p><b>What the file itself claims</b> (metadata written by the device; not verified)</p>")
    w('<table class="facts">')
    w(_row("Time of capture claimed", _t(item.capture_time) if item.capture_time else "none"))
    w(_row("GPS position", _e(_gps_text(item.gps)) if item.gps else "none"))
    w(_row("Device", _t(item.device) if item.device else "not recorded"))
    if "image_size" in item.highlights:
        size = str(item.highlights["image_size"]).replace(" ", " × ").replace("x", " × ")
        w(_row("Picture size (pixels)", _e(size)))
    if "duration_s" in item.highlights:
        w(_row("Duration", f"{_e(item.highlights['duration_s'])} s"))
    w("</table>")
    w("<p><b>Who collected it, and when it was catalogued</b></p>")
    w('<table class="facts">')
    for label, value in (("Collector", item.collector), ("Source", item.source),
                         ("Location (as told)", item.location), ("Note", item.note)):  # fmt: skip
        w(_row(label, _t(value) if value else "not recorded"))
    if item.tags:
        w(_row("Tags", ", ".join(_t(t) for t in item.tags)))
    if item.acquired_from:
        w(_row("Copied from", _t(item.acquired_from, cls="mono")))
    w(_row("Catalogued (UTC, cataloguing computer's clock)",
           f"{_e(item.catalogued)} by {_t(item.catalogued_by)}"))  # fmt: skip
    if item.timestamps:
        stamps = "<br>".join(
            f"{_e(t['gen_time'])} from {_t(t['tsa'], cls='mono')} (token record {_e(t['record'])},"
            f" over checkpoint {_e(t['checkpoint'])})"
            for t in item.timestamps
        )
    else:
        stamps = "none: no trusted timestamp covers this record"
    w(_row("Trusted timestamps covering it", stamps))
    if item.clock and item.clock.get("flags"):
        w(_row("Clock questions", '<span class="warn">'
               + _e(", ".join(item.clock["flags"])) + "</span>"))  # fmt: skip
    w("</table>")
    for finding in item.findings:
        cls = "warn" if finding.severity == "warning" else "fail"
        w(f'<p class="{cls}">{_e(finding.code)}: {_t(finding.message)}</p>')
    w("<p><b>Custody events, in ledger order</b></p>")
    w(
        '<table class="fixed"><colgroup><col style="width:8%"><col style="width:22%">'
        '<col style="width:12%"><col style="width:16%"><col style="width:42%"></colgroup>'
    )
    w("<thead><tr><th>Record</th><th>Time (UTC)</th><th>What</th><th>By</th>"
      "<th>Detail</th></tr></thead><tbody>")  # fmt: skip
    for entry in item.events:
        w(
            f"<tr><td>{entry.seq}</td><td>{_e(entry.time)}</td><td>{_e(entry.kind)}</td>"
            f"<td>{_t(entry.signer_name)}</td><td>{_t(entry.summary)}</td></tr>"
        )
    w("</tbody></table></section>")


def _checks(report: Report, w: Any) -> None:
    w("<h2>Checks performed and their results</h2>")
    w(
        '<table class="fixed"><colgroup><col style="width:17%"><col style="width:9%">'
        '<col style="width:10%"><col style="width:64%"></colgroup>'
    )
    w("<thead><tr><th>Check</th><th>Result</th><th>Covered</th><th>What was checked</th>"
      "</tr></thead><tbody>")  # fmt: skip
    for check in report.checks:
        mark = (
            '<span class="pass">pass</span>' if check.passed else '<span class="fail">FAIL</span>'
        )
        w(f"<tr><td>{_e(check.name)}</td><td>{mark}</td><td>{check.covered}</td>"
          f"<td>{_t(check.detail)}</td></tr>")  # fmt: skip
    w("</tbody></table>")
    if not report.findings:
        w("<p>No finding: nothing is missing, changed, unexpected or unsigned.</p>")
        return
    w("<p><b>Findings</b></p>")
    w(
        '<table class="fixed"><colgroup><col style="width:23%"><col style="width:11%">'
        '<col style="width:14%"><col style="width:26%"><col style="width:13%">'
        '<col style="width:13%"></colgroup>'
    )
    w("<thead><tr><th>Finding</th><th>Severity</th><th>Concerning</th><th>Detail</th>"
      "<th>Expected</th><th>Found</th></tr></thead><tbody>")  # fmt: skip
    for f in report.findings:
        cls = "warn" if f.severity == "warning" else "fail"
        w(
            f'<tr><td class="{cls}">{_e(f.code)}</td><td>{_e(f.severity)}</td>'
            f"<td>{_t(f.item)}</td><td>{_t(f.message)}</td>"
            f'<td class="hash">{_e(f.expected or "")}</td><td class="hash">{_e(f.found or "")}</td>'
            "</tr>"
        )
    w("</tbody></table>")


def _keys_and_tsas(report: Report, w: Any) -> None:
    w("<h2>Keys and timestamp authorities relied on</h2>")
    w(
        "<p>Each record is signed with an Ed25519 key. A key is identified by its fingerprint "
        "(the SHA-256 of the public key); compare these fingerprints with the ones the "
        "signers published or gave you independently.</p>"
    )
    w("<table><thead><tr><th>Name</th><th>Role</th><th>Fingerprint</th><th>Records signed</th>"
      "<th>Status</th></tr></thead><tbody>")  # fmt: skip
    for key in report.keys:
        w(
            f"<tr><td>{_t(key.name)}</td><td>{_e(key.role)}</td>"
            f'<td class="hash">{_e(key.fingerprint)}</td>'
            f"<td>{_e(key.records if key.records is not None else '')}</td>"
            f"<td>{_e(key.status)}</td></tr>"
        )
    w("</tbody></table>")
    if not report.tsas:
        w("<p>No timestamp authority was used.</p>")
        return
    w("<table><thead><tr><th>Timestamp authority</th><th>Tokens</th><th>Signing certificate</th>"
      "<th>How the tokens were checked</th></tr></thead><tbody>")  # fmt: skip
    for tsa in report.tsas:
        cert = (
            f"{_t(tsa.certificate_subject)}<br>SHA-256 "
            f'<span class="hash">{_e(tsa.certificate_sha256)}</span>'
            if tsa.certificate_subject
            else "not readable from the token"
        )
        trust = _trust_words(tsa.trust) if tsa.trust in ("roots", "embedded") else tsa.trust
        w(
            f"<tr><td>{_t(tsa.name)}<br>{_t(tsa.url, cls='mono')}</td>"
            f"<td>{tsa.tokens} ({_e(', '.join(tsa.gen_times))})</td><td>{cert}</td>"
            f"<td>{_e(trust)}</td></tr>"
        )
    w("</tbody></table>")


def _reproduce(report: Report, w: Any) -> None:
    w("<h2>How to reproduce each check</h2>")
    w(
        f"<p>This report was made by {_e(report.tool)}. Every check can be repeated "
        "independently with standard tools (coreutils, OpenSSL, Python 3, bagit-python), "
        "without custody, by running these commands in a shell:</p>"
    )
    for command in report.reproduce:
        w(f'<div class="cmd"><p class="small">{_t(command.purpose)}</p>')
        w(f"<pre>{_e(command.command)}</pre></div>")


# --- PDF ------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(html_text: str, out: Path, *, timeout: float = PDF_TIMEOUT) -> None:
    """Print the HTML to an A4 PDF at ``out`` with headless Chromium."""
    browser = find_chromium()
    if browser is None:
        raise ToolMissingError(
            "chromium is not installed: install Debian's 'chromium' package "
            "(apt-get install chromium) to write PDF reports, or write HTML with --out FILE.html"
        )
    with tempfile.TemporaryDirectory(prefix="custody-pdf-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        page.write_text(html_text, encoding="utf-8")
        pdf = folder / "report.pdf"
        argv = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--hide-scrollbars",
            f"--user-data-dir={folder / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        if os.geteuid() == 0:
            argv.insert(2, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise RenderError(f"chromium did not finish printing within {timeout:.0f} s") from None
        except OSError as exc:
            raise RenderError(f"chromium could not be started: {exc.strerror}") from None
        data = pdf.read_bytes() if pdf.is_file() else b""
        if proc.returncode != 0 or not data.startswith(b"%PDF"):
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise RenderError(f"chromium could not print the report: {detail[0][:200]}")
        from custody.system.files import write_atomic

        write_atomic(out, data)  # raises StorageError with the reason
