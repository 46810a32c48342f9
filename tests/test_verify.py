"""The tamper matrix: every finding class of ``custody verify``, provoked on a real catalogue.

Each test takes a real catalogued copy of the media (the ``catalogued`` fixture: the full
corpus when ../shared/corpus exists, else samples/field-dump), makes exactly one kind of
change with ordinary file operations - flip a byte, delete, rename, truncate, swap lines,
re-sign with a key of its own - and asserts that ``custody verify --json`` and the library
``verify_root`` both report that finding class for the right item (path or record number),
that the exit code is 1 and that the JSON validates against schemas/cli-verify.schema.json.

Forgeries are built here from the bytes, with ``json``, ``rfc8785``, ``hashlib`` and
``cryptography`` - the tools an attacker has - never with custody's own writer. Where a
forgery needs the documenter's real key (a validly signed lie), it is unlocked from the
test keyring with the test passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import committed_value

from conftest import (
    PASSPHRASE,
    SCHEMAS,
    SHARED_CORPUS,
    Result,
    copy_media,
    media_source,
    needs_corpus,
    run_custody,
    validate,
)
from custody.keys.keyring import Keyring, SigningKey
from custody.root import EvidenceRoot, find_root
from custody.trust.policy import TrustPolicy, policy_for
from custody.verify.roots import (
    WARNINGS,
    Code,
    Finding,
    TrustedCheckpoint,
    VerificationResult,
    trusted_checkpoint_from_line,
    verify_root,
)
from custody.verify.roots import (
    Check as VerifyCheck,
)

LEDGER_CODES = {
    "TRUNCATED_RECORD",
    "RECORD_MALFORMED",
    "RECORD_MISSING",
    "RECORDS_REORDERED",
    "RECORD_DUPLICATED",
    "RECORD_ALTERED",
    "CHAIN_BROKEN",
    "BAD_SIGNATURE",
    "UNKNOWN_KEY",
    "CHECKPOINT_MISMATCH",
    "NOT_APPEND_ONLY",
}
FILE_CODES = {"FILE_MISSING", "FILE_MODIFIED", "FILE_MOVED", "FILE_UNEXPECTED", "FILE_UNREADABLE"}
LEDGER_CHECKS = {"record structure", "hash chain", "signatures", "checkpoints"}


# --- reading and forging ledger bytes (independently of custody) ---------------------------


def ledger_file(root: Path) -> Path:
    return root / ".custody" / "ledger.jsonl"


def read_lines(root: Path) -> list[bytes]:
    data = ledger_file(root).read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def write_lines(root: Path, lines: list[bytes]) -> None:
    ledger_file(root).write_bytes(b"".join(line + b"\n" for line in lines))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_of(line: bytes) -> dict[str, Any]:
    signed: dict[str, Any] = json.loads(line)["signed"]
    return signed


def sig_of(line: bytes) -> bytes:
    return base64.b64decode(json.loads(line)["sig"])


def assemble(signed: dict[str, Any], signature: bytes) -> bytes:
    """A ledger line: canonical ``signed`` bytes with a signature spliced in front."""
    body = rfc8785.dumps(signed)
    return b'{"sig":"' + base64.b64encode(signature) + b'","signed":' + body + b"}"


def resign(signed: dict[str, Any], sign: Callable[[bytes], bytes]) -> bytes:
    return assemble(signed, sign(rfc8785.dumps(signed)))


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash, transcribed literally."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def real_key() -> SigningKey:
    """The documenter's real key, unlocked from the test keyring (CUSTODY_HOME)."""
    return Keyring().get("alice").unlock(PASSPHRASE)


def rewrite_history(
    lines: list[bytes], drop: int, sign: Callable[[bytes], bytes], signer: str
) -> list[bytes]:
    """Delete record ``drop`` and rebuild a fully consistent ledger: renumbered, re-chained,
    every checkpoint recomputed, every record re-signed, item references shifted."""
    out: list[bytes] = []
    for old in lines[:drop] + lines[drop + 1 :]:
        signed = signed_of(old)
        position = len(out)
        signed["seq"] = position
        signed["prev"] = sha256_hex(out[-1]) if out else None
        signed["signer"] = signer
        body = signed["body"]
        if signed["type"] == "checkpoint":
            body["tree_size"] = position
            body["root"] = mth(out).hex()
        for ref in ("duplicate_of", "supersedes"):
            if ref in body and body[ref] > drop:
                body[ref] -= 1
        out.append(resign(signed, sign))
    return out


@dataclass(frozen=True)
class Item:
    seq: int
    path: str
    size: int
    digests: dict[str, str]
    duplicate: bool

    @property
    def sha256(self) -> str:
        return self.digests["sha256"]


def items(root: Path) -> list[Item]:
    """Every item record in the ledger (read with json, not custody)."""
    found: list[Item] = []
    for line in read_lines(root):
        signed = signed_of(line)
        if signed["type"] == "item":
            body = signed["body"]
            found.append(Item(signed["seq"], body["path"], body["size"], body["digests"], False))
    counts: dict[str, int] = {}
    for item in found:
        counts[item.sha256] = counts.get(item.sha256, 0) + 1
    return [Item(i.seq, i.path, i.size, i.digests, counts[i.sha256] > 1) for i in found]


def plain_items(root: Path) -> list[Item]:
    """Items with unique, non-empty content, in ledger order."""
    return [i for i in items(root) if not i.duplicate and i.size > 0]


