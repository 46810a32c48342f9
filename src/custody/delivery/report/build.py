"""Building a report: everything about an evidence root or a received bundle, as data.

``build_report`` gathers everything about an evidence root or a received bundle into a
``Report`` (plain data): the verdict and every check and finding of ``verify_root`` /
``verify_bundle`` (verification is not redone here), then each item - name, size, type,
digests, a thumbnail or video still, what its metadata claims (capture time, GPS,
device), who collected it and from where, when it was catalogued, the trusted
timestamps covering it and every custody event in ledger order (``custody.handling.history`` for
a root; the same descriptions over the bundle's records for a bundle), its exhibit number and
who holds it now, what the source it came from says of it (``provenance``, phrased as that
source's claims, with the checks verify re-ran of the source's own proofs) - and the case,
the keys and timestamp authorities relied on, the digest of a bundle
(``custody.delivery.digests``), the version and digest of custody itself and the exact
commands with which an independent expert reproduces each check.

Case details and exhibit numbers come only from records that verification found authentic
and allowed (records with an error finding are left out), in ledger order, by the rules of
``custody.ledger.exhibits``. ``exhibits``/``tags``/``incidents`` narrow the items shown
(verification still covers everything); items with exhibit numbers come first, in exhibit
order. Identifying values an item's record holds only as salted commitments (collector,
source path, volume: ``custody.ledger.disclosures``) are shown when the root keeps them or
the bundle (or ``disclosures`` given separately) discloses them, else named as withheld.

Nothing here prints; the CLI renders and writes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custody import __version__
from custody.delivery.report.commands import bundle_commands, root_commands, tool_command
from custody.delivery.report.formats import utc_now_display
from custody.delivery.report.model import (
    KeyInfo,
    Preparer,
    Report,
    ReportItem,
    Thumbnail,
    TsaInfo,
    media_kind,
)
from custody.delivery.report.thumbnails import MAX_THUMBNAIL_SOURCE, thumbnail
from custody.errors import CustodyError, InputError, UsageError
from custody.findings import Finding, VerificationResult
from custody.handling.case import CaseDetails, book_of
from custody.handling.history import Entry, describe_event, describe_exhibit, describe_item
from custody.i18n import N_, _, ngettext
from custody.ledger.bodies import (
    CaseBody,
    CheckpointBody,
    EventBody,
    ExhibitBody,
    ItemBody,
    KeyBody,
    TimestampBody,
    exhibit_key,
)
from custody.ledger.captures import capture_summary
from custody.ledger.describe import highlights, provenance_view
from custody.ledger.disclosures import (
    Disclosure,
    DisclosureStore,
    parse_lines,
    reveal,
    withheld,
)
from custody.ledger.exhibits import ExhibitBook, sort_key
from custody.ledger.records import SignedRecord
from custody.trust.policy import TrustPolicy

# --- building -------------------------------------------------------------------------------


def is_bundle(path: Path) -> bool:
    """A bundle folder (with bagit.txt) or a file (a zip, or something to be refused)."""
    return (path.is_dir() and (path / "bagit.txt").is_file()) or path.is_file()


def build_report(
    source: Path,
    *,
    policy: TrustPolicy,
    exhibits: Sequence[str] = (),
    tags: Sequence[str] = (),
    incidents: Sequence[str] = (),
    disclosures: Mapping[str, Disclosure] | None = None,
    thumbnails: bool = True,
    preparer: Preparer | None = None,
) -> Report:
    """Verify ``source`` (an evidence root, or a bundle folder or zip) and gather the report.

    ``policy`` is the preparer's trust (``custody.trust.policy``): whose keys they trust, and
    the TSA roots tokens are checked against (without them, against the certificates the
    tokens carry, and the report says so). ``exhibits``, ``tags`` (given at cataloguing or by
    ``custody tag``) and ``incidents`` (``event note --incident``) select the items shown
    (UsageError for a number, tag or incident no item has); ``disclosures`` are withheld
    values given separately for a bundle (each checked against its commitment);
    ``thumbnails=False`` skips the pictures (for the register and certifications). Raises
    what verification raises for input that cannot be checked at all (not a root, not a
    bundle, a zip bomb); every other problem is a finding.
    """
    from custody.delivery.digests import tool_identity

    source = Path(source)
    selection = _Selection(tuple(exhibits), tuple(tags), tuple(incidents))
    if is_bundle(source):
        try:
            report = _from_bundle(source, policy, selection, thumbnails, dict(disclosures or {}))
        except InputError as exc:
            if not source.is_file():
                raise
            # A bundle file that cannot be read at all (a truncated or damaged zip) still
            # gets its report, saying NOT VERIFIED and why: the court sees what was received.
            report = _unreadable(source, str(exc))
    else:
        report = _from_root(source, policy, selection, thumbnails)
    report.tool_info = tool_identity()
    report.reproduce.append(tool_command())
    report.preparer = preparer
    report.selection = [
        *(_("exhibit {label}").format(label=e) for e in exhibits),
        *(_("tag {tag}").format(tag=t) for t in tags),
        *(_("incident {incident}").format(incident=i) for i in incidents),
    ]
    return report


def _unreadable(path: Path, reason: str) -> Report:
    from custody.findings import Check, Code

    finding = Finding(Code.BUNDLE_MALFORMED, str(path), reason)
    return Report(
        kind="evidence bundle",
        source=str(path.resolve()),
        generated=_now(),
        tool=f"custody {__version__}",
        verdict_code="failed",
        checks=[Check("bundle readable", False, 0, _("the bundle file could be opened and read"))],
        findings=[finding],
        items=[],
        keys=[],
        tsas=[],
        timestamps=[],
        clock=[],
        ledger_size=0,
        tree_root=None,
        reproduce=[],
    )


class _Selection:
    """Which items a report shows: all, or those with these exhibit numbers, tags (given at
    cataloguing or by ``custody tag``) or incidents (``event note --incident``)."""

    def __init__(
        self, exhibits: tuple[str, ...], tags: tuple[str, ...], incidents: tuple[str, ...] = ()
    ) -> None:
        self.exhibits = {exhibit_key(e): e for e in exhibits}
        self.tags = tags
        self.incidents = incidents
        self.chosen: set[int] = set()  # items chosen by tag or incident

    def __bool__(self) -> bool:
        return bool(self.exhibits or self.tags or self.incidents)

    def check(
        self,
        book: ExhibitBook,
        tagged: Mapping[str, set[int]],
        incidents: Mapping[str, set[int]],
    ) -> None:
        """Every selector must match something (UsageError otherwise); ``tagged`` and
        ``incidents`` map each name to the items that have it now."""
        for key, label in self.exhibits.items():
            if key not in book.by_key:
                known = ", ".join(e.label for e in book.in_order()[:20]) or _("none")
                raise UsageError(
                    _("no item has the exhibit number {label!r} (exhibits: {known})").format(
                        label=label, known=known
                    )
                )
        for tag in self.tags:
            if not tagged.get(tag):
                raise UsageError(_("no item has the tag {tag!r}").format(tag=tag))
            self.chosen |= tagged[tag]
        for incident in self.incidents:
            if not incidents.get(incident):
                known = ", ".join(repr(i) for i in sorted(incidents)) or _("none recorded")
                raise UsageError(
                    _(
                        "no item is noted as part of the incident {incident!r} (incidents: {known})"
                    ).format(incident=incident, known=known)
                )
            self.chosen |= incidents[incident]

    def wants(self, seq: int, book: ExhibitBook) -> bool:
        if not self:
            return True
        label = book.label_of(seq)
        return (label is not None and exhibit_key(label) in self.exhibits) or seq in self.chosen


def _by_tag(tags: Mapping[int, Sequence[str]]) -> dict[str, set[int]]:
    """Tag -> the items that have it, from item -> its tags."""
    found: dict[str, set[int]] = {}
    for seq, held in tags.items():
        for tag in held:
            found.setdefault(tag, set()).add(seq)
    return found


def _in_filing_order(items: list[ReportItem]) -> list[ReportItem]:
    """Exhibits first, in exhibit order; then the other items in ledger order."""
    numbered = sorted((i for i in items if i.exhibit), key=lambda i: sort_key(i.exhibit or ""))
    return numbered + [i for i in items if not i.exhibit]


def current_holder(entries: Sequence[Entry]) -> str:
    """Who holds an item now, as its records say: the person whose key catalogued it, then
    each transfer's recipient, each receipt's signer; or that it was disposed of."""
    holder = _("unknown")
    for entry in entries:
        if entry.kind in ("catalogued", "ingested", "receive"):
            holder = entry.signer_name
        elif entry.kind == "transfer":
            holder = str(entry.detail.get("to") or holder)
        elif entry.kind == "dispose":
            reason = entry.detail.get("reason")
            holder = (
                _("nobody: disposed of ({reason})").format(reason=reason)
                if reason
                else _("nobody: disposed of")
            )
    return holder


def _with_exhibit(item: ReportItem, book: ExhibitBook) -> ReportItem:
    exhibit = book.by_item.get(item.seq)
    if exhibit is not None:
        item.exhibit, item.exhibit_record = exhibit.label, exhibit.record
    item.holder = current_holder(item.events)
    return item


def _rejected(result: VerificationResult) -> set[int]:
    """Records verification found fault with: they state no case and number no exhibit."""
    return {f.seq for f in result.findings if f.severity == "error" and f.seq is not None}


def _now() -> str:
    return utc_now_display()


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
    if others and files and all(f.code == "FILE_UNEXPECTED" for f in files):
        # The item's own record is not authentic, so no authentic record describes the
        # file (issue 15, point 20): the record is in doubt, not the file's bytes.
        return (
            _("{code}: {message}; no authentic record describes the file").format(
                code=others[0].code, message=others[0].message
            ),
            True,
        )
    if files:
        return _("{code}: {message}").format(code=files[0].code, message=files[0].message), False
    if others:
        return (
            _("the file matches its record, but {code}: {message}").format(
                code=others[0].code, message=others[0].message
            ),
            True,
        )
    return _("the file matches its record exactly (size and every digest)"), True


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
    pictures: bool = True,
    tags: list[str] | None = None,
    known: dict[str, Disclosure] | None = None,
) -> ReportItem:
    body: ItemBody = signed.record.typed_body()
    values = reveal(body, known or {})
    found = _item_findings(result.findings, signed.seq, body.path)
    status, intact = _status(found)
    facts = highlights(body.metadata)
    mime = body.mime
    kind = media_kind(mime)
    if not pictures:
        thumb = Thumbnail(None, _("no thumbnail (not asked for)"))
    elif not intact:
        thumb = Thumbnail(None, _("no thumbnail: the file does not match its record"))
    elif file_path is None:
        thumb = Thumbnail(None, _("no thumbnail: the file could not be read"))
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
        collector=values.get("collector"),
        source=body.source,
        location=body.location,
        note=body.note,
        tags=list(body.tags) if tags is None else tags,
        acquired_from=values.get("source_path") if body.acquisition else None,
        catalogued=signed.record.time,
        catalogued_by=names.get(signed.record.signer, _("an unknown key")),
        timestamps=_covering(result.timestamps, signed.seq),
        clock=clock,
        events=events,
        withheld=withheld(body, known or {}),
        provenance=_provenance(body, signed.seq, result),
    )


def _provenance(body: ItemBody, seq: int, result: VerificationResult) -> list[dict[str, Any]]:
    """What the item's sources say of it (their claims, labelled), with what verify re-ran
    of their own proofs (roots only; a bundle's report shows the claims as recorded)."""
    if not body.provenance:
        return []
    views = provenance_view(body.to_json())
    rows = next((r for r in result.provenance if r.get("seq") == seq), None)
    for view, checked in zip(views, rows["entries"] if rows else [], strict=False):
        rechecks = list(checked.get("rechecks", []))
        # A check made at intake and re-run now is one row: both results, today's reason.
        for fact in view["facts"]:
            name = str(fact["label"]).removeprefix("Check ")
            again = next((r for r in rechecks if fact["label"] == f"Check {r['check']}"), None)
            if again is not None and name == again["check"]:
                rechecks.remove(again)
                fact["value"] = (
                    f"{again['recorded']} at intake, {again['now']} when this report was made: "
                    f"{again['detail']}"
                )
        view["rechecks"] = rechecks
    for view in views:
        view.setdefault("rechecks", [])
    return views


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


def _from_root(
    path: Path, policy: TrustPolicy, selection: _Selection, pictures: bool
) -> Report:
    from custody.handling.case import case_details, exhibit_book
    from custody.handling.history import history
    from custody.handling.lookup import incidents_of, tags_of
    from custody.handling.vault import current_items
    from custody.ledger.backends import open_ledger
    from custody.root import find_root
    from custody.verify.roots import verify_root

    root = find_root(explicit=str(path))
    result = verify_root(root, policy=policy)
    rejected = _rejected(result)
    clock = {int(row["seq"]): row for row in result.clock}
    names = {k["fingerprint"]: _key_name(k) for k in result.signers}
    items: list[ReportItem] = []
    stamps: list[tuple[TimestampBody, bytes | None]] = []
    known = DisclosureStore(root.state).known()
    with open_ledger(root) as ledger, tempfile.TemporaryDirectory(prefix="custody-report-") as tmp:
        for seq in ledger.index.records_of_type("key"):
            key = KeyBody.from_json(ledger.read(seq).record.body)
            names.setdefault(key.fingerprint, _key_name(key.to_json()))
        book = exhibit_book(ledger, rejected)
        case = case_details(ledger, rejected)
        current = [(ref.seq, ledger.read(ref.seq)) for ref in current_items(ledger)]
        bodies: list[ItemBody] = [s.record.typed_body() for _seq, s in current]
        events_of = {seq: [ledger.read(e) for e in ledger.index.events_naming(seq)]
                     for seq, _signed in current}  # fmt: skip
        item_tags = {
            seq: tags_of([signed, *events_of[seq]]).get(seq, []) for seq, signed in current
        }
        incidents = (
            incidents_of(ledger.read(e) for e in ledger.index.records_of_type("event"))
            if selection.incidents
            else {}
        )
        selection.check(book, _by_tag(item_tags), incidents)
        for (seq, signed), body in zip(current, bodies, strict=True):
            if not selection.wants(seq, book):
                continue
            entries = history(ledger, seq).entries
            file_path = Path(os.fsdecode(os.fsencode(root.path) + b"/" + body.name_bytes))
            item = _make_item(
                signed,
                result,
                names,
                entries,
                clock.get(seq),
                file_path if file_path.is_file() else None,
                Path(tmp),
                pictures,
                item_tags[seq],
                known,
            )
            items.append(_with_exhibit(item, book))
        for seq in ledger.index.records_of_type("timestamp"):
            stamp = TimestampBody.from_json(ledger.read(seq).record.body)
            try:
                raw: bytes | None = (root.state / stamp.token_file).read_bytes()
            except OSError:
                raw = None
            stamps.append((stamp, raw))
        checkpoints = ledger.index.records_of_type("checkpoint")
        last = ledger.read(checkpoints[-1]) if checkpoints else None
    keys = [KeyInfo.from_signer(k) for k in result.signers]
    trust = str(result.timestamps[0]["trust"]) if result.timestamps else "embedded"
    report = Report(
        kind="evidence root",
        source=str(root.path),
        generated=_now(),
        tool=f"custody {__version__}",
        verdict_code=str(result.verdict),
        trust=list(result.trust),
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
        items_total=len(current),
        checkpoint=(
            {"record": last.seq, **CheckpointBody.from_json(last.record.body).to_json()}
            if last
            else None
        ),
        timestamp_trust=trust,
        evidence_records=list(result.evidence_records),
    )
    report.items = _in_filing_order(report.items)
    report.reproduce = root_commands(root.path, report, stamps)
    with open_ledger(root) as ledger:
        events = [ledger.read(seq) for seq in ledger.index.records_of_type("event")]
    report.captures = _captures(events, names, {i.seq for i in items})
    return report


def _captures(
    records: Iterable[SignedRecord], names: dict[str, str], shown: set[int]
) -> list[dict[str, Any]]:
    """The web captures (``capture`` events) naming any item in the report, for people."""
    found = []
    for record in records:
        body = record.record.body
        if record.record.type != "event" or body.get("action") != "capture":
            continue
        if not {ref.get("seq") for ref in body.get("items", [])} & shown:
            continue
        found.append({
            "record": record.seq,
            "time": record.record.time,
            "signer_name": names.get(record.record.signer, _("unknown key")),
            "folder": body.get("folder"),
            "items": [ref.get("seq") for ref in body.get("items", [])],
            **capture_summary(body.get("capture") or {}),
        })
    return found


def _bundle_history(
    seq: int,
    parsed: dict[int, SignedRecord],
    names: dict[str, str],
    valid: set[int],
    known: dict[str, Disclosure] | None = None,
) -> list[Entry]:
    """The item's entries from the bundle's records, as ``custody.handling.history`` does."""
    entries: list[Entry] = []
    signed = parsed[seq]
    item: ItemBody = signed.record.typed_body()

    def add(record: SignedRecord, kind: str, summary: str, detail: dict[str, Any]) -> None:
        signer = record.record.signer
        entries.append(
            Entry(record.seq, record.record.time, kind, signer,
                  names.get(signer, _("unknown key")), summary, detail)
        )  # fmt: skip

    add(signed, *describe_item(seq, item, item, seq, known))
    covering: list[int] = []
    for other_seq, record in sorted(parsed.items()):
        kind = record.record.type
        if kind == "event":
            body = EventBody.from_json(record.record.body)
            named = {ref.seq for ref in body.items} | ({body.output.seq} if body.output else set())
            if seq in named:
                add(record, *describe_event(body, {seq}))
        elif kind == "exhibit":
            exhibit = ExhibitBody.from_json(record.record.body)
            if exhibit.item.seq == seq:
                add(record, *describe_exhibit(exhibit, seq))
        elif kind == "checkpoint":
            checkpoint = CheckpointBody.from_json(record.record.body)
            if checkpoint.tree_size > seq:
                covering.append(other_seq)
                statement = f": {checkpoint.statement}" if checkpoint.statement else ""
                covers = ngettext(
                    "checkpoint of {n} record covers it",
                    "checkpoint of {n} records covers it",
                    checkpoint.tree_size,
                ).format(n=checkpoint.tree_size)
                add(record, "checkpoint", f"{covers}{statement}",
                    {"tree_size": checkpoint.tree_size, "root": checkpoint.root})  # fmt: skip
        elif kind == "timestamp" and other_seq in valid:
            stamp = TimestampBody.from_json(record.record.body)
            if stamp.checkpoint in covering:
                add(record, "timestamp",
                    _("trusted time {time} from {tsa} over checkpoint {checkpoint}").format(
                        time=stamp.gen_time, tsa=stamp.tsa_name or stamp.tsa,
                        checkpoint=stamp.checkpoint),
                    {"gen_time": stamp.gen_time, "tsa": stamp.tsa,
                     "checkpoint": stamp.checkpoint})  # fmt: skip
    entries.sort(key=lambda e: e.seq)
    return entries


def bundle_disclosures(source: Any) -> dict[str, Disclosure]:
    """The disclosures a bundle carries (verification checks each against its record)."""
    from custody.delivery.bundle_check import DISCLOSURES

    try:
        return parse_lines(source.read(DISCLOSURES, limit=1 << 26), DISCLOSURES)
    except (FileNotFoundError, CustodyError):
        return {}


# The roles of keys as a report names them (the role itself stays as recorded everywhere else).
_ROLES = {"documenter": N_("documenter"), "custodian": N_("custodian"), "lawyer": N_("lawyer")}


def _key_name(key: dict[str, Any]) -> str:
    """A key as a report names its signer: handle, role and holder ("amina (documenter,
    Amina Haddad)"), in the language the report is built in."""
    role = _(_ROLES[key["role"]]) if key["role"] in _ROLES else str(key["role"])
    if key.get("holder"):
        return _("{name} ({role}, {holder})").format(
            name=key["name"], role=role, holder=key["holder"]
        )
    return _("{name} ({role})").format(name=key["name"], role=role)


def _from_bundle(
    path: Path,
    policy: TrustPolicy,
    selection: _Selection,
    pictures: bool,
    extra: dict[str, Disclosure] | None = None,
) -> Report:
    from custody.delivery.bundle_check import verify_source
    from custody.delivery.bundle_source import BundleSource, bundle_records, load_index
    from custody.delivery.digests import tree_digest
    from custody.handling.lookup import incidents_of, tags_of
    from custody.timestamps.stamping import ValidToken, reconcile

    source = BundleSource(path)
    try:
        # The report shows the very bytes verified (one snapshot of the bundle), read by
        # the same bounded, strict readers (the zip's damage is already a finding of the
        # result: what cannot be read is left out here).
        result = verify_source(source, policy=policy, disclosures=extra)
        rejected = _rejected(result)
        try:
            index: dict[str, Any] = load_index(source)
        except (FileNotFoundError, CustodyError):
            index = {}
        try:
            parsed = bundle_records(source)
        except (FileNotFoundError, CustodyError):
            parsed = {}
        names: dict[str, str] = {}
        key_records: dict[str, SignedRecord] = {}
        for signed in parsed.values():
            if signed.record.type == "key":
                key = KeyBody.from_json(signed.record.body)
                names.setdefault(key.fingerprint, _key_name(key.to_json()))
                key_records.setdefault(key.fingerprint, signed)
        bundle_tags = tags_of(parsed.values())
        known = {**bundle_disclosures(source), **(extra or {})}
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
        in_order = [parsed[seq] for seq in sorted(parsed)]
        book = book_of(in_order, rejected)
        case = _bundle_case(in_order, rejected)
        carried = [s for s in in_order if s.record.type == "item"]
        bodies: list[ItemBody] = [s.record.typed_body() for s in carried]
        selection.check(book, _by_tag(bundle_tags), incidents_of(in_order))
        with tempfile.TemporaryDirectory(prefix="custody-report-") as tmp:
            for signed, body in zip(carried, bodies, strict=True):
                seq = signed.seq
                row = reconcile(seq, body.path, body.capture_time, signed.record.time, tokens)
                clock_rows.append(row.to_json())
                if not selection.wants(seq, book):
                    continue
                file_path = (
                    _payload_copy(source, "data/" + body.path, Path(tmp)) if pictures else None
                )
                item = _make_item(
                    signed,
                    result,
                    names,
                    _bundle_history(seq, parsed, names, valid_records, known),
                    row.to_json(),
                    file_path,
                    Path(tmp),
                    pictures,
                    bundle_tags.get(seq, []),
                    known,
                )
                items.append(_with_exhibit(item, book))
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
        bag = _bag_info(source)
        source_digest = tree_digest(path, source)
    finally:
        source.close()
    keys = [KeyInfo.from_signer(k) for k in result.signers]
    info = index.get("checkpoint") if isinstance(index.get("checkpoint"), dict) else None
    trust = str(result.timestamps[0]["trust"]) if result.timestamps else "embedded"
    report = Report(
        kind="evidence bundle",
        source=str(path.resolve()),
        generated=_now(),
        tool=f"custody {__version__}",
        verdict_code=str(result.verdict),
        trust=list(result.trust),
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
        case=case,
        bag_info=bag,
        items_total=len(carried),
        source_digest=source_digest,
        withheld_events=[w for w in index.get("withheld_events", []) if isinstance(w, dict)],
        records_not_carried=[seq for seq in range(result.ledger_size) if seq not in parsed],
        checkpoint=info,
        timestamp_trust=trust,
        evidence_records=list(result.evidence_records),
    )
    if report.case is None and bag.get("External-Identifier"):
        report.case = CaseDetails(
            bag["External-Identifier"], description=bag.get("External-Description"),
            source="bundle",
        )  # fmt: skip
    report.items = _in_filing_order(report.items)
    report.reproduce = bundle_commands(path.resolve(), top, report, parsed, stamps)
    report.captures = _captures(
        [parsed[seq] for seq in sorted(parsed)], names, {i.seq for i in items}
    )
    return report


def _bundle_case(records: Sequence[SignedRecord], rejected: set[int]) -> CaseDetails | None:
    """The latest case record a bundle carries (and verification did not fault)."""
    for signed in reversed(records):
        if signed.record.type == "case" and signed.seq not in rejected:
            return CaseDetails.from_record(signed, CaseBody.from_json(signed.record.body))
    return None


def _bag_info(source: Any) -> dict[str, str]:
    try:
        text = source.read("bag-info.txt", limit=1 << 20).decode("utf-8", "replace")
    except (FileNotFoundError, CustodyError):
        return {}
    wanted = ("Source-Organization", "Contact-Name", "External-Identifier",
              "External-Description", "Bagging-Date", "Bag-Software-Agent")  # fmt: skip
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _sep, value = line.partition(":")
        if key in wanted and value.strip():
            found[key] = value.strip()
    return found


def _payload_copy(source: Any, rel: str, tmp: Path) -> Path | None:
    """A payload file as a path ffmpeg and exiftool can open (copied out of a zip); None
    when there is none, or its bytes in the zip are damaged (a finding already)."""
    if rel not in source.files or source.files[rel] > MAX_THUMBNAIL_SOURCE:
        return None
    if source.zip is None:
        return Path(source.path) / rel
    if rel in source.damaged:
        return None  # altered inside the zip: verification reports it, no thumbnail is made
    if source.pinned(rel) is None:
        return None  # never verified (the bundle was unusable before): nothing is shown
    suffix = Path(rel).suffix[:16]
    target = tmp / f"payload-{len(list(tmp.iterdir()))}{suffix}"
    copied = hashlib.sha256()
    try:
        with source.open(rel) as handle, open(target, "xb") as out:
            while chunk := handle.read(1 << 20):
                copied.update(chunk)
                out.write(chunk)
    except CustodyError:  # its bytes in the zip are damaged: a finding of the result
        target.unlink(missing_ok=True)
        return None
    if copied.hexdigest() != source.pinned(rel):
        # The picture shown must be of the bytes verified (one snapshot of the bundle).
        raise InputError(
            _("{path} in the bundle changed while the report was being made").format(path=rel)
        )
    return target
