"""The ``provenance`` member of an item record: what the source an item came from says
about it, and what custody checked of that source's own proofs when it took the item in.

An item taken in from a WhatsApp or Telegram export, a ProofMode bundle or a BagIt bag,
or carrying a C2PA manifest, has one entry here per source (a ProofMode photo with a C2PA
manifest has two). Each entry is an object with a ``kind`` (``whatsapp``, ``telegram``,
``proofmode``, ``c2pa``, ``bagit``), the item's ``role`` in that source (the media a
message carries, the chat file, a proof file, a bag's payload …), a ``source`` sentence
naming the source as a person would ("the WhatsApp export 'WhatsApp Chat - X.zip' (chat
file _chat.txt)"), and the members its kind and role allow (``SPECS``).

Everything an entry holds is either a *claim* of the source - who sent a file, when, in
which conversation, what a ProofMode proof or a C2PA manifest asserts - recorded as the
source wrote it and never as a fact, or the *result of a check* custody made at intake
(``state``: ``passed`` / ``failed`` / ``not_checkable``, C2PA's ``invalid`` / ``valid`` /
``trusted``), recorded with the tool that made it. ``docs/format.md`` (item) and
``docs/sources.md`` describe each member.

Parsing is strict and bounded, as for every body: only the members the kind and role
allow, each of its type; a string holds at most ``MAX_TEXT`` characters and a list at most
``MAX_LIST`` entries; nesting is fixed by the specs. ``json_schema`` derives the JSON
Schema in ``schemas/record.schema.json`` from the same specs, and a test keeps the two in
step.

May import: ``custody.errors``, ``custody.clock``, ``custody.i18n`` and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from custody.clock import check_time
from custody.errors import RecordError
from custody.i18n import _

KINDS = ("whatsapp", "telegram", "proofmode", "c2pa", "bagit")
CHECK_STATES = ("passed", "failed", "not_checkable")
C2PA_STATES = ("invalid", "valid", "trusted")
MAX_TEXT = 1 << 20
MAX_LIST = 100_000

_HEX = re.compile(r"^[0-9a-f]+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# A member's type: a code, or ("obj", spec) / ("objs", spec) / ("enum", values).
# Codes: str, int, count (>= 0), bool, hex64, time (RFC 3339 UTC), strs (list of str),
# pairs (list of [str, str], order and repeats kept), digests (name -> lowercase hex).
Spec = Mapping[str, tuple[Any, bool]]  # member -> (type, required)


def _obj(spec: Spec) -> tuple[str, Spec]:
    return ("obj", spec)


def _objs(spec: Spec) -> tuple[str, Spec]:
    return ("objs", spec)


def _enum(*values: str) -> tuple[str, tuple[str, ...]]:
    return ("enum", values)


REQ, OPT = True, False

_COMMON: Spec = {
    "kind": (_enum(*KINDS), REQ),
    "role": ("str", REQ),
    "source": ("str", REQ),
    "path_in_source": ("str", OPT),
    "notes": ("strs", OPT),
}

_PROBLEM: Spec = {"code": ("str", REQ), "message": ("str", REQ), "where": ("str", OPT)}

_MISSING: Spec = {
    "media_name": ("str", REQ),
    "message_ref": ("str", REQ),
    "sender": ("str", OPT),
    "time_as_written": ("str", OPT),
    "status": (_enum("missing", "omitted", "unsafe"), REQ),
    "reason": ("str", OPT),
}

_CHAT_MEDIA: Spec = {
    "conversation": ("str", OPT),
    "conversation_id": ("str", OPT),
    "message_ref": ("str", REQ),
    "message_id": ("int", OPT),
    "sender": ("str", OPT),
    "sender_id": ("str", OPT),
    "time_as_written": ("str", REQ),
    "time_readings": ("strs", REQ),
    "time_ambiguous": ("bool", REQ),
    "time_zone_note": ("str", REQ),
    "utc_time": ("time", OPT),
    "utc_offset_minutes": ("int", OPT),
    "text": ("str", REQ),
    "media_name": ("str", REQ),
    "media_role": ("str", REQ),
    "forwarded_from": ("str", OPT),
    "saved_from": ("str", OPT),
    "chat_file": (_obj({"path": ("str", REQ), "sha256": ("hex64", REQ)}), REQ),
}

_CHAT_FILE: Spec = {
    "conversation": ("str", OPT),
    "conversation_id": ("str", OPT),
    "platform": ("str", OPT),
    "date_order": ("str", OPT),
    "date_order_ambiguous": ("bool", OPT),
    "date_order_reason": ("str", OPT),
    "date_order_hint": ("str", OPT),
    "time_zone_note": ("str", OPT),
    "messages": ("count", REQ),
    "media_named": ("count", REQ),
    "missing_media": (_objs(_MISSING), REQ),
    "problems": (_objs(_PROBLEM), REQ),
}

_CHECK: Spec = {
    "name": ("str", REQ),
    "state": (_enum(*CHECK_STATES), REQ),
    "reason": ("str", REQ),
    "problem": ("str", OPT),
}

_SIGNATURE: Spec = {
    "signature_file": ("str", REQ),
    "signed_file": ("str", OPT),
    "state": (_enum(*CHECK_STATES), REQ),
    "problem": ("str", OPT),
    "reason": ("str", REQ),
    "signer_fingerprint": ("str", OPT),
    "primary_fingerprint": ("str", OPT),
    "signature_created": ("str", OPT),
    "hash_algorithm": ("str", OPT),
    "pubkey_algorithm": ("str", OPT),
    "gpg_status": ("strs", OPT),
}

_PROOF_RECORD: Spec = {
    "source_file": ("str", REQ),
    "format": (_enum("json", "csv"), REQ),
    "index": ("count", REQ),
    "fields": ("pairs", REQ),
    "signature_verified": ("bool", REQ),
}

_BUNDLE_KEY: Spec = {
    "file": ("str", REQ),
    "sha256": ("hex64", REQ),
    "fingerprints": ("strs", REQ),
    "user_ids": ("strs", REQ),
    "error": ("str", OPT),
}

_OTS_ATTESTATION: Spec = {
    "kind": (_enum("pending", "bitcoin", "litecoin", "ethereum", "unknown"), REQ),
    "commitment": ("str", REQ),
    "calendar_url": ("str", OPT),
    "block_height": ("int", OPT),
    "merkle_root": ("str", OPT),
    "tag": ("str", OPT),
}

_OTS: Spec = {
    "file": ("str", REQ),
    "sha256": ("hex64", REQ),
    "size": ("count", REQ),
    "file_hash_algorithm": ("str", OPT),
    "file_digest": ("str", OPT),
    "attestations": (_objs(_OTS_ATTESTATION), REQ),
    "error": ("str", OPT),
}

_DEVICE_ATTESTATION: Spec = {
    "file": ("str", REQ),
    "sha256": ("hex64", REQ),
    "header_json": ("str", OPT),
    "payload_json": ("str", OPT),
    "error": ("str", OPT),
}

_PROOFMODE_MEDIA: Spec = {
    "bundle_path": ("str", REQ),
    "layout": (_enum("hash-named", "media-named", "none"), REQ),
    "proof_hash": ("str", OPT),
    "checks": (_objs(_CHECK), REQ),
    "signatures": (_objs(_SIGNATURE), REQ),
    "proofs": (_objs(_PROOF_RECORD), REQ),
    "key": (_obj(_BUNDLE_KEY), OPT),
    "ots": (_obj(_OTS), OPT),
    "device_attestation": (_obj(_DEVICE_ATTESTATION), OPT),
    "nostr_file": ("str", OPT),
    "files": ("strs", REQ),
    "checked_with": ("str", REQ),
}

_PROOFMODE_PART: Spec = {"bundle_path": ("str", OPT), "for_media": ("strs", OPT)}

_C2PA_STATUS: Spec = {
    "kind": (_enum("success", "informational", "failure"), REQ),
    "code": ("str", REQ),
    "url": ("str", OPT),
    "explanation": ("str", OPT),
}

_C2PA_CERTIFICATE: Spec = {
    "subject": ("str", REQ),
    "issuer": ("str", REQ),
    "serial_number": ("str", REQ),
    "not_before": ("str", REQ),
    "not_after": ("str", REQ),
    "sha256_fingerprint": ("hex64", REQ),
}

_C2PA_SIGNER: Spec = {
    "algorithm": ("str", OPT),
    "common_name": ("str", OPT),
    "issuer_organization": ("str", OPT),
    "signing_time": ("str", OPT),
    "certificate": (_obj(_C2PA_CERTIFICATE), OPT),
    "chain_length": ("count", REQ),
}

_C2PA_ACTION: Spec = {
    "action": ("str", REQ),
    "when": ("str", OPT),
    "software_agent": ("str", OPT),
    "digital_source_type": ("str", OPT),
    "description": ("str", OPT),
}

_C2PA_INGREDIENT: Spec = {
    "title": ("str", OPT),
    "format": ("str", OPT),
    "relationship": ("str", OPT),
    "instance_id": ("str", OPT),
    "document_id": ("str", OPT),
    "active_manifest": ("str", OPT),
    "validation_codes": ("strs", REQ),
}

_C2PA_MANIFEST: Spec = {
    "validation_state": (_enum(*C2PA_STATES), REQ),
    "trust_anchors_supplied": ("bool", REQ),
    "trust_anchors_sha256": ("hex64", OPT),
    "statuses": (_objs(_C2PA_STATUS), REQ),
    "active_manifest": ("str", OPT),
    "manifest_count": ("count", REQ),
    "claim_generator": ("str", OPT),
    "title": ("str", OPT),
    "signer": (_obj(_C2PA_SIGNER), OPT),
    "actions": (_objs(_C2PA_ACTION), REQ),
    "ingredients": (_objs(_C2PA_INGREDIENT), REQ),
    "manifest_store_sha256": ("hex64", OPT),
    "manifest_store_size": ("count", OPT),
    "manifest_store_note": ("str", REQ),
    "checked_with": ("str", REQ),
}

_BAG_FINDING: Spec = {"kind": ("str", REQ), "path": ("str", OPT), "message": ("str", REQ)}

_BAG_PART: Spec = {
    "bag_path": ("str", REQ),
    "bag_digests": ("digests", OPT),
    "listed_as": ("strs", OPT),
    "tag_role": ("str", OPT),
    "info": ("pairs", OPT),
    "version": ("str", OPT),
    "encoding": ("str", OPT),
    "payload_oxum": ("str", OPT),
    "payload_algorithms": ("strs", OPT),
    "tag_algorithms": ("strs", OPT),
    "payload_files": ("count", OPT),
    "warnings": (_objs(_BAG_FINDING), OPT),
    "checked_with": ("str", OPT),
}

_NOTHING: Spec = {}

# kind -> role -> the members that role allows beyond _COMMON.
SPECS: Mapping[str, Mapping[str, Spec]] = {
    "whatsapp": {
        "media": _CHAT_MEDIA,
        "chat-file": _CHAT_FILE,
        "unnamed-file": _NOTHING,
        "archive": _NOTHING,
    },
    "telegram": {
        "media": _CHAT_MEDIA,
        "chat-file": _CHAT_FILE,
        "unnamed-file": _NOTHING,
        "archive": _NOTHING,
    },
    "proofmode": {
        "media": _PROOFMODE_MEDIA,
        "proof-file": _PROOFMODE_PART,
        "key": _PROOFMODE_PART,
        "other": _PROOFMODE_PART,
        "archive": _NOTHING,
    },
    "c2pa": {"manifest": _C2PA_MANIFEST},
    "bagit": {"payload": _BAG_PART, "tag-file": _BAG_PART, "archive": _NOTHING},
}


# --- strict checking -----------------------------------------------------------------------


def _fail(where: str, why: str) -> RecordError:
    return RecordError(f"item provenance: {where}: {why}")


def _check_str(value: Any, where: str) -> str:
    if value.__class__ is not str:
        raise _fail(where, _("not a string"))
    if len(value) > MAX_TEXT:
        raise _fail(where, _("longer than {limit} characters").format(limit=MAX_TEXT))
    return value


def _check_list(value: Any, where: str) -> list[Any]:
    if value.__class__ is not list:
        raise _fail(where, _("not a list"))
    if len(value) > MAX_LIST:
        raise _fail(where, _("more than {limit} entries").format(limit=MAX_LIST))
    return value


def _check_value(kind: Any, value: Any, where: str) -> None:
    if isinstance(kind, tuple):
        form, detail = kind
        if form == "enum":
            if _check_str(value, where) not in detail:
                raise _fail(
                    where,
                    _("{value!r} is not one of {choices}").format(
                        value=value, choices=", ".join(detail)
                    ),
                )
        elif form == "obj":
            check_object(value, detail, where)
        else:  # objs
            for n, entry in enumerate(_check_list(value, where)):
                check_object(entry, detail, f"{where}[{n}]")
        return
    if kind == "str":
        _check_str(value, where)
    elif kind in ("int", "count"):
        if value.__class__ is not int:
            raise _fail(where, _("not an integer"))
        if kind == "count" and value < 0:
            raise _fail(where, _("negative"))
        if abs(value) > 9007199254740991:
            raise _fail(where, _("beyond the integers JSON keeps exactly"))
    elif kind == "bool":
        if value.__class__ is not bool:
            raise _fail(where, _("not true or false"))
    elif kind == "hex64":
        if not _HEX64.fullmatch(_check_str(value, where)):
            raise _fail(where, _("not 64 lowercase hex digits"))
    elif kind == "time":
        try:
            check_time(_check_str(value, where), utc=True)
        except ValueError as exc:
            raise _fail(where, str(exc)) from None
    elif kind == "strs":
        for n, entry in enumerate(_check_list(value, where)):
            _check_str(entry, f"{where}[{n}]")
    elif kind == "pairs":
        for n, entry in enumerate(_check_list(value, where)):
            if entry.__class__ is not list or len(entry) != 2:
                raise _fail(f"{where}[{n}]", _("not a [name, value] pair"))
            _check_str(entry[0], f"{where}[{n}]")
            _check_str(entry[1], f"{where}[{n}]")
    elif kind == "digests":
        if value.__class__ is not dict or len(value) > 64:
            raise _fail(where, _("not an object of at most 64 digests"))
        for name, digest in value.items():
            _check_str(name, where)
            text = _check_str(digest, f"{where}.{name}")
            if not 8 <= len(text) <= 256 or not _HEX.fullmatch(text):
                raise _fail(f"{where}.{name}", _("not lowercase hex"))
    else:  # pragma: no cover - a spec naming an unknown code is a bug here
        raise AssertionError(kind)


def check_object(value: Any, spec: Spec, where: str) -> None:
    """Raise ``RecordError`` unless ``value`` is an object holding only ``spec``'s members,
    every required one, each of its type."""
    if value.__class__ is not dict:
        raise _fail(where, _("not an object"))
    for name in value:
        if name not in spec:
            raise _fail(where, _("unknown member {name!r}").format(name=name))
    for name, (kind, required) in spec.items():
        if name not in value:
            if required:
                raise _fail(where, _("missing member {name!r}").format(name=name))
            continue
        _check_value(kind, value[name], f"{where}.{name}")


def check_entry(value: Any, where: str = "provenance") -> None:
    """Raise ``RecordError`` unless ``value`` is one well-formed provenance entry."""
    if value.__class__ is not dict:
        raise _fail(where, _("not an object"))
    kind = value.get("kind")
    roles = SPECS.get(kind) if isinstance(kind, str) else None
    if roles is None:
        raise _fail(where, _("unknown kind {kind!r}").format(kind=kind))
    role = value.get("role")
    extra = roles.get(role) if isinstance(role, str) else None
    if extra is None:
        raise _fail(where, _("a {kind} entry has no role {role!r}").format(kind=kind, role=role))
    check_object(value, {**_COMMON, **extra}, f"{where} ({kind} {role})")


@dataclass(frozen=True)
class Provenance:
    """One provenance entry, checked on construction; ``data`` is exactly its JSON."""

    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        check_entry(self.data)

    @property
    def kind(self) -> str:
        return str(self.data["kind"])

    @property
    def role(self) -> str:
        return str(self.data["role"])

    @property
    def source(self) -> str:
        return str(self.data["source"])

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)


def check_provenance(value: Any) -> None:
    """Raise ``RecordError`` unless ``value`` is an item's ``provenance`` list."""
    entries = _check_list(value, "provenance")
    if not entries:
        raise _fail("provenance", _("an empty list is written as no member at all"))
    kinds: list[str] = []
    for n, entry in enumerate(entries):
        check_entry(entry, f"provenance[{n}]")
        kinds.append(entry["kind"])
    if len(set(kinds)) != len(kinds):
        raise _fail("provenance", _("two entries of one kind"))