def middle_item(root: Path) -> Item:
    """An item in the middle of the ledger whose next record is an item too."""
    candidates = plain_items(root)
    seqs = {i.seq for i in items(root)}
    chosen = [i for i in candidates if i.seq + 1 in seqs and i.seq > 1]
    return chosen[len(chosen) // 2]


# --- the catalogue under test ---------------------------------------------------------------


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
    (full corpus if present, else the shipped samples; key 'alice' in the keyring), so
    that each test does not spend seconds re-running exiftool over the media. The control
    test below also catalogues afresh through conftest's ``evidence`` fixture."""
    shutil.copytree(catalogue_template / "custody-home", env, dirs_exist_ok=True)
    root = tmp_path / "evidence"
    shutil.copytree(catalogue_template / "evidence", root, symlinks=True)
    return root


# --- running verify both ways ---------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    doc: dict[str, Any]
    err: str

    @property
    def findings(self) -> list[dict[str, Any]]:
        findings: list[dict[str, Any]] = self.doc["findings"]
        return findings

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["severity"] == "error"]

    @property
    def error_codes(self) -> set[str]:
        return {f["code"] for f in self.errors}

    def of(self, code: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["code"] == code]

    def one(self, code: str, *, item: str | None = None, seq: int | None = None) -> dict[str, Any]:
        """The single finding of ``code`` about ``item``/``seq``; fails listing what was found."""
        matches = [
            f
            for f in self.of(code)
            if (item is None or f["item"] == item) and (seq is None or f["seq"] == seq)
        ]
        assert len(matches) == 1, (code, item, seq, self.findings)
        return matches[0]


def _key(findings: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            f["code"],
            f["severity"],
            f["item"],
            f["seq"] if f["seq"] is not None else -1,
            f["expected"] or "",
            f["found"] or "",
        )
        for f in findings
    )


Verifier = Callable[..., Outcome]


@pytest.fixture
def check(cli: Callable[..., Result]) -> Verifier:
    """Run ``custody verify --json`` and ``verify_root`` with the same options; they must agree."""

    def run(
        root: Path,
        *,
        ledger_only: bool = False,
        files_only: bool = False,
        checkpoint: Path | None = None,
        size: int | None = None,
        root_hash: str | None = None,
    ) -> Outcome:
        args: list[str | os.PathLike[str]] = ["verify", root, "--json"]
        trusted: TrustedCheckpoint | None = None
        if ledger_only:
            args.append("--ledger-only")
        if files_only:
            args.append("--files-only")
        if checkpoint is not None:
            args += ["--checkpoint", checkpoint]
            trusted = trusted_checkpoint_from_line(checkpoint.read_bytes(), str(checkpoint))
        if size is not None and root_hash is not None:
            args += ["--size", str(size), "--root-hash", root_hash]
            trusted = TrustedCheckpoint(size, bytes.fromhex(root_hash), "the command line")
        result = cli(*args)
        assert "Traceback" not in result.err, result.err
        doc = result.json()
        validate(doc, "cli-verify.schema.json")
        expected_code = {"verified": 0, "unconfirmed": 10, "failed": 1}[doc["verdict"]]
        assert result.code == expected_code, (result.code, doc)
        library = verify_root(
            find_root(explicit=str(root)),
            policy=policy_for(held=trusted),
            ledger=not files_only,
            files=not ledger_only,
        ).to_json()
        assert library["verdict"] == doc["verdict"]
        assert _key(library["findings"]) == _key(doc["findings"])
        assert [c["name"] for c in library["checks"]] == [c["name"] for c in doc["checks"]]
        return Outcome(result.code, doc, result.err)

    return run


def forget_every_ledger(cli: Callable[..., Result]) -> None:
    """Be a verifier who never saw any ledger (custody trust forget, for each)."""
    for ledger in cli("trust", "ledgers", "--json").json()["ledgers"]:
        assert cli("trust", "forget", ledger["ledger"], "--yes").code == 0


