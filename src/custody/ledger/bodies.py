"""The typed bodies of ledger records (key, item, checkpoint, timestamp, event, repair,
revocation, witness, validation, evidence-record, case, exhibit) as frozen dataclasses, each
parsed strictly from its JSON (``from_json``) and written back as exactly the members the
format defines (``to_json``).

docs/format.md and docs/events.md are the normative description; keep them in step.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custody.clock import check_file_time, check_record_time, parse_ns
from custody.encoding import b64decode, b64encode
from custody.errors import RecordError
from custody.i18n import _
from custody.keys.roles import ROLES
from custody.ledger.captures import check_capture_event
from custody.ledger.fields import (
    DIGEST_LENGTHS,
    HEX64,
    drop_none,
    get_field,
    hex64_field,
    nonneg_field,
    only_fields,
    opt_field,
)
from custody.ledger.provenance import Provenance, check_provenance, parse_provenance

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
    # The holder's full name as they write it (any script); ``name`` stays a short handle.
    holder: str | None = None

    def __post_init__(self) -> None:
        if self.holder is not None and not self.holder.strip():
            raise RecordError(_("key: 'holder' is empty"))
        if len(self.public_key) != 32:
            raise RecordError(_("key: an Ed25519 public key is 32 bytes"))
        if hashlib.sha256(self.public_key).hexdigest() != self.fingerprint:
            raise RecordError(_("key: fingerprint is not the SHA-256 of the public key"))
        if self.role not in ROLES:
            raise RecordError(_("key: unknown role {role!r}").format(role=self.role))
        if self.algorithm != "ed25519":
            raise RecordError(
                _("key: unsupported algorithm {algorithm!r}").format(algorithm=self.algorithm)
            )

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {
                "algorithm": self.algorithm,
                "fingerprint": self.fingerprint,
                "holder": self.holder,
                "name": self.name,
                "public_key": b64encode(self.public_key),
                "replaces": self.replaces,
                "role": self.role,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KeyBody:
        w = "key"
        only_fields(
            obj,
            {"algorithm", "fingerprint", "holder", "name", "public_key", "replaces", "role"},
            w,
        )
        replaces = opt_field(obj, "replaces", str, w)
        if replaces is not None and not HEX64.fullmatch(replaces):
            raise RecordError(_("key: field 'replaces' is not a key fingerprint"))
        return cls(
            fingerprint=hex64_field(obj, "fingerprint", w),
            public_key=b64decode(get_field(obj, "public_key", str, w), "key public_key"),
            name=get_field(obj, "name", str, w),
            role=get_field(obj, "role", str, w),
            algorithm=get_field(obj, "algorithm", str, w),
            replaces=replaces,
            holder=opt_field(obj, "holder", str, w),
        )


# Fields that can identify the people who collected evidence: recorded as salted
# commitments (``custody.ledger.disclosures``, docs/format.md) rather than in the clear.
COMMITTED_FIELDS = ("collector", "source_path", "volume")


@dataclass(frozen=True)
class Acquisition:
    """Where an ingested copy came from, as the system saw it at copy time.

    For a file unpacked from a ZIP archive, ``source_path`` is the archive,
    ``archive_member`` the member's name in it, ``source_sha256`` the SHA-256 of the
    member's decompressed bytes, and ``archive_sha256`` that of the archive as read.

    ``source_path`` and ``volume`` are None when the item record commits to them instead
    (its ``commitments``); records written before commitments hold them in the clear.
    """

    source_path: str | None
    source_sha256: str
    volume: Mapping[str, str] | None = field(default_factory=dict)
    archive_member: str | None = None
    archive_sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.archive_member is None) != (self.archive_sha256 is None):
            raise RecordError(_("item acquisition: archive_member and archive_sha256 go together"))

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {
                "archive_member": self.archive_member,
                "archive_sha256": self.archive_sha256,
                "source_path": self.source_path,
                "source_sha256": self.source_sha256,
                "volume": dict(self.volume) if self.volume is not None else None,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Acquisition:
        w = "item acquisition"
        only_fields(
            obj, {"archive_member", "archive_sha256", "source_path", "source_sha256", "volume"}, w
        )
        volume = opt_field(obj, "volume", dict, w)
        if volume is not None and not all(isinstance(v, str) for v in volume.values()):
            raise RecordError(_("{where}: volume values must be strings").format(where=w))
        archive_sha256 = None
        if "archive_sha256" in obj:
            archive_sha256 = hex64_field(obj, "archive_sha256", w)
        return cls(
            opt_field(obj, "source_path", str, w),
            hex64_field(obj, "source_sha256", w),
            volume,
            opt_field(obj, "archive_member", str, w),
            archive_sha256,
        )


@dataclass(frozen=True)
class FullMetadata:
    """exiftool's whole output for an item whose record keeps only part of it (the rest was
    over the cap): canonical JSON bytes kept as ``.custody/metadata/<sha256>.json``."""

    sha256: str
    size: int

    @property
    def file(self) -> str:
        """Where it is kept, relative to ``.custody/``."""
        return f"metadata/{self.sha256}.json"

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FullMetadata:
        w = "item metadata_full"
        only_fields(obj, {"sha256", "size"}, w)
        return cls(hex64_field(obj, "sha256", w), nonneg_field(obj, "size", w))


_ITEM_TEXT = frozenset(
    {"capture_time", "collector", "location", "metadata_error", "mime", "note", "source"}
)


_ITEM_REFS = frozenset({"duplicate_of", "supersedes"})


_ITEM_FIELDS = _ITEM_TEXT | _ITEM_REFS | {
    "acquisition", "commitments", "digests", "metadata", "metadata_full", "mtime", "path",
    "path_bytes", "provenance", "size", "tags",
}


def _check_commitments(
    commitments: Mapping[str, Any] | None,
    collector: object,
    acquisition: Mapping[str, Any] | None,
) -> None:
    """Each identifying field is either in the clear or committed to, never both; an
    acquisition says where it came from one way or the other."""
    committed = dict(commitments or {})
    for name, digest in committed.items():
        if name not in COMMITTED_FIELDS:
            raise RecordError(_("item: unknown committed field {name!r}").format(name=name))
        if not isinstance(digest, str) or not HEX64.fullmatch(digest):
            raise RecordError(
                _("item: the commitment to {name} is not a SHA-256 in hex").format(name=name)
            )
    if commitments is not None and not committed:
        raise RecordError(_("item: 'commitments' is empty"))
    if "collector" in committed and collector is not None:
        raise RecordError(_("item: the collector is both committed to and in the clear"))
    acquired = dict(acquisition or {})
    for name in ("source_path", "volume"):
        if name in committed and acquisition is None:
            raise RecordError(
                _("item: a commitment to {name} without an acquisition").format(name=name)
            )
        if acquisition is not None and (name in committed) == (name in acquired):
            raise RecordError(
                _(
                    "item: the acquisition's {name} must be either in the clear or committed to"
                ).format(name=name)
            )


def _check_item_values(path: str, size: int, digests: Mapping[str, str]) -> None:
    if "sha256" not in digests:
        raise RecordError(_("item: digests must include sha256"))
    for algo, value in digests.items():
        expected = DIGEST_LENGTHS.get(algo)
        if expected is None:
            raise RecordError(_("item: unknown digest algorithm {algo!r}").format(algo=algo))
        if len(value) != expected or value.strip("0123456789abcdef"):
            raise RecordError(
                _("item: {algo} digest is not {expected} lowercase hex digits").format(
                    algo=algo, expected=expected
                )
            )
    if size < 0:
        raise RecordError(_("item: negative size"))


_BAD_PARTS = frozenset({"", ".", ".."})


def _check_item_name(path: str, path_bytes: bytes | None) -> None:
    """``path`` (and ``path_bytes``) name a file inside the root, and the same one.

    A name is relative, its components are not empty, ``.`` or ``..``, and it holds no NUL.
    ``path_bytes`` appears only for a name that is not valid UTF-8, and ``path`` is then
    exactly its display form (each invalid sequence as U+FFFD): a record must never show
    people one name and have custody check, copy or write another (docs/format.md).
    """
    if not path or path[0] == "/" or "\0" in path or not _BAD_PARTS.isdisjoint(path.split("/")):
        raise RecordError(
            _(
                "item: path must be relative to the evidence root, without empty, '.' or "
                "'..' components or NUL"
            )
        )
    if path_bytes is None:
        return
    try:
        path_bytes.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        raise RecordError(_("item: path_bytes is only for a name that is not valid UTF-8"))
    if path_bytes.decode("utf-8", "replace") != path:
        raise RecordError(_("item: path is not the display form of path_bytes"))
    # path is its display form, so path_bytes has the same '/' components: checked above.


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
    metadata_full: FullMetadata | None = None  # only when ``metadata`` keeps part of it
    # Field name -> SHA-256 of its disclosure (custody.ledger.disclosures).
    commitments: Mapping[str, str] | None = None
    # What the sources it came from say of it, and what custody checked of their proofs
    # (custody.ledger.provenance); empty for a plain file.
    provenance: tuple[Provenance, ...] = ()

    def __post_init__(self) -> None:
        _check_item_values(self.path, self.size, self.digests)
        _check_item_name(self.path, self.path_bytes)
        if self.metadata_full is not None and self.metadata is None:
            raise RecordError(_("item: 'metadata_full' without the 'metadata' kept of it"))
        _check_commitments(
            self.commitments,
            self.collector,
            self.acquisition.to_json() if self.acquisition is not None else None,
        )

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
        return drop_none(
            {
                "acquisition": self.acquisition.to_json() if self.acquisition else None,
                "capture_time": self.capture_time,
                "commitments": dict(self.commitments) if self.commitments else None,
                "collector": self.collector,
                "digests": dict(self.digests),
                "duplicate_of": self.duplicate_of,
                "location": self.location,
                "metadata": dict(self.metadata) if self.metadata is not None else None,
                "metadata_error": self.metadata_error,
                "metadata_full": self.metadata_full.to_json() if self.metadata_full else None,
                "mime": self.mime,
                "mtime": self.mtime,
                "note": self.note,
                "path": self.path,
                "path_bytes": b64encode(self.path_bytes) if self.path_bytes is not None else None,
                "provenance": [p.to_json() for p in self.provenance] or None,
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
        full = obj.get("metadata_full")
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
            metadata_full=FullMetadata.from_json(full) if full is not None else None,
            commitments=get("commitments"),
            provenance=parse_provenance(obj["provenance"]) if "provenance" in obj else (),
        )

    @staticmethod
    def check_json(obj: Mapping[str, Any]) -> None:
        """Raise RecordError unless ``from_json`` would succeed; builds nothing.

        ``verify`` checks every item record this way and builds only the bodies it keeps.
        """
        w = "item"
        only_fields(obj, _ITEM_FIELDS, w)
        digests = get_field(obj, "digests", dict, w)
        if not all(v.__class__ is str for v in digests.values()):
            raise RecordError(_("item: digests must be strings"))
        tags = opt_field(obj, "tags", list, w) or ()
        if not all(t.__class__ is str for t in tags):
            raise RecordError(_("item: tags must be strings"))
        mtime = get_field(obj, "mtime", str, w)
        try:
            check_file_time(mtime)
        except ValueError as exc:
            raise RecordError(_("item: {why}").format(why=exc)) from exc
        # Verify reads every item: optional fields are type-checked only where present.
        for name in _ITEM_TEXT.intersection(obj):
            get_field(obj, name, str, w)
        for name in _ITEM_REFS.intersection(obj):
            nonneg_field(obj, name, w)
        raw_path = opt_field(obj, "path_bytes", str, w)
        name_bytes = b64decode(raw_path, "item path_bytes") if raw_path is not None else None
        metadata = opt_field(obj, "metadata", dict, w)
        full = opt_field(obj, "metadata_full", dict, w)
        if full is not None:
            FullMetadata.from_json(full)
            if metadata is None:
                raise RecordError(_("item: 'metadata_full' without the 'metadata' kept of it"))
        acquisition = opt_field(obj, "acquisition", dict, w)
        if acquisition is not None:
            Acquisition.from_json(acquisition)
        commitments = opt_field(obj, "commitments", dict, w)
        _check_commitments(commitments, obj.get("collector"), acquisition)
        if "provenance" in obj:
            check_provenance(obj["provenance"])
        path = get_field(obj, "path", str, w)
        _check_item_values(path, nonneg_field(obj, "size", w), digests)
        _check_item_name(path, name_bytes)


@dataclass(frozen=True)
class CheckpointBody:
    """The signer's statement that the ledger's first ``tree_size`` lines have root ``root``."""

    tree_size: int
    root: str
    statement: str | None = None

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {"root": self.root, "statement": self.statement, "tree_size": self.tree_size}
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CheckpointBody:
        w = "checkpoint"
        only_fields(obj, {"root", "statement", "tree_size"}, w)
        return cls(
            nonneg_field(obj, "tree_size", w),
            hex64_field(obj, "root", w),
            opt_field(obj, "statement", str, w),
        )


def _kept_path(value: str, where: str) -> str:
    """A file kept under .custody/ (or in the shared database), named relative to it."""
    if not value or value.startswith("/") or "\\" in value or ".." in value.split("/"):
        raise RecordError(
            _("{where}: a kept file is named relative to .custody/, without '..'").format(
                where=where
            )
        )
    return value


MATERIAL_KINDS = ("certificate", "crl", "ocsp")


GAP_KINDS = ("crl", "ocsp", "issuer")


@dataclass(frozen=True)
class MaterialFile:
    """A certificate, CRL or OCSP answer kept to validate timestamps later, offline."""

    kind: str
    file: str
    sha256: str

    def __post_init__(self) -> None:
        if self.kind not in MATERIAL_KINDS:
            raise RecordError(
                _("validation material: unknown kind {kind!r}").format(kind=self.kind)
            )
        _kept_path(self.file, "validation material")

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "kind": self.kind, "sha256": self.sha256}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> MaterialFile:
        if not isinstance(obj, dict):
            raise RecordError(_("{where}: a material file must be an object").format(where=where))
        only_fields(obj, {"file", "kind", "sha256"}, where)
        return cls(
            get_field(obj, "kind", str, where),
            get_field(obj, "file", str, where),
            hex64_field(obj, "sha256", where),
        )


@dataclass(frozen=True)
class MaterialGap:
    """Validation material that could not be had, and why (fetched again on a later run
    when it has a URL)."""

    kind: str
    subject: str
    reason: str
    url: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in GAP_KINDS:
            raise RecordError(
                _("validation material: unknown missing kind {kind!r}").format(kind=self.kind)
            )

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {"kind": self.kind, "reason": self.reason, "subject": self.subject, "url": self.url}
        )

    @classmethod
    def from_json(cls, obj: Any, where: str) -> MaterialGap:
        if not isinstance(obj, dict):
            raise RecordError(_("{where}: a missing entry must be an object").format(where=where))
        only_fields(obj, {"kind", "reason", "subject", "url"}, where)
        return cls(
            get_field(obj, "kind", str, where),
            get_field(obj, "subject", str, where),
            get_field(obj, "reason", str, where),
            opt_field(obj, "url", str, where),
        )


def _material_json(
    files: tuple[MaterialFile, ...], gaps: tuple[MaterialGap, ...]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if files:
        out["validation"] = [f.to_json() for f in files]
    if gaps:
        out["validation_missing"] = [g.to_json() for g in gaps]
    return out


def _material_from(
    obj: Mapping[str, Any], where: str
) -> tuple[tuple[MaterialFile, ...], tuple[MaterialGap, ...]]:
    files = opt_field(obj, "validation", list, where) or []
    gaps = opt_field(obj, "validation_missing", list, where) or []
    return (
        tuple(MaterialFile.from_json(f, f"{where} validation") for f in files),
        tuple(MaterialGap.from_json(g, f"{where} validation_missing") for g in gaps),
    )


# A token's serial number and our request's nonce, as ``format(n, "x")`` writes them:
# lowercase hex, no leading zeros, at most 256 bits (RFC 3161 needs 160 for serials).
_HEX_NUMBER = re.compile(r"0|[1-9a-f][0-9a-f]{0,63}")


@dataclass(frozen=True)
class TimestampBody:
    """An RFC 3161 token over a checkpoint record, stored under ``.custody/timestamps/``.

    The token's message imprint is SHA-256 of the checkpoint line's exact bytes; the
    response file's SHA-256 is recorded so the ledger itself says which bytes were kept.
    ``validation`` lists the TSA's certificates, CRLs and OCSP answers kept with it (by
    file and SHA-256), ``validation_missing`` what could not be had then, and why.
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
    validation: tuple[MaterialFile, ...] = ()
    validation_missing: tuple[MaterialGap, ...] = ()

    def __post_init__(self) -> None:
        name = self.token_file
        if not name or name[0] == "/" or "\0" in name or not _BAD_PARTS.isdisjoint(name.split("/")):
            raise RecordError(_("timestamp: token_file must be a path inside .custody/"))
        for name, value in (("serial", self.serial), ("nonce", self.nonce)):
            if value is not None and not _HEX_NUMBER.fullmatch(value):
                raise RecordError(
                    _(
                        "timestamp: {name!r} is not a number in lowercase hex without leading "
                        "zeros (at most 64 digits)"
                    ).format(name=name)
                )

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {
                **_material_json(self.validation, self.validation_missing),
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
        only_fields(
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
                "validation",
                "validation_missing",
            },
            w,
        )
        gen_time = get_field(obj, "gen_time", str, w)
        try:
            check_record_time(gen_time)
        except ValueError as exc:
            raise RecordError(_("timestamp: {why}").format(why=exc)) from exc
        validation, missing = _material_from(obj, w)
        return cls(
            checkpoint=nonneg_field(obj, "checkpoint", w),
            imprint=hex64_field(obj, "imprint", w),
            tsa=get_field(obj, "tsa", str, w),
            gen_time=gen_time,
            serial=get_field(obj, "serial", str, w),
            token_sha256=hex64_field(obj, "token_sha256", w),
            token_file=get_field(obj, "token_file", str, w),
            nonce=opt_field(obj, "nonce", str, w),
            policy=opt_field(obj, "policy", str, w),
            tsa_name=opt_field(obj, "tsa_name", str, w),
            validation=validation,
            validation_missing=missing,
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
        only_fields(obj, {"offset", "removed_bytes", "removed_sha256", "saved_as"}, w)
        return cls(
            nonneg_field(obj, "offset", w),
            nonneg_field(obj, "removed_bytes", w),
            hex64_field(obj, "removed_sha256", w),
            get_field(obj, "saved_as", str, w),
        )


ACTIONS = (
    "transfer", "access", "copy", "derive", "note", "dispose", "receive", "supersede",
    "tag", "untag", "capture",
)  # fmt: skip


# Events that change which tags an item carries (``custody tag ITEM... --tag NAME``).
TAG_ACTIONS = ("tag", "untag")


NOTE_FIELDS = ("description", "incident", "language", "sensitivity")


# The members an event of each action may carry besides ``action``, ``items`` and ``reason``
# (docs/events.md §1.1; tests/test_review_strictness.py holds the two tables together).
EVENT_MEMBERS: dict[str, frozenset[str]] = {
    "transfer": frozenset({"to"}),
    "access": frozenset(),
    "copy": frozenset({"destination", "copies"}),
    "derive": frozenset({"output"}),
    "note": frozenset({"text", "fields"}),
    "dispose": frozenset(),
    "receive": frozenset({"source"}),
    "supersede": frozenset(),
    "tag": frozenset({"tags"}),
    "untag": frozenset({"tags"}),
    "capture": frozenset({"folder", "capture"}),
}


_EVENT_FIELDS = frozenset({"action", "items", "reason"}).union(*EVENT_MEMBERS.values())


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
            raise RecordError(_("{where}: an item reference must be an object").format(where=where))
        only_fields(obj, {"path", "seq", "sha256"}, where)
        sha256 = get_field(obj, "sha256", str, where)
        if not HEX64.fullmatch(sha256):
            raise RecordError(
                _("{where}: sha256 is not 64 lowercase hex digits").format(where=where)
            )
        return cls(nonneg_field(obj, "seq", where), sha256, get_field(obj, "path", str, where))


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
            raise RecordError(_("{where}: a copy must be an object").format(where=where))
        only_fields(obj, {"path", "sha256", "size"}, where)
        sha256 = get_field(obj, "sha256", str, where)
        if not HEX64.fullmatch(sha256):
            raise RecordError(
                _("{where}: sha256 is not 64 lowercase hex digits").format(where=where)
            )
        return cls(get_field(obj, "path", str, where), sha256, nonneg_field(obj, "size", where))


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
    tags: tuple[str, ...] = ()  # for "tag" / "untag": the tags added to or removed from items
    folder: str | None = None  # capture: the capture folder, relative to the root
    capture: Mapping[str, Any] | None = None  # capture: the capture's own account (captures.py)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RecordError(_("event: unknown action {action!r}").format(action=self.action))
        if (self.action in TAG_ACTIONS) != bool(self.tags):
            raise RecordError(
                (
                    _("event: a {action} event names tags")
                    if self.action in TAG_ACTIONS
                    else _("event: only tag and untag events name tags, not {action}")
                ).format(action=self.action)
            )
        if any(not t.strip() for t in self.tags):
            raise RecordError(_("event: a tag is empty"))
        if not self.items:
            raise RecordError(_("event: names no item"))
        if self.action == "transfer" and not self.to:
            raise RecordError(_("event: a transfer names who receives custody ('to')"))
        if self.action == "derive" and self.output is None:
            raise RecordError(_("event: a derive event names its output item"))
        if self.action == "supersede" and not self.reason:
            raise RecordError(
                _("event: a {action} event says why ('reason')").format(action=self.action)
            )
        if self.action == "copy" and len(self.copies) != len(self.items):
            raise RecordError(_("event: a copy event lists one copy per item"))
        unknown = set(self.fields) - set(NOTE_FIELDS)
        if unknown:
            raise RecordError(
                _("event: unknown note field(s) {names}").format(names=", ".join(sorted(unknown)))
            )
        _check_event_members(self.action, self.to_json())
        if self.action == "capture":
            if self.folder is None or self.capture is None:
                raise RecordError(_("event: a capture names its 'folder' and carries 'capture'"))
            check_capture_event(self.folder, self.capture, ((i.path, i.sha256) for i in self.items))
        elif self.folder is not None or self.capture is not None:
            raise RecordError(_("event: only a capture event has 'folder' and 'capture'"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "items": [i.to_json() for i in self.items]}
        for name in ("reason", "to", "destination", "text", "source", "folder"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.copies:
            out["copies"] = [c.to_json() for c in self.copies]
        if self.output is not None:
            out["output"] = self.output.to_json()
        if self.fields:
            out["fields"] = dict(self.fields)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.capture is not None:
            out["capture"] = dict(self.capture)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EventBody:
        w = "event"
        only_fields(obj, _EVENT_FIELDS, w)
        action = get_field(obj, "action", str, w)
        if action in EVENT_MEMBERS:
            _check_event_members(action, obj)
        items = get_field(obj, "items", list, w)
        tags = opt_field(obj, "tags", list, w) or []
        if not all(isinstance(t, str) for t in tags):
            raise RecordError(_("event: tags must be strings"))
        copies = opt_field(obj, "copies", list, w) or []
        output = opt_field(obj, "output", dict, w)
        fields = opt_field(obj, "fields", dict, w) or {}
        if not all(isinstance(v, str) for v in fields.values()):
            raise RecordError(_("event: note fields must be strings"))
        return cls(
            action=action,
            items=tuple(ItemRef.from_json(i, "event item") for i in items),
            reason=opt_field(obj, "reason", str, w),
            to=opt_field(obj, "to", str, w),
            destination=opt_field(obj, "destination", str, w),
            copies=tuple(CopyRef.from_json(c, "event copy") for c in copies),
            output=ItemRef.from_json(output, "event output") if output is not None else None,
            text=opt_field(obj, "text", str, w),
            fields=fields,
            source=opt_field(obj, "source", str, w),
            tags=tuple(tags),
            folder=opt_field(obj, "folder", str, w),
            capture=opt_field(obj, "capture", dict, w),
        )


def _check_event_members(action: str, members: Mapping[str, Any]) -> None:
    """RecordError for a member documented for other actions only (``to`` on ``access``)."""
    misplaced = set(members) - {"action", "items", "reason"} - EVENT_MEMBERS[action]
    if misplaced:
        owners = sorted(a for a, allowed in EVENT_MEMBERS.items() if allowed & misplaced)
        names = ", ".join(sorted(misplaced))
        if owners:
            message = _(
                "event: {names} not allowed on a {action} event (only a {owners} event has "
                "it; docs/events.md §1.1)"
            ).format(names=names, action=action, owners=" or ".join(owners))
        else:
            message = _(
                "event: {names} not allowed on a {action} event (docs/events.md §1.1)"
            ).format(names=names, action=action)
        raise RecordError(message)


@dataclass(frozen=True)
class RevocationBody:
    """Withdraws a key: records it signs after this one fail verification (KEY_REVOKED).

    With ``compromised_since`` (a record number, not after this one) the key is declared
    compromised from that record on: its records from there, and every key it introduced
    from there (transitively, with their records), fail too.
    """

    key: str
    reason: str | None = None
    compromised_since: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.compromised_since is not None:
            out["compromised_since"] = self.compromised_since
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RevocationBody:
        w = "revocation"
        only_fields(obj, {"compromised_since", "key", "reason"}, w)
        key = get_field(obj, "key", str, w)
        if not HEX64.fullmatch(key):
            raise RecordError(_("revocation: 'key' is not a key fingerprint"))
        since = None
        if "compromised_since" in obj:
            since = nonneg_field(obj, "compromised_since", w)
        return cls(key, opt_field(obj, "reason", str, w), since)


@dataclass(frozen=True)
class WitnessBody:
    """A witness's cosignature of a checkpoint (C2SP tlog-cosignature/v1), carried into the
    ledger by any key: the cosignature itself is what verification checks
    (``custody.ledger.cosignatures``), against the witnesses the verifier names."""

    tree_size: int
    root: str  # hex SHA-256 root of the first ``tree_size`` records
    witness_key: bytes  # the witness's raw Ed25519 public key
    witness_name: str  # its C2SP key name (custody-<fingerprint prefix>)
    time: int  # the cosignature's POSIX time, as signed
    signature: bytes  # 64-byte Ed25519 signature over the cosignature/v1 message

    def __post_init__(self) -> None:
        if len(self.witness_key) != 32:
            raise RecordError(_("witness: an Ed25519 public key is 32 bytes"))
        if len(self.signature) != 64:
            raise RecordError(_("witness: an Ed25519 signature is 64 bytes"))
        if not 0 <= self.time < 2**63 or self.tree_size < 1:
            raise RecordError(_("witness: time or tree_size out of range"))

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "signature": b64encode(self.signature),
            "time": self.time,
            "tree_size": self.tree_size,
            "witness_key": b64encode(self.witness_key),
            "witness_name": self.witness_name,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> WitnessBody:
        w = "witness"
        only_fields(
            obj, {"root", "signature", "time", "tree_size", "witness_key", "witness_name"}, w
        )
        return cls(
            nonneg_field(obj, "tree_size", w),
            hex64_field(obj, "root", w),
            b64decode(get_field(obj, "witness_key", str, w), "witness key"),
            get_field(obj, "witness_name", str, w),
            nonneg_field(obj, "time", w),
            b64decode(get_field(obj, "signature", str, w), "witness signature"),
        )


@dataclass(frozen=True)
class TokenRef:
    """A timestamp token a record names: the record that holds it and its SHA-256 (of the
    .tsr file for a ``timestamp`` record, of the DER token for an ``evidence-record``)."""

    record: int
    token_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "token_sha256": self.token_sha256}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> TokenRef:
        if not isinstance(obj, dict):
            raise RecordError(_("{where}: a token reference must be an object").format(where=where))
        only_fields(obj, {"record", "token_sha256"}, where)
        return cls(nonneg_field(obj, "record", where), hex64_field(obj, "token_sha256", where))


@dataclass(frozen=True)
class ValidationBody:
    """Validation material obtained after the record holding a token was written: what an
    earlier run could not fetch (offline), or a CRL newer than the token."""

    tokens: tuple[TokenRef, ...]
    validation: tuple[MaterialFile, ...] = ()
    validation_missing: tuple[MaterialGap, ...] = ()

    def __post_init__(self) -> None:
        if not self.tokens:
            raise RecordError(_("validation: names no token ('for')"))
        if not self.validation:
            raise RecordError(_("validation: keeps no file"))

    def to_json(self) -> dict[str, Any]:
        return {
            "for": [t.to_json() for t in self.tokens],
            **_material_json(self.validation, self.validation_missing),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ValidationBody:
        w = "validation"
        only_fields(obj, {"for", "validation", "validation_missing"}, w)
        tokens = tuple(TokenRef.from_json(t, f"{w} for") for t in get_field(obj, "for", list, w))
        files, gaps = _material_from(obj, w)
        return cls(tokens, files, gaps)


EVIDENCE_ACTIONS = ("initial", "timestamp-renewal", "hashtree-renewal")


@dataclass(frozen=True)
class ObjectGroup:
    """One data object group of an evidence set: a checkpoint line and the token files of
    the named timestamp records over it (docs/long-term.md)."""

    checkpoint: int
    timestamps: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.timestamps or list(self.timestamps) != sorted(set(self.timestamps)):
            raise RecordError(_("evidence-record: each object names its timestamps, ascending"))

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "timestamps": list(self.timestamps)}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> ObjectGroup:
        if not isinstance(obj, dict):
            raise RecordError(_("{where}: an object must be an object").format(where=where))
        only_fields(obj, {"checkpoint", "timestamps"}, where)
        stamps = get_field(obj, "timestamps", list, where)
        if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in stamps):
            raise RecordError(_("{where}: timestamps are record numbers").format(where=where))
        return cls(nonneg_field(obj, "checkpoint", where), tuple(stamps))


@dataclass(frozen=True)
class ArchiveStamp:
    """The archive timestamp an evidence-record record added: who, when, which bytes."""

    algorithm: str
    gen_time: str
    tsa: str
    token_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "gen_time": self.gen_time,
            "token_sha256": self.token_sha256,
            "tsa": self.tsa,
        }

    @classmethod
    def from_json(cls, obj: Any, where: str) -> ArchiveStamp:
        if not isinstance(obj, dict):
            raise RecordError(_("{where}: time_stamp must be an object").format(where=where))
        only_fields(obj, {"algorithm", "gen_time", "token_sha256", "tsa"}, where)
        gen_time = get_field(obj, "gen_time", str, where)
        try:
            check_record_time(gen_time)
        except ValueError as exc:
            raise RecordError(f"{where}: {exc}") from exc
        return cls(
            get_field(obj, "algorithm", str, where),
            gen_time,
            get_field(obj, "tsa", str, where),
            hex64_field(obj, "token_sha256", where),
        )


