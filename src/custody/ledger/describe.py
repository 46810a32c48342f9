"""Plain-data views of records for people: one-line summaries and highlighted fields.

Used by ``log``/``show`` and later by reports; returns dicts and strings, never prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
        text = f"{body.get('path')} ({body.get('size')} bytes)"
        if "duplicate_of" in body:
            text += f", same content as record {body['duplicate_of']}"
        if "supersedes" in body:
            text += f", CHANGED since record {body['supersedes']}"
        if body.get("metadata_error"):
            text += f", metadata error: {body['metadata_error']}"
    elif record.type == "key":
        holder = f", held by {body['holder']}" if body.get("holder") else ""
        text = f"key {body.get('name')} ({body.get('role')}{holder}) {body.get('fingerprint')}"
        if body.get("replaces"):
            text += f", replacing {body['replaces']}"
    elif record.type == "checkpoint":
        text = f"checkpoint of {body.get('tree_size')} records, root {body.get('root')}"
        if body.get("statement"):
            text += f": {body['statement']}"
    elif record.type == "event" and body.get("action") == "capture":
        text = f"{summary_line(capture_summary(body.get('capture') or {}))} ({body.get('folder')})"
    elif record.type == "event":
        text = describe_event(body)
    elif record.type == "timestamp":
        text = (
            f"timestamp over checkpoint {body.get('checkpoint')} by {body.get('tsa')} at "
            f"{body.get('gen_time')}"
        )
    elif record.type == "revocation":
        text = f"revocation of key {body.get('key')}"
        if "compromised_since" in body:
            text += f", compromised since record {body['compromised_since']}"
        if body.get("reason"):
            text += f": {body['reason']}"
    elif record.type == "exhibit":
        item = body.get("item") or {}
        text = f"exhibit {body.get('exhibit')}: item record {item.get('seq')} ({item.get('path')})"
    elif record.type == "case":
        text = f"case {body.get('name')}"
        for label in ("number", "court"):
            if body.get(label):
                text += f", {label} {body[label]}"
    elif record.type == "evidence-record":
        stamp = body.get("time_stamp") or {}
        covered = ", ".join(str(o.get("checkpoint")) for o in body.get("objects") or [])
        text = (
            f"{body.get('action')} of the evidence set over checkpoint(s) {covered}: "
            f"{stamp.get('algorithm')} archive timestamp of {stamp.get('gen_time')} "
            f"from {stamp.get('tsa')}"
        )
    elif record.type == "validation":
        named = ", ".join(str(t.get("record")) for t in body.get("for") or [])
        text = (
            f"validation material for the token(s) of record {named}: "
            f"{len(body.get('validation') or [])} file(s), "
            f"{len(body.get('validation_missing') or [])} still missing"
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
    named = "; ".join(f"record {i.get('seq')} {i.get('path')}" for i in items)
    text = f"{body.get('action')} of {len(items)} item(s): {named}"
    if body.get("to"):
        text += f"; to {body['to']}"
    if body.get("destination"):
        text += f"; copied to {body['destination']}"
    output = body.get("output")
    if isinstance(output, dict):
        text += f"; output record {output.get('seq')} {output.get('path')}"
    tags = body.get("tags")
    if isinstance(tags, list) and tags:
        text += f"; tags {', '.join(str(t) for t in tags)}"
    fields = body.get("fields")
    if isinstance(fields, dict):
        text += "".join(f"; {name}: {value}" for name, value in sorted(fields.items()))
    if body.get("text"):
        text += f"; {body['text']}"
    if body.get("reason"):
        text += f"; reason: {body['reason']}"
    if body.get("source"):
        text += f"; from {body['source']}"
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
    "invalid": "INVALID: the file or its manifest was changed after signing, or the manifest "
    "is malformed",
    "valid": "valid: signature and bindings intact; the signer was not checked against a "
    "trust list you supplied",
    "trusted": "trusted: signature and bindings intact, and the signer chains to a trust "
    "anchor supplied when the file was taken in",
}

_ROLE_WORDS = {
    "archive": "the archive as received",
    "unnamed-file": "a file in the export that no message names",
    "chat-file": "the chat file",
    "proof-file": "a proof file",
    "key": "the bundle's public key",
    "other": "a file of the bundle",
    "tag-file": "a tag file",
    "payload": "a payload file",
}

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
        text = f"according to {source}, this file was "
        text += "sent" if kind == "whatsapp" else "posted"
        if entry.get("sender"):
            text += f" by {_quoted(entry['sender'])}"
        if entry.get("conversation"):
            text += f" in {_quoted(entry['conversation'])}"
        text += (
            f" at {_quoted(entry.get('time_as_written'))} as written ({entry.get('message_ref')})"
        )
        if entry.get("time_ambiguous"):
            text += "; the export does not decide that date's day/month order"
        if entry.get("forwarded_from"):
            text += f", forwarded from {_quoted(entry['forwarded_from'])}"
        return text
    if kind in ("whatsapp", "telegram") and role == "chat-file":
        missing = entry.get("missing_media") or []
        text = (
            f"the chat file of {source}: {entry.get('messages')} messages naming "
            f"{entry.get('media_named')} media"
        )
        if missing:
            text += f", {len(missing)} of them not in the export (listed in this record)"
        return text
    if kind == "proofmode" and role == "media":
        states = [c.get("state") for c in entry.get("checks") or []]
        failed = [c.get("name") for c in entry.get("checks") or [] if c.get("state") == "failed"]
        text = (
            f"from {source}; custody's checks of its proof: {states.count('passed')} passed, "
            f"{states.count('failed')} failed, {states.count('not_checkable')} not checkable"
        )
        if failed:
            text += " (FAILED: " + ", ".join(str(f) for f in failed) + ")"
        return text
    if kind == "c2pa":
        state = str(entry.get("validation_state"))
        text = f"C2PA manifest {state.upper() if state == 'invalid' else state} (custody's check)"
        signer = entry.get("signer") or {}
        who = (signer.get("certificate") or {}).get("subject") or signer.get("common_name")
        if who:
            text += f"; according to the manifest, signed by {_quoted(who)}"
        if entry.get("claim_generator"):
            text += f" with {_quoted(entry['claim_generator'])}"
        return text
    if kind == "bagit" and role == "payload":
        digests = entry.get("bag_digests") or {}
        return (
            f"payload file {entry.get('path_in_source')} of {source}; the bag's own "
            f"{', '.join(sorted(digests))} digests matched before it was copied (custody's check)"
        )
    where = f" {entry.get('path_in_source')}" if entry.get("path_in_source") else ""
    words = _ROLE_WORDS.get(str(role), str(role))
    text = f"{words}{where} of {source}"
    if entry.get("tag_role"):
        text += f" ({entry['tag_role']})"
    if entry.get("for_media"):
        text += " (for " + ", ".join(str(m) for m in entry["for_media"]) + ")"
    return text


def provenance_facts(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows for an entry, values verbatim and whole, for ``show`` and the
    report. Labels say whose statement each value is."""
    kind, role = entry.get("kind"), entry.get("role")
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value is not None and value != "" and value != []:
            rows.append((label, str(value)))

    if kind in ("whatsapp", "telegram") and role == "media":
        conversation = entry.get("conversation")
        if conversation and entry.get("conversation_id"):
            conversation = f"{conversation} (id {entry['conversation_id']})"
        add("Conversation (claimed)", conversation)
        sender = entry.get("sender")
        if sender and entry.get("sender_id"):
            sender = f"{sender} ({entry['sender_id']})"
        add("Sender (claimed)", sender)
        add("Time as written", entry.get("time_as_written"))
        readings = entry.get("time_readings") or []
        if readings:
            read = " or ".join(str(r) for r in readings)
            if entry.get("time_ambiguous"):
                read += " - the export does not decide the day/month order"
            add("Time read as (local, no zone)", read)
        if entry.get("utc_time"):
            offset = entry.get("utc_offset_minutes")
            shown = entry["utc_time"]
            if isinstance(offset, int):
                sign = "+" if offset >= 0 else "-"
                shown += f" (the exporting computer was at UTC{sign}{abs(offset) // 60:02d}:"
                shown += f"{abs(offset) % 60:02d})"
            add("Time in UTC (claimed)", shown)
        add("Time zone", entry.get("time_zone_note"))
        add("Message", entry.get("message_ref"))
        add("Text (claimed)", entry.get("text"))
        add("Forwarded from (claimed)", entry.get("forwarded_from"))
        add("Saved from (claimed)", entry.get("saved_from"))
        add("Name in the export", f"{entry.get('media_name')} ({entry.get('media_role')})")
        chat = entry.get("chat_file") or {}
        add("Stated in", f"{chat.get('path')} (SHA-256 {chat.get('sha256')})")
    elif kind in ("whatsapp", "telegram") and role == "chat-file":
        add("Conversation (claimed)", entry.get("conversation"))
        add("Platform", entry.get("platform"))
        if entry.get("date_order"):
            add("Date order", f"{entry['date_order']}: {entry.get('date_order_reason')}")
        elif entry.get("date_order_reason"):
            add("Date order", f"not decided: {entry['date_order_reason']}")
        add("Date order hint", entry.get("date_order_hint"))
        add("Time zone", entry.get("time_zone_note"))
        add("Messages", entry.get("messages"))
        add("Media named", entry.get("media_named"))
        for m in entry.get("missing_media") or []:
            who = f", from {_quoted(m['sender'])}" if m.get("sender") else ""
            when = f", at {_quoted(m['time_as_written'])}" if m.get("time_as_written") else ""
            add(
                f"Media {str(m.get('status')).upper()}",
                f"{_quoted(m.get('media_name'))} ({m.get('message_ref')}{who}{when}): "
                f"{m.get('reason')}",
            )
        for p in entry.get("problems") or []:
            where = f" ({p['where']})" if p.get("where") else ""
            add("Reader's note", f"{p.get('code')}{where}: {p.get('message')}")
    elif kind == "proofmode" and role == "media":
        add("Proof set", f"{entry.get('proof_hash')} ({entry.get('layout')} layout)")
        for check in entry.get("checks") or []:
            add(f"Check {check.get('name')}", f"{check.get('state')}: {check.get('reason')}")
        key = entry.get("key") or {}
        if key:
            add(
                "Signing key (came with the bundle)",
                f"{', '.join(key.get('fingerprints') or []) or key.get('error')} "
                f"({', '.join(key.get('user_ids') or [])}) in {key.get('file')}",
            )
        proofs = entry.get("proofs") or []
        if proofs:
            fields = dict(tuple(pair) for pair in proofs[0].get("fields") or [])
            for name in _PROOF_FIELDS:
                if fields.get(name):
                    add(f"{name} (recorded by the phone)", fields[name])
        ots = entry.get("ots") or {}
        for att in ots.get("attestations") or []:
            if att.get("kind") == "pending":
                add("OpenTimestamps", f"pending at {att.get('calendar_url')}")
            elif att.get("block_height") is not None:
                add(
                    "OpenTimestamps",
                    f"{att.get('kind')} block {att.get('block_height')}, Merkle root "
                    f"{att.get('merkle_root')}: not checkable offline (ots verify)",
                )
        add("Checked with", entry.get("checked_with"))
    elif kind == "c2pa":
        state = str(entry.get("validation_state"))
        failures = [
            s.get("code") for s in entry.get("statuses") or [] if s.get("kind") == "failure"
        ]
        add("C2PA validation state", _C2PA_WORDS.get(state, state))
        if failures:
            add("Failure codes", ", ".join(str(f) for f in failures))
        signer = entry.get("signer") or {}
        certificate = signer.get("certificate") or {}
        if certificate:
            add(
                "Signer (from the manifest)",
                f"{certificate.get('subject')}, issued by {certificate.get('issuer')}, "
                f"certificate SHA-256 {certificate.get('sha256_fingerprint')}",
            )
        elif signer:
            add("Signer (from the manifest)", signer.get("common_name"))
        add("Claim generator (claimed)", entry.get("claim_generator"))
        add("Title (claimed)", entry.get("title"))
        for action in entry.get("actions") or []:
            detail = ", ".join(
                str(action[k])
                for k in ("when", "software_agent", "digital_source_type")
                if action.get(k)
            )
            add("Action (claimed)", f"{action.get('action')}" + (f" ({detail})" if detail else ""))
        for ingredient in entry.get("ingredients") or []:
            add(
                "Ingredient (claimed)",
                f"{ingredient.get('title')} ({ingredient.get('relationship')}, "
                f"{ingredient.get('format')})",
            )
        if entry.get("manifest_store_sha256"):
            add(
                "Manifest store SHA-256",
                f"{entry['manifest_store_sha256']} ({entry.get('manifest_store_size')} bytes)",
            )
        add("Manifest store", entry.get("manifest_store_note"))
        add("Checked with", entry.get("checked_with"))
    else:
        add("Role", _ROLE_WORDS.get(str(role), str(role)))
        add("Path in the source", entry.get("path_in_source"))
        add("Role in the bag", entry.get("tag_role"))
        for name, digest in sorted((entry.get("bag_digests") or {}).items()):
            add(f"Bag's own {name} digest", digest)
        add("Listed in the manifest as", ", ".join(entry.get("listed_as") or []))
        add("BagIt version", entry.get("version"))
        add("Payload-Oxum (claimed)", entry.get("payload_oxum"))
        for label, value in entry.get("info") or []:
            add(f"bag-info {label} (claimed)", value)
        for warning in entry.get("warnings") or []:
            add("Bag warning", f"{warning.get('kind')}: {warning.get('message')}")
        add("For media", ", ".join(entry.get("for_media") or []))
        add("Checked with", entry.get("checked_with"))
    for note in entry.get("notes") or []:
        add("Note", note)
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