def assert_clean(out: Outcome) -> None:
    """Verified, exit 0, and no finding at all - except that a catalogue nobody has
    timestamped yet is, truthfully, reported as waiting for its timestamp (a warning)."""
    assert out.code == 0, out.findings
    assert out.doc["verified"] is True
    others = [f for f in out.findings if f["code"] != "TIMESTAMP_PENDING"]
    assert others == []
    for f in out.of("TIMESTAMP_PENDING"):
        assert f["severity"] == "warning"
        assert f["item"] == f"records 0-{out.doc['ledger_size'] - 1}"
    assert all(c["passed"] for c in out.doc["checks"])


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte in place, keeping size and modification time."""
    st_before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    assert path.stat().st_size == st_before.st_size


# --- schemas --------------------------------------------------------------------------------


def test_verify_schema_matches_to_json_exactly() -> None:
    schema = json.loads((SCHEMAS / "cli-verify.schema.json").read_text(encoding="utf-8"))
    result = VerificationResult(root="/r")
    result.add_check("files", [Finding(Code.FILE_MISSING, "a", "m", 1, "e", "f")], 1, "d")
    document = result.to_json()
    assert set(schema["properties"]) == set(document) == set(schema["required"])
    finding = schema["$defs"]["finding"]
    assert set(finding["properties"]) == set(document["findings"][0]) == set(finding["required"])
    assert set(finding["properties"]["code"]["enum"]) == {str(c) for c in Code}
    check_def = schema["$defs"]["check"]
    assert set(check_def["properties"]) == set(VerifyCheck("n", True, 0, "d").to_json())
    assert set(check_def["required"]) == set(check_def["properties"])
    for name in ("cli-verify", "cli-sign", "cli-proof", "cli-proof-verify"):
        sub = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
        import jsonschema

        jsonschema.Draft202012Validator.check_schema(sub)
    # Every warning class is one the schema allows as a warning.
    assert {str(c) for c in WARNINGS} <= set(finding["properties"]["code"]["enum"])


# --- control --------------------------------------------------------------------------------


def test_untouched_catalogue_verifies_with_no_findings(catalogued: Path, check: Verifier) -> None:
    out = check(catalogued)
    assert_clean(out)
    latest = items(catalogued)
    assert out.doc["files_checked"] == len(latest) > 0
    assert out.doc["bytes_hashed"] == sum(i.size for i in latest)
    assert out.doc["ledger_size"] == len(read_lines(catalogued))
    assert out.doc["tree_root"] == mth(read_lines(catalogued)).hex()
    assert {c["name"] for c in out.doc["checks"]} >= LEDGER_CHECKS | {"files"}


@needs_corpus
def test_untouched_full_corpus_verifies_with_no_findings(
    evidence: Path, cli: Callable[..., Result], check: Verifier
) -> None:
    copy_media(SHARED_CORPUS, evidence / "corpus")
    assert cli("catalogue", evidence / "corpus", "--root", evidence).code == 0
    out = check(evidence)
    assert_clean(out)
    on_disk = [p for p in (evidence / "corpus").rglob("*") if p.is_file() or p.is_symlink()]
    assert out.doc["files_checked"] == len(on_disk) == len(items(evidence))


# --- files ----------------------------------------------------------------------------------


def test_one_flipped_byte_in_a_video_is_caught_by_digest_not_size(
    catalogued: Path, check: Verifier
) -> None:
    videos = [i for i in plain_items(catalogued) if i.path.lower().endswith((".mp4", ".mov"))]
    video = max(videos, key=lambda i: i.size)
    path = catalogued / video.path
    flip_byte(path, video.size // 2)
    out = check(catalogued)
    assert out.code == 1
    # One changed file is one finding, naming every digest that differs (issue 17).
    finding = out.one("FILE_MODIFIED", item=video.path, seq=video.seq)
    data = path.read_bytes()
    actual = {"sha256": hashlib.sha256(data).hexdigest(), "blake3": blake3.blake3(data).hexdigest()}
    differ = sorted(video.digests)
    assert finding["message"] == (
        f"content differs from the record: {', '.join(differ)} digests differ"
    )
    assert finding["expected"] == " ".join(f"{a}:{video.digests[a]}" for a in differ)
    assert finding["found"] == " ".join(f"{a}:{actual[a]}" for a in differ)
    assert out.error_codes == {"FILE_MODIFIED"} and len(out.errors) == 1


def test_one_appended_byte_is_caught_by_size(catalogued: Path, check: Verifier) -> None:
    item = plain_items(catalogued)[0]
    with open(catalogued / item.path, "ab") as handle:
        handle.write(b"\x00")
    out = check(catalogued)
    finding = out.one("FILE_MODIFIED", item=item.path, seq=item.seq)
    assert finding["message"] == "size differs from the record"
    assert (finding["expected"], finding["found"]) == (
        f"{item.size} bytes",
        f"{item.size + 1} bytes",
    )
    assert out.code == 1 and len(out.errors) == 1


def test_deleted_file_is_missing(catalogued: Path, check: Verifier) -> None:
    item = plain_items(catalogued)[1]
    (catalogued / item.path).unlink()
    out = check(catalogued)
    finding = out.one("FILE_MISSING", item=item.path, seq=item.seq)
    assert finding["expected"] == item.sha256
    assert out.code == 1 and len(out.errors) == 1


def test_renamed_file_is_moved_and_nothing_else(catalogued: Path, check: Verifier) -> None:
    item = plain_items(catalogued)[2]
    old = catalogued / item.path
    new_rel = f"media/moved by someone/{old.name}"
    (catalogued / new_rel).parent.mkdir(parents=True)
    old.rename(catalogued / new_rel)
    out = check(catalogued)
    finding = out.one("FILE_MOVED", item=item.path, seq=item.seq)
    assert (finding["expected"], finding["found"]) == (item.path, new_rel)
    assert out.of("FILE_MISSING") == [] and out.of("FILE_UNEXPECTED") == []
    assert out.code == 1 and len(out.errors) == 1


def test_file_nobody_catalogued_is_unexpected(catalogued: Path, check: Verifier) -> None:
    planted = catalogued / "media" / "planted later.jpg"
    planted.write_bytes(b"\xff\xd8\xff\xe0 not in the ledger")
    out = check(catalogued)
    finding = out.one("FILE_UNEXPECTED", item="media/planted later.jpg")
    assert finding["seq"] is None and finding["found"] == "file"
    assert out.code == 1 and len(out.errors) == 1


def test_file_replaced_by_symlink_is_modified_and_never_followed(
    catalogued: Path, check: Verifier, tmp_path: Path
) -> None:
    item = plain_items(catalogued)[3]
    path = catalogued / item.path
    # The link points at a byte-identical copy: following it would make the file "pass".
    outside = tmp_path / "outside" / path.name
    outside.parent.mkdir()
    shutil.copy2(path, outside)
    path.unlink()
    path.symlink_to(outside)
    out = check(catalogued)
    finding = out.one("FILE_MODIFIED", item=item.path, seq=item.seq)
    assert finding["message"] == "replaced by a symbolic link"
    assert (finding["expected"], finding["found"]) == ("regular file", "symbolic link")
    assert out.code == 1 and len(out.errors) == 1
    # Not one byte was read through the link.
    assert out.doc["bytes_hashed"] == sum(i.size for i in items(catalogued)) - item.size


def test_folder_replaced_by_symlink_is_never_followed(
    catalogued: Path, check: Verifier, tmp_path: Path
) -> None:
    item = plain_items(catalogued)[0]
    folder = (catalogued / item.path).parent
    inside = [i for i in items(catalogued) if (catalogued / i.path).parent == folder]
    outside = tmp_path / "outside-folder"
    shutil.copytree(folder, outside)
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    out = check(catalogued)
    assert {f["item"] for f in out.of("FILE_MISSING")} == {i.path for i in inside}
    link = out.one("FILE_UNEXPECTED", item=folder.relative_to(catalogued).as_posix())
    assert link["found"] == "symbolic link"
    assert out.of("FILE_MOVED") == []
    assert out.doc["bytes_hashed"] == sum(i.size for i in items(catalogued)) - sum(
        i.size for i in inside
    )


def test_unreadable_file_is_reported(catalogued: Path, check: Verifier) -> None:
    item = plain_items(catalogued)[4]
    (catalogued / item.path).chmod(0)
    if os.geteuid() != 0:
        out = check(catalogued)
        finding = out.one("FILE_UNREADABLE", item=item.path, seq=item.seq)
    else:
        # root reads anything; run verify as root without CAP_DAC_OVERRIDE/READ_SEARCH.
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is not installed to drop capabilities")
        proc = subprocess.run(
            [
                setpriv,
                "--inh-caps=-all",
                "--ambient-caps=-all",
                "--bounding-set=-all",
                sys.executable,
                "-m",
                "custody",
                "verify",
                str(catalogued),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert "Traceback" not in proc.stderr
        doc = json.loads(proc.stdout)
        validate(doc, "cli-verify.schema.json")
        out = Outcome(proc.returncode, doc, proc.stderr)
        finding = out.one("FILE_UNREADABLE", item=item.path, seq=item.seq)
    assert "permission denied" in finding["message"]
    assert out.code == 1 and out.error_codes == {"FILE_UNREADABLE"}


# --- ledger structure -----------------------------------------------------------------------


def test_ledger_cut_off_mid_line_is_truncated(catalogued: Path, check: Verifier) -> None:
    lines = read_lines(catalogued)
    data = ledger_file(catalogued).read_bytes()
    last = len(lines) - 1
    with open(ledger_file(catalogued), "r+b") as handle:
        handle.truncate(len(data) - 1 - len(lines[-1]) // 2)
    out = check(catalogued)
    finding = out.one("TRUNCATED_RECORD", item=f"record {last}", seq=last)
    assert finding["found"] == f"{len(lines[-1]) - len(lines[-1]) // 2} bytes without a newline"
    assert out.code == 1 and out.error_codes == {"TRUNCATED_RECORD"}


def test_ledger_cut_off_inside_an_item_loses_the_rest(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    kept = b"".join(line + b"\n" for line in lines[: item.seq]) + lines[item.seq][:100]
    ledger_file(catalogued).write_bytes(kept)
    out = check(catalogued)
    out.one("TRUNCATED_RECORD", item=f"record {item.seq}", seq=item.seq)
    lost = {i.path for i in items_from(lines) if i.seq >= item.seq}
    assert {f["item"] for f in out.of("FILE_UNEXPECTED")} == lost
    assert out.error_codes == {"TRUNCATED_RECORD", "FILE_UNEXPECTED"}


def items_from(lines: list[bytes]) -> list[Item]:
    found = []
    for line in lines:
        signed = signed_of(line)
        if signed["type"] == "item":
            body = signed["body"]
            found.append(Item(signed["seq"], body["path"], body["size"], body["digests"], False))
    return found


def test_garbage_bytes_in_a_line_are_malformed(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    line = lines[item.seq]
    middle = len(line) // 2
    lines[item.seq] = line[:middle] + b"\xff\xfe\x00\x1bgarbage" + line[middle + 11 :]
    write_lines(catalogued, lines)
    out = check(catalogued)
    out.one("RECORD_MALFORMED", item=f"record {item.seq}", seq=item.seq)
    assert len(out.of("RECORD_MALFORMED")) == 1
    # The line may still hold its record: no RECORD_MISSING is claimed for it.
    assert out.of("RECORD_MISSING") == []
    assert out.code == 1


def test_non_canonical_reserialisation_is_malformed(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    original = json.loads(lines[item.seq])
    spaced = json.dumps(original, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    assert json.loads(spaced) == original and spaced.encode() != lines[item.seq]
    lines[item.seq] = spaced.encode()
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("RECORD_MALFORMED", item=f"record {item.seq}", seq=item.seq)
    assert "canonical" in finding["message"]
    assert len(out.of("RECORD_MALFORMED")) == 1 and out.code == 1


def test_signature_in_non_canonical_base64_is_malformed(catalogued: Path, check: Verifier) -> None:
    """RFC 4648 §3.5: the 4 unused bits of the last base64 digit must be zero. Setting one
    changes the line's bytes but not the decoded signature; the last line has no successor
    to notice, so only a strict reading of the encoding can."""
    lines = read_lines(catalogued)
    last = len(lines) - 1
    record = json.loads(lines[last])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sig = record["sig"]
    assert sig.endswith("==") and alphabet.index(sig[85]) & 0b1111 == 0
    malleated = sig[:85] + alphabet[alphabet.index(sig[85]) | 0b0001] + "=="
    assert base64.b64decode(malleated) == base64.b64decode(sig)
    lines[last] = lines[last].replace(sig.encode(), malleated.encode(), 1)
    write_lines(catalogued, lines)
    out = check(catalogued)
    out.one("RECORD_MALFORMED", item=f"record {last}", seq=last)
    assert out.code == 1


def test_empty_ledger_is_never_a_pass(catalogued: Path, cli: Callable[..., Result]) -> None:
    """'Nothing checked' is never a pass: an emptied ledger must not verify."""
    ledger_file(catalogued).write_bytes(b"")
    for scope in ("--ledger-only", "--files-only", None):
        args = ["verify", str(catalogued), *([scope] if scope else [])]
        result = cli(*args)
        assert result.code == 3, (scope, result.out)
        assert result.err.count("\n") == 1 and "custody: error:" in result.err
        assert "VERIFIED" not in result.out


# --- sequence and chain ---------------------------------------------------------------------


def test_deleted_record_with_repaired_chain_is_missing(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    del lines[item.seq]
    # Repair the chain: every later record names the hash of the line now before it.
    # (Their signatures cover the old values, so they no longer verify.)
    for position in range(item.seq, len(lines)):
        signed = signed_of(lines[position])
        signed["prev"] = sha256_hex(lines[position - 1])
        lines[position] = assemble(signed, sig_of(lines[position]))
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("RECORD_MISSING", item=f"record {item.seq}", seq=item.seq)
    assert finding["expected"] == f"record {item.seq}"
    assert len(out.of("RECORD_MISSING")) == 1
    assert out.of("CHAIN_BROKEN") == [] and out.of("RECORD_ALTERED") == []
    assert len(out.of("BAD_SIGNATURE")) == len(lines) - item.seq
    out.one("FILE_UNEXPECTED", item=item.path)
    assert out.code == 1


def test_deleted_record_blames_no_innocent_record(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    del lines[item.seq]
    write_lines(catalogued, lines)
    out = check(catalogued)
    out.one("RECORD_MISSING", item=f"record {item.seq}", seq=item.seq)
    # The record after the gap is authentic and chains to the deleted line: the chain is
    # broken there, but the record before the gap was not altered.
    out.one("CHAIN_BROKEN", item=f"record {item.seq}")
    assert out.of("RECORD_ALTERED") == [] and out.of("BAD_SIGNATURE") == []


def test_duplicated_record_is_reported(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    lines.insert(item.seq + 1, lines[item.seq])
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("RECORD_DUPLICATED", item=f"record {item.seq}", seq=item.seq)
    assert finding["expected"] == f"line {item.seq + 1} only"
    assert finding["found"] == f"also line {item.seq + 2}"
    assert out.of("RECORD_ALTERED") == [] and out.of("BAD_SIGNATURE") == []
    assert out.code == 1


def test_swapped_records_are_reordered(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    k = item.seq
    lines = read_lines(catalogued)
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("RECORDS_REORDERED", item=f"record {k}", seq=k)
    assert (finding["expected"], finding["found"]) == (f"line {k + 1}", f"line {k + 2}")
    assert len(out.of("RECORDS_REORDERED")) == 1
    # Every record is authentic and unchanged: none may be called altered or badly signed.
    assert out.of("RECORD_ALTERED") == [] and out.of("BAD_SIGNATURE") == []
    assert out.of("CHAIN_BROKEN") != []
    assert not out.error_codes & FILE_CODES
    assert out.code == 1


def test_changed_prev_breaks_the_chain(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    signed = signed_of(lines[item.seq])
    signed["prev"] = sha256_hex(b"some other history")
    lines[item.seq] = assemble(signed, sig_of(lines[item.seq]))
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("CHAIN_BROKEN", item=f"record {item.seq}", seq=item.seq)
    assert finding["expected"] == sha256_hex(lines[item.seq - 1])
    assert finding["found"] == signed["prev"]
    out.one("BAD_SIGNATURE", item=f"record {item.seq}", seq=item.seq)
    assert out.code == 1


# --- signatures -----------------------------------------------------------------------------


def test_item_altered_and_resigned_with_a_fresh_key(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    original = lines[item.seq]
    fresh = Ed25519PrivateKey.generate()
    fresh_fingerprint = sha256_hex(raw_public(fresh))
    signed = signed_of(original)
    signed["body"]["digests"]["sha256"] = sha256_hex(b"the content the forger prefers")
    signed["signer"] = fresh_fingerprint
    lines[item.seq] = resign(signed, fresh.sign)
    write_lines(catalogued, lines)
    out = check(catalogued)
    unknown = out.one("UNKNOWN_KEY", item=f"record {item.seq}", seq=item.seq)
    assert unknown["found"] == fresh_fingerprint
    altered = out.one("RECORD_ALTERED", item=f"record {item.seq}", seq=item.seq)
    # The next record is authentic and commits to the original bytes of this one.
    assert altered["expected"] == sha256_hex(original)
    assert altered["found"] == sha256_hex(lines[item.seq])
    assert out.of("BAD_SIGNATURE") == [] and out.of("CHAIN_BROKEN") == []
    assert len(out.of("UNKNOWN_KEY")) == 1 and len(out.of("RECORD_ALTERED")) == 1
    assert out.code == 1


def test_body_altered_without_resigning_is_bad_signature(catalogued: Path, check: Verifier) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    signed = signed_of(lines[item.seq])
    assert committed_value(catalogued, signed["body"], "collector") == "Alice"
    # The record commits to the collector (a salted hash): claim another one.
    signed["body"]["commitments"]["collector"] = sha256_hex(b"Mallory")
    lines[item.seq] = assemble(signed, sig_of(lines[item.seq]))
    write_lines(catalogued, lines)
    out = check(catalogued)
    bad = out.one("BAD_SIGNATURE", item=f"record {item.seq}", seq=item.seq)
    assert "alice" in bad["message"]
    assert len(out.of("BAD_SIGNATURE")) == 1
    out.one("RECORD_ALTERED", item=f"record {item.seq}", seq=item.seq)
    assert out.of("UNKNOWN_KEY") == []
    # A record that is not authentic has no effect: its file is described by no authentic
    # record, so it is unexpected (never "verified" against the forged record's claims).
    assert out.error_codes & FILE_CODES == {"FILE_UNEXPECTED"}
    out.one("FILE_UNEXPECTED", item=item.path)
    assert out.code == 1


# --- checkpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["wrong root", "claims later records"])
def test_validly_signed_checkpoint_over_a_wrong_tree_mismatches(
    catalogued: Path, check: Verifier, forgery: str
) -> None:
    lines = read_lines(catalogued)
    last = len(lines) - 1
    signed = signed_of(lines[last])
    assert signed["type"] == "checkpoint" and signed["body"]["tree_size"] == last
    key = real_key()
    if forgery == "wrong root":
        signed["body"]["root"] = sha256_hex(b"a ledger that never existed")
    else:
        signed["body"]["tree_size"] = last + 5
    lines[last] = resign(signed, key.sign)
    # The forgery carries a valid signature by the real documenter.
    Ed25519PublicKey.from_public_bytes(key.public.raw).verify(
        sig_of(lines[last]), rfc8785.dumps(signed)
    )
    write_lines(catalogued, lines)
    out = check(catalogued)
    finding = out.one("CHECKPOINT_MISMATCH", item=f"record {last}", seq=last)
    if forgery == "wrong root":
        assert finding["expected"] == signed["body"]["root"]
        assert finding["found"] == mth(lines[:last]).hex()
    else:
        assert finding["found"] == str(last + 5)
    assert out.error_codes == {"CHECKPOINT_MISMATCH"}
    # A checkpoint exists; it is wrong. "No checkpoint has been signed yet" would be false.
    assert out.of("NO_CHECKPOINT") == []
    assert out.code == 1


def test_ledger_without_checkpoint_is_only_a_warning(catalogued: Path, check: Verifier) -> None:
    lines = read_lines(catalogued)
    assert signed_of(lines[-1])["type"] == "checkpoint"
    write_lines(catalogued, lines[:-1])
    out = check(catalogued)
    finding = out.one("NO_CHECKPOINT", item="ledger")
    assert finding["severity"] == "warning"
    assert out.code == 0 and out.errors == []


def _sign_and_hold(cli: Callable[..., Result], root: Path, held: Path) -> dict[str, Any]:
    result = cli("sign", "--root", root, "--out", held, "--json")
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    validate(document, "cli-sign.schema.json")
    assert held.read_bytes() == document["line"].encode() + b"\n"
    assert read_lines(root)[-1] == document["line"].encode()
    return document


def _catalogue_more(cli: Callable[..., Result], root: Path) -> None:
    later = root / "media" / "later"
    later.mkdir()
    (later / "statement.txt").write_text("witness statement, received later\n")
    shutil.copy2(root / plain_items(root)[0].path, later / "copy of first.jpg")
    result = cli("catalogue", later, "--root", root)
    assert result.code == 0, result.err


@pytest.mark.parametrize("rollback", ["to the copy before signing", "to an early prefix"])
def test_rolled_back_ledger_fails_against_held_checkpoint(
    catalogued: Path, cli: Callable[..., Result], check: Verifier, tmp_path: Path, rollback: str
) -> None:
    before_signing = ledger_file(catalogued).read_bytes()
    held = tmp_path / "held-checkpoint.txt"
    signed = _sign_and_hold(cli, catalogued, held)
    _catalogue_more(cli, catalogued)
    assert check(catalogued, checkpoint=held).code == 0  # today's ledger extends it
    if rollback == "to the copy before signing":
        ledger_file(catalogued).write_bytes(before_signing)
    else:
        write_lines(catalogued, read_lines(catalogued)[:10])
    # This verifier remembers what it verified: the rollback is caught without being told.
    remembered = check(catalogued, ledger_only=True)
    assert remembered.code == 1 and remembered.of("NOT_APPEND_ONLY")
    # For one who never verified it, the rolled-back ledger is internally consistent ...
    forget_every_ledger(cli)
    alone = check(catalogued, ledger_only=True)
    assert alone.errors == [] and alone.code == 0
    forget_every_ledger(cli)
    # ... but it does not extend what the lawyer holds.
    for scope in ({"ledger_only": True}, {}):
        out = check(catalogued, checkpoint=held, **scope)
        finding = out.one("NOT_APPEND_ONLY", item=f"held checkpoint ({held})")
        assert finding["seq"] is None
        assert out.code == 1
    assert signed["tree_size"] == len(before_signing.split(b"\n")) - 1


def test_consistent_rewrite_is_caught_only_by_a_held_checkpoint(
    catalogued: Path, cli: Callable[..., Result], check: Verifier, tmp_path: Path
) -> None:
    held = tmp_path / "held-checkpoint.txt"
    signed = _sign_and_hold(cli, catalogued, held)
    size, root_hash = signed["tree_size"], signed["root"]
    assert check(catalogued, size=size, root_hash=root_hash, ledger_only=True).code == 0
    victim = plain_items(catalogued)[1]
    key = real_key()
    forged = rewrite_history(read_lines(catalogued), victim.seq, key.sign, key.fingerprint)
    write_lines(catalogued, forged)
    (catalogued / victim.path).unlink()  # and make the evidence agree
    # Re-signed with the real key, renumbered and re-chained, the rewrite is internally
    # consistent: nothing in the ledger or on disk can tell - only what a verifier remembers
    # (below) or holds.
    assert check(catalogued, ledger_only=True).of("NOT_APPEND_ONLY")
    forget_every_ledger(cli)
    alone = check(catalogued)
    assert alone.errors == [] and alone.code == 0
    forget_every_ledger(cli)
    assert check(catalogued, ledger_only=True).code == 0
    forget_every_ledger(cli)
    # A checkpoint held elsewhere can.
    for held_args, source in (
        ({"checkpoint": held}, str(held)),
        ({"size": size, "root_hash": root_hash}, "the command line"),
    ):
        out = check(catalogued, ledger_only=True, **held_args)
        finding = out.one("NOT_APPEND_ONLY", item=f"held checkpoint ({source})")
        assert finding["expected"] == root_hash
        assert out.error_codes == {"NOT_APPEND_ONLY"} and out.code == 1
    assert cli("verify", catalogued, "--checkpoint", held).code == 1


# --- references between records ------------------------------------------------------------


def _append_signed(root: Path, record_type: str, body: dict[str, Any]) -> int:
    """Append one record signed with the documenter's real key, correctly chained."""
    lines = read_lines(root)
    key = real_key()
    signed = {
        "body": body,
        "prev": sha256_hex(lines[-1]),
        "seq": len(lines),
        "signer": key.fingerprint,
        "time": "2026-11-27T12:00:00.000000Z",
        "type": record_type,
        "v": 1,
    }
    write_lines(root, [*lines, resign(signed, key.sign)])
    return len(lines)