@dataclass(frozen=True)
class EvidenceRecordBody:
    """An RFC 4998 evidence set kept under .custody/evidence/ (docs/long-term.md): made
    (``initial``) or renewed (``timestamp-renewal``, ``hashtree-renewal`` of ``previous``)
    by ``custody renew``, with the validation material kept at that moment."""

    action: str
    set_file: str
    set_sha256: str
    set_size: int
    objects: tuple[ObjectGroup, ...]
    time_stamp: ArchiveStamp
    previous: int | None = None
    validation: tuple[MaterialFile, ...] = ()
    validation_missing: tuple[MaterialGap, ...] = ()

    def __post_init__(self) -> None:
        w = "evidence-record"
        if self.action not in EVIDENCE_ACTIONS:
            raise RecordError(
                _("{where}: unknown action {action!r}").format(where=w, action=self.action)
            )
        if (self.action == "initial") != (self.previous is None):
            raise RecordError(
                _("{where}: a renewal names the record it renews, an initial one none").format(
                    where=w
                )
            )
        if not self.objects:
            raise RecordError(_("{where}: covers no data object").format(where=w))
        _kept_path(self.set_file, w)

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {
                "action": self.action,
                "objects": [o.to_json() for o in self.objects],
                "previous": self.previous,
                "set": {"file": self.set_file, "sha256": self.set_sha256, "size": self.set_size},
                "time_stamp": self.time_stamp.to_json(),
                **_material_json(self.validation, self.validation_missing),
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EvidenceRecordBody:
        w = "evidence-record"
        only_fields(
            obj,
            {
                "action",
                "objects",
                "previous",
                "set",
                "time_stamp",
                "validation",
                "validation_missing",
            },
            w,
        )
        kept = get_field(obj, "set", dict, w)
        only_fields(kept, {"file", "sha256", "size"}, f"{w} set")
        objects = get_field(obj, "objects", list, w)
        files, gaps = _material_from(obj, w)
        previous = nonneg_field(obj, "previous", w) if "previous" in obj else None
        return cls(
            action=get_field(obj, "action", str, w),
            set_file=get_field(kept, "file", str, f"{w} set"),
            set_sha256=hex64_field(kept, "sha256", f"{w} set"),
            set_size=nonneg_field(kept, "size", f"{w} set"),
            objects=tuple(ObjectGroup.from_json(o, f"{w} object") for o in objects),
            time_stamp=ArchiveStamp.from_json(get_field(obj, "time_stamp", dict, w), w),
            previous=previous,
            validation=files,
            validation_missing=gaps,
        )


# --- case and exhibits (docs/format.md, docs/filing.md) ---------------------------------------


def _label_text(value: str, where: str, limit: int, *, lines: bool = False) -> str:
    """A short text a court document shows: not blank, bounded, no invisible controls.

    Control and format characters (C0/C1 controls, bidi overrides and isolates, zero-width
    characters) are refused: in an exhibit number or a case name they could make two
    different values look the same on paper. ``lines`` allows line breaks (descriptions).
    """
    if not value.strip():
        raise RecordError(_("{where} is empty").format(where=where))
    if len(value) > limit:
        raise RecordError(
            _("{where} is longer than {limit} characters").format(where=where, limit=limit)
        )
    for ch in value:
        if lines and ch == "\n":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise RecordError(
                _("{where} holds an invisible or control character U+{ch:04X}").format(
                    where=where, ch=ord(ch)
                )
            )
    return value


@dataclass(frozen=True)
class CaseBody:
    """The case the evidence is kept for: its name, number, court or mechanism and parties.

    The latest authentic ``case`` record states the case as a whole (it replaces, never
    patches, the one before).
    """

    name: str
    number: str | None = None
    court: str | None = None
    parties: tuple[str, ...] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        _label_text(self.name, "case: 'name'", 500)
        if self.number is not None:
            _label_text(self.number, "case: 'number'", 200)
        if self.court is not None:
            _label_text(self.court, "case: 'court'", 500)
        if len(self.parties) > 100:
            raise RecordError(_("case: more than 100 parties"))
        for party in self.parties:
            _label_text(party, "case: a party", 500)
        if self.description is not None:
            _label_text(self.description, "case: 'description'", 5000, lines=True)

    def to_json(self) -> dict[str, Any]:
        return drop_none(
            {
                "court": self.court,
                "description": self.description,
                "name": self.name,
                "number": self.number,
                "parties": list(self.parties) if self.parties else None,
            }
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CaseBody:
        w = "case"
        only_fields(obj, {"court", "description", "name", "number", "parties"}, w)
        parties = opt_field(obj, "parties", list, w)
        if parties is not None and (not parties or not all(isinstance(p, str) for p in parties)):
            raise RecordError(_("case: 'parties' is a non-empty list of strings"))
        return cls(
            name=get_field(obj, "name", str, w),
            number=opt_field(obj, "number", str, w),
            court=opt_field(obj, "court", str, w),
            parties=tuple(parties or ()),
            description=opt_field(obj, "description", str, w),
        )


EXHIBIT_LABEL_MAX = 64


def exhibit_key(label: str) -> str:
    """How exhibit numbers are compared: "P-1" and "p-1" (or a full-width "Ｐ-1") are the
    same number, so neither can be given to a second item."""
    return unicodedata.normalize("NFKC", label).casefold()


@dataclass(frozen=True)
class ExhibitBody:
    """An exhibit number given to one item record: stable once assigned, never reused.

    One record per item, so a bundle of some items carries their numbers without naming
    any other item (selective disclosure, docs/bundle.md).
    """

    exhibit: str
    item: ItemRef

    def __post_init__(self) -> None:
        _label_text(self.exhibit, "exhibit: 'exhibit'", EXHIBIT_LABEL_MAX)
        if self.exhibit != self.exhibit.strip():
            raise RecordError(_("exhibit: 'exhibit' begins or ends with a space"))

    def to_json(self) -> dict[str, Any]:
        return {"exhibit": self.exhibit, "item": self.item.to_json()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ExhibitBody:
        w = "exhibit"
        only_fields(obj, {"exhibit", "item"}, w)
        return cls(
            get_field(obj, "exhibit", str, w),
            ItemRef.from_json(get_field(obj, "item", dict, w), "exhibit item"),
        )


BODY_TYPES: dict[str, Any] = {
    "key": KeyBody,
    "item": ItemBody,
    "checkpoint": CheckpointBody,
    "timestamp": TimestampBody,
    "repair": RepairBody,
    "event": EventBody,
    "revocation": RevocationBody,
    "witness": WitnessBody,
    "validation": ValidationBody,
    "evidence-record": EvidenceRecordBody,
    "case": CaseBody,
    "exhibit": ExhibitBody,
}
