"""What the source readers return, turned into the ``provenance`` entries of item records.

One function per kind of entry (``custody.ledger.provenance`` defines and checks them): a
chat export's media claim and its chat file, a ProofMode media file's checks and its
proof files, a C2PA manifest's state and claims, a BagIt bag's payload and tag files.
Nothing is decided here: claims are copied as the reader found them, check results as the
checker gave them. Strings longer than ``MAX_TEXT`` and lists longer than ``MAX_LIST`` (far
beyond anything real) are cut, and the entry's ``notes`` say where - the full text stays in
the source file, which is an item of its own. Every text is recorded in English, whatever
the language of the run: a reader's ``said.Said`` becomes its English value here.

May import: ``custody.ledger.provenance``, the readers under ``custody.acquisition.sources``
and the standard library.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from custody import __version__
from custody.acquisition.sources.said import Said
from custody.errors import InputError
from custody.i18n import N_
from custody.ledger.provenance import MAX_LIST, MAX_TEXT, Provenance

if TYPE_CHECKING:
    # Types only: every catalogue imports this module, and the readers pull in their
    # libraries (ProofMode's: opentimestamps, pycryptodome, cffi, pycparser, gnupg). They
    # are imported where a source of that kind is read; ``read_manifest`` imports the C2PA
    # reader when a file is first hashed.
    from custody.acquisition.sources.bagit import BagValidation, PayloadFile, TagFile
    from custody.acquisition.sources.c2pa import C2paReport
    from custody.acquisition.sources.claims import MediaClaim, Problem
    from custody.acquisition.sources.proofmode import MediaProof

CUSTODY = f"custody {__version__}"


def _bounded(value: Any, notes: list[str], where: str = "") -> Any:
    """``value`` with over-long strings and lists cut (saying so in ``notes``), and every
    string plain English text: a reader's ``Said`` is recorded as its English value."""
    if isinstance(value, str):
        value = str(value)  # a Said: its English, never a translation
        if len(value) > MAX_TEXT:
            notes.append(f"{where or 'a value'}: {len(value)} characters, only the first kept")
            return value[: MAX_TEXT - 64] + " [cut: see the source file]"
        return value
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            notes.append(f"{where}: {len(value)} entries, only the first {MAX_LIST} kept")
            value = value[:MAX_LIST]
        return [_bounded(v, notes, where) for v in value]
    if isinstance(value, dict):
        return {k: _bounded(v, notes, f"{where}.{k}" if where else k) for k, v in value.items()}
    return value


def entry(data: Mapping[str, Any]) -> Provenance:
    """A checked entry from ``data``: ``None`` members dropped, bounds applied."""
    notes = list(data.get("notes") or [])
    cleaned = {k: v for k, v in data.items() if v is not None and k != "notes"}
    bounded = _bounded(cleaned, notes)
    if notes:
        bounded["notes"] = [str(note) for note in notes[:MAX_LIST]]  # English
    return Provenance(bounded)


