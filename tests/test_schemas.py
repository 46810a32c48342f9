"""schemas/: valid JSON Schemas that describe exactly what custody writes.

A real ledger holding every body custody writes today (key, new item, duplicate, new
version, ingested item with acquisition, non-UTF-8 name, checkpoint) validates line by
line; and malformed records are refused by BOTH the schema and the strict parser
(``SignedRecord.parse`` + ``typed_body``), so the two descriptions of the format agree.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.helpers import ledger_lines, schema

from conftest import PASSPHRASE, SAMPLES, SCHEMAS, copy_media
from custody.acquisition.catalogue import Descriptive, catalogue
from custody.acquisition.ingest import ingest
from custody.errors import RecordError
from custody.keys.keyring import Keyring
from custody.ledger import canonical
from custody.ledger.records import SignedRecord
from custody.root import init_root

CLI_COMMANDS = [
    "init", "keys-generate", "keys-list", "keys-export", "hash", "catalogue", "ingest", "log",
    "show", "case-set", "case-show", "exhibit-assign", "exhibit-list", "register", "certify",
    "capture",
]
RECORD = schema("record.schema.json")
VALIDATOR = jsonschema.Draft202012Validator(RECORD)


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.json")), ids=lambda p: p.name)
def test_every_schema_is_a_valid_2020_12_schema(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$id"].endswith("/" + path.name)


def test_one_schema_per_json_command() -> None:
    expected = {"record.schema.json"} | {f"cli-{c}.schema.json" for c in CLI_COMMANDS}
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} >= expected


@pytest.mark.parametrize(
    "outer, pointer, inner",
    [
        ("cli-ingest", "catalogue", "cli-catalogue"),
        ("cli-show", "record", "record"),
        ("cli-catalogue", "timestamp", "cli-timestamp"),
        ("cli-capture", "timestamp", "cli-timestamp"),
        ("cli-import", "verification", "cli-verify"),
    ],
)
def test_embedded_copies_are_in_step(outer: str, pointer: str, inner: str) -> None:
    """Schemas are self-contained (no cross-file $ref); embedded copies must not drift."""
    assert schema(f"{outer}.schema.json")["$defs"][pointer] == schema(f"{inner}.schema.json")


def test_the_provenance_schema_is_the_parsers_rules() -> None:
    """record.schema.json's provenance is derived from ledger/provenance.py's specs."""
    from custody.ledger.provenance import json_schema

    assert RECORD["$defs"]["provenance"] == json_schema()


# --- a real ledger with every body shape ---------------------------------------------------


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    base = tmp_path_factory.mktemp("schemas")
    root = init_root(base / "evidence")
    key = Keyring(base / "keys").generate(
        "alice", "documenter", PASSPHRASE, "2026-11-27T07:02:10.123456Z"
    )
    signer = key.unlock(PASSPHRASE)
    media = copy_media(SAMPLES, root.path / "media")
    with open(os.fsencode(media) + b"/bad\xffname.jpg", "wb") as handle:
        handle.write(b"not utf-8 name")
    described = Descriptive("Alice", "phone", "Square", "night", ("march", "day-1"))
    catalogue(root, [media], signer, descriptive=described)
    with open(media / "misc" / "odd" / "Café Témoin 04.jpg".replace("é", "e\u0301"), "ab") as f:
        f.write(b"changed")
    os.rename(media / "misc" / "broken", media / "moved")
    catalogue(root, [media], signer)
    card = base / "card"
    card.mkdir()
    (card / "clip.mp4").write_bytes(b"clip from a card")
    ingest(root, [str(card)], signer)
    # Sources with provenance: a WhatsApp export (a zip, so members carry archive fields).
    import chat_fixtures
    from custody.acquisition.intake import intake

    exports = base / "exports"
    exports.mkdir()
    intake(root, str(chat_fixtures.ios_export_zip(exports).path), "whatsapp", signer)
    return ledger_lines(root.path)


def test_every_line_of_a_real_ledger_validates(ledger: list[bytes]) -> None:
    kinds: set[str] = set()
    for line in ledger:
        document = json.loads(line)
        errors = [e.message for e in VALIDATOR.iter_errors(document)]
        assert errors == [], (line[:200], errors)
        signed = SignedRecord.parse(line)  # and the parser agrees
        signed.record.typed_body()
        body = document["signed"]["body"]
        kinds.add(document["signed"]["type"])
        kinds.update(k for k in ("acquisition", "duplicate_of", "supersedes", "path_bytes",
                                 "tags", "metadata_error", "provenance") if k in body)
        kinds.update(f"{p['kind']}:{p['role']}" for p in body.get("provenance", []))
    assert kinds >= {"key", "item", "checkpoint", "acquisition", "duplicate_of", "supersedes",
                     "path_bytes", "tags", "metadata_error", "provenance", "whatsapp:media",
                     "whatsapp:chat-file", "whatsapp:archive"}


# --- malformed records: the schema and the parser must both refuse ------------------------


def _at(obj: dict[str, Any], path: str) -> tuple[Any, Any]:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj, int(last) if last.isdigit() else last


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        target, last = _at(obj, path)
        target[last] = value

    return mutate


def drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        target, last = _at(obj, path)
        del target[last]

    return mutate


def append(path: str, suffix: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        target, last = _at(obj, path)
        target[last] += suffix

    return mutate


def respell_signature(obj: dict[str, Any]) -> None:
    """The same 64 signature bytes, spelt with the unused low bits of base64 set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sig = obj["sig"]
    obj["sig"] = sig[:-3] + alphabet[alphabet.index(sig[-3]) | 1] + "=="
    assert obj["sig"] != sig and base64.b64decode(obj["sig"]) == base64.b64decode(sig)