def test_event_naming_other_content_than_its_item_is_an_invalid_reference(
    catalogued: Path, check: Verifier
) -> None:
    first, second = plain_items(catalogued)[:2]
    wrong = {"path": first.path, "seq": first.seq, "sha256": second.sha256}
    good = {"path": second.path, "seq": second.seq, "sha256": second.sha256}
    seq = _append_signed(catalogued, "event", {"action": "access", "items": [good, wrong]})
    out = check(catalogued, ledger_only=True)
    finding = out.one("REFERENCE_INVALID", item=f"record {seq}")
    assert finding["expected"] == second.sha256 and finding["found"] == first.sha256
    assert f"record {first.seq}" in finding["message"]
    assert out.error_codes == {"REFERENCE_INVALID"} and out.code == 1


def test_item_calling_a_checkpoint_or_a_later_record_its_original_is_an_invalid_reference(
    catalogued: Path, check: Verifier
) -> None:
    template = signed_of(read_lines(catalogued)[plain_items(catalogued)[0].seq])["body"]
    checkpoint = next(
        signed_of(line)["seq"]
        for line in read_lines(catalogued)
        if signed_of(line)["type"] == "checkpoint"
    )
    one = _append_signed(catalogued, "item", {**template, "path": "x/1.jpg",
                                              "duplicate_of": checkpoint})
    two = _append_signed(catalogued, "item", {**template, "path": "x/2.jpg", "supersedes": 10**6})
    out = check(catalogued, ledger_only=True)
    assert "not an item record" in out.one("REFERENCE_INVALID", item=f"record {one}")["message"]
    assert "does not come before" in out.one("REFERENCE_INVALID", item=f"record {two}")["message"]
    assert out.error_codes == {"REFERENCE_INVALID"}


