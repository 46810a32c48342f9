"""Ledger records: the signed envelope and the typed bodies, as frozen dataclasses.

A ledger line is the canonical JSON (``custody.ledger.canonical``) of::

    {"sig": "<base64 Ed25519 signature>",
     "signed": {"v": 1, "seq": N, "type": "...", "time": "...Z",
                "signer": "<key fingerprint>", "prev": "<sha256 of line N-1>" | null,
                "body": {...}}}

The signature covers the canonical bytes of the ``signed`` member, which - because
"signed" sorts last - are exactly the bytes between ``{"sig":"...","signed":`` and the
final ``}`` of the line. docs/format.md is the normative description; keep it in step.

Parsing is strict and total: anything that does not match the format raises
``RecordError`` with a one-line reason, so ``verify`` can report RECORD_MALFORMED.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.clock import check_time, parse_ns
from custody.encoding import b64decode, b64encode
from custody.errors import RecordError
from custody.keys.roles import ROLES
from custody.ledger import canonical

FORMAT_VERSION = 1
RECORD_TYPES = frozenset(
    {"key", "item", "checkpoint", "timestamp", "event", "repair", "revocation"}
)
DIGEST_LENGTHS = {"sha256": 64, "sha512": 128, "sha3-256": 64, "blake3": 64, "sha1": 40, "md5": 32}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIGNED_MARKER = b',"signed":'


def line_hash(line: bytes) -> str:
    """The chain link: hex SHA-256 of a ledger line's bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


# --- small strict accessors: each raises RecordError naming the field ---------------------