def _drop_none(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


# --- chat exports ------------------------------------------------------------------------------


def chat_media(
    claim: MediaClaim,
    source: str,
    chat_file_path: str,
    chat_file_sha256: str,
    also: Sequence[MediaClaim] = (),
) -> Provenance:
    """The claim one export makes about one media file it holds."""
    notes = list(claim.notes)
    for other in also:
        notes.append(
            f"also named by {other.message_ref}"
            + (f" from {other.sender!r}" if other.sender else "")
            + (f" at {other.time_as_written!r}" if other.time_as_written else "")
        )
    utc = claim.as_dict().get("utc_time")
    return entry(
        {
            "kind": claim.platform,
            "role": "media",
            "source": source,
            "path_in_source": claim.path_in_export,
            "conversation": claim.conversation,
            "conversation_id": claim.conversation_id,
            "message_ref": claim.message_ref,
            "message_id": claim.message_id,
            "sender": claim.sender,
            "sender_id": claim.sender_id,
            "time_as_written": claim.time_as_written,
            "time_readings": list(claim.time_readings),
            "time_ambiguous": claim.time_ambiguous,
            "time_zone_note": claim.time_zone_note,
            "utc_time": utc if isinstance(utc, str) else None,
            "utc_offset_minutes": claim.utc_offset_minutes,
            "text": claim.text,
            "media_name": claim.media_name,
            "media_role": claim.media_role,
            "forwarded_from": claim.forwarded_from,
            "saved_from": claim.saved_from,
            "chat_file": {"path": chat_file_path, "sha256": chat_file_sha256},
            "notes": notes,
        }
    )


def missing_media(claim: MediaClaim) -> dict[str, Any]:
    """A media file the export names but does not hold (or left out, or named unsafely)."""
    status = claim.status if claim.status in ("missing", "omitted", "unsafe") else "missing"
    return _drop_none(
        {
            "media_name": claim.media_name,
            "message_ref": claim.message_ref,
            "sender": claim.sender,
            "time_as_written": claim.time_as_written or None,
            "status": status,
            "reason": claim.missing_reason,
        }
    )


def problem(found: Problem) -> dict[str, Any]:
    return _drop_none({"code": found.code, "message": found.message, "where": found.where or None})


def chat_file(
    platform: str,
    source: str,
    path_in_source: str,
    *,
    messages: int,
    media_named: int,
    missing: Iterable[MediaClaim],
    problems: Iterable[Problem],
    details: Mapping[str, Any],
) -> Provenance:
    """The chat file (``_chat.txt``, ``result.json``): what the export as a whole says."""
    return entry(
        {
            "kind": platform,
            "role": "chat-file",
            "source": source,
            "path_in_source": path_in_source,
            **details,
            "messages": messages,
            "media_named": media_named,
            "missing_media": [missing_media(c) for c in missing],
            "problems": [problem(p) for p in problems],
        }
    )


def part(
    kind: str, role: str, source: str, path_in_source: str | None, **members: Any
) -> Provenance:
    """Any other file of a source (an archive, a file no message names, a proof file)."""
    return entry(
        {"kind": kind, "role": role, "source": source, "path_in_source": path_in_source, **members}
    )


# --- ProofMode -----------------------------------------------------------------------------------


def proofmode_media(
    proof: MediaProof, source: str, bundle_path: str, gpg_version: str, key: Any | None
) -> Provenance:
    """One media file of a ProofMode bundle: every check custody made and what the proof
    records (the sensor, device and location fields are the phone's claims)."""
    return entry(
        {
            "kind": "proofmode",
            "role": "media",
            "source": source,
            "path_in_source": proof.media_file,
            "bundle_path": bundle_path,
            "layout": proof.layout,
            "proof_hash": proof.proof_hash,
            "checks": [
                _drop_none(
                    {
                        "name": c.name,
                        "state": str(c.state),
                        "reason": c.reason,
                        "problem": str(c.problem) if c.problem else None,
                    }
                )
                for c in proof.checks
            ],
            "signatures": [
                _drop_none(
                    {
                        "signature_file": s.signature_file,
                        "signed_file": s.signed_file,
                        "state": str(s.state),
                        "problem": str(s.problem) if s.problem else None,
                        "reason": s.reason,
                        "signer_fingerprint": s.signer_fingerprint,
                        "primary_fingerprint": s.primary_fingerprint,
                        "signature_created": s.signature_created,
                        "hash_algorithm": s.hash_algorithm,
                        "pubkey_algorithm": s.pubkey_algorithm,
                        "gpg_status": list(s.gpg_status),
                    }
                )
                for s in proof.signatures
            ],
            "proofs": [
                {
                    "source_file": r.source_file,
                    "format": r.kind,
                    "index": r.index,
                    "fields": [[k, v] for k, v in r.fields],
                    "signature_verified": r.signature_verified,
                }
                for r in proof.proofs
            ],
            "key": None
            if key is None
            else _drop_none(
                {
                    "file": key.file,
                    "sha256": key.sha256,
                    "fingerprints": list(key.fingerprints),
                    "user_ids": list(key.user_ids),
                    "error": key.error,
                }
            ),
            "ots": None
            if proof.ots is None
            else _drop_none(
                {
                    "file": proof.ots.file,
                    "sha256": proof.ots.sha256,
                    "size": proof.ots.size,
                    "file_hash_algorithm": proof.ots.file_hash_algorithm,
                    "file_digest": proof.ots.file_digest,
                    "attestations": [
                        _drop_none(
                            {
                                "kind": a.kind,
                                "commitment": a.commitment,
                                "calendar_url": a.calendar_url,
                                "block_height": a.block_height,
                                "merkle_root": a.merkle_root,
                                "tag": a.tag,
                            }
                        )
                        for a in proof.ots.attestations
                    ],
                    "error": proof.ots.error,
                }
            ),
            "device_attestation": None
            if proof.device_attestation is None
            else _drop_none(
                {
                    "file": proof.device_attestation.file,
                    "sha256": proof.device_attestation.sha256,
                    "header_json": proof.device_attestation.header_json,
                    "payload_json": proof.device_attestation.payload_json,
                    "error": proof.device_attestation.error,
                }
            ),
            "nostr_file": proof.nostr_file,
            "files": list(proof.files),
            "checked_with": f"{CUSTODY}, GnuPG {gpg_version}",
        }
    )


# --- C2PA --------------------------------------------------------------------------------------


def c2pa_manifest(report: C2paReport, anchors_pem: bytes | None) -> Provenance:
    """The C2PA manifest embedded in a file: the SDK's verdict, and the manifest's claims."""
    signer = report.signer
    certificate = signer.certificate if signer else None
    return entry(
        {
            "kind": "c2pa",
            "role": "manifest",
            "source": "the C2PA manifest embedded in the file",
            "validation_state": str(report.validation_state),
            "trust_anchors_supplied": report.trust_anchors_supplied,
            "trust_anchors_sha256": hashlib.sha256(anchors_pem).hexdigest()
            if anchors_pem is not None and report.trust_anchors_supplied
            else None,
            "statuses": [
                _drop_none(
                    {"kind": s.kind, "code": s.code, "url": s.url, "explanation": s.explanation}
                )
                for s in report.statuses
            ],
            "active_manifest": report.active_manifest,
            "manifest_count": report.manifest_count,
            "claim_generator": report.claim_generator,
            "title": report.title,
            "signer": None
            if signer is None
            else _drop_none(
                {
                    "algorithm": signer.algorithm,
                    "common_name": signer.common_name,
                    "issuer_organization": signer.issuer_organization,
                    "signing_time": signer.signing_time,
                    "certificate": None
                    if certificate is None
                    else {
                        "subject": certificate.subject,
                        "issuer": certificate.issuer,
                        "serial_number": certificate.serial_number,
                        "not_before": certificate.not_before,
                        "not_after": certificate.not_after,
                        "sha256_fingerprint": certificate.sha256_fingerprint,
                    },
                    "chain_length": signer.chain_length,
                }
            ),
            "actions": [
                _drop_none(
                    {
                        "action": a.action,
                        "when": a.when,
                        "software_agent": a.software_agent,
                        "digital_source_type": a.digital_source_type,
                        "description": a.description,
                    }
                )
                for a in report.actions
            ],
            "ingredients": [
                _drop_none(
                    {
                        "title": i.title,
                        "format": i.format,
                        "relationship": i.relationship,
                        "instance_id": i.instance_id,
                        "document_id": i.document_id,
                        "active_manifest": i.active_manifest,
                        "validation_codes": list(i.validation_codes),
                    }
                )
                for i in report.ingredients
            ],
            "manifest_store_sha256": report.manifest_store_sha256,
            "manifest_store_size": report.manifest_store_size,
            "manifest_store_note": report.manifest_store_note,
            "checked_with": f"{CUSTODY}, {report.sdk_version}",
            "notes": list(report.notes),
        }
    )


# --- BagIt ---------------------------------------------------------------------------------------


def bag_source(name: str, bag: BagValidation) -> str:
    """ "the BagIt bag 'NAME' from ORGANISATION (EXTERNAL-IDENTIFIER)", from bag-info.txt
    (a ``Said``: recorded in English, shown in the run's language)."""
    organisation = bag.info_values("Source-Organization")
    identifier = bag.info_values("External-Identifier")
    name = repr(name)
    if organisation and identifier:
        return Said(
            N_("the BagIt bag {name} from {organisation} (External-Identifier {identifier})"),
            name=name,
            organisation=repr(organisation[0]),
            identifier=repr(identifier[0]),
        )
    if organisation:
        return Said(
            N_("the BagIt bag {name} from {organisation}"),
            name=name,
            organisation=repr(organisation[0]),
        )
    if identifier:
        return Said(
            N_("the BagIt bag {name} (External-Identifier {identifier})"),
            name=name,
            identifier=repr(identifier[0]),
        )
    return Said(N_("the BagIt bag {name}"), name=name)


def bag_payload(source: str, bag_path: str, payload: PayloadFile) -> Provenance:
    return entry(
        {
            "kind": "bagit",
            "role": "payload",
            "source": source,
            "path_in_source": payload.path,
            "bag_path": bag_path,
            "bag_digests": dict(payload.digests),
            "listed_as": list(payload.listed_as) or None,
        }
    )


def bag_tag_file(source: str, bag_path: str, tag: TagFile, bag: BagValidation) -> Provenance:
    """A tag file; the declaration also carries the bag's facts, the metadata file its
    elements (bag-info.txt kept as the source's description of itself)."""
    members: dict[str, Any] = {"tag_role": tag.role, "bag_digests": dict(tag.digests) or None}
    if tag.role == "declaration":
        members.update(
            version=bag.version,
            encoding=bag.encoding,
            payload_oxum=f"{bag.payload_oxum[0]}.{bag.payload_oxum[1]}"
            if bag.payload_oxum
            else None,
            payload_algorithms=list(bag.payload_algorithms),
            tag_algorithms=list(bag.tag_algorithms),
            payload_files=len(bag.payload),
            warnings=[
                _drop_none({"kind": str(f.kind), "path": f.path, "message": f.message})
                for f in bag.warnings
            ],
            checked_with=f"{CUSTODY} (RFC 8493 validator)",
        )
    if tag.role == "metadata":
        members["info"] = [[f.label, f.value] for f in bag.info]
    return entry(
        {
            "kind": "bagit",
            "role": "tag-file",
            "source": source,
            "path_in_source": tag.path,
            "bag_path": bag_path,
            **members,
        }
    )


def read_manifest(
    path: bytes, known: Sequence[Provenance], anchors_pem: bytes | None
) -> tuple[Provenance, ...]:
    """The C2PA entry for the file at ``path`` (absolute), or none when it carries no
    manifest or one was already read (a ProofMode media file's).

    Called for every file catalogued: the SDK answers in about a millisecond for a file
    without a manifest (measured on the corpus). A file that cannot be read here was read
    a moment before to hash it; it gets no entry and cataloguing goes on.
    """
    if any(p.kind == "c2pa" for p in known):
        return ()
    from custody.acquisition.sources.c2pa.reader import read_c2pa

    try:
        report = read_c2pa(os.fsdecode(path), anchors_pem)
    except InputError:
        return ()
    if report is None:
        return ()
    return (c2pa_manifest(report, anchors_pem),)
