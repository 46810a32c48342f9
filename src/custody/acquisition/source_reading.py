"""Reading a source of each kind into what intake records: per file in the source, its
``provenance`` entries; and what the source says it lacks, its problems, its checks.

``read_chat`` (WhatsApp, Telegram), ``read_proofmode_bundle`` and ``read_bag`` call the
readers under ``custody.acquisition.sources`` and turn their results into entries with
``source_records``. Nothing is copied or written here (a ProofMode zip is unpacked by its
reader into the scratch folder it is given).

The sentences that are both recorded and shown at intake (the source's name, where and why
a medium is missing, a problem, a check's reason) are ``said.Said``: English in the records,
said in the run's language by ``intake`` for the report.

May import: the readers under ``custody.acquisition.sources``, ``source_records``,
``custody.ledger.provenance``, ``custody.i18n`` and the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.acquisition import source_records as records
from custody.acquisition.sources.claims import MediaClaim, Problem
from custody.acquisition.sources.said import Said
from custody.i18n import N_
from custody.ledger.provenance import Provenance


@dataclass(frozen=True)
class Missing:
    """A media file the source names but does not hold (or says it left out)."""

    name: str
    where: str  # "line 12", "message id 43", "proof set 3fa9…"
    status: str  # missing / omitted / unsafe
    reason: str
    sender: str | None = None  # as the source writes them: claims
    time_as_written: str | None = None


@dataclass(frozen=True)
class Reading:
    """What the reader of a kind found: entries by path in the source, and the rest."""

    source: str
    entries: dict[str, list[Provenance]]
    measured: dict[str, str]  # path in the source -> SHA-256 the reader measured
    missing: list[Missing]
    problems: list[Problem]
    checks: list[tuple[str, str, str, str]]  # (path in source, name, state, reason)
    warnings: list[str]
    default_role: str  # the role of a file the reader did not name


def read_chat(
    kind: str, export_root: Path, name: str, zip_path: Path | None, folder_rel: str
) -> Reading:
    from custody.acquisition.sources.telegram import read_telegram_export
    from custody.acquisition.sources.whatsapp import read_whatsapp_export

    details: dict[str, Any]
    if kind == "whatsapp":
        export = read_whatsapp_export(zip_path if zip_path is not None else export_root)
        chat = export.chat_file
        source = Said(
            N_("the WhatsApp export {name} (chat file {chat})"), name=repr(name), chat=chat.path
        )
        claims = export.media_claims()
        messages = len(export.messages)
        problems = list(export.problems)
        measured = {f.path: f.sha256 for a in export.attachments if (f := a.file) is not None}
        measured.update({f.path: f.sha256 for f in export.unnamed_files})
        details = {
            "conversation": export.conversation_name,
            "platform": export.platform,
            "date_order": export.date_order,
            "date_order_ambiguous": export.date_order_ambiguous,
            "date_order_reason": export.date_order_reason,
            "date_order_hint": export.date_order_hint,
            "time_zone_note": export.time_zone_note,
        }
    else:
        telegram = read_telegram_export(export_root)
        chat = telegram.result_json
        source = Said(
            N_("the Telegram Desktop export {name} ({chat})"), name=repr(name), chat=chat.path
        )
        claims = telegram.media_claims()
        messages = sum(len(c.messages) for c in telegram.chats)
        problems = list(telegram.problems)
        measured = {f.path: f.sha256 for m in telegram.media if (f := m.file) is not None}
        measured.update({f.path: f.sha256 for f in telegram.unreferenced_files})
        names = sorted({c.name for c in telegram.chats if c.name})
        details = {
            "conversation": names[0] if len(names) == 1 else None,
            "conversation_id": str(telegram.chats[0].id)
            if len(telegram.chats) == 1 and telegram.chats[0].id is not None
            else None,
            "platform": f"Telegram Desktop, {telegram.form.replace('_', ' ')} export",
            "notes": [f"{len(telegram.chats)} chats: " + ", ".join(repr(n) for n in names)]
            if len(names) > 1
            else None,
        }
    measured[chat.path] = chat.sha256
    chat_in_root = f"{folder_rel}/{chat.path}"
    present: dict[str, list[MediaClaim]] = {}
    for claim in claims:
        if claim.status == "present" and claim.path_in_export is not None:
            present.setdefault(claim.path_in_export, []).append(claim)
    entries: dict[str, list[Provenance]] = {
        where: [records.chat_media(first, source, chat_in_root, chat.sha256, rest)]
        for where, (first, *rest) in present.items()
    }
    absent = [c for c in claims if c.status != "present"]
    entries[chat.path] = [
        records.chat_file(
            kind,
            source,
            chat.path,
            messages=messages,
            media_named=len(claims),
            missing=absent,
            problems=problems,
            details=details,
        )
    ]
    missing = [
        Missing(
            c.media_name,
            c.message_ref,
            c.status,
            c.missing_reason or "",
            c.sender,
            c.time_as_written or None,
        )
        for c in absent
    ]
    return Reading(source, entries, measured, missing, problems, [], [], "unnamed-file")


def read_proofmode_bundle(
    export_root: Path,
    name: str,
    folder_rel: str,
    tmp: Path,
    anchors: bytes | None,
    expected: Sequence[str] | None,
) -> Reading:
    from custody.acquisition.sources.proofmode import read_proofmode

    bundle = read_proofmode(
        export_root, expected_fingerprints=expected, trust_anchors_pem=anchors, work_dir=tmp
    )
    source = Said(N_("the ProofMode bundle {name}"), name=repr(name))
    keys = {k.file: k for k in bundle.keys}
    entries: dict[str, list[Provenance]] = {}
    parts: dict[str, tuple[str, list[str]]] = {}
    checks: list[tuple[str, str, str, str]] = []
    missing: list[Missing] = []
    for proof in bundle.media:
        media = proof.media_file
        key = keys.get(proof.key_file) if proof.key_file else None
        if media is not None:
            found = [records.proofmode_media(proof, source, folder_rel, bundle.gpg_version, key)]
            if proof.c2pa is not None:
                found.append(records.c2pa_manifest(proof.c2pa, anchors))
            entries[media] = found
            checks.extend((media, c.name, str(c.state), c.reason) for c in proof.checks)
        else:
            where = Said(N_("proof set {hash}"), hash=proof.proof_hash)
            missing.append(
                Missing(
                    proof.proof_hash or "",
                    where,
                    "missing",
                    Said(N_("ProofMode shared the proof without the media")),
                )
            )
        for used in proof.files:
            if used == media:
                continue
            role = "key" if used == proof.key_file else "proof-file"
            owners = parts.setdefault(used, (role, []))[1]
            owners.append(media or f"(proof set {proof.proof_hash}, media not in the bundle)")
    for used, (role, owners) in parts.items():
        entries[used] = [
            records.part(
                "proofmode",
                role,
                source,
                used,
                bundle_path=folder_rel,
                for_media=sorted(set(owners)),
            )
        ]
    for other in bundle.other_files:
        entries.setdefault(
            other, [records.part("proofmode", "other", source, other, bundle_path=folder_rel)]
        )
    problems = [Problem(str(i.problem), i.reason, i.entry) for i in bundle.issues]
    measured: dict[str, str] = {}
    for proof in bundle.media:
        if proof.media_file and proof.media_sha256:
            measured[proof.media_file] = proof.media_sha256
    for key_file in bundle.keys:
        measured[key_file.file] = key_file.sha256
    return Reading(source, entries, measured, missing, problems, checks, [], "other")


def read_bag(export_root: Path, name: str, folder_rel: str) -> Reading:
    from custody.acquisition.sources.bagit import require_valid, validate_bag

    bag = require_valid(validate_bag(export_root))
    source = records.bag_source(name, bag)
    entries: dict[str, list[Provenance]] = {}
    measured: dict[str, str] = {}
    for payload in bag.payload:
        entries[payload.path] = [records.bag_payload(source, folder_rel, payload)]
        if payload.digest("sha256"):
            measured[payload.path] = str(payload.digest("sha256"))
    for tag in bag.tag_files:
        entries[tag.path] = [records.bag_tag_file(source, folder_rel, tag, bag)]
        if dict(tag.digests).get("sha256"):
            measured[tag.path] = dict(tag.digests)["sha256"]
    warnings = [str(f) for f in bag.warnings]  # for the report only: lines for people
    return Reading(source, entries, measured, [], [], [], warnings, "")