def _get(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    # Runs for every field of every record verify reads: kept to one lookup and one test.
    try:
        value = obj[name]
    except KeyError:
        raise RecordError(f"{where}: missing field {name!r}") from None
    # bool is an int subclass; a JSON true is never a valid count or sequence number
    if not isinstance(value, kind) or (value.__class__ is bool and kind is not bool):
        raise RecordError(f"{where}: field {name!r} has the wrong type")
    return value


def _opt(obj: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in obj:
        return None
    return _get(obj, name, kind, where)


def _nonneg(obj: Mapping[str, Any], name: str, where: str) -> int:
    value: int = _get(obj, name, int, where)
    if value < 0:
        raise RecordError(f"{where}: field {name!r} is negative")
    return value


def _hex64(obj: Mapping[str, Any], name: str, where: str) -> str:
    value: str = _get(obj, name, str, where)
    if not _HEX64.fullmatch(value):
        raise RecordError(f"{where}: field {name!r} is not 64 lowercase hex digits")
    return value


def _only(obj: Mapping[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    if obj.keys() <= allowed:
        return
    extra = set(obj) - allowed
    if extra:
        raise RecordError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- bodies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyBody:
    """Introduces a signing key. Self-introduced when the record's signer is this key."""

    fingerprint: str
    public_key: bytes
    name: str
    role: str
    algorithm: str = "ed25519"
    replaces: str | None = None

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise RecordError("key: an Ed25519 public key is 32 bytes")
        if hashlib.sha256(self.public_key).hexdigest() != self.fingerprint:
            raise RecordError("key: fingerprint is not the SHA-256 of the public key")
        if self.role not in ROLES:
            raise RecordError(f"key: unknown role {self.role!r}")
        if self.algorithm != "ed25519":
            raise RecordError(f"key: unsupported algorithm {self.algorithm!r}")

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "algorithm": self.algorithm,
                "fingerprint": self.fingerprint,
                "name": self.name,
                "public_key": b64encode(self.public_key),
                "replaces": self.replaces,
                "role": self.role,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KeyBody:
        w = "key"
        _only(obj, {"algorithm", "fingerprint", "name", "public_key", "replaces", "role"}, w)
        replaces = _opt(obj, "replaces", str, w)
        if replaces is not None and not _HEX64.fullmatch(replaces):
            raise RecordError("key: field 'replaces' is not a key fingerprint")
        return cls(
            fingerprint=_hex64(obj, "fingerprint", w),
            public_key=b64decode(_get(obj, "public_key", str, w), "key public_key"),
            name=_get(obj, "name", str, w),
            role=_get(obj, "role", str, w),
            algorithm=_get(obj, "algorithm", str, w),
            replaces=replaces,
        )


@dataclass(frozen=True)
class Acquisition:
    """Where an ingested copy came from, as the system saw it at copy time."""

    source_path: str
    source_sha256: str
    volume: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "source_path": self.source_path,
            "source_sha256": self.source_sha256,
            "volume": dict(self.volume),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Acquisition:
        w = "item acquisition"
        _only(obj, {"source_path", "source_sha256", "volume"}, w)
        volume = _get(obj, "volume", dict, w)
        if not all(isinstance(v, str) for v in volume.values()):
            raise RecordError(f"{w}: volume values must be strings")
        return cls(_get(obj, "source_path", str, w), _hex64(obj, "source_sha256", w), volume)


_ITEM_TEXT = frozenset(
    {"capture_time", "collector", "location", "metadata_error", "mime", "note", "source"}
)
_ITEM_REFS = frozenset({"duplicate_of", "supersedes"})
_ITEM_FIELDS = _ITEM_TEXT | _ITEM_REFS | {
    "acquisition", "digests", "metadata", "mtime", "path", "path_bytes", "size", "tags"
}


def _check_item_values(path: str, size: int, digests: Mapping[str, str]) -> None:
    if "sha256" not in digests:
        raise RecordError("item: digests must include sha256")
    for algo, value in digests.items():
        expected = DIGEST_LENGTHS.get(algo)
        if expected is None:
            raise RecordError(f"item: unknown digest algorithm {algo!r}")
        if len(value) != expected or value.strip("0123456789abcdef"):
            raise RecordError(f"item: {algo} digest is not {expected} lowercase hex digits")
    if size < 0:
        raise RecordError("item: negative size")
    if path.startswith("/") or not path or ".." in path.split("/"):
        raise RecordError("item: path must be relative to the evidence root, without '..'")


@dataclass(frozen=True)
class ItemBody:
    """One catalogued file: what it was (size, digests, metadata) and who said so."""

    path: str
    size: int
    mtime: str
    digests: Mapping[str, str]
    mime: str | None = None
    metadata: Mapping[str, Any] | None = None
    metadata_error: str | None = None
    capture_time: str | None = None
    path_bytes: bytes | None = None  # only when the name is not valid UTF-8
    collector: str | None = None
    source: str | None = None
    location: str | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()
    duplicate_of: int | None = None
    supersedes: int | None = None
    acquisition: Acquisition | None = None

    def __post_init__(self) -> None:
        _check_item_values(self.path, self.size, self.digests)

    @property
    def sha256(self) -> str:
        return self.digests["sha256"]

    @property
    def name_bytes(self) -> bytes:
        """The exact bytes of the relative path, as the file system holds them."""
        return self.path_bytes if self.path_bytes is not None else self.path.encode("utf-8")

    @property
    def mtime_ns(self) -> int:
        return parse_ns(self.mtime)

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "acquisition": self.acquisition.to_json() if self.acquisition else None,
                "capture_time": self.capture_time,
                "collector": self.collector,
                "digests": dict(self.digests),
                "duplicate_of": self.duplicate_of,
                "location": self.location,
                "metadata": dict(self.metadata) if self.metadata is not None else None,
                "metadata_error": self.metadata_error,
                "mime": self.mime,
                "mtime": self.mtime,
                "note": self.note,
                "path": self.path,
                "path_bytes": b64encode(self.path_bytes) if self.path_bytes is not None else None,
                "size": self.size,
                "source": self.source,
                "supersedes": self.supersedes,
                "tags": list(self.tags) if self.tags else None,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ItemBody:
        cls.check_json(obj)
        raw_path = obj.get("path_bytes")
        acquisition = obj.get("acquisition")
        get = obj.get
        return cls(
            path=obj["path"],
            size=obj["size"],
            mtime=obj["mtime"],
            digests=obj["digests"],
            mime=get("mime"),
            metadata=get("metadata"),
            metadata_error=get("metadata_error"),
            capture_time=get("capture_time"),
            path_bytes=b64decode(raw_path, "item path_bytes") if raw_path is not None else None,
            collector=get("collector"),
            source=get("source"),
            location=get("location"),
            note=get("note"),
            tags=tuple(get("tags", ())),
            duplicate_of=get("duplicate_of"),
            supersedes=get("supersedes"),
            acquisition=Acquisition.from_json(acquisition) if acquisition is not None else None,
        )

    @staticmethod
    def check_json(obj: Mapping[str, Any]) -> None:
        """Raise RecordError unless ``from_json`` would succeed; builds nothing.

        ``verify`` checks every item record this way and builds only the bodies it keeps.
        """
        w = "item"
        _only(obj, _ITEM_FIELDS, w)
        digests = _get(obj, "digests", dict, w)
        if not all(v.__class__ is str for v in digests.values()):
            raise RecordError("item: digests must be strings")
        tags = _opt(obj, "tags", list, w) or ()
        if not all(t.__class__ is str for t in tags):
            raise RecordError("item: tags must be strings")
        mtime = _get(obj, "mtime", str, w)
        try:
            check_time(mtime, utc=True)
        except ValueError as exc:
            raise RecordError(f"item: {exc}") from exc
        # Verify reads every item: optional fields are type-checked only where present.
        for name in _ITEM_TEXT.intersection(obj):
            _get(obj, name, str, w)
        for name in _ITEM_REFS.intersection(obj):
            _nonneg(obj, name, w)
        raw_path = _opt(obj, "path_bytes", str, w)
        if raw_path is not None:
            b64decode(raw_path, "item path_bytes")
        _opt(obj, "metadata", dict, w)
        acquisition = _opt(obj, "acquisition", dict, w)
        if acquisition is not None:
            Acquisition.from_json(acquisition)
        _check_item_values(_get(obj, "path", str, w), _nonneg(obj, "size", w), digests)


@dataclass(frozen=True)
class CheckpointBody:
    """The signer's statement that the ledger's first ``tree_size`` lines have root ``root``."""

    tree_size: int
    root: str
    statement: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {"root": self.root, "statement": self.statement, "tree_size": self.tree_size}
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CheckpointBody:
        w = "checkpoint"
        _only(obj, {"root", "statement", "tree_size"}, w)
        return cls(
            _nonneg(obj, "tree_size", w), _hex64(obj, "root", w), _opt(obj, "statement", str, w)
        )


@dataclass(frozen=True)
class TimestampBody:
    """An RFC 3161 token over a checkpoint record, stored under ``.custody/timestamps/``.

    The token's message imprint is SHA-256 of the checkpoint line's exact bytes; the
    response file's SHA-256 is recorded so the ledger itself says which bytes were kept.
    """

    checkpoint: int
    imprint: str
    tsa: str
    gen_time: str
    serial: str
    token_sha256: str
    token_file: str
    nonce: str | None = None
    policy: str | None = None
    tsa_name: str | None = None

    def __post_init__(self) -> None:
        if self.token_file.startswith("/") or ".." in self.token_file.split("/"):
            raise RecordError("timestamp: token_file must be a path inside .custody/")

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "checkpoint": self.checkpoint,
                "gen_time": self.gen_time,
                "imprint": self.imprint,
                "nonce": self.nonce,
                "policy": self.policy,
                "serial": self.serial,
                "token_file": self.token_file,
                "token_sha256": self.token_sha256,
                "tsa": self.tsa,
                "tsa_name": self.tsa_name,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TimestampBody:
        w = "timestamp"
        _only(
            obj,
            {
                "checkpoint",
                "gen_time",
                "imprint",
                "nonce",
                "policy",
                "serial",
                "token_file",
                "token_sha256",
                "tsa",
                "tsa_name",
            },
            w,
        )
        gen_time = _get(obj, "gen_time", str, w)
        try:
            check_time(gen_time)
        except ValueError as exc:
            raise RecordError(f"timestamp: {exc}") from exc
        return cls(
            checkpoint=_nonneg(obj, "checkpoint", w),
            imprint=_hex64(obj, "imprint", w),
            tsa=_get(obj, "tsa", str, w),
            gen_time=gen_time,
            serial=_get(obj, "serial", str, w),
            token_sha256=_hex64(obj, "token_sha256", w),
            token_file=_get(obj, "token_file", str, w),
            nonce=_opt(obj, "nonce", str, w),
            policy=_opt(obj, "policy", str, w),
            tsa_name=_opt(obj, "tsa_name", str, w),
        )


@dataclass(frozen=True)
class RepairBody:
    """The record ``custody repair`` leaves after cutting an incomplete final line."""

    offset: int
    removed_bytes: int
    removed_sha256: str
    saved_as: str

    def to_json(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "removed_bytes": self.removed_bytes,
            "removed_sha256": self.removed_sha256,
            "saved_as": self.saved_as,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RepairBody:
        w = "repair"
        _only(obj, {"offset", "removed_bytes", "removed_sha256", "saved_as"}, w)
        return cls(
            _nonneg(obj, "offset", w),
            _nonneg(obj, "removed_bytes", w),
            _hex64(obj, "removed_sha256", w),
            _get(obj, "saved_as", str, w),
        )


ACTIONS = ("transfer", "access", "copy", "derive", "note", "dispose", "receive")
NOTE_FIELDS = ("description", "incident", "language", "sensitivity")


@dataclass(frozen=True)
class ItemRef:
    """An item as an event names it: its record number, content digest and path."""

    seq: int
    sha256: str
    path: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "seq": self.seq, "sha256": self.sha256}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> ItemRef:
        if not isinstance(obj, dict):
            raise RecordError(f"{where}: an item reference must be an object")
        _only(obj, {"path", "seq", "sha256"}, where)
        sha256 = _get(obj, "sha256", str, where)
        if not _HEX64.fullmatch(sha256):
            raise RecordError(f"{where}: sha256 is not 64 lowercase hex digits")
        return cls(_nonneg(obj, "seq", where), sha256, _get(obj, "path", str, where))


@dataclass(frozen=True)
class CopyRef:
    """A copy written outside the evidence root, with the digest read back from it."""

    path: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> CopyRef:
        if not isinstance(obj, dict):
            raise RecordError(f"{where}: a copy must be an object")
        _only(obj, {"path", "sha256", "size"}, where)
        sha256 = _get(obj, "sha256", str, where)
        if not _HEX64.fullmatch(sha256):
            raise RecordError(f"{where}: sha256 is not 64 lowercase hex digits")
        return cls(_get(obj, "path", str, where), sha256, _nonneg(obj, "size", where))


@dataclass(frozen=True)
class EventBody:
    action: str
    items: tuple[ItemRef, ...]
    reason: str | None = None
    to: str | None = None
    destination: str | None = None
    copies: tuple[CopyRef, ...] = ()
    output: ItemRef | None = None
    text: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RecordError(f"event: unknown action {self.action!r}")
        if not self.items:
            raise RecordError("event: names no item")
        if self.action == "transfer" and not self.to:
            raise RecordError("event: a transfer names who receives custody ('to')")
        if self.action == "derive" and self.output is None:
            raise RecordError("event: a derive event names its output item")
        if self.action == "copy" and len(self.copies) != len(self.items):
            raise RecordError("event: a copy event lists one copy per item")
        unknown = set(self.fields) - set(NOTE_FIELDS)
        if unknown:
            raise RecordError(f"event: unknown note field(s) {', '.join(sorted(unknown))}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "items": [i.to_json() for i in self.items]}
        for name in ("reason", "to", "destination", "text", "source"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.copies:
            out["copies"] = [c.to_json() for c in self.copies]
        if self.output is not None:
            out["output"] = self.output.to_json()
        if self.fields:
            out["fields"] = dict(self.fields)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EventBody:
        w = "event"
        _only(
            obj,
            {
                "action",
                "items",
                "reason",
                "to",
                "destination",
                "copies",
                "output",
                "text",
                "fields",
                "source",
            },
            w,
        )
        items = _get(obj, "items", list, w)
        copies = _opt(obj, "copies", list, w) or []
        output = _opt(obj, "output", dict, w)
        fields = _opt(obj, "fields", dict, w) or {}
        if not all(isinstance(v, str) for v in fields.values()):
            raise RecordError("event: note fields must be strings")
        return cls(
            action=_get(obj, "action", str, w),
            items=tuple(ItemRef.from_json(i, "event item") for i in items),
            reason=_opt(obj, "reason", str, w),
            to=_opt(obj, "to", str, w),
            destination=_opt(obj, "destination", str, w),
            copies=tuple(CopyRef.from_json(c, "event copy") for c in copies),
            output=ItemRef.from_json(output, "event output") if output is not None else None,
            text=_opt(obj, "text", str, w),
            fields=fields,
            source=_opt(obj, "source", str, w),
        )


@dataclass(frozen=True)
class RevocationBody:
    """Withdraws a key: records it signs after this one fail verification (KEY_REVOKED)."""

    key: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key}
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RevocationBody:
        w = "revocation"
        _only(obj, {"key", "reason"}, w)
        key = _get(obj, "key", str, w)
        if not _HEX64.fullmatch(key):
            raise RecordError("revocation: 'key' is not a key fingerprint")
        return cls(key, _opt(obj, "reason", str, w))


BODY_TYPES: dict[str, Any] = {
    "key": KeyBody,
    "item": ItemBody,
    "checkpoint": CheckpointBody,
    "timestamp": TimestampBody,
    "repair": RepairBody,
    "event": EventBody,
    "revocation": RevocationBody,
}


# --- the envelope ---------------------------------------------------------------------------

_LINE_FIELDS = frozenset({"sig", "signed"})
_RECORD_FIELDS = frozenset({"body", "prev", "seq", "signer", "time", "type", "v"})


@dataclass(frozen=True)
class Record:
    """The signed part of a ledger line."""

    seq: int
    type: str
    time: str
    signer: str
    prev: str | None
    body: Mapping[str, Any]
    version: int = FORMAT_VERSION

    def signed_json(self) -> dict[str, Any]:
        return {
            "body": dict(self.body),
            "prev": self.prev,
            "seq": self.seq,
            "signer": self.signer,
            "time": self.time,
            "type": self.type,
            "v": self.version,
        }

    def signed_bytes(self) -> bytes:
        return canonical.encode(self.signed_json())

    def check_body(self) -> None:
        """Raise RecordError where ``typed_body`` would, building an item's body not at all."""
        if self.type != "item":
            self.typed_body()
            return
        try:
            ItemBody.check_json(self.body)
        except RecordError as exc:
            raise RecordError(f"record {self.seq}: {exc}") from exc

    def typed_body(self) -> Any:
        """The body as its dataclass (``KeyBody``, ``ItemBody``...); RecordError if malformed."""
        body_class = BODY_TYPES.get(self.type)
        if body_class is None:
            raise RecordError(f"record {self.seq}: no body format known for type {self.type!r}")
        try:
            return body_class.from_json(self.body)
        except RecordError as exc:
            raise RecordError(f"record {self.seq}: {exc}") from exc


@dataclass(frozen=True)
class SignedRecord:
    """A ledger line: the record, its signature and the exact bytes as stored."""

    record: Record
    signature: bytes
    line: bytes

    @property
    def seq(self) -> int:
        return self.record.seq

    @property
    def line_hash(self) -> str:
        return line_hash(self.line)

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers, sliced from the stored line (never re-serialised)."""
        start = self.line.index(_SIGNED_MARKER) + len(_SIGNED_MARKER)
        return self.line[start:-1]

    @staticmethod
    def assemble(record: Record, signature: bytes, signed_bytes: bytes) -> SignedRecord:
        """Build the line from the exact bytes that were signed.

        Splicing is the canonical form itself: "sig" sorts before "signed", a base64 string
        needs no escaping, and ``signed_bytes`` is already canonical.
        """
        line = (
            b'{"sig":"'
            + b64encode(signature).encode("ascii")
            + b'","signed":'
            + signed_bytes
            + b"}"
        )
        return SignedRecord(record, signature, line)

    @staticmethod
    def parse(line: bytes) -> SignedRecord:
        """Strictly parse one ledger line (without newline). Raises RecordError."""
        obj = canonical.decode(line)
        if not isinstance(obj, dict):
            raise RecordError("a ledger line must be a JSON object")
        _only(obj, _LINE_FIELDS, "line")
        signature = b64decode(_get(obj, "sig", str, "line"), "signature")
        if len(signature) != 64:
            raise RecordError("an Ed25519 signature is 64 bytes")
        signed = _get(obj, "signed", dict, "line")
        w = "record"
        _only(signed, _RECORD_FIELDS, w)
        version = _get(signed, "v", int, w)
        if version != FORMAT_VERSION:
            raise RecordError(
                f"record format version {version} is not supported by this custody; upgrade custody"
            )
        record_type = _get(signed, "type", str, w)
        if record_type not in RECORD_TYPES:
            raise RecordError(f"unknown record type {record_type!r}")
        prev = signed.get("prev")
        if prev is not None:
            prev = _hex64(signed, "prev", w)
        elif "prev" not in signed:
            raise RecordError("record: missing field 'prev'")
        time = _get(signed, "time", str, w)
        try:
            check_time(time)
        except ValueError as exc:
            raise RecordError(f"record: {exc}") from exc
        record = Record(
            seq=_nonneg(signed, "seq", w),
            type=record_type,
            time=time,
            signer=_hex64(signed, "signer", w),
            prev=prev,
            body=_get(signed, "body", dict, w),
            version=version,
        )
        return SignedRecord(record, signature, line)
