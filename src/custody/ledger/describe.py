"""Plain-data views of records for people: one-line summaries and highlighted fields.

Used by ``log``/``show`` and later by reports; returns dicts and strings, never prints. The
words are in the run's language (``custody.i18n``): these views are for people, never
written into a record or a file that custody keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from custody.i18n import N_, _, ngettext
from custody.ledger.captures import capture_summary, summary_line
from custody.ledger.records import SignedRecord

# exiftool -G1 tag names that answer "when, where, with what" at a glance.
_HIGHLIGHTS = {
    "make": ("IFD0:Make", "QuickTime:Make", "UserData:Make", "Keys:Make"),
    "model": ("IFD0:Model", "QuickTime:Model", "UserData:Model", "Keys:Model"),
    "gps_latitude": ("Composite:GPSLatitude",),
    "gps_longitude": ("Composite:GPSLongitude",),
    "duration_s": ("QuickTime:Duration", "Composite:Duration", "RIFF:Duration"),
    "image_size": ("Composite:ImageSize",),
}


def highlights(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if not metadata:
        return found
    for name, tags in _HIGHLIGHTS.items():
        for tag in tags:
            if tag in metadata and metadata[tag] not in ("", None):
                found[name] = metadata[tag]
                break
    return found


def summarise(signed: SignedRecord) -> dict[str, Any]:
    """One line a person can read, whole: paths, digests and fingerprints are never cut."""
    record = signed.record
    body = record.body
    if record.type == "item":
        text = _("{path} ({size} bytes)").format(path=body.get("path"), size=body.get("size"))
        if "duplicate_of" in body:
            text += ", " + _("same content as record {seq}").format(seq=body["duplicate_of"])
        if "supersedes" in body:
            text += ", " + _("CHANGED since record {seq}").format(seq=body["supersedes"])
        if body.get("metadata_error"):
            text += ", " + _("metadata error: {why}").format(why=body["metadata_error"])
    elif record.type == "key":
        fields = {
            "name": body.get("name"),
            "role": body.get("role"),
            "holder": body.get("holder"),
            "fingerprint": body.get("fingerprint"),
        }
        text = (
            _("key {name} ({role}, held by {holder}) {fingerprint}")
            if body.get("holder")
            else _("key {name} ({role}) {fingerprint}")
        ).format(**fields)
        if body.get("replaces"):
            text += ", " + _("replacing {fingerprint}").format(fingerprint=body["replaces"])
    elif record.type == "checkpoint":
        size = body.get("tree_size")
        text = ngettext(
            "checkpoint of {n} records, root {root}",
            "checkpoint of {n} records, root {root}",
            size if isinstance(size, int) else 0,
        ).format(n=size, root=body.get("root"))
        if body.get("statement"):
            text += f": {body['statement']}"
    elif record.type == "event" and body.get("action") == "capture":
        text = f"{summary_line(capture_summary(body.get('capture') or {}))} ({body.get('folder')})"
    elif record.type == "event":
        text = describe_event(body)
    elif record.type == "timestamp":
        text = _("timestamp over checkpoint {checkpoint} by {tsa} at {time}").format(
            checkpoint=body.get("checkpoint"), tsa=body.get("tsa"), time=body.get("gen_time")
        )
    elif record.type == "revocation":
        text = _("revocation of key {fingerprint}").format(fingerprint=body.get("key"))
        if "compromised_since" in body:
            text += ", " + _("compromised since record {seq}").format(seq=body["compromised_since"])
        if body.get("reason"):
            text += f": {body['reason']}"
    elif record.type == "exhibit":
        item = body.get("item") or {}
        text = _("exhibit {exhibit}: item record {seq} ({path})").format(
            exhibit=body.get("exhibit"), seq=item.get("seq"), path=item.get("path")
        )
    elif record.type == "case":
        text = _("case {name}").format(name=body.get("name"))
        if body.get("number"):
            text += ", " + _("number {number}").format(number=body["number"])
        if body.get("court"):
            text += ", " + _("court {court}").format(court=body["court"])
    elif record.type == "evidence-record":
        stamp = body.get("time_stamp") or {}
        covered = ", ".join(str(o.get("checkpoint")) for o in body.get("objects") or [])
        text = _(
            "{action} of the evidence set over checkpoint(s) {checkpoints}: {algorithm} archive "
            "timestamp of {time} from {tsa}"
        ).format(
            action=body.get("action"),
            checkpoints=covered,
            algorithm=stamp.get("algorithm"),
            time=stamp.get("gen_time"),
            tsa=stamp.get("tsa"),
        )
    elif record.type == "validation":
        named = ", ".join(str(t.get("record")) for t in body.get("for") or [])
        text = _(
            "validation material for the token(s) of record {records}: {files} file(s), "
            "{missing} still missing"
        ).format(
            records=named,
            files=len(body.get("validation") or []),
            missing=len(body.get("validation_missing") or []),
        )
    else:
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)
    return {
        "seq": record.seq,
        "type": record.type,
        "time": record.time,
        "signer": record.signer,
        "summary": text,
    }


def describe_event(body: Mapping[str, Any]) -> str:
    """An event in words: the action, every item it names (record and path), and details."""
    items = [i for i in body.get("items", []) if isinstance(i, dict)]
    named = "; ".join(
        _("record {seq} {path}").format(seq=i.get("seq"), path=i.get("path")) for i in items
    )
    text = ngettext(
        "{action} of {n} item(s): {items}", "{action} of {n} item(s): {items}", len(items)
    ).format(action=body.get("action"), n=len(items), items=named)
    if body.get("to"):
        text += "; " + _("to {to}").format(to=body["to"])
    if body.get("destination"):
        text += "; " + _("copied to {destination}").format(destination=body["destination"])
    output = body.get("output")
    if isinstance(output, dict):
        text += "; " + _("output record {seq} {path}").format(
            seq=output.get("seq"), path=output.get("path")
        )
    tags = body.get("tags")
    if isinstance(tags, list) and tags:
        text += "; " + _("tags {tags}").format(tags=", ".join(str(t) for t in tags))
    fields = body.get("fields")
    if isinstance(fields, dict):
        text += "".join(f"; {name}: {value}" for name, value in sorted(fields.items()))
    if body.get("text"):
        text += f"; {body['text']}"
    if body.get("reason"):
        text += "; " + _("reason: {reason}").format(reason=body["reason"])
    if body.get("source"):
        text += "; " + _("from {source}").format(source=body["source"])
    return text


def record_json(signed: SignedRecord) -> dict[str, Any]:
    document: dict[str, Any] = {
        "seq": signed.seq,
        "line_sha256": signed.line_hash,
        "record": json.loads(signed.line),
    }
    if signed.record.type == "item":
        document["highlights"] = highlights(signed.record.body.get("metadata"))
        if signed.record.body.get("provenance"):
            document["provenance"] = provenance_view(signed.record.body)
    body = signed.record.body
    if signed.record.type == "event" and body.get("action") == "capture":
        document["capture"] = capture_summary(body.get("capture") or {})
    return document


# --- provenance: what a source says, phrased as its claims -----------------------------------

_C2PA_WORDS = {
    "invalid": N_(
        "INVALID: the file or its manifest was changed after signing, or the manifest is malformed"
    ),
    "valid": N_(
        "valid: signature and bindings intact; the signer was not checked against a "
        "trust list you supplied"
    ),
    "trusted": N_(
        "trusted: signature and bindings intact, and the signer chains to a trust "
        "anchor supplied when the file was taken in"
    ),
}

# Each role's words, and the same words followed by where in the source and which source.
_ROLE_WORDS = {
    "archive": (N_("the archive as received"), N_("the archive as received{where} of {source}")),
    "unnamed-file": (
        N_("a file in the export that no message names"),
        N_("a file in the export that no message names{where} of {source}"),
    ),
    "chat-file": (N_("the chat file"), N_("the chat file{where} of {source}")),
    "proof-file": (N_("a proof file"), N_("a proof file{where} of {source}")),
    "key": (N_("the bundle's public key"), N_("the bundle's public key{where} of {source}")),
    "other": (N_("a file of the bundle"), N_("a file of the bundle{where} of {source}")),
    "tag-file": (N_("a tag file"), N_("a tag file{where} of {source}")),
    "payload": (N_("a payload file"), N_("a payload file{where} of {source}")),
}


def _role_words(role: str) -> str:
    known = _ROLE_WORDS.get(role)
    return _(known[0]) if known else role


# ProofMode proof fields worth showing (ProofModeV1Constants.java); all are kept.
_PROOF_FIELDS = (
    "File Created",
    "File Modified",
    "Proof Generated",
    "Location.Latitude",
    "Location.Longitude",
    "Location.Accuracy",
    "Location.Time",
    "Manufacturer",
    "Hardware",
    "DeviceID",
    "Notes",
)


# Directional formatting characters (UAX #9): kept verbatim in single values, where the
# page or terminal shows each value in its own direction; dropped where a value is set
# inside an English sentence, whose order they would otherwise scramble.
_BIDI = str.maketrans(
    dict.fromkeys("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def _plain(value: Any) -> str:
    return str(value).translate(_BIDI)


def _quoted(value: Any) -> str:
    return f"\u201c{_plain(value)}\u201d"


def provenance_summary(entry: Mapping[str, Any]) -> str:
    """One sentence for an entry (``custody.ledger.provenance``), phrased as the source's
    claim where it is one; custody's own checks are named as such."""
    kind, role, source = entry.get("kind"), entry.get("role"), str(entry.get("source"))
    if kind in ("whatsapp", "telegram") and role == "media":
        text = (
            _("according to {source}, this file was sent")
            if kind == "whatsapp"
            else _("according to {source}, this file was posted")
        ).format(source=source)
        if entry.get("sender"):
            text += " " + _("by {sender}").format(sender=_quoted(entry["sender"]))
        if entry.get("conversation"):
            text += " " + _("in {conversation}").format(conversation=_quoted(entry["conversation"]))
        text += " " + _("at {time} as written ({message})").format(
            time=_quoted(entry.get("time_as_written")), message=entry.get("message_ref")
        )
        if entry.get("time_ambiguous"):
            text += "; " + _("the export does not decide that date's day/month order")
        if entry.get("forwarded_from"):
            text += ", " + _("forwarded from {sender}").format(
                sender=_quoted(entry["forwarded_from"])
            )
        return text
    if kind in ("whatsapp", "telegram") and role == "chat-file":
        missing = entry.get("missing_media") or []
        text = _("the chat file of {source}: {messages} messages naming {media} media").format(
            source=source, messages=entry.get("messages"), media=entry.get("media_named")
        )
        if missing:
            text += ", " + ngettext(
                "{n} of them not in the export (listed in this record)",
                "{n} of them not in the export (listed in this record)",
                len(missing),
            ).format(n=len(missing))
        return text
    if kind == "proofmode" and role == "media":
        states = [c.get("state") for c in entry.get("checks") or []]
        failed = [c.get("name") for c in entry.get("checks") or [] if c.get("state") == "failed"]
        text = _(
            "from {source}; custody's checks of its proof: {passed} passed, {failed} failed, "
            "{unchecked} not checkable"
        ).format(
            source=source,
            passed=states.count("passed"),
            failed=states.count("failed"),
            unchecked=states.count("not_checkable"),
        )
        if failed:
            text += " (" + _("FAILED: {checks}").format(checks=", ".join(str(f) for f in failed))
            text += ")"
        return text
    if kind == "c2pa":
        state = str(entry.get("validation_state"))
        text = _("C2PA manifest {state} (custody's check)").format(
            state=state.upper() if state == "invalid" else state
        )
        signer = entry.get("signer") or {}
        who = (signer.get("certificate") or {}).get("subject") or signer.get("common_name")
        if who:
            text += "; " + _("according to the manifest, signed by {signer}").format(
                signer=_quoted(who)
            )
        if entry.get("claim_generator"):
            text += " " + _("with {generator}").format(generator=_quoted(entry["claim_generator"]))
        return text
    if kind == "bagit" and role == "payload":
        digests = entry.get("bag_digests") or {}
        return _(
            "payload file {path} of {source}; the bag's own {algorithms} digests matched "
            "before it was copied (custody's check)"
        ).format(
            path=entry.get("path_in_source"),
            source=source,
            algorithms=", ".join(sorted(digests)),
        )
    where = f" {entry.get('path_in_source')}" if entry.get("path_in_source") else ""
    known = _ROLE_WORDS.get(str(role))
    if known:
        text = _(known[1]).format(where=where, source=source)
    else:
        text = _("{role}{where} of {source}").format(role=role, where=where, source=source)
    if entry.get("tag_role"):
        text += f" ({entry['tag_role']})"
    if entry.get("for_media"):
        text += " " + _("(for {media})").format(media=", ".join(str(m) for m in entry["for_media"]))
    return text


