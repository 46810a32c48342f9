"""Ledger records: the signed envelope, as frozen dataclasses.

A ledger line is the canonical JSON (``custody.ledger.canonical``) of::

    {"sig": "<base64 Ed25519 signature>",
     "signed": {"v": 1, "seq": N, "type": "...", "time": "...Z",
                "signer": "<key fingerprint>", "prev": "<sha256 of line N-1>" | null,
                "body": {...}}}

The signature covers the canonical bytes of the ``signed`` member, which - because
"signed" sorts last - are exactly the bytes between ``{"sig":"...","signed":`` and the
final ``}`` of the line. docs/format.md is the normative description; keep it in step.
The typed bodies are in ``custody.ledger.bodies``.

Parsing is strict and total: anything that does not match the format raises
``RecordError`` with a one-line reason, so ``verify`` can report RECORD_MALFORMED.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from custody.clock import check_record_time
from custody.encoding import b64decode, b64encode
from custody.errors import RecordError
from custody.i18n import _
from custody.ledger import canonical
from custody.ledger.bodies import BODY_TYPES, ItemBody
from custody.ledger.fields import get_field, hex64_field, nonneg_field, only_fields

FORMAT_VERSION = 1


# The longest line a record may be (docs/format.md §2). A catalogued item stays far below
# it (its metadata is capped at custody.evidence.metadata.MAX_METADATA_BYTES); the largest
# records custody writes are events naming 1,000 items with their copies (a few MiB at
# most). A longer line is RECORD_MALFORMED without being decoded, and custody never
# writes one.
MAX_LINE_BYTES = 16 << 20


RECORD_TYPES = frozenset(
    {
        "key",
        "item",
        "checkpoint",
        "timestamp",
        "event",
        "repair",
        "revocation",
        "witness",
        "case",
        "exhibit",
        "validation",
        "evidence-record",
    }
)


# Records that carry their own proof of time (an RFC 3161 token, an RFC 4998 evidence set,
# CA-signed revocation material): a checkpoint need not cover them, and one made only for
# them would start an endless stamp-checkpoint-stamp cycle (``Ledger.needs_checkpoint``).
SELF_DATED_TYPES = ("timestamp", "validation", "evidence-record")


_SIGNED_MARKER = b',"signed":'


def line_hash(line: bytes) -> str:
    """The chain link: hex SHA-256 of a ledger line's bytes, without its newline."""
    return hashlib.sha256(line).hexdigest()


def check_line_length(length: int) -> None:
    """RecordError for a line longer than ``MAX_LINE_BYTES``."""
    if length > MAX_LINE_BYTES:
        raise RecordError(
            _(
                "the line is {length} bytes, more than the {mib} MiB ({limit} "
                "bytes) a record may be"
            ).format(length=length, mib=MAX_LINE_BYTES >> 20, limit=MAX_LINE_BYTES)
        )


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
            raise RecordError(_("record {seq}: {why}").format(seq=self.seq, why=exc)) from exc

    def typed_body(self) -> Any:
        """The body as its dataclass (``KeyBody``, ``ItemBody``...); RecordError if malformed."""
        body_class = BODY_TYPES.get(self.type)
        if body_class is None:
            raise RecordError(
                _("record {seq}: no body format known for type {type!r}").format(
                    seq=self.seq, type=self.type
                )
            )
        try:
            return body_class.from_json(self.body)
        except RecordError as exc:
            raise RecordError(_("record {seq}: {why}").format(seq=self.seq, why=exc)) from exc


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
        check_line_length(len(line))
        obj = canonical.decode(line)
        if not isinstance(obj, dict):
            raise RecordError(_("a ledger line must be a JSON object"))
        only_fields(obj, _LINE_FIELDS, "line")
        signature = b64decode(get_field(obj, "sig", str, "line"), "signature")
        if len(signature) != 64:
            raise RecordError(_("an Ed25519 signature is 64 bytes"))
        signed = get_field(obj, "signed", dict, "line")
        w = "record"
        only_fields(signed, _RECORD_FIELDS, w)
        version = get_field(signed, "v", int, w)
        if version != FORMAT_VERSION:
            raise RecordError(
                _(
                    "record format version {version} is not supported by this custody; "
                    "upgrade custody"
                ).format(version=version)
            )
        record_type = get_field(signed, "type", str, w)
        if record_type not in RECORD_TYPES:
            raise RecordError(
                _("unknown record type {record_type!r}").format(record_type=record_type)
            )
        prev = signed.get("prev")
        if prev is not None:
            prev = hex64_field(signed, "prev", w)
        elif "prev" not in signed:
            raise RecordError(_("record: missing field 'prev'"))
        time = get_field(signed, "time", str, w)
        try:
            check_record_time(time)
        except ValueError as exc:
            raise RecordError(_("record: {why}").format(why=exc)) from exc
        record = Record(
            seq=nonneg_field(signed, "seq", w),
            type=record_type,
            time=time,
            signer=hex64_field(signed, "signer", w),
            prev=prev,
            body=get_field(signed, "body", dict, w),
            version=version,
        )
        return SignedRecord(record, signature, line)