# --- scope options --------------------------------------------------------------------------


def _tamper_file_and_record(root: Path) -> tuple[Item, Item]:
    deleted = plain_items(root)[0]
    (root / deleted.path).unlink()
    altered = middle_item(root)
    lines = read_lines(root)
    signed = signed_of(lines[altered.seq])
    signed["body"]["commitments"]["collector"] = sha256_hex(b"Mallory")
    lines[altered.seq] = assemble(signed, sig_of(lines[altered.seq]))
    write_lines(root, lines)
    return deleted, altered


def test_ledger_only_reports_no_file_findings(catalogued: Path, check: Verifier) -> None:
    _deleted, altered = _tamper_file_and_record(catalogued)
    out = check(catalogued, ledger_only=True)
    out.one("BAD_SIGNATURE", item=f"record {altered.seq}")
    assert not {f["code"] for f in out.findings} & FILE_CODES
    assert out.doc["files_checked"] == 0 and out.doc["bytes_hashed"] == 0
    assert "files" not in {c["name"] for c in out.doc["checks"]}
    assert out.code == 1


def test_files_only_reports_no_ledger_findings(catalogued: Path, check: Verifier) -> None:
    deleted, _altered = _tamper_file_and_record(catalogued)
    out = check(catalogued, files_only=True)
    out.one("FILE_MISSING", item=deleted.path, seq=deleted.seq)
    assert not {f["code"] for f in out.findings} & LEDGER_CODES
    assert not {c["name"] for c in out.doc["checks"]} & LEDGER_CHECKS
    assert out.code == 1


