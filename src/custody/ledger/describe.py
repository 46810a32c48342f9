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
        text = f"key {body.get('name')} ({body.get('role')}) {str(body.get('fingerprint'))[:16]}"
    elif record.type == "checkpoint":
        text = f"checkpoint of {body.get('tree_size')} records, root {str(body.get('root'))[:16]}"
        if body.get("statement"):
            text += f": {body['statement']}"
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
        text = json.dumps(body, ensure_ascii=False, sort_keys=True)[:120]
    return {
        "seq": record.seq,
        "type": record.type,
        "time": record.time,
        "signer": record.signer,
        "summary": text,
    }


def record_json(signed: SignedRecord) -> dict[str, Any]:
    document: dict[str, Any] = {
        "seq": signed.seq,
        "line_sha256": signed.line_hash,
        "record": json.loads(signed.line),
    }
    if signed.record.type == "item":
        document["highlights"] = highlights(signed.record.body.get("metadata"))
    return document
