"""C2PA manifests in media files: what the C2PA SDK says of them, and the manifest's own hash.

Owns ``read_c2pa``: one media file in, one ``C2paReport`` out (or ``None`` when the file
carries no manifest the SDK can find). May import ``custody.errors``, the standard library,
``c2pa`` (c2pa-python, the Content Authenticity Initiative's SDK over c2pa-rs), ``cbor2``
and ``cryptography``. It never writes, never fetches: remote manifests and OCSP are off.

What is checked, and by whom
----------------------------
The SDK validates: the claim signature (COSE), the hashed links from the claim to each
assertion, the hard binding between the manifest and the file's bytes (data hash), the
ingredients' manifests, and the signing certificate's chain against trust anchors. Its
verdict uses C2PA's own three validation states (C2PA 2.x, "Validation states"):

- ``invalid``: at least one of those checks failed: the file or the manifest was altered,
  or the manifest is malformed;
- ``valid``: everything is intact, but the signer is not one the verifier trusts;
- ``trusted``: valid, and the signing certificate chains to a trust anchor.

custody reports ``trusted`` only against anchors the caller supplies (``trust_anchors_pem``:
the verifier's own trust list, never material from the file). With no anchors given the
SDK is given none, and should it still say ``Trusted`` the report says ``valid`` with a
note. The full status list (``success`` / ``informational`` / ``failure`` entries with the
SDK's codes, e.g. ``assertion.dataHash.mismatch``, ``signingCredential.untrusted``) is
kept as the SDK gave it.

What is only recorded
---------------------
The claim generator, title, actions and ingredients are what the signer asserted: claims,
kept as data. The signer's certificate (subject, issuer, serial, validity, SHA-256
fingerprint) is read by custody from the COSE_Sign1 ``x5chain`` header of the active
manifest's ``c2pa.signature`` box (RFC 9052 / RFC 9360 label 33) with ``cbor2`` and
``cryptography``; it is a description of who signed, its trust is the SDK's verdict above.

The manifest's hash
-------------------
``manifest_store_sha256`` is the SHA-256 of the C2PA manifest store exactly as embedded:
the JUMBF superbox whose description box carries the ``c2pa`` UUID. custody extracts it
itself, following c2pa-rs:

- JPEG: APP11 segments, JPEG XT header ``CI(2) En(2) Z(4)``, the store starting in the
  segment whose bytes 24..28 are ``c2pa``; continuation segments (same ``En``) repeat
  ``LBox``/``TBox``, which are dropped (contentauth/c2pa-rs
  ``sdk/src/asset_handlers/jpeg_io.rs`` at 0489acd448369506b4be3e1bf229ee624e91155a,
  ``read_cai``);
- PNG: the ``caBX`` chunk holds the store (c2pa-rs ``png_io.rs``).

Other containers (BMFF video, WebP, TIFF, PDF …) are validated by the SDK all the same,
but their store hash is not computed and the report says so (``manifest_store_note``). The
test suite checks the JPEG and PNG extraction byte for byte against the store the SDK
itself returns when signing. The hash names these exact bytes; it is not itself signed:
the COSE ``pad`` bytes c2pa-rs reserves in the signature box are covered by no signature,
so changing them changes the hash and leaves the state ``trusted``.

How an expert confirms
----------------------
``c2patool FILE`` (contentauth/c2patool, or ``c2patool FILE --detailed``) prints the same
manifest store and validation status; with a trust list:
``c2patool FILE trust --trust_anchors anchors.pem``. Any other conforming validator
(e.g. the CAI's verify site, offline copies excepted) must reach the same state.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import stat
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, Literal

import c2pa as c2pa_sdk
import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from custody.errors import InputError, UsageError

__all__ = [
    "Action",
    "C2paReport",
    "Ingredient",
    "SignerCertificate",
    "SignerInfo",
    "StatusEntry",
    "ValidationState",
    "extract_manifest_store",
    "read_c2pa",
]

StatusKind = Literal["success", "informational", "failure"]

# The UUID every C2PA manifest store's JUMBF description box carries; its first four
# bytes spell "c2pa" (C2PA 2.x, "Use of JUMBF").
C2PA_STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")
_JPEG_APP11 = 0xEB
_JPEG_SOS = 0xDA
_JPEG_EOI = 0xD9
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# c2pa-rs stores at most 64 000 bytes of store per APP11 segment; a store of 256 MiB
# would be thousands of segments and is refused rather than buffered.
_MAX_STORE_BYTES = 256 * 1024 * 1024
_COSE_SIGN1_TAG = 18
_COSE_X5CHAIN = 33


class ValidationState(StrEnum):
    """C2PA's three validation states (see the module docstring)."""

    INVALID = "invalid"
    VALID = "valid"
    TRUSTED = "trusted"