def test_ledger_only_with_files_only_is_a_usage_error(
    catalogued: Path, cli: Callable[..., Result]
) -> None:
    result = cli("verify", catalogued, "--ledger-only", "--files-only", "--json")
    assert result.code == 2
    assert result.out == ""
    assert result.err.strip().splitlines() == [
        "custody: error: --ledger-only and --files-only exclude each other"
    ]


# --- everything at once ---------------------------------------------------------------------


def test_several_tamperings_are_all_reported(catalogued: Path, check: Verifier) -> None:
    plain = plain_items(catalogued)
    altered_record = middle_item(catalogued)
    modified, deleted, moved, grown = [i for i in plain if i.seq != altered_record.seq][:4]
    flip_byte(catalogued / modified.path, modified.size // 2)
    (catalogued / deleted.path).unlink()
    moved_to = "media/elsewhere/" + Path(moved.path).name
    (catalogued / moved_to).parent.mkdir()
    (catalogued / moved.path).rename(catalogued / moved_to)
    with open(catalogued / grown.path, "ab") as handle:
        handle.write(b"more")
    (catalogued / "media" / "planted.bin").write_bytes(b"planted")
    lines = read_lines(catalogued)
    signed = signed_of(lines[altered_record.seq])
    signed["body"]["note"] = "added afterwards"
    lines[altered_record.seq] = assemble(signed, sig_of(lines[altered_record.seq]))
    write_lines(catalogued, lines)

    out = check(catalogued)
    assert out.one("FILE_MODIFIED", item=modified.path)["message"].startswith(
        "content differs from the record: "
    )
    assert out.one("FILE_MODIFIED", item=grown.path)["message"] == "size differs from the record"
    out.one("FILE_MISSING", item=deleted.path, seq=deleted.seq)
    assert out.one("FILE_MOVED", item=moved.path)["found"] == moved_to
    out.one("FILE_UNEXPECTED", item="media/planted.bin")
    out.one("BAD_SIGNATURE", item=f"record {altered_record.seq}")
    out.one("RECORD_ALTERED", item=f"record {altered_record.seq}")
    out.one("CHECKPOINT_MISMATCH", item=f"record {len(lines) - 1}")
    assert out.code == 1
    failed = {c["name"] for c in out.doc["checks"] if not c["passed"]}
    assert {"files", "signatures", "hash chain", "checkpoints"} <= failed


# --- the index cache is never trusted ---------------------------------------------------------


def _cache(root: Path) -> Path:
    return root / ".custody" / "cache"


def test_verify_passes_without_the_cache(catalogued: Path, check: Verifier) -> None:
    shutil.rmtree(_cache(catalogued))
    assert_clean(check(catalogued))
    assert not (_cache(catalogued) / "index.sqlite").exists()  # verify did not rebuild it


def test_verify_passes_with_a_corrupt_cache(catalogued: Path, check: Verifier) -> None:
    cache = _cache(catalogued) / "index.sqlite"
    for sidecar in _cache(catalogued).glob("index.sqlite-*"):
        sidecar.unlink()
    garbage = b"SQLite format 3\x00" + os.urandom(4096)
    cache.write_bytes(garbage)
    assert_clean(check(catalogued))
    assert cache.read_bytes() == garbage  # not read, not rewritten


def test_tampered_ledger_fails_although_the_cache_is_of_the_good_one(
    catalogued: Path, cli: Callable[..., Result], check: Verifier
) -> None:
    assert cli("log", "--root", catalogued, "--json").code == 0  # cache in step with the ledger
    cache_files = {p: p.read_bytes() for p in _cache(catalogued).iterdir()}
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    signed = signed_of(lines[item.seq])
    signed["body"]["size"] += 1
    lines[item.seq] = assemble(signed, sig_of(lines[item.seq]))
    write_lines(catalogued, lines)
    out = check(catalogued)
    out.one("BAD_SIGNATURE", item=f"record {item.seq}")
    out.one("FILE_UNEXPECTED", item=item.path)  # the forged record does not count
    assert out.code == 1
    assert {p: p.read_bytes() for p in _cache(catalogued).iterdir()} == cache_files


# --- crafted values must not hang verify ----------------------------------------------------


def test_absurd_sequence_number_is_reported_quickly(catalogued: Path) -> None:
    item = middle_item(catalogued)
    lines = read_lines(catalogued)
    signed = signed_of(lines[item.seq])
    signed["seq"] = 2**53 - 1
    lines[item.seq] = assemble(signed, sig_of(lines[item.seq]))
    write_lines(catalogued, lines)
    proc = run_custody("verify", catalogued, "--ledger-only", "--json", timeout=60)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    validate(doc, "cli-verify.schema.json")
    out = Outcome(proc.returncode, doc, proc.stderr)
    out.one("BAD_SIGNATURE", item=f"record {item.seq}")
    assert len(out.findings) < 4 * len(lines)


# --- design question: keys nobody vouched for -------------------------------------------------


def test_records_appended_by_a_stranger_key_are_not_silently_verified(
    catalogued: Path, check: Verifier
) -> None:
    victim = plain_items(catalogued)[0]
    path = catalogued / victim.path
    flip_byte(path, victim.size // 2)
    data = path.read_bytes()
    stranger = Ed25519PrivateKey.generate()
    raw = raw_public(stranger)
    fingerprint = sha256_hex(raw)
    lines = read_lines(catalogued)
    template = signed_of(lines[victim.seq])

    def append(record_type: str, body: dict[str, Any]) -> None:
        signed = {
            "body": body,
            "prev": sha256_hex(lines[-1]),
            "seq": len(lines),
            "signer": fingerprint,
            "time": template["time"],
            "type": record_type,
            "v": 1,
        }
        lines.append(resign(signed, stranger.sign))

    append(
        "key",
        {
            "algorithm": "ed25519",
            "fingerprint": fingerprint,
            "name": "alice",
            "public_key": base64.b64encode(raw).decode(),
            "role": "documenter",
        },
    )
    body = dict(template["body"])
    body["digests"] = {
        "blake3": blake3.blake3(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    body["supersedes"] = victim.seq
    body.pop("metadata", None)
    append("item", body)
    append("checkpoint", {"root": mth(lines).hex(), "tree_size": len(lines)})
    write_lines(catalogued, lines)
    out = check(catalogued)
    named = any(fingerprint in f"{f['message']} {f['expected']} {f['found']}" for f in out.findings)
    assert not out.doc["verified"] or named


# --- property: no single-byte damage ever verifies -------------------------------------------


@pytest.fixture(scope="module")
def small_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small real catalogue (four real media files), built once for the property test."""
    base = tmp_path_factory.mktemp("small-ledger")
    env = {"CUSTODY_HOME": str(base / "home"), "CUSTODY_PASSPHRASE": PASSPHRASE}
    root = base / "evidence"
    for argv in (("init", root), ("keys", "generate", "--name", "alice")):
        assert run_custody(*argv, env=env).returncode == 0
    source = media_source()
    smallest = sorted(
        (
            p
            for p in source.rglob("*")
            if p.is_file() and p.name not in {"PROVENANCE.md", "MANIFEST.json"}
        ),
        key=lambda p: (p.stat().st_size, str(p)),
    )
    chosen = [p for p in smallest if p.stat().st_size > 0][:4]
    (root / "media").mkdir()
    for number, source_file in enumerate(chosen):
        shutil.copy2(source_file, root / "media" / f"{number}-{source_file.name}")
    proc = run_custody("catalogue", root / "media", "--root", root, "--collector", "A", env=env)
    assert proc.returncode == 0, proc.stderr
    yield root


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["flip", "truncate", "insert"]))
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        mask = draw(st.integers(1, 255))
        return f"flip {at} ^{mask}", data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]
    if kind == "truncate":
        # Cutting at a line boundary removes whole records from the end: undetectable
        # without a held checkpoint, and covered by the NOT_APPEND_ONLY tests instead.
        cuts = [i for i in range(1, len(data)) if data[i - 1] != 0x0A]
        at = draw(st.sampled_from(cuts))
        return f"truncate {at}", data[:at]
    at = draw(st.integers(0, len(data)))
    byte = draw(st.integers(0, 255))
    return f"insert {byte} at {at}", data[:at] + bytes([byte]) + data[at:]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_no_single_byte_damage_to_a_real_ledger_verifies(
    small_ledger: Path, data: st.DataObject
) -> None:
    original = ledger_file(small_ledger).read_bytes()
    what, damaged = data.draw(damage(original))
    assert damaged != original
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "evidence"
        shutil.copytree(small_ledger, root, symlinks=True, ignore=shutil.ignore_patterns("cache"))
        ledger_file(root).write_bytes(damaged)
        result = verify_root(EvidenceRoot(root.resolve()), policy=TrustPolicy())  # must not raise
        assert not result.ok, (what, result.to_json()["findings"])
        assert result.errors
