"""Plain-data views of records for people: one-line summaries and highlighted fields.

Used by ``log``/``show`` and later by reports; returns dicts and strings, never prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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
    return document
