"""custody.ledger.records: the signed envelope, what the signature covers, and strict parsing."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import RecordError
from custody.keys.keyring import PublicKey, SigningKey
from custody.ledger import canonical
from custody.ledger.bodies import Acquisition, CheckpointBody, ItemBody, KeyBody
from custody.ledger.records import Record, SignedRecord, line_hash

SHA = "ab" * 32
BLAKE = "cd" * 32
TIME = "2026-11-27T07:02:10.123456Z"


def make_key(name: str = "alice") -> SigningKey:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return SigningKey(PublicKey(raw, name, "documenter"), private)


KEY = make_key()


def item_body(**overrides: Any) -> dict[str, Any]:
    body = ItemBody(
        path="field-dump-01/WhatsApp/Media/WhatsApp Images/أدلة 02.jpg",
        size=31547,
        mtime="2026-11-27T07:02:07.134578991Z",
        digests={"sha256": SHA, "blake3": BLAKE},
        mime="image/jpeg",
        metadata={"IFD0:Make": "PENTAX Corporation", "Composite:GPSLatitude": 51.025, "n": None},
        capture_time="2008-05-23T15:54:59",
        collector="Alice",
        tags=("protest", "day-1"),
        duplicate_of=3,
        acquisition=Acquisition("/media/card/DCIM/x.jpg", SHA, {"mount_point": "/media/card"}),
    ).to_json()
    body.update(overrides)
    return body


def sign(record: Record, key: SigningKey = KEY) -> SignedRecord:
    payload = record.signed_bytes()
    return SignedRecord.assemble(record, key.sign(payload), payload)


def record(body: dict[str, Any] | None = None, **fields: Any) -> Record:
    values: dict[str, Any] = {
        "seq": 7,
        "type": "item",
        "time": TIME,
        "signer": KEY.fingerprint,
        "prev": "0f" * 32,
        "body": item_body() if body is None else body,
    }
    values.update(fields)
    return Record(**values)


def line_with(mutate: Callable[[dict[str, Any]], None], base: SignedRecord | None = None) -> bytes:
    """A canonical line whose parsed object was changed by ``mutate``."""
    obj = json.loads((base or sign(record())).line)
    mutate(obj)
    return canonical.encode(obj)


def parse_fully(line: bytes) -> Any:
    return SignedRecord.parse(line).record.typed_body()


# --- round trip and what the signature covers -------------------------------------------


def test_signed_record_round_trips() -> None:
    original = record()
    signed = sign(original)
    parsed = SignedRecord.parse(signed.line)
    assert parsed.record == original
    assert parsed.signature == signed.signature
    assert parsed.line == signed.line
    body = parsed.record.typed_body()
    assert isinstance(body, ItemBody)
    assert body.to_json() == item_body()
    assert body.acquisition == Acquisition(
        "/media/card/DCIM/x.jpg", SHA, {"mount_point": "/media/card"}
    )
    assert body.tags == ("protest", "day-1")
    # The stored line is itself the canonical form of {"sig", "signed"}.
    assert canonical.encode(json.loads(signed.line)) == signed.line
    assert line_hash(signed.line) == hashlib.sha256(signed.line).hexdigest()


def test_signature_covers_exactly_the_signed_slice_of_the_line() -> None:
    signed = sign(record())
    line = signed.line
    marker = b',"signed":'
    expected = line[line.index(marker) + len(marker) : -1]
    assert signed.signed_bytes == expected
    assert SignedRecord.parse(line).signed_bytes == expected
    assert expected == record().signed_bytes()
    assert expected == canonical.encode(json.loads(line)["signed"])
    public = KEY._private.public_key()
    public.verify(signed.signature, expected)  # raises if it does not verify
    assert KEY.public.verify(signed.signature, expected)
    # Any other bytes - the whole line, the slice with one byte changed - do not verify.
    assert not KEY.public.verify(signed.signature, line)
    flipped = bytearray(expected)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(InvalidSignature):
        public.verify(signed.signature, bytes(flipped))


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8)
        | st.floats(allow_nan=False, allow_infinity=False),
        max_size=6,
    ),
    st.text(min_size=1, max_size=20).filter(lambda p: not p.startswith("/") and ".." not in p),
)
def test_any_metadata_and_name_round_trip_and_verify(meta: dict[str, Any], path: str) -> None:
    body = item_body(metadata=meta, path=path)
    signed = sign(record(body))
    parsed = SignedRecord.parse(signed.line)
    assert parsed.record.body == body
    assert KEY.public.verify(parsed.signature, parsed.signed_bytes)


@pytest.mark.parametrize(
    "body_type, body",
    [
        ("key", KeyBody(KEY.fingerprint, KEY.public.raw, "alice", "documenter").to_json()),
        ("checkpoint", CheckpointBody(12, "aa" * 32, "end of day").to_json()),
        ("checkpoint", CheckpointBody(0, "aa" * 32).to_json()),
    ],
)
def test_other_bodies_round_trip(body_type: str, body: dict[str, Any]) -> None:
    signed = sign(record(body, type=body_type, seq=0, prev=None))
    typed = SignedRecord.parse(signed.line).record.typed_body()
    assert typed.to_json() == body


def test_first_record_has_null_prev_and_prev_is_required() -> None:
    first = sign(record(seq=0, prev=None))
    assert SignedRecord.parse(first.line).record.prev is None
    with pytest.raises(RecordError, match="prev"):
        SignedRecord.parse(line_with(lambda o: o["signed"].pop("prev"), first))


# --- strict parsing -----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


MALFORMED: list[Any] = [
    # envelope
    pytest.param(_set("extra", 1), "unknown", id="unknown-top-level-field"),
    pytest.param(_drop("sig"), "sig", id="missing-sig"),
    pytest.param(_set("sig", "not base64!"), "base64", id="sig-not-base64"),
    pytest.param(_set("sig", base64.b64encode(b"x" * 63).decode()), "64", id="sig-63-bytes"),
    pytest.param(_set("sig", 5), "type", id="sig-not-string"),
    pytest.param(_set("signed", []), "type", id="signed-not-object"),
    pytest.param(_set("signed.extra", "x"), "unknown", id="unknown-signed-field"),
    pytest.param(_set("signed.v", 2), "version", id="format-version-2"),
    pytest.param(_set("signed.v", True), "type", id="version-bool"),
    pytest.param(_set("signed.seq", -1), "negative", id="negative-seq"),
    pytest.param(_set("signed.seq", "7"), "type", id="seq-string"),
    pytest.param(_set("signed.seq", True), "type", id="seq-bool"),
    pytest.param(_set("signed.seq", 7.5), "type", id="seq-float"),
    pytest.param(_set("signed.type", "note"), "type", id="unknown-type"),
    pytest.param(_set("signed.time", "2026-11-27 07:02:10"), "RFC 3339", id="time-not-rfc3339"),
    pytest.param(_set("signed.time", "2026-13-27T07:02:10Z"), "", id="time-month-13"),
    pytest.param(_set("signed.signer", "AB" * 32), "hex", id="signer-uppercase"),
    pytest.param(_set("signed.signer", "ab" * 31), "hex", id="signer-short"),
    pytest.param(_set("signed.prev", "zz" * 32), "hex", id="prev-not-hex"),
    pytest.param(_set("signed.prev", 0), "type", id="prev-number"),
    pytest.param(_set("signed.body", "x"), "type", id="body-not-object"),
    pytest.param(_drop("signed.body"), "body", id="missing-body"),
    # item body (typed_body)
    pytest.param(_set("signed.body.colour", "red"), "unknown", id="item-unknown-field"),
    pytest.param(_drop("signed.body.digests.sha256"), "sha256", id="item-no-sha256"),
    pytest.param(_set("signed.body.digests.sha256", SHA.upper()), "hex", id="item-sha256-upper"),
    pytest.param(_set("signed.body.digests.sha256", SHA[:-2]), "hex", id="item-sha256-short"),
    pytest.param(_set("signed.body.digests.crc32", "00000000"), "unknown", id="item-unknown-algo"),
    pytest.param(_set("signed.body.digests.sha256", 5), "strings", id="item-digest-not-string"),
    pytest.param(_set("signed.body.path", "/etc/passwd"), "relative", id="item-absolute-path"),
    pytest.param(_set("signed.body.path", "a/../../b"), "relative", id="item-dotdot-path"),
    pytest.param(_set("signed.body.path", ""), "relative", id="item-empty-path"),
    pytest.param(_set("signed.body.size", -1), "negative", id="item-negative-size"),
    pytest.param(_set("signed.body.size", "1"), "type", id="item-size-string"),
    pytest.param(_set("signed.body.mtime", "yesterday"), "RFC 3339", id="item-mtime-garbage"),
    pytest.param(_set("signed.body.mtime", "2026-11-27T07:02:07+01:00"), "", id="item-mtime-zone"),
    pytest.param(_set("signed.body.tags", ["a", 1]), "tags", id="item-tag-not-string"),
    pytest.param(_set("signed.body.duplicate_of", -3), "negative", id="item-negative-reference"),
    pytest.param(_set("signed.body.path_bytes", "%%%"), "base64", id="item-path-bytes-bad"),
    pytest.param(_drop("signed.body.acquisition.volume"), "volume", id="acquisition-no-volume"),
    pytest.param(_set("signed.body.acquisition.volume.mount_point", 1), "strings",
                 id="acquisition-volume-number"),
    pytest.param(_set("signed.body.acquisition.source_sha256", "x"), "hex",
                 id="acquisition-bad-sha256"),
    pytest.param(_set("signed.body.acquisition.extra", "x"), "unknown",
                 id="acquisition-unknown-field"),
    pytest.param(_set("signed.body.mime", None), "type", id="item-optional-text-null"),
    pytest.param(_set("signed.body.note", 5), "type", id="item-note-number"),
    pytest.param(_set("signed.body.metadata", ["x"]), "type", id="item-metadata-list"),
    pytest.param(_set("signed.body.supersedes", True), "type", id="item-reference-bool"),
    pytest.param(_set("signed.body.tags", "a"), "type", id="item-tags-string"),
    pytest.param(_set("signed.time", "0001-01-01T00:00:00+01:00"), "time",
                 id="time-before-year-1-in-utc"),
    pytest.param(_set("signed.time", "2026-11-27T07:02:10+24:00"), "time", id="offset-24h"),
]


@pytest.mark.parametrize("mutate, reason", MALFORMED)
def test_verify_check_refuses_what_parsing_refuses(
    mutate: Callable[[dict[str, Any]], None], reason: str
) -> None:
    """verify checks item bodies without building them (check_body): the same verdicts."""
    with pytest.raises(RecordError) as info:
        SignedRecord.parse(line_with(mutate)).record.check_body()
    assert reason.lower() in str(info.value).lower()


@pytest.mark.parametrize("mutate, reason", MALFORMED)
def test_strict_parsing_rejects(mutate: Callable[[dict[str, Any]], None], reason: str) -> None:
    line = line_with(mutate)
    with pytest.raises(RecordError) as info:
        parse_fully(line)
    message = str(info.value)
    assert reason.lower() in message.lower()
    assert "\n" not in message


@pytest.mark.parametrize(
    "mutate, reason",
    [
        pytest.param(_set("signed.body.role", "admin"), "role", id="key-role"),
        pytest.param(_set("signed.body.algorithm", "rsa"), "algorithm", id="key-algorithm"),
        pytest.param(_set("signed.body.public_key", base64.b64encode(b"k" * 31).decode()), "32",
                     id="key-31-bytes"),
        pytest.param(_set("signed.body.fingerprint", "00" * 32), "fingerprint",
                     id="key-fingerprint-mismatch"),
        pytest.param(_set("signed.body.replaces", "nope"), "replaces", id="key-replaces"),
        pytest.param(_drop("signed.body.name"), "name", id="key-no-name"),
    ],
)
def test_strict_key_bodies(mutate: Callable[[dict[str, Any]], None], reason: str) -> None:
    body = KeyBody(KEY.fingerprint, KEY.public.raw, "alice", "documenter").to_json()
    base = sign(record(body, type="key", seq=0, prev=None))
    with pytest.raises(RecordError, match=reason):
        parse_fully(line_with(mutate, base))


@pytest.mark.parametrize(
    "mutate, reason",
    [
        pytest.param(_set("signed.body.tree_size", -1), "negative", id="tree-size-negative"),
        pytest.param(_set("signed.body.root", "AA" * 32), "hex", id="root-uppercase"),
        pytest.param(_set("signed.body.extra", 1), "unknown", id="unknown-field"),
        pytest.param(_set("signed.body.statement", 1), "type", id="statement-number"),
    ],
)
def test_strict_checkpoint_bodies(mutate: Callable[[dict[str, Any]], None], reason: str) -> None:
    base = sign(record(CheckpointBody(7, "aa" * 32).to_json(), type="checkpoint"))
    with pytest.raises(RecordError, match=reason):
        parse_fully(line_with(mutate, base))


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b'"x"', id="string"),
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
    ],
)
def test_non_object_lines_are_rejected(line: bytes) -> None:
    with pytest.raises(RecordError):
        SignedRecord.parse(line)


def test_non_canonical_line_is_rejected_even_if_signature_is_fine() -> None:
    signed = sign(record())
    pretty = json.dumps(json.loads(signed.line), indent=1, ensure_ascii=False).encode()
    with pytest.raises(RecordError, match="canonical"):
        SignedRecord.parse(pretty)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda o: o["signed"].__setitem__("signer", o["signed"]["signer"] + "\n"),
                     id="hex-with-trailing-newline"),
        pytest.param(lambda o: o["signed"].__setitem__("time", o["signed"]["time"] + "\n"),
                     id="time-with-trailing-newline"),
        pytest.param(lambda o: o.__setitem__("sig", _non_canonical_base64(o["sig"])),
                     id="signature-non-canonical-base64"),
    ],
)
def test_values_with_hidden_variants_are_rejected(mutate: Callable[[dict[str, Any]], None]) -> None:
    """A field must have ONE spelling: otherwise the line (and its hash) can change while
    the signature still verifies (regex ``$`` matches before a final newline; base64
    decoding ignores the unused bits of the last digit)."""
    signed = sign(record())
    line = line_with(mutate, signed)
    assert line != signed.line
    with pytest.raises(RecordError):
        SignedRecord.parse(line)


def _non_canonical_base64(text: str) -> str:
    """Same bytes, other spelling: set the unused low bits of the last base64 digit."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert text.endswith("==")
    last = alphabet.index(text[-3])
    variant = text[:-3] + alphabet[last | 0x01] + "=="
    assert variant != text and base64.b64decode(variant) == base64.b64decode(text)
    return variant


def test_item_path_bytes_keep_exact_name() -> None:
    raw = b"dump/bad\xffname.jpg"
    body = ItemBody(
        path=raw.decode("utf-8", "replace"),
        path_bytes=raw,
        size=1,
        mtime="2026-11-27T07:02:07.000000001Z",
        digests={"sha256": SHA},
    )
    parsed = SignedRecord.parse(sign(record(body.to_json())).line).record.typed_body()
    assert parsed.name_bytes == raw
    assert parsed.mtime_ns % 1_000_000_000 == 1