@dataclass(frozen=True)
class StatusEntry:
    """One validation status the SDK reported, as it reported it."""

    kind: StatusKind
    code: str
    url: str | None
    explanation: str | None


@dataclass(frozen=True)
class SignerCertificate:
    """The end-entity certificate from the claim signature's x5chain (a description)."""

    subject: str
    issuer: str
    serial_number: str  # hexadecimal
    not_before: str  # RFC 3339, UTC
    not_after: str
    sha256_fingerprint: str  # of the DER certificate, hexadecimal


@dataclass(frozen=True)
class SignerInfo:
    """Who signed the active manifest: the SDK's summary and the certificate itself."""

    algorithm: str | None
    common_name: str | None  # as the SDK reports it
    issuer_organization: str | None  # the SDK's "issuer" field
    signing_time: str | None  # from a time-stamp, when the manifest has one
    certificate: SignerCertificate | None
    chain_length: int


@dataclass(frozen=True)
class Action:
    """One entry of a ``c2pa.actions`` assertion: a claim by the signer."""

    action: str
    when: str | None
    software_agent: str | None
    digital_source_type: str | None
    description: str | None


@dataclass(frozen=True)
class Ingredient:
    """One ingredient of the active manifest: a claim about where the content came from."""

    title: str | None
    format: str | None
    relationship: str | None
    instance_id: str | None
    document_id: str | None
    active_manifest: str | None
    validation_codes: tuple[str, ...]


@dataclass(frozen=True)
class C2paReport:
    """What the C2PA SDK concluded about one file's manifest, and what the manifest claims."""

    path: str
    validation_state: ValidationState
    trust_anchors_supplied: bool
    statuses: tuple[StatusEntry, ...]
    active_manifest: str | None
    manifest_count: int
    claim_generator: str | None
    title: str | None
    signer: SignerInfo | None
    actions: tuple[Action, ...]
    ingredients: tuple[Ingredient, ...]
    manifest_store_sha256: str | None
    manifest_store_size: int | None
    manifest_store_note: str
    sdk_version: str
    reader_json: str  # the SDK's manifest store report, verbatim, for the record
    notes: tuple[str, ...]

    @property
    def failure_codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.statuses if s.kind == "failure")

    @property
    def is_intact(self) -> bool:
        """Valid or trusted: signature and bindings hold (says nothing of the signer)."""
        return self.validation_state is not ValidationState.INVALID


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
        raise InputError(f"{target}: cannot be read ({exc.strerror or exc})") from exc
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
        raise UsageError(f"trust anchors: not PEM certificates ({exc})") from exc
    if not certificates:
        raise UsageError("trust anchors: no certificate in the PEM given")
    return pem.decode("ascii", errors="strict")


def _check_regular_file(target: Path) -> None:
    try:
        info = os.stat(target)
    except OSError as exc:
        raise InputError(f"{target}: cannot be read ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{target}: not a regular file")


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
        raise InputError(f"{target}: cannot be read ({exc.strerror or exc})") from exc
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


# --- the manifest store, as embedded ----------------------------------------------------------


def extract_manifest_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    """The embedded C2PA manifest store's bytes (JPEG, PNG), and a note saying how.

    Returns ``(None, reason)`` when there is none or the container is not one custody
    extracts from. Reads sequentially and never more than the store plus headers.
    """
    head = handle.read(8)
    if head[:2] == b"\xff\xd8":
        handle.seek(2)
        return _jpeg_store(handle)
    if head == _PNG_MAGIC:
        return _png_store(handle)
    return None, "manifest store hash not computed: custody extracts it from JPEG and PNG only"


def _read_exact(handle: BinaryIO, size: int) -> bytes | None:
    data = handle.read(size)
    return data if len(data) == size else None


def _jpeg_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    buffer = bytearray()
    current_en: bytes | None = None
    segments = 0
    stores = 0
    while True:
        byte = handle.read(1)
        if not byte:
            break
        if byte != b"\xff":
            break  # not at a marker: malformed, stop looking
        marker = handle.read(1)
        while marker == b"\xff":  # fill bytes
            marker = handle.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:
            continue  # standalone markers carry no length
        if code == _JPEG_EOI:
            break
        length_bytes = _read_exact(handle, 2)
        if length_bytes is None:
            break
        (length,) = struct.unpack(">H", length_bytes)
        if length < 2:
            break
        if code == _JPEG_SOS:
            break  # the manifest precedes the scan data
        if code != _JPEG_APP11:
            handle.seek(length - 2, io.SEEK_CUR)
            continue
        contents = _read_exact(handle, length - 2)
        if contents is None or len(contents) <= 16:
            continue
        en = contents[2:4]
        if current_en is not None and en == current_en:
            (sequence,) = struct.unpack(">I", contents[4:8])
            if sequence <= segments:
                current_en = None  # an out-of-order repeat: c2pa-rs drops the run too
                continue
            buffer += contents[16:]
            segments += 1
        elif len(contents) > 28 and contents[24:28] == b"c2pa":
            stores += 1
            if stores > 1:
                return None, "two C2PA manifest stores in one JPEG: the file is not valid C2PA"
            buffer += contents[8:]
            segments = 1
            current_en = en
        if len(buffer) > _MAX_STORE_BYTES:
            return None, "manifest store larger than 256 MiB: not hashed"
    if not buffer:
        return None, "no C2PA manifest store found in the JPEG's APP11 segments"
    return bytes(buffer), "JUMBF manifest store reassembled from JPEG APP11 segments"


