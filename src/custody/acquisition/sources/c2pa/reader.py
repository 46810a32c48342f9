"""``read_c2pa``: one file handed to the C2PA SDK offline, with only the verifier's own
trust anchors, and its JSON report read into a ``C2paReport`` (the state never taken
as better than the SDK said)."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import c2pa as c2pa_sdk
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from custody.acquisition.sources.c2pa.model import (
    Action,
    C2paReport,
    Ingredient,
    SignerCertificate,
    SignerInfo,
    StatusEntry,
    StatusKind,
    ValidationState,
)
from custody.acquisition.sources.c2pa.store import (
    _x5chain,
    extract_manifest_store,
)
from custody.acquisition.sources.said import Said, refusal
from custody.errors import InputError, UsageError
from custody.i18n import N_

# --- reading -------------------------------------------------------------------------------


def read_c2pa(
    path: str | os.PathLike[str], trust_anchors_pem: bytes | None = None
) -> C2paReport | None:
    """Validate the C2PA manifest in ``path``; ``None`` when it carries none.

    ``trust_anchors_pem`` is the verifier's trust list (PEM certificates); without it the
    best possible state is ``valid``. Raises ``InputError`` when the file cannot be read
    and ``UsageError`` when the anchors are not PEM certificates. A file whose manifest
    the SDK cannot even parse is reported ``invalid`` (never ``None``) when custody finds
    a C2PA store in it; ``None`` means no store was found.
    """
    target = Path(path)
    anchors = _check_anchors(trust_anchors_pem)
    _check_regular_file(target)
    store = _store_or_note(target)
    context = c2pa_sdk.Context.from_dict(_settings(anchors))
    mime = _mime_for(target)
    try:
        with open(target, "rb") as stream:
            reader = c2pa_sdk.Reader(mime, stream, None, context)
            try:
                reader_json = reader.json()
                state_text = reader.get_validation_state()
            finally:
                reader.close()
    except c2pa_sdk.C2paError.ManifestNotFound:
        return None
    except OSError as exc:
        raise refusal(
            InputError,
            Said(
                N_("{path}: cannot be read ({why})"), path=str(target), why=str(exc.strerror or exc)
            ),
        ) from exc
    except c2pa_sdk.C2paError as exc:
        if store.data is None:
            # No C2PA store that custody can see either: an unsupported or unreadable
            # container, not a manifest that failed.
            return None
        return _unparseable_report(target, anchors is not None, store, str(exc))
    return _build_report(target, anchors is not None, reader_json, state_text, store)


def _check_anchors(pem: bytes | None) -> str | None:
    if pem is None:
        return None
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise refusal(
            UsageError, Said(N_("trust anchors: not PEM certificates ({why})"), why=str(exc))
        ) from exc
    if not certificates:
        raise refusal(UsageError, Said(N_("trust anchors: no certificate in the PEM given")))
    return pem.decode("ascii", errors="strict")


def _check_regular_file(target: Path) -> None:
    try:
        info = os.stat(target)
    except OSError as exc:
        raise refusal(
            InputError,
            Said(
                N_("{path}: cannot be read ({why})"), path=str(target), why=str(exc.strerror or exc)
            ),
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise refusal(InputError, Said(N_("{path}: not a regular file"), path=str(target)))


def _settings(anchors: str | None) -> dict[str, Any]:
    # Offline and explicit: no remote manifests, no OCSP, and trust only in what the
    # caller gave. trust_anchors *replaces* any anchors the SDK might otherwise use.
    return {
        "verify": {
            "verify_after_reading": True,
            "verify_trust": True,
            "verify_timestamp_trust": True,
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
        },
        "trust": {
            "trust_anchors": anchors,
            "user_anchors": None,
            "allowed_list": None,
        },
    }


def _mime_for(target: Path) -> str | None:
    guessed, _ = mimetypes.guess_type(target.name, strict=False)
    # None lets the SDK detect the container from the bytes.
    return guessed


@dataclass(frozen=True)
class _Store:
    data: bytes | None
    note: str


def _store_or_note(target: Path) -> _Store:
    try:
        with open(target, "rb") as handle:
            data, note = extract_manifest_store(handle)
    except OSError as exc:
        raise refusal(
            InputError,
            Said(
                N_("{path}: cannot be read ({why})"), path=str(target), why=str(exc.strerror or exc)
            ),
        ) from exc
    return _Store(data, note)


def _build_report(
    target: Path,
    anchors_supplied: bool,
    reader_json: str,
    state_text: str | None,
    store: _Store,
) -> C2paReport:
    notes: list[str] = []
    try:
        parsed = json.loads(reader_json)
    except ValueError:
        parsed = {}
        notes.append("the SDK's report was not JSON; nothing but its state was read")
    document: Mapping[str, Any] = parsed if isinstance(parsed, dict) else {}
    state = _state_from(state_text, notes)
    if state is ValidationState.TRUSTED and not anchors_supplied:
        state = ValidationState.VALID
        notes.append(
            "the SDK reported 'trusted' although no trust anchors were given; custody "
            "reports trust only against anchors the verifier supplies"
        )
    active_label = _text(document.get("active_manifest"))
    manifests = document.get("manifests")
    manifest_map: Mapping[str, Any] = manifests if isinstance(manifests, dict) else {}
    active = manifest_map.get(active_label) if active_label else None
    manifest: Mapping[str, Any] = active if isinstance(active, dict) else {}
    statuses = _statuses(document)
    if state is ValidationState.INVALID and not any(s.kind == "failure" for s in statuses):
        notes.append("the SDK reported 'invalid' without a failure code")
    certificates = _x5chain(store.data, active_label)
    return C2paReport(
        path=str(target),
        validation_state=state,
        trust_anchors_supplied=anchors_supplied,
        statuses=statuses,
        active_manifest=active_label,
        manifest_count=len(manifest_map),
        claim_generator=_claim_generator(manifest),
        title=_text(manifest.get("title")),
        signer=_signer(manifest, certificates),
        actions=_actions(manifest),
        ingredients=_ingredients(manifest),
        manifest_store_sha256=hashlib.sha256(store.data).hexdigest() if store.data else None,
        manifest_store_size=len(store.data) if store.data is not None else None,
        manifest_store_note=store.note,
        sdk_version=_sdk_version(),
        reader_json=reader_json,
        notes=tuple(notes),
    )


def _unparseable_report(
    target: Path, anchors_supplied: bool, store: _Store, message: str
) -> C2paReport:
    # custody names this code itself: the SDK refused the store outright, so there is no
    # status list of its own to quote.
    entry = StatusEntry(
        kind="failure",
        code="custody.manifestUnreadable",
        url=None,
        explanation=f"the C2PA SDK could not read the manifest store: {message}",
    )
    certificates = _x5chain(store.data, None)
    return C2paReport(
        path=str(target),
        validation_state=ValidationState.INVALID,
        trust_anchors_supplied=anchors_supplied,
        statuses=(entry,),
        active_manifest=None,
        manifest_count=0,
        claim_generator=None,
        title=None,
        signer=_signer({}, certificates) if certificates else None,
        actions=(),
        ingredients=(),
        manifest_store_sha256=hashlib.sha256(store.data).hexdigest() if store.data else None,
        manifest_store_size=len(store.data) if store.data is not None else None,
        manifest_store_note=store.note,
        sdk_version=_sdk_version(),
        reader_json="",
        notes=("a C2PA manifest store is present but the SDK could not parse it",),
    )


def _sdk_version() -> str:
    return f"c2pa-python {c2pa_sdk.__version__}, c2pa-rs {c2pa_sdk.sdk_version()}"


def _state_from(text: str | None, notes: list[str]) -> ValidationState:
    lowered = (text or "").strip().lower()
    for state in ValidationState:
        if lowered == state.value:
            return state
    # An unknown word from a future SDK is not taken as good news.
    notes.append(f"the SDK reported an unknown validation state {text!r}; taken as invalid")
    return ValidationState.INVALID


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _statuses(document: Mapping[str, Any]) -> tuple[StatusEntry, ...]:
    results = document.get("validation_results")
    entries: list[StatusEntry] = []
    if isinstance(results, dict):
        active = results.get("activeManifest")
        if isinstance(active, dict):
            entries.extend(_status_lists(active))
        deltas = results.get("ingredientDeltas")
        if isinstance(deltas, list):
            for delta in deltas:
                if isinstance(delta, dict) and isinstance(delta.get("validationDeltas"), dict):
                    entries.extend(_status_lists(delta["validationDeltas"]))
        return tuple(entries)
    # Older SDK reports carry only a flat list of failures.
    flat = document.get("validation_status")
    if isinstance(flat, list):
        entries.extend(_status_entry("failure", item) for item in flat if isinstance(item, dict))
    return tuple(entries)


def _status_lists(block: Mapping[str, Any]) -> Iterator[StatusEntry]:
    kinds: tuple[StatusKind, ...] = ("success", "informational", "failure")
    for kind in kinds:
        items = block.get(kind)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    yield _status_entry(kind, item)


def _status_entry(kind: StatusKind, item: Mapping[str, Any]) -> StatusEntry:
    return StatusEntry(
        kind=kind,
        code=_text(item.get("code")) or "(no code)",
        url=_text(item.get("url")),
        explanation=_text(item.get("explanation")),
    )


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    legacy = _text(manifest.get("claim_generator"))
    if legacy:
        return legacy
    info = manifest.get("claim_generator_info")
    if isinstance(info, list):
        parts = []
        for entry in info:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                version = _text(entry.get("version"))
                parts.append(f"{entry['name']}/{version}" if version else entry["name"])
        return " ".join(parts) or None
    return None


def _signer(manifest: Mapping[str, Any], chain: Sequence[bytes]) -> SignerInfo | None:
    info = manifest.get("signature_info")
    sig: Mapping[str, Any] = info if isinstance(info, dict) else {}
    if not sig and not chain:
        return None
    return SignerInfo(
        algorithm=_text(sig.get("alg")),
        common_name=_text(sig.get("common_name")),
        issuer_organization=_text(sig.get("issuer")),
        signing_time=_text(sig.get("time")),
        certificate=_describe_certificate(chain[0]) if chain else None,
        chain_length=len(chain),
    )


def _describe_certificate(der: bytes) -> SignerCertificate | None:
    try:
        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
    except ValueError:
        return None
    return SignerCertificate(
        subject=subject,
        issuer=issuer,
        serial_number=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=cert.not_valid_after_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sha256_fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _actions(manifest: Mapping[str, Any]) -> tuple[Action, ...]:
    found: list[Action] = []
    assertions = manifest.get("assertions")
    if not isinstance(assertions, list):
        return ()
    for assertion in assertions:
        if not isinstance(assertion, dict):
            continue
        label = _text(assertion.get("label")) or ""
        if not (label == "c2pa.actions" or label.startswith("c2pa.actions.")):
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, dict) else None
        if not isinstance(actions, list):
            continue
        for item in actions:
            if not isinstance(item, dict) or not isinstance(item.get("action"), str):
                continue
            agent = item.get("softwareAgent")
            if isinstance(agent, dict):
                agent = agent.get("name")
            found.append(
                Action(
                    action=item["action"],
                    when=_text(item.get("when")),
                    software_agent=_text(agent),
                    digital_source_type=_text(item.get("digitalSourceType")),
                    description=_text(item.get("description")),
                )
            )
    return tuple(found)


def _ingredients(manifest: Mapping[str, Any]) -> tuple[Ingredient, ...]:
    items = manifest.get("ingredients")
    if not isinstance(items, list):
        return ()
    found: list[Ingredient] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        codes: list[str] = []
        status = item.get("validation_status")
        if isinstance(status, list):
            codes.extend(
                s["code"] for s in status if isinstance(s, dict) and isinstance(s.get("code"), str)
            )
        found.append(
            Ingredient(
                title=_text(item.get("title")),
                format=_text(item.get("format")),
                relationship=_text(item.get("relationship")),
                instance_id=_text(item.get("instance_id")),
                document_id=_text(item.get("document_id")),
                active_manifest=_text(item.get("active_manifest")),
                validation_codes=tuple(codes),
            )
        )
    return tuple(found)
