"""An item's whole chronology, in ledger order, as plain data.

``history`` gathers everything the ledger says about one item: how it entered (catalogue
or ingest, with where it came from), other records of the same content (duplicates) or
the same path (versions), every event naming it (transfers, accesses, copies, notes,
disposal, working copies derived from it or it from another), its exhibit number, and the
checkpoints and trusted timestamps that cover it. What the sources it came from say of it (its
record's ``provenance``: a chat export's sender and time, a ProofMode proof's checks, a C2PA
manifest) is told with its acquisition, each phrased as that source's claim. It reads
the index to find records, then the records themselves; it decides nothing about their
validity (that is ``verify``'s job).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.errors import UsageError
from custody.i18n import _, ngettext
from custody.ledger.bodies import (
    CheckpointBody,
    EventBody,
    ExhibitBody,
    ItemBody,
    KeyBody,
    TimestampBody,
)
from custody.ledger.captures import capture_summary, summary_line
from custody.ledger.describe import provenance_view
from custody.ledger.disclosures import Disclosure, DisclosureStore, reveal, withheld
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger


@dataclass(frozen=True)
class Entry:
    seq: int
    time: str
    kind: str
    signer: str
    signer_name: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "signer": self.signer,
            "signer_name": self.signer_name,
            "summary": self.summary,
            "detail": self.detail,
        }


@dataclass
class ItemHistory:
    seq: int
    path: str
    sha256: str
    entries: list[Entry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.seq,
            "path": self.path,
            "sha256": self.sha256,
            "entries": [e.to_json() for e in self.entries],
        }


def _names(ledger: Ledger) -> dict[str, str]:
    names: dict[str, str] = {}
    for seq in ledger.index.records_of_type("key"):
        body = KeyBody.from_json(ledger.read(seq).record.body)
        holder = f", {body.holder}" if body.holder else ""
        names.setdefault(body.fingerprint, f"{body.name} ({body.role}{holder})")
    return names


def history(ledger: Ledger, seq: int) -> ItemHistory:
    signed = ledger.read(seq)
    if signed.record.type != "item":
        raise UsageError(
            _("record {seq} is a {type} record, not a catalogued item").format(
                seq=seq, type=signed.record.type
            )
        )
    item: ItemBody = signed.record.typed_body()
    names = _names(ledger)
    known = DisclosureStore(ledger.root.state).known()
    index = ledger.index
    family = {r.seq for r in index.items_at(item.name_bytes)} | {
        r.seq for r in index.items_with(item.sha256)
    }
    result = ItemHistory(seq, item.path, item.sha256)
    seen: set[int] = set()

    def add(record: SignedRecord, kind: str, summary: str, detail: dict[str, Any]) -> None:
        if record.seq in seen:
            return
        seen.add(record.seq)
        signer = record.record.signer
        result.entries.append(
            Entry(
                record.seq,
                record.record.time,
                kind,
                signer,
                names.get(signer, _("unknown key")),
                summary,
                detail,
            )
        )

    for member in sorted(family):
        record = ledger.read(member)
        body: ItemBody = record.record.typed_body()
        add(record, *describe_item(member, body, item, seq, known))
    for member in sorted(family):
        for event_seq in index.events_naming(member):
            record = ledger.read(event_seq)
            add(record, *describe_event(EventBody.from_json(record.record.body), family))
    for exhibit_seq in index.records_of_type("exhibit"):
        record = ledger.read(exhibit_seq)
        exhibit = ExhibitBody.from_json(record.record.body)
        if exhibit.item.seq in family:
            add(record, *describe_exhibit(exhibit, seq))
    covering = []
    for checkpoint_seq in index.records_of_type("checkpoint"):
        record = ledger.read(checkpoint_seq)
        checkpoint = CheckpointBody.from_json(record.record.body)
        if checkpoint.tree_size > seq:
            covering.append(checkpoint_seq)
            statement = f": {checkpoint.statement}" if checkpoint.statement else ""
            covers = ngettext(
                "checkpoint of {n} record covers it",
                "checkpoint of {n} records covers it",
                checkpoint.tree_size,
            ).format(n=checkpoint.tree_size)
            add(
                record,
                "checkpoint",
                f"{covers}{statement}",
                {"tree_size": checkpoint.tree_size, "root": checkpoint.root},
            )
    for stamp_seq in index.records_of_type("timestamp"):
        record = ledger.read(stamp_seq)
        stamp = TimestampBody.from_json(record.record.body)
        if stamp.checkpoint in covering:
            add(
                record,
                "timestamp",
                _("trusted time {time} from {tsa} over checkpoint {checkpoint}").format(
                    time=stamp.gen_time,
                    tsa=stamp.tsa_name or stamp.tsa,
                    checkpoint=stamp.checkpoint,
                ),
                {"gen_time": stamp.gen_time, "tsa": stamp.tsa, "checkpoint": stamp.checkpoint},
            )
    result.entries.sort(key=lambda e: e.seq)
    return result


def describe_item(
    member: int,
    body: ItemBody,
    item: ItemBody,
    seq: int,
    known: Mapping[str, Disclosure] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """``known``: disclosures at hand (by digest), for values the record commits to."""
    values = reveal(body, known or {})
    hidden = withheld(body, known or {})
    detail: dict[str, Any] = {"path": body.path, "sha256": body.sha256, "size": body.size}
    if body.acquisition is not None:
        detail["acquired_from"] = values.get("source_path", "withheld")
    if hidden:
        detail["withheld"] = hidden
    if member == seq:
        how = "ingested" if body.acquisition else "catalogued"  # the entry's kind (data)
        # For people, in the run's language: a sentence and its clauses.
        text = (
            _("ingested {path} ({size} bytes)")
            if body.acquisition
            else _("catalogued {path} ({size} bytes)")
        ).format(path=body.path, size=body.size)
        if body.acquisition is not None:
            source = values.get("source_path", _("(source path withheld)"))
            text += " " + _("from {source}").format(source=source)
            if body.acquisition.archive_member is not None:
                text += " " + _("(member {member})").format(member=body.acquisition.archive_member)
                detail["archive_member"] = body.acquisition.archive_member
        if values.get("collector"):
            text += ", " + _("collected by {collector}").format(collector=values["collector"])
        elif "collector" in hidden:
            text += ", " + _("collector withheld (committed to in the record)")
        if body.provenance:
            # What the sources say of it, each phrased as that source's claim.
            view = provenance_view(body.to_json())
            text += "; " + "; ".join(v["summary"] for v in view)
            detail["provenance"] = view
        return how, text, detail
    if body.sha256 == item.sha256 and body.path != item.path:
        return (
            "same content",
            _("the same content recorded at {path}").format(path=body.path),
            detail,
        )
    if member < seq:
        return (
            "earlier version",
            _("an earlier version at this path (sha256 {sha256})").format(sha256=body.sha256),
            detail,
        )
    return (
        "later version",
        _("the file at this path CHANGED (sha256 {sha256})").format(sha256=body.sha256),
        detail,
    )


def describe_exhibit(body: ExhibitBody, seq: int) -> tuple[str, str, dict[str, Any]]:
    """An exhibit record in an item's history (``seq``: the item the history is about)."""
    if body.item.seq != seq:
        text = _("exhibit number {exhibit} given to record {seq} ({path})").format(
            exhibit=body.exhibit, seq=body.item.seq, path=body.item.path
        )
    else:
        text = _("exhibit number {exhibit}").format(exhibit=body.exhibit)
    return "exhibit", text, body.to_json()


