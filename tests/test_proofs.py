"""Inclusion and consistency proofs, checkpoints and countersignatures, on a real catalogue.

A proof file must stand on its own years later: the tests check it with custody
(``custody proof verify``) and without it - ``hashlib`` for the leaf, an RFC 9162
§2.1.3.2 / §2.1.4.2 verifier written out below, and ``openssl pkeyutl -verify -rawin``
against the key from ``custody keys export`` for the signatures. Every tampering of a
proof file must fail with exit 1 (3 when the file is not a proof at all), one line on
stderr and no traceback. An inclusion proof discloses its one record and nothing of any
other.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PASSPHRASE, Result, copy_media, media_source, validate
from custody.clock import format_time, utc_now
from custody.errors import ProofError
from custody.keys.keyring import Keyring
from custody.ledger import merkle
from custody.ledger.backends import open_ledger
from custody.ledger.index import LedgerIndex
from custody.ledger.proofs import check_document, load_document
from custody.ledger.records import Record, SignedRecord
from custody.root import find_root

CLI = Callable[..., Result]


# --- independent tools ----------------------------------------------------------------------


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash, transcribed literally."""
    if not leaves:
        return H(b"")
    if len(leaves) == 1:
        return H(b"\x00" + leaves[0])
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def mth_by_levels(leaf_hashes: list[bytes]) -> bytes:
    """The same root, level by level (an odd last node moves up unchanged): O(n)."""
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [H(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or None if it is malformed."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def consistent(first: int, second: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2 for 0 < first <= second."""
    if first == second:
        return not proof and old == new
    if not 0 < first < second or not proof:
        return False
    path = ([old] if first & (first - 1) == 0 else []) + list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = H(b"\x01" + c + fr)
            sr = H(b"\x01" + c + sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = H(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old and sr == new


def openssl_verifies(line: str, pem: Path, scratch: Path) -> bool:
    """Check a ledger line's Ed25519 signature with OpenSSL, cutting it as docs/format.md says."""
    data = line.encode("utf-8")
    marker = b',"signed":'
    message = data[data.index(marker) + len(marker) : -1]
    (scratch / "msg.bin").write_bytes(message)
    (scratch / "sig.bin").write_bytes(base64.b64decode(json.loads(line)["sig"]))
    proc = subprocess.run(
        [
            *("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin"),
            *("-in", str(scratch / "msg.bin"), "-sigfile", str(scratch / "sig.bin")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and "Signature Verified Successfully" in proc.stdout


def pem_fingerprint(pem: Path) -> str:
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(pem), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    return hashlib.sha256(der[-32:]).hexdigest()


# --- reading the ledger ---------------------------------------------------------------------


def read_lines(root: Path) -> list[bytes]:
    data = (root / ".custody" / "ledger.jsonl").read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def signed_of(line: bytes | str) -> dict[str, Any]:
    signed: dict[str, Any] = json.loads(line)["signed"]
    return signed


def item_records(root: Path) -> list[dict[str, Any]]:
    return [s for s in map(signed_of, read_lines(root)) if s["type"] == "item"]


def plain_items(root: Path) -> list[dict[str, Any]]:
    """Item records whose content no other item shares."""
    records = item_records(root)
    shas = [r["body"]["digests"]["sha256"] for r in records]
    return [r for r in records if shas.count(r["body"]["digests"]["sha256"]) == 1]


def assert_ends_with_checkpoint(root: Path) -> dict[str, Any]:
    lines = read_lines(root)
    last = signed_of(lines[-1])
    assert last["type"] == "checkpoint"
    assert last["body"]["tree_size"] == last["seq"] == len(lines) - 1
    assert last["body"]["root"] == mth(lines[:-1]).hex()
    return last


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalogue_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's ``catalogued`` root and keyring, built by the same steps once per module."""
    from custody.cli.app import run

    base = tmp_path_factory.mktemp("catalogue-template")
    root = base / "evidence"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTODY_HOME", str(base / "custody-home"))
        patch.setenv("CUSTODY_PASSPHRASE", PASSPHRASE)
        patch.delenv("CUSTODY_ROOT", raising=False)
        assert run(["init", str(root)]) == 0
        assert run(["keys", "generate", "--name", "alice"]) == 0
        copy_media(media_source(), root / "media")
        command = ["catalogue", str(root / "media"), "--root", str(root), "--collector", "Alice"]
        assert run(command) == 0
    return base


@pytest.fixture
def catalogued(catalogue_template: Path, env: Path, tmp_path: Path) -> Path:
    """Overrides conftest's ``catalogued`` with a private copy of the same real catalogue
    (made once per module: exiftool over the media takes seconds)."""
    shutil.copytree(catalogue_template / "custody-home", env, dirs_exist_ok=True)
    root = tmp_path / "evidence"
    shutil.copytree(catalogue_template / "evidence", root, symlinks=True)
    return root


def make_inclusion(cli: CLI, root: Path, spec: str, out: Path, *extra: str) -> dict[str, Any]:
    result = cli("proof", "inclusion", spec, "--root", root, "--out", out, "--json", *extra)
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    validate(document, "cli-proof.schema.json")
    assert out.read_bytes() == rfc8785.dumps(document) + b"\n"
    return document


def make_consistency(cli: CLI, root: Path, out: Path, *sizes: int) -> dict[str, Any]:
    args = [str(s) for s in sizes]
    result = cli("proof", "consistency", *args, "--root", root, "--out", out, "--json")
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    validate(document, "cli-proof.schema.json")
    assert out.read_bytes() == rfc8785.dumps(document) + b"\n"
    return document


def proof_verify(cli: CLI, path: Path) -> tuple[int, dict[str, Any]]:
    result = cli("proof", "verify", path, "--json")
    assert "Traceback" not in result.err
    document: dict[str, Any] = result.json()
    validate(document, "cli-proof-verify.schema.json")
    assert result.code == (0 if document["verified"] else 1)
    return result.code, document


def catalogue_more(cli: CLI, root: Path, name: str = "later") -> None:
    folder = root / "media" / name
    folder.mkdir()
    (folder / "statement.txt").write_text(f"statement received {name}\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + name.encode() * 50)
    result = cli("catalogue", folder, "--root", root, "--json")
    assert result.code == 0, result.err
    validate(result.json(), "cli-catalogue.schema.json")


# --- inclusion proofs -----------------------------------------------------------------------


@pytest.mark.parametrize("naming", ["path", "record number", "digest prefix"])
def test_inclusion_proof_discloses_only_its_record(
    catalogued: Path, cli: CLI, tmp_path: Path, naming: str
) -> None:
    lines = read_lines(catalogued)
    candidates = plain_items(catalogued)
    item = candidates[len(candidates) // 2]
    body = item["body"]
    spec = {
        "path": body["path"],
        "record number": str(item["seq"]),
        "digest prefix": body["digests"]["sha256"][:12],
    }[naming]
    out = tmp_path / "proof.json"
    document = make_inclusion(cli, catalogued, spec, out)
    assert document["leaf_index"] == item["seq"]
    assert document["record_line"].encode() == lines[item["seq"]]
    code, checked = proof_verify(cli, out)
    assert code == 0 and checked["kind"] == "inclusion"
    assert {s["name"] for s in checked["signers"]} == {"alice"}

    text = out.read_text(encoding="utf-8")
    for other in item_records(catalogued):
        if other["seq"] == item["seq"]:
            continue
        assert json.dumps(other["body"]["path"], ensure_ascii=False)[1:-1] not in text
        for digest in other["body"]["digests"].values():
            assert digest not in text
    disclosed = {document["record_line"], document["checkpoint_line"], *document["key_lines"]}
    for line in lines:
        if line.decode() not in disclosed:
            assert line.decode() not in text
    assert all(signed_of(k)["type"] == "key" for k in document["key_lines"])
    assert signed_of(document["checkpoint_line"])["type"] == "checkpoint"
    # Only hashes travel: every audit-path element is 32 bytes of hex.
    assert all(len(bytes.fromhex(h)) == 32 for h in document["audit_path"])


def test_inclusion_proof_checks_out_without_custody(
    catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    lines = read_lines(catalogued)
    item = plain_items(catalogued)[3]
    out = tmp_path / "proof.json"
    make_inclusion(cli, catalogued, str(item["seq"]), out)
    document = json.loads(out.read_bytes())  # the file as a court receives it

    leaf = H(b"\x00" + document["record_line"].encode("utf-8"))
    assert leaf.hex() == document["leaf_hash"]
    checkpoint = signed_of(document["checkpoint_line"])
    assert checkpoint["type"] == "checkpoint"
    size, root = checkpoint["body"]["tree_size"], bytes.fromhex(checkpoint["body"]["root"])
    assert (size, root.hex()) == (document["tree_size"], document["root"])
    path = [bytes.fromhex(h) for h in document["audit_path"]]
    assert root_from_inclusion(document["leaf_index"], size, leaf, path) == root
    assert root == mth(lines[:size])  # and it is the ledger's root
    # Any other leaf, index or path does not lead there.
    assert root_from_inclusion(document["leaf_index"] + 1, size, leaf, path) != root
    assert root_from_inclusion(document["leaf_index"], size, H(b"\x00x"), path) != root

    pem = tmp_path / "alice.pem"
    assert cli("keys", "export", "alice", "--out", pem).code == 0
    fingerprint = pem_fingerprint(pem)
    assert fingerprint == checkpoint["signer"] == signed_of(document["record_line"])["signer"]
    key_record = signed_of(document["key_lines"][0])
    assert key_record["body"]["fingerprint"] == fingerprint
    scratch = tmp_path / "openssl"
    scratch.mkdir()
    for line in (document["checkpoint_line"], document["record_line"], *document["key_lines"]):
        assert openssl_verifies(line, pem, scratch)
    forged = document["checkpoint_line"].replace(checkpoint["body"]["root"], "0" * 64)
    assert not openssl_verifies(forged, pem, scratch)


def _flip_hex(value: str) -> str:
    return ("1" if value[0] == "0" else "0") + value[1:]


def _tamper_record_line(doc: dict[str, Any], *, recompute: bool) -> None:
    signed = signed_of(doc["record_line"])
    old = signed["body"]["digests"]["sha256"]
    doc["record_line"] = doc["record_line"].replace(old, _flip_hex(old))
    if recompute:
        doc["leaf_hash"] = H(b"\x00" + doc["record_line"].encode()).hex()


def _fresh_key_line(name: str) -> str:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    fingerprint = hashlib.sha256(raw).hexdigest()
    signed = {
        "body": {
            "algorithm": "ed25519",
            "fingerprint": fingerprint,
            "name": name,
            "public_key": base64.b64encode(raw).decode(),
            "role": "documenter",
        },
        "prev": None,
        "seq": 0,
        "signer": fingerprint,
        "time": "2024-03-12T10:15:00.000000Z",
        "type": "key",
        "v": 1,
    }
    body = rfc8785.dumps(signed)
    sig = base64.b64encode(private.sign(body))
    return (b'{"sig":"' + sig + b'","signed":' + body + b"}").decode()


def _tamper(kind: str, doc: dict[str, Any]) -> None:
    if kind == "record_line altered":
        _tamper_record_line(doc, recompute=False)
    elif kind == "record_line altered, leaf_hash recomputed":
        _tamper_record_line(doc, recompute=True)
    elif kind == "audit path element":
        doc["audit_path"][len(doc["audit_path"]) // 2] = _flip_hex(
            doc["audit_path"][len(doc["audit_path"]) // 2]
        )
    elif kind == "audit path shortened":
        doc["audit_path"].pop()
    elif kind == "leaf_index":
        doc["leaf_index"] += 1
    elif kind == "tree_size":
        doc["tree_size"] += 1
    elif kind == "root":
        doc["root"] = _flip_hex(doc["root"])
    elif kind == "checkpoint line":
        root = signed_of(doc["checkpoint_line"])["body"]["root"]
        doc["checkpoint_line"] = doc["checkpoint_line"].replace(root, _flip_hex(root))
    elif kind == "checkpoint line and root":
        root = signed_of(doc["checkpoint_line"])["body"]["root"]
        doc["checkpoint_line"] = doc["checkpoint_line"].replace(root, _flip_hex(root))
        doc["root"] = _flip_hex(root)
    elif kind == "key_lines removed":
        del doc["key_lines"]
    elif kind == "key_lines emptied":
        doc["key_lines"] = []
    elif kind == "key_lines replaced by another key named alice":
        doc["key_lines"] = [_fresh_key_line("alice")]
    else:
        raise AssertionError(kind)


TAMPERINGS = [
    "record_line altered",
    "record_line altered, leaf_hash recomputed",
    "audit path element",
    "audit path shortened",
    "leaf_index",
    "tree_size",
    "root",
    "checkpoint line",
    "checkpoint line and root",
    "key_lines removed",
    "key_lines emptied",
    "key_lines replaced by another key named alice",
]


@pytest.fixture
def inclusion_proof(catalogued: Path, cli: CLI, tmp_path: Path) -> Path:
    item = plain_items(catalogued)[2]
    out = tmp_path / "proof.json"
    make_inclusion(cli, catalogued, str(item["seq"]), out)
    assert proof_verify(cli, out)[0] == 0
    return out


@pytest.mark.parametrize("kind", TAMPERINGS)
def test_tampered_inclusion_proof_fails(
    inclusion_proof: Path, cli: CLI, tmp_path: Path, kind: str
) -> None:
    document = json.loads(inclusion_proof.read_bytes())
    _tamper(kind, document)
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(rfc8785.dumps(document) + b"\n")
    code, checked = proof_verify(cli, tampered)
    assert code == 1 and checked["verified"] is False
    assert any(not c["passed"] for c in checked["checks"])
    text = cli("proof", "verify", tampered)
    assert text.code == 1
    assert text.out.splitlines()[0] == "inclusion proof: INVALID"
    assert "Traceback" not in text.err and text.err.count("\n") <= 1


def test_lone_surrogate_in_a_proof_fails_cleanly(
    inclusion_proof: Path, cli: CLI, tmp_path: Path
) -> None:
    data = inclusion_proof.read_bytes().replace(b'"record_line":"', b'"record_line":"\\ud800', 1)
    tampered = tmp_path / "surrogate.json"
    tampered.write_bytes(data)
    result = cli("proof", "verify", tampered)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err and "internal error" not in result.err


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(random.Random(7).randbytes(300), id="garbage bytes"),
        pytest.param(b"this is not a proof\n", id="not JSON"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2, 3]\n", id="JSON, not an object"),
        pytest.param(b'{"format":"custody-inclusion-proof/9"}\n', id="unknown format"),
        pytest.param(b'{"leaf_index":1}\n', id="no format"),
    ],
)
def test_file_that_is_not_a_proof_is_unusable_input(
    cli: CLI, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "not-a-proof.json"
    path.write_bytes(content)
    result = cli("proof", "verify", path)
    assert result.code == 3, (result.code, result.err)
    assert result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("custody: error: ")
    assert "Traceback" not in result.err


@pytest.mark.parametrize("what", ["missing", "a folder"])
def test_unreadable_proof_file_is_unusable_input(cli: CLI, tmp_path: Path, what: str) -> None:
    """docs/exit-codes.md: 3 = 'the input cannot be verified or read at all'."""
    path = tmp_path / "proof.json"
    if what == "a folder":
        path.mkdir()
    result = cli("proof", "verify", path)
    assert result.err.count("\n") == 1 and result.err.startswith("custody: error: ")
    assert result.code == 3, (result.code, result.err)


# --- consistency proofs ---------------------------------------------------------------------


def test_consistency_proofs_verify_and_tampering_fails(
    catalogued: Path, cli: CLI, tmp_path: Path
) -> None:
    old_size = assert_ends_with_checkpoint(catalogued)["seq"]
    catalogue_more(cli, catalogued)
    lines = read_lines(catalogued)
    new_size = assert_ends_with_checkpoint(catalogued)["seq"]

    to_now = make_consistency(cli, catalogued, tmp_path / "to-now.json", old_size)
    assert (to_now["old_size"], to_now["new_size"]) == (old_size, len(lines))
    assert "old_checkpoint_line" in to_now and "new_checkpoint_line" not in to_now
    assert proof_verify(cli, tmp_path / "to-now.json")[0] == 0

    out = tmp_path / "both.json"
    both = make_consistency(cli, catalogued, out, old_size, new_size)
    assert signed_of(both["old_checkpoint_line"])["body"]["tree_size"] == old_size
    assert signed_of(both["new_checkpoint_line"])["body"]["tree_size"] == new_size
    code, checked = proof_verify(cli, out)
    assert code == 0 and checked["kind"] == "consistency"

    # Independently: the roots are the ledger's and the proof is RFC 9162-consistent.
    for document in (to_now, both):
        old_root, new_root = (
            bytes.fromhex(document["old_root"]),
            bytes.fromhex(document["new_root"]),
        )
        assert old_root == mth(lines[: document["old_size"]])
        assert new_root == mth(lines[: document["new_size"]])
        proof = [bytes.fromhex(h) for h in document["proof"]]
        assert consistent(document["old_size"], document["new_size"], old_root, new_root, proof)
        assert not consistent(document["old_size"], document["new_size"], new_root, old_root, proof)

    def tampered(change: Callable[[dict[str, Any]], None]) -> int:
        document = json.loads(out.read_bytes())
        change(document)
        path = tmp_path / "tampered.json"
        path.write_bytes(rfc8785.dumps(document) + b"\n")
        return proof_verify(cli, path)[0]

    def flip_proof(d: dict[str, Any]) -> None:
        d["proof"][0] = _flip_hex(d["proof"][0])

    def flip_old_root(d: dict[str, Any]) -> None:
        d["old_root"] = _flip_hex(d["old_root"])

    def grow_new_size(d: dict[str, Any]) -> None:
        d["new_size"] += 1

    def shorten(d: dict[str, Any]) -> None:
        d["proof"].pop()

    def alter_checkpoint(d: dict[str, Any]) -> None:
        root = signed_of(d["old_checkpoint_line"])["body"]["root"]
        d["old_checkpoint_line"] = d["old_checkpoint_line"].replace(root, _flip_hex(root))

    def drop_keys(d: dict[str, Any]) -> None:
        d["key_lines"] = []

    for change in (flip_proof, flip_old_root, grow_new_size, shorten, alter_checkpoint, drop_keys):
        assert tampered(change) == 1, change.__name__


# --- checkpoints and countersignatures --------------------------------------------------------


def test_every_catalogue_run_ends_with_a_checkpoint(catalogued: Path, cli: CLI) -> None:
    assert_ends_with_checkpoint(catalogued)
    catalogue_more(cli, catalogued, "first")
    assert_ends_with_checkpoint(catalogued)
    catalogue_more(cli, catalogued, "second")
    last = assert_ends_with_checkpoint(catalogued)
    # A run that finds nothing new adds nothing - and the ledger still ends with a checkpoint.
    before = read_lines(catalogued)
    result = cli("catalogue", catalogued / "media", "--root", catalogued, "--json")
    assert result.code == 0 and result.json()["checkpoint"] is None
    assert read_lines(catalogued) == before
    # A run that records a changed file ends with a new checkpoint over it.
    changed = catalogued / "media" / "second" / "statement.txt"
    changed.write_text("statement received second, amended\n")
    result = cli("catalogue", changed, "--root", catalogued, "--json")
    assert result.code == 1  # a changed original is recorded, and flagged (docs/exit-codes.md)
    assert result.json()["versions"] == 1
    validate(result.json(), "cli-catalogue.schema.json")
    assert (
        assert_ends_with_checkpoint(catalogued)["seq"] == result.json()["checkpoint"] > last["seq"]
    )


def test_lawyer_countersigns_and_verify_passes(catalogued: Path, cli: CLI, tmp_path: Path) -> None:
    generated = cli("keys", "generate", "--name", "lawyer", "--role", "lawyer", "--json")
    assert generated.code == 0, generated.err
    lawyer = generated.json()["fingerprint"]
    size_before = len(read_lines(catalogued))

    result = cli(
        "sign", "--key", "lawyer", "--statement", "received", "--root", catalogued, "--json"
    )
    assert result.code == 0, result.err
    signed = result.json()
    validate(signed, "cli-sign.schema.json")
    assert signed["signer"] == lawyer and signed["statement"] == "received"

    lines = read_lines(catalogued)
    assert len(lines) == size_before + 2
    introduction, checkpoint = signed_of(lines[-2]), signed_of(lines[-1])
    # The lawyer's key enters the ledger (self-introduced) before the record it signs ...
    assert introduction["type"] == "key" and introduction["signer"] == lawyer
    assert introduction["body"]["fingerprint"] == lawyer
    assert introduction["body"]["role"] == "lawyer" and introduction["body"]["name"] == "lawyer"
    # ... and the countersignature covers everything before it, that introduction included.
    assert (checkpoint["type"], checkpoint["signer"]) == ("checkpoint", lawyer)
    assert checkpoint["seq"] == signed["seq"] == len(lines) - 1
    assert checkpoint["body"] == {
        "root": mth(lines[:-1]).hex(),
        "statement": "received",
        "tree_size": len(lines) - 1,
    }
    assert lines[-1].decode() == signed["line"]

    verified = cli("verify", catalogued, "--json")
    validate(verified.json(), "cli-verify.schema.json")
    assert verified.code == 0, verified.json()["findings"]
    assert [f for f in verified.json()["findings"] if f["severity"] == "error"] == []

    # An item proved against the lawyer's checkpoint names both signers.
    item = plain_items(catalogued)[0]
    out = tmp_path / "proof.json"
    document = make_inclusion(
        cli, catalogued, str(item["seq"]), out, "--checkpoint", str(signed["seq"])
    )
    assert document["checkpoint_line"] == signed["line"]
    code, checked = proof_verify(cli, out)
    assert code == 0
    assert {s["fingerprint"]: s["name"] for s in checked["signers"]} == {
        lawyer: "lawyer",
        item["signer"]: "alice",
    }


def test_key_introduced_by_another_key_is_proved_through_its_introducer(
    catalogued: Path, tmp_path: Path, cli: CLI
) -> None:
    keyring = Keyring()
    alice = keyring.get("alice").unlock(PASSPHRASE)
    lawyer = keyring.generate("lawyer", "lawyer", PASSPHRASE, format_time(utc_now())).unlock(
        PASSPHRASE
    )
    root = find_root(explicit=str(catalogued))
    with open_ledger(root) as ledger, ledger.writer(alice) as writer:
        introduction = writer.introduce(lawyer)  # alice vouches for the lawyer's key
    with open_ledger(root) as ledger, ledger.writer(lawyer) as writer:
        countersigned = writer.checkpoint("received")
    assert introduction.record.signer == alice.fingerprint
    assert countersigned.seq == introduction.seq + 1
    assert cli("verify", catalogued, "--ledger-only").code == 0

    out = tmp_path / "proof.json"
    item = plain_items(catalogued)[0]
    document = make_inclusion(
        cli, catalogued, str(item["seq"]), out, "--checkpoint", str(countersigned.seq)
    )
    assert introduction.line.decode() in document["key_lines"]
    assert proof_verify(cli, out)[0] == 0

    # The lawyer's introduction counts only because alice's signature on it verifies.
    document["key_lines"] = [
        line.replace(json.loads(line)["sig"], base64.b64encode(bytes(64)).decode())
        if line == introduction.line.decode()
        else line
        for line in document["key_lines"]
    ]
    forged = tmp_path / "forged.json"
    forged.write_bytes(rfc8785.dumps(document) + b"\n")
    code, checked = proof_verify(cli, forged)
    assert code == 1
    assert lawyer.fingerprint not in {s["fingerprint"] for s in checked["signers"]}


def test_key_introduction_claimed_for_a_real_key_is_not_taken_on_its_word(
    inclusion_proof: Path, cli: CLI, tmp_path: Path
) -> None:
    """A forger builds a whole proof around a key of their own and a key record claiming
    alice introduced it - with no valid signature by alice. It must not verify."""
    genuine = json.loads(inclusion_proof.read_bytes())
    alice_line = genuine["key_lines"][0]
    alice_fingerprint = signed_of(alice_line)["signer"]
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    fingerprint = hashlib.sha256(raw).hexdigest()

    def line(signed: dict[str, Any], signature: bytes) -> str:
        body = rfc8785.dumps(signed)
        return (b'{"sig":"' + base64.b64encode(signature) + b'","signed":' + body + b"}").decode()

    key_record = signed_of(alice_line)
    key_record["body"] = {
        "algorithm": "ed25519",
        "fingerprint": fingerprint,
        "name": "alice",
        "public_key": base64.b64encode(raw).decode(),
        "role": "documenter",
    }
    key_record["signer"] = alice_fingerprint  # "introduced by alice" - unsigned claim
    record = signed_of(genuine["record_line"])
    record.update(seq=0, signer=fingerprint)
    record["body"]["digests"]["sha256"] = hashlib.sha256(b"forged content").hexdigest()
    record_line = line(record, forger.sign(rfc8785.dumps(record)))
    leaf = H(b"\x00" + record_line.encode())
    checkpoint = signed_of(genuine["checkpoint_line"])
    checkpoint.update(signer=fingerprint, body={"root": leaf.hex(), "tree_size": 1})
    forged = {
        "format": genuine["format"],
        "leaf_index": 0,
        "tree_size": 1,
        "root": leaf.hex(),
        "record_line": record_line,
        "leaf_hash": leaf.hex(),
        "audit_path": [],
        "checkpoint_line": line(checkpoint, forger.sign(rfc8785.dumps(checkpoint))),
        "key_lines": [line(key_record, bytes(64))],
    }
    path = tmp_path / "forged.json"
    path.write_bytes(rfc8785.dumps(forged) + b"\n")
    code, checked = proof_verify(cli, path)
    assert code == 1
    assert checked["signers"] == []


# --- the index cache is rebuildable, never trusted ------------------------------------------


def test_proofs_survive_a_deleted_cache(catalogued: Path, cli: CLI, tmp_path: Path) -> None:
    shutil.rmtree(catalogued / ".custody" / "cache")
    out = tmp_path / "proof.json"
    make_inclusion(cli, catalogued, str(plain_items(catalogued)[0]["seq"]), out)
    assert proof_verify(cli, out)[0] == 0


def test_proofs_survive_a_corrupt_cache(catalogued: Path, cli: CLI, tmp_path: Path) -> None:
    """docs/format.md §1: the cache is 'rebuildable, never trusted'."""
    cache = catalogued / ".custody" / "cache"
    for sidecar in cache.glob("index.sqlite-*"):
        sidecar.unlink()
    (cache / "index.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    result = cli("proof", "inclusion", "1", "--root", catalogued, "--out", tmp_path / "p.json")
    assert "internal error" not in result.err, result.err
    assert result.code == 0, result.err
    assert proof_verify(cli, tmp_path / "p.json")[0] == 0


# --- scale ----------------------------------------------------------------------------------


def test_inclusion_and_consistency_proofs_over_100000_leaves(tmp_path: Path) -> None:
    """The persistent node store at 100,000 synthetic leaves: roots and proofs agree with
    an independent O(n) computation and the RFC 9162 verifiers written out above."""
    count = 100_000
    leaves = [f"synthetic ledger line {i}".encode() for i in range(count)]
    index = LedgerIndex(tmp_path / "index.sqlite")

    def entries() -> Any:
        offset = 0
        for seq, line in enumerate(leaves):
            body = {"root": "0" * 64, "tree_size": seq}  # well-formed; the index never checks
            record = Record(seq, "checkpoint", "2024-03-12T10:15:00.000000Z", "0" * 64, None, body)
            yield offset, SignedRecord(record, bytes(64), line)  # no signing needed here
            offset += len(line) + 1

    with index.transaction():
        index.add(entries())
    assert index.size == count
    leaf_hashes = [H(b"\x00" + line) for line in leaves]
    rng = random.Random(9162)
    sizes = [count, 1, 2, 3, 65_536, 65_537, *rng.sample(range(1, count), 4)]
    roots = {size: mth_by_levels(leaf_hashes[:size]) for size in sizes}
    for size in sizes:
        assert merkle.root_hash(index, size) == roots[size]
        for leaf_index in {0, size - 1, *(rng.randrange(size) for _ in range(25))}:
            path = merkle.inclusion_proof(index, leaf_index, size)
            assert len(path) <= 17
            found = root_from_inclusion(leaf_index, size, leaf_hashes[leaf_index], path)
            assert found == roots[size]
            merkle.verify_inclusion(leaf_hashes[leaf_index], leaf_index, size, path, roots[size])
    ordered = sorted(sizes)
    for old, new in itertools.pairwise(ordered):
        proof = merkle.consistency_proof(index, old, new)
        assert consistent(old, new, roots[old], roots[new], proof)
    index.close()


def test_two_processes_indexing_the_same_new_lines_file_them_once(tmp_path: Path) -> None:
    """Reads bring the index up to date without the ledger's lock: two connections that read
    the same head and then both file the same new lines must not fail (UNIQUE on seq, seen
    in the four-catalogue concurrency test) nor file anything twice."""
    lines = [f"line {i}".encode() for i in range(30)]

    def entries(first: int, last: int) -> list[tuple[int, SignedRecord]]:
        out, offset = [], sum(len(x) + 1 for x in lines[:first])
        for seq in range(first, last):
            body = {"root": "0" * 64, "tree_size": seq}
            record = Record(seq, "checkpoint", "2024-03-12T10:15:00.000000Z", "0" * 64, None, body)
            out.append((offset, SignedRecord(record, bytes(64), lines[seq])))
            offset += len(lines[seq]) + 1
        return out

    one, two = LedgerIndex(tmp_path / "index.sqlite"), LedgerIndex(tmp_path / "index.sqlite")
    with one.transaction():
        one.add(entries(0, 10))
    with two.transaction():  # two read the head at 0 before one filed: the same ten, and more
        two.add(entries(0, 20))
    assert one.size == two.size == 20
    with one.transaction():  # wholly filed already by two
        one.add(entries(10, 20))
    with one.transaction():  # a gap: nothing filed, a later sync from the head fills it
        one.add(entries(25, 30))
    assert one.size == 20
    assert merkle.root_hash(one, 20) == mth_by_levels([H(b"\x00" + x) for x in lines[:20]])
    count = one.db.execute("SELECT count(*), count(DISTINCT seq) FROM records").fetchone()
    assert tuple(count) == (20, 20)
    one.close()
    two.close()


# --- property: checking a proof never raises --------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=80)
    | st.sampled_from(["0" * 64, "f" * 64, "", "custody-inclusion-proof/1"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_checking_an_altered_proof_never_raises_and_never_passes(
    inclusion_proof: Path, data: st.DataObject
) -> None:
    genuine = json.loads(inclusion_proof.read_bytes())
    document = json.loads(inclusion_proof.read_bytes())
    field = data.draw(st.sampled_from(sorted(document)))
    value = data.draw(json_values)
    document[field] = value
    if value == genuine[field]:
        return
    outcome = check_document(document)  # must not raise
    assert not outcome.ok, (field, value)
    raw = data.draw(st.binary(max_size=200))
    with contextlib.suppress(ProofError):  # and nothing else
        load_document(raw, "fuzz")