def _png_store(handle: BinaryIO) -> tuple[bytes | None, str]:
    while True:
        header = _read_exact(handle, 8)
        if header is None:
            break
        length, kind = struct.unpack(">I4s", header)
        if kind == b"caBX":
            if length > _MAX_STORE_BYTES:
                return None, "manifest store larger than 256 MiB: not hashed"
            data = _read_exact(handle, length)
            if data is None:
                return None, "PNG caBX chunk truncated"
            return data, "JUMBF manifest store from the PNG caBX chunk"
        if kind == b"IEND":
            break
        handle.seek(length + 4, io.SEEK_CUR)  # data and CRC
    return None, "no caBX chunk in the PNG"


# --- the signer's certificate, from the COSE signature ------------------------------------------


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each ISO BMFF-style box in ``data``; stops at malformed ones."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        header = 8
        if size == 1:
            if offset + 16 > len(data):
                return
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
            header = 16
        elif size == 0:
            size = len(data) - offset
        if size < header or offset + size > len(data):
            return
        yield kind, data[offset + header : offset + size]
        offset += size


def _superbox(payload: bytes) -> tuple[str | None, list[tuple[bytes, bytes]]]:
    """The label of a JUMBF superbox and its child boxes after the description box."""
    children = list(_boxes(payload))
    if not children or children[0][0] != b"jumd":
        return None, []
    description = children[0][1]
    if len(description) < 17:
        return None, []
    toggles = description[16]
    label = None
    if toggles & 0x02:  # label present, NUL-terminated UTF-8 (ISO/IEC 19566-5)
        end = description.find(b"\x00", 17)
        if end != -1:
            label = description[17:end].decode("utf-8", errors="replace")
    return label, children[1:]


def _x5chain(store: bytes | None, active_label: str | None) -> tuple[bytes, ...]:
    if not store:
        return ()
    try:
        return _x5chain_unchecked(store, active_label)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, struct.error):
        return ()


def _x5chain_unchecked(store: bytes, active_label: str | None) -> tuple[bytes, ...]:
    top = next(_boxes(store), None)
    if top is None or top[0] != b"jumb":
        return ()
    _, manifests = _superbox(top[1])
    chosen: list[tuple[bytes, bytes]] | None = None
    for kind, payload in manifests:
        if kind != b"jumb":
            continue
        label, children = _superbox(payload)
        # The active manifest is the one named, else the last in the store (C2PA 2.x).
        if active_label is None or label == active_label:
            chosen = children
    if chosen is None:
        return ()
    for kind, payload in chosen:
        if kind != b"jumb":
            continue
        label, children = _superbox(payload)
        if label != "c2pa.signature":
            continue
        for inner_kind, inner in children:
            if inner_kind == b"cbor":
                return _certificates_from_cose(inner)
    return ()


def _certificates_from_cose(data: bytes) -> tuple[bytes, ...]:
    try:
        decoded = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, RecursionError, MemoryError):
        return ()
    if isinstance(decoded, cbor2.CBORTag):
        if decoded.tag != _COSE_SIGN1_TAG:
            return ()
        decoded = decoded.value
    # cbor2 6 returns arrays as tuples and maps as its own frozendict.
    if not isinstance(decoded, list | tuple) or len(decoded) != 4:
        return ()
    protected_raw, unprotected = decoded[0], decoded[1]
    protected: object = {}
    if isinstance(protected_raw, bytes) and protected_raw:
        try:
            protected = cbor2.loads(protected_raw)
        except (cbor2.CBORDecodeError, ValueError, RecursionError, MemoryError):
            protected = {}
    for header in (protected, unprotected):
        if not isinstance(header, Mapping):
            continue
        for key in (_COSE_X5CHAIN, "x5chain"):  # C2PA 1.x wrote the label as text
            value = header.get(key)
            if isinstance(value, bytes):
                return (value,)
            if isinstance(value, list | tuple) and all(isinstance(v, bytes) for v in value):
                return tuple(value)
    return ()