def parse_provenance(value: Any) -> tuple[Provenance, ...]:
    check_provenance(value)
    return tuple(Provenance(entry) for entry in value)


def find(entries: Sequence[Provenance], kind: str) -> Provenance | None:
    return next((e for e in entries if e.kind == kind), None)


# --- the JSON Schema of the same rules ---------------------------------------------------------


def _schema_of(kind: Any) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string", "maxLength": MAX_TEXT}
    if isinstance(kind, tuple):
        form, detail = kind
        if form == "enum":
            return {"enum": list(detail)}
        if form == "obj":
            return _object_schema(detail)
        return {"type": "array", "maxItems": MAX_LIST, "items": _object_schema(detail)}
    count = {"type": "integer", "minimum": 0, "maximum": 9007199254740991}
    return {
        "str": text,
        "int": {"type": "integer", "minimum": -9007199254740991, "maximum": 9007199254740991},
        "count": count,
        "bool": {"type": "boolean"},
        "hex64": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "time": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"},
        "strs": {"type": "array", "maxItems": MAX_LIST, "items": text},
        "pairs": {
            "type": "array",
            "maxItems": MAX_LIST,
            "items": {"type": "array", "prefixItems": [text, text], "minItems": 2, "maxItems": 2},
        },
        "digests": {
            "type": "object",
            "maxProperties": 64,
            "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{8,256}$"},
        },
    }[kind]


def _object_schema(spec: Spec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: _schema_of(kind) for name, (kind, _req) in spec.items()},
        "required": [name for name, (_kind, req) in spec.items() if req],
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an item's ``provenance`` list, from ``SPECS`` (kept in step with
    ``schemas/record.schema.json`` by a test)."""
    variants = []
    for kind, roles in SPECS.items():
        for role, extra in roles.items():
            entry = _object_schema({**_COMMON, **extra})
            entry["properties"]["kind"] = {"const": kind}
            entry["properties"]["role"] = {"const": role}
            variants.append(entry)
    return {
        "description": "ledger/provenance.py: what the sources an item came from say about it "
        "(claims), and what custody checked of their proofs at intake; one entry per kind.",
        "type": "array",
        "minItems": 1,
        "maxItems": len(KINDS),
        "items": {"oneOf": variants},
    }