def describe_event(body: EventBody, family: set[int]) -> tuple[str, str, dict[str, Any]]:
    if body.action == "capture" and body.capture is not None:
        # The whole capture record is long (certificates, headers): history shows what a
        # person checks first; 'custody show' the event for all of it.
        summary = capture_summary(body.capture)
        detail = {
            "action": "capture",
            "folder": body.folder,
            "items": [i.to_json() for i in body.items],
            "capture": summary,
        }
        folder = _("folder {folder}").format(folder=body.folder)
        return "capture", f"{summary_line(summary)}; {folder}", detail
    detail = body.to_json()
    reason = f": {body.reason}" if body.reason else ""
    if body.action == "derive" and body.output is not None:
        if body.output.seq in family:
            source = body.items[0]
            text = _("derived from record {seq} ({path})").format(seq=source.seq, path=source.path)
            return "derived from", f"{text}{reason}", detail
        text = _("working copy made: {path} (record {seq})").format(
            path=body.output.path, seq=body.output.seq
        )
        return "derived", f"{text}{reason}", detail
    if body.action == "transfer":
        text = _("custody transferred to {to}").format(to=body.to)
        return "transfer", f"{text}{reason}", detail
    if body.action == "copy":
        text = _("copied to {destination}, copy re-read and matching").format(
            destination=body.destination
        )
        return "copy", f"{text}{reason}", detail
    if body.action == "note":
        fields = ", ".join(f"{k}: {v}" for k, v in sorted(body.fields.items()))
        parts = [p for p in (body.text, f"({fields})" if fields else "") if p]
        return "note", _("note: {text}").format(text=" ".join(parts)), detail
    if body.action == "receive":
        text = (
            _("received from {source}").format(source=body.source)
            if body.source
            else _("received from elsewhere")
        )
        return "receive", f"{text}{reason}", detail
    if body.action in ("tag", "untag"):
        tags = ", ".join(body.tags)
        text = (_("tagged {tags}") if body.action == "tag" else _("tag(s) removed: {tags}")).format(
            tags=tags
        )
        return body.action, f"{text}{reason}", detail
    return body.action, f"{body.action}{reason}", detail