B64_31 = base64.b64encode(b"k" * 31).decode()
B64_63 = base64.b64encode(b"s" * 63).decode()

CASES: list[Any] = [
    # (record type of the line to start from, mutation)
    pytest.param("item", put("extra", 1), id="unknown-top-level-field"),
    pytest.param("item", drop("sig"), id="missing-sig"),
    pytest.param("item", put("sig", "!" * 88), id="sig-not-base64"),
    pytest.param("item", put("sig", B64_63), id="sig-63-bytes"),
    pytest.param("item", put("signed.extra", 1), id="unknown-signed-field"),
    pytest.param("item", put("signed.v", 2), id="version-2"),
    pytest.param("item", put("signed.seq", -1), id="negative-seq"),
    pytest.param("item", put("signed.seq", "5"), id="seq-string"),
    pytest.param("item", put("signed.seq", True), id="seq-bool"),
    pytest.param("item", put("signed.type", "note"), id="unknown-type"),
    pytest.param("item", put("signed.time", "27/11/2026 07:02"), id="time-not-rfc3339"),
    pytest.param("item", put("signed.time", "2026-13-01T00:00:00.000000Z"), id="time-month-13"),
    pytest.param("item", put("signed.signer", "AB" * 32), id="signer-uppercase"),
    pytest.param("item", put("signed.prev", "xyz"), id="prev-not-hex"),
    pytest.param("item", drop("signed.prev"), id="prev-missing"),
    pytest.param("item", put("signed.body", []), id="body-not-object"),
    pytest.param("item", put("signed.body.extra", 1), id="item-unknown-field"),
    pytest.param("item", drop("signed.body.digests.sha256"), id="item-no-sha256"),
    pytest.param("item", put("signed.body.digests.sha256", "AB" * 32), id="item-digest-upper"),
    pytest.param("item", put("signed.body.digests.blake3", "ab" * 31), id="item-digest-short"),
    pytest.param("item", put("signed.body.digests.crc32", "00" * 4), id="item-unknown-algo"),
    pytest.param("item", put("signed.body.path", "/etc/shadow"), id="item-absolute-path"),
    pytest.param("item", put("signed.body.path", "media/../../x"), id="item-dotdot"),
    pytest.param("item", put("signed.body.path", ".."), id="item-just-dotdot"),
    pytest.param("item", put("signed.body.path", ""), id="item-empty-path"),
    pytest.param("item", put("signed.body.size", -5), id="item-negative-size"),
    pytest.param("item", put("signed.body.size", 1.5), id="item-fractional-size"),
    pytest.param("item", put("signed.body.mtime", "2026-11-27"), id="item-mtime-date-only"),
    pytest.param("item", put("signed.body.tags", [1]), id="item-tag-number"),
    pytest.param("item", put("signed.body.duplicate_of", -1), id="item-negative-duplicate-of"),
    pytest.param("item", put("signed.body.metadata", []), id="item-metadata-list"),
    pytest.param("item", put("signed.body.path_bytes", "@@@@"), id="item-path-bytes-bad"),
    # Collector, source path and volume are salted commitments (issue 17): each must be
    # committed to or in the clear, never both and never neither.
    pytest.param("acquisition", drop("signed.body.commitments.volume"), id="acq-no-volume"),
    pytest.param("acquisition", put("signed.body.acquisition.source_path", "/media/x"),
                 id="acq-source-clear-and-committed"),
    pytest.param("item", put("signed.body.collector", "Bo"), id="collector-clear-and-committed"),
    pytest.param("acquisition", put("signed.body.commitments.name", "ab" * 32),
                 id="commitment-unknown-field"),
    pytest.param("acquisition", put("signed.body.commitments.collector", "AB" * 32),
                 id="commitment-not-lowercase-hex"),
    pytest.param("acquisition", put("signed.body.acquisition.source_sha256", "00"),
                 id="acq-bad-sha256"),
    pytest.param("acquisition", put("signed.body.acquisition.volume", {"fstype": 4}),
                 id="acq-volume-number"),
    pytest.param("acquisition", put("signed.body.acquisition.when", "now"), id="acq-extra"),
    pytest.param("provenance", put("signed.body.provenance", []), id="provenance-empty"),
    pytest.param("provenance", put("signed.body.provenance.0.kind", "signal"),
                 id="provenance-unknown-kind"),
    pytest.param("provenance", put("signed.body.provenance.0.role", "boss"),
                 id="provenance-unknown-role"),
    pytest.param("provenance", put("signed.body.provenance.0.extra", 1),
                 id="provenance-unknown-member"),
    pytest.param("provenance", drop("signed.body.provenance.0.source"),
                 id="provenance-no-source"),
    pytest.param("provenance", put("signed.body.provenance.0.message_id", "3"),
                 id="provenance-id-string"),
    pytest.param("provenance", put("signed.body.provenance.0.time_ambiguous", 0),
                 id="provenance-bool-number"),
    pytest.param("provenance", put("signed.body.provenance.0.chat_file.sha256", "AB" * 32),
                 id="provenance-chat-sha-upper"),
    pytest.param("provenance", put("signed.body.provenance.0.time_readings", ["x", 1]),
                 id="provenance-reading-number"),
    pytest.param("provenance", put("signed.body.provenance.0.text", "x" * (1 << 20 + 1)),
                 id="provenance-text-too-long"),
    pytest.param("acquisition", put("signed.body.acquisition.archive_member", "a.jpg"),
                 id="acq-member-without-archive-sha"),
    pytest.param("key", put("signed.body.role", "admin"), id="key-role"),
    pytest.param("key", put("signed.body.algorithm", "rsa"), id="key-algorithm"),
    pytest.param("key", put("signed.body.public_key", B64_31), id="key-31-bytes"),
    pytest.param("key", put("signed.body.extra", 1), id="key-extra"),
    pytest.param("key", drop("signed.body.name"), id="key-no-name"),
    pytest.param("key", put("signed.body.replaces", "ab"), id="key-replaces-short"),
    pytest.param("checkpoint", put("signed.body.root", "AB" * 32), id="checkpoint-root-upper"),
    pytest.param("checkpoint", put("signed.body.tree_size", -1), id="checkpoint-negative"),
    pytest.param("checkpoint", put("signed.body.extra", 1), id="checkpoint-extra"),
    pytest.param("checkpoint", drop("signed.body.root"), id="checkpoint-no-root"),
    # A second spelling of the same value: if the parser took it, the stored line (and its
    # hash) could change while the signature still verifies.
    pytest.param("item", respell_signature, id="sig-non-canonical-base64"),
    pytest.param("item", append("signed.signer", "\n"), id="signer-trailing-newline"),
    pytest.param("item", append("signed.time", "\n"), id="time-trailing-newline"),
    pytest.param("item", append("signed.body.mtime", "\n"), id="mtime-trailing-newline"),
    pytest.param("checkpoint", append("signed.body.root", "\n"), id="root-trailing-newline"),
]


def first_line(ledger: list[bytes], kind: str) -> dict[str, Any]:
    for line in ledger:
        document: dict[str, Any] = json.loads(line)
        signed = document["signed"]
        if kind == "acquisition" and "acquisition" in signed["body"]:
            return document
        if kind == "provenance" and any(
            p["kind"] == "whatsapp" and p["role"] == "media"
            for p in signed["body"].get("provenance", [])
        ):
            document["signed"]["body"]["provenance"].sort(key=lambda p: p["kind"] != "whatsapp")
            return document
        if signed["type"] == kind and "acquisition" not in signed["body"]:
            return document
    raise AssertionError(f"no {kind} line in the ledger")


def parser_refuses(line: bytes) -> bool:
    try:
        SignedRecord.parse(line).record.typed_body()
    except RecordError:
        return True
    return False


@pytest.mark.parametrize("kind, mutate", CASES)
def test_malformed_record_refused_by_schema_and_parser(
    ledger: list[bytes], kind: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    document = first_line(ledger, kind)
    assert VALIDATOR.is_valid(document)
    mutate(document)
    line = canonical.encode(document)
    schema_refuses = not VALIDATOR.is_valid(document)
    assert (schema_refuses, parser_refuses(line)) == (True, True)