def provenance_facts(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for an entry, values verbatim and whole, for ``show`` and the
    report. Labels say whose statement each value is (in the run's language)."""
    kind, role = entry.get("kind"), entry.get("role")
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value is not None and value != "" and value != []:
            rows.append((label, str(value)))

    if kind in ("whatsapp", "telegram") and role == "media":
        conversation = entry.get("conversation")
        if conversation and entry.get("conversation_id"):
            conversation = f"{conversation} (id {entry['conversation_id']})"
        add(_("Conversation (claimed)"), conversation)
        sender = entry.get("sender")
        if sender and entry.get("sender_id"):
            sender = f"{sender} ({entry['sender_id']})"
        add(_("Sender (claimed)"), sender)
        add(_("Time as written"), entry.get("time_as_written"))
        readings = entry.get("time_readings") or []
        if readings:
            read = _(" or ").join(str(r) for r in readings)
            if entry.get("time_ambiguous"):
                read += " - " + _("the export does not decide the day/month order")
            add(_("Time read as (local, no zone)"), read)
        if entry.get("utc_time"):
            offset = entry.get("utc_offset_minutes")
            shown = entry["utc_time"]
            if isinstance(offset, int):
                sign = "+" if offset >= 0 else "-"
                zone = f"UTC{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
                shown += " " + _("(the exporting computer was at {zone})").format(zone=zone)
            add(_("Time in UTC (claimed)"), shown)
        add(_("Time zone"), entry.get("time_zone_note"))
        add(_("Message"), entry.get("message_ref"))
        add(_("Text (claimed)"), entry.get("text"))
        add(_("Forwarded from (claimed)"), entry.get("forwarded_from"))
        add(_("Saved from (claimed)"), entry.get("saved_from"))
        add(_("Name in the export"), f"{entry.get('media_name')} ({entry.get('media_role')})")
        chat = entry.get("chat_file") or {}
        add(_("Stated in"), f"{chat.get('path')} (SHA-256 {chat.get('sha256')})")
    elif kind in ("whatsapp", "telegram") and role == "chat-file":
        add(_("Conversation (claimed)"), entry.get("conversation"))
        add(_("Platform"), entry.get("platform"))
        if entry.get("date_order"):
            add(_("Date order"), f"{entry['date_order']}: {entry.get('date_order_reason')}")
        elif entry.get("date_order_reason"):
            add(
                _("Date order"),
                _("not decided: {reason}").format(reason=entry["date_order_reason"]),
            )
        add(_("Date order hint"), entry.get("date_order_hint"))
        add(_("Time zone"), entry.get("time_zone_note"))
        add(_("Messages"), entry.get("messages"))
        add(_("Media named"), entry.get("media_named"))
        for m in entry.get("missing_media") or []:
            who = (
                ", " + _("from {sender}").format(sender=_quoted(m["sender"]))
                if m.get("sender")
                else ""
            )
            when = (
                ", " + _("at {time}").format(time=_quoted(m["time_as_written"]))
                if m.get("time_as_written")
                else ""
            )
            add(
                _("Media {status}").format(status=str(m.get("status")).upper()),
                f"{_quoted(m.get('media_name'))} ({m.get('message_ref')}{who}{when}): "
                f"{m.get('reason')}",
            )
        for p in entry.get("problems") or []:
            where = f" ({p['where']})" if p.get("where") else ""
            add(_("Reader's note"), f"{p.get('code')}{where}: {p.get('message')}")
    elif kind == "proofmode" and role == "media":
        add(
            _("Proof set"),
            _("{hash} ({layout} layout)").format(
                hash=entry.get("proof_hash"), layout=entry.get("layout")
            ),
        )
        for check in entry.get("checks") or []:
            add(
                _("Check {name}").format(name=check.get("name")),
                f"{check.get('state')}: {check.get('reason')}",
            )
        key = entry.get("key") or {}
        if key:
            add(
                _("Signing key (came with the bundle)"),
                _("{fingerprints} ({user_ids}) in {file}").format(
                    fingerprints=", ".join(key.get("fingerprints") or []) or key.get("error"),
                    user_ids=", ".join(key.get("user_ids") or []),
                    file=key.get("file"),
                ),
            )
        proofs = entry.get("proofs") or []
        if proofs:
            fields = dict(tuple(pair) for pair in proofs[0].get("fields") or [])
            for name in _PROOF_FIELDS:
                if fields.get(name):
                    add(_("{field} (recorded by the phone)").format(field=name), fields[name])
        ots = entry.get("ots") or {}
        for att in ots.get("attestations") or []:
            if att.get("kind") == "pending":
                add("OpenTimestamps", _("pending at {url}").format(url=att.get("calendar_url")))
            elif att.get("block_height") is not None:
                add(
                    "OpenTimestamps",
                    _(
                        "{kind} block {height}, Merkle root {root}: not checkable offline "
                        "(ots verify)"
                    ).format(
                        kind=att.get("kind"),
                        height=att.get("block_height"),
                        root=att.get("merkle_root"),
                    ),
                )
        add(_("Checked with"), entry.get("checked_with"))
    elif kind == "c2pa":
        state = str(entry.get("validation_state"))
        failures = [
            s.get("code") for s in entry.get("statuses") or [] if s.get("kind") == "failure"
        ]
        words = _C2PA_WORDS.get(state)
        add(_("C2PA validation state"), _(words) if words else state)
        if failures:
            add(_("Failure codes"), ", ".join(str(f) for f in failures))
        signer = entry.get("signer") or {}
        certificate = signer.get("certificate") or {}
        if certificate:
            add(
                _("Signer (from the manifest)"),
                _("{subject}, issued by {issuer}, certificate SHA-256 {fingerprint}").format(
                    subject=certificate.get("subject"),
                    issuer=certificate.get("issuer"),
                    fingerprint=certificate.get("sha256_fingerprint"),
                ),
            )
        elif signer:
            add(_("Signer (from the manifest)"), signer.get("common_name"))
        add(_("Claim generator (claimed)"), entry.get("claim_generator"))
        add(_("Title (claimed)"), entry.get("title"))
        for action in entry.get("actions") or []:
            detail = ", ".join(
                str(action[k])
                for k in ("when", "software_agent", "digital_source_type")
                if action.get(k)
            )
            add(
                _("Action (claimed)"),
                f"{action.get('action')}" + (f" ({detail})" if detail else ""),
            )
        for ingredient in entry.get("ingredients") or []:
            add(
                _("Ingredient (claimed)"),
                f"{ingredient.get('title')} ({ingredient.get('relationship')}, "
                f"{ingredient.get('format')})",
            )
        if entry.get("manifest_store_sha256"):
            add(
                _("Manifest store SHA-256"),
                _("{sha256} ({size} bytes)").format(
                    sha256=entry["manifest_store_sha256"], size=entry.get("manifest_store_size")
                ),
            )
        add(_("Manifest store"), entry.get("manifest_store_note"))
        add(_("Checked with"), entry.get("checked_with"))
    else:
        add(_("Role"), _role_words(str(role)))
        add(_("Path in the source"), entry.get("path_in_source"))
        add(_("Role in the bag"), entry.get("tag_role"))
        for name, digest in sorted((entry.get("bag_digests") or {}).items()):
            add(_("Bag's own {algorithm} digest").format(algorithm=name), digest)
        add(_("Listed in the manifest as"), ", ".join(entry.get("listed_as") or []))
        add(_("BagIt version"), entry.get("version"))
        add(_("Payload-Oxum (claimed)"), entry.get("payload_oxum"))
        for label, value in entry.get("info") or []:
            add(_("bag-info {label} (claimed)").format(label=label), value)
        for warning in entry.get("warnings") or []:
            add(_("Bag warning"), f"{warning.get('kind')}: {warning.get('message')}")
        add(_("For media"), ", ".join(entry.get("for_media") or []))
        add(_("Checked with"), entry.get("checked_with"))
    for note in entry.get("notes") or []:
        add(_("Note"), note)
    return rows


def provenance_view(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per provenance entry of an item body: kind, source, a summary and the facts."""
    return [
        {
            "kind": entry.get("kind"),
            "role": entry.get("role"),
            "source": entry.get("source"),
            "summary": provenance_summary(entry),
            "facts": [{"label": label, "value": value} for label, value in provenance_facts(entry)],
        }
        for entry in body.get("provenance") or []
        if isinstance(entry, Mapping)
    ]
