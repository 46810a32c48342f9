"""custody.ledger.c2sp: signed notes, checkpoints and cosignatures, checked against the
specifications' own examples and against Go.

The independent implementation is Go's golang.org/x/mod/sumdb/note (Debian's
golang-golang-x-mod-dev, x/mod v0.7.0) driven by tests/go/c2spcheck, built here offline in
GOPATH mode from /usr/share/gocode. x/mod has no cosignature/v1 verifier: the Go program
carries one written from the C2SP tlog-cosignature text alone and plugs it into note.Open,
and it parses checkpoint bodies with x/mod's tlog.ParseTree. The Go tests skip, saying why,
when Go or x/mod is not installed (scripts/setup.sh does not install them by default).

Vectors from primary sources: C2SP/C2SP signed-note.md (b3a911e3f2bd75a6ccdd0bf04e9e1912961c439a),
tlog-checkpoint.md (c0d0289bb8fc9c07c8ffe10a9ebb9bded4a9b500), tlog-cosignature.md
(01194db11950a0ae2b2b2401afa0a4063a822458); golang/mod sumdb/note/note.go package
documentation (fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db, unchanged since v0.7.0).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.errors import InputError, SigningKeyError, UsageError
from custody.ledger import c2sp
from custody.ledger.c2sp import (
    Checkpoint,
    Cosigner,
    Note,
    NoteFormatError,
    NoteSignature,
    NoteSigner,
    NoteVerificationError,
    SignatureStatus,
    VerifierKey,
    cosign_checkpoint,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
    verify_note,
)

REPO = Path(__file__).resolve().parents[1]
GO_SOURCE = REPO / "tests" / "go" / "c2spcheck"
GOCODE = Path("/usr/share/gocode")
EXAMPLE_LEDGER = REPO / "docs" / "example" / "ledger.jsonl"
T0 = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)


# --- keys and a real checkpoint -----------------------------------------------------------


@dataclass(frozen=True)
class Key:
    seed: bytes
    private: Ed25519PrivateKey
    public: bytes

    @classmethod
    def from_label(cls, label: str) -> Key:
        seed = hashlib.sha256(label.encode()).digest()
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(seed, private, private.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


LOG = Key.from_label("custody ledger key")
LAWYER = Key.from_label("lawyer witness key")
PARTNER = Key.from_label("partner organisation witness key")
STRANGER = Key.from_label("someone else")


def example_ledger() -> tuple[str, Checkpoint]:
    """docs/example/ledger.jsonl: its origin and the checkpoint its record 2 signs."""
    lines = EXAMPLE_LEDGER.read_bytes().split(b"\n")
    origin = c2sp.ledger_origin(c2sp.ledger_id(lines[0]))
    record = json.loads(lines[2])["signed"]
    assert record["type"] == "checkpoint"
    return origin, Checkpoint.from_record(origin, record["body"])


ORIGIN, CHECKPOINT = example_ledger()
LOG_SIGNER = NoteSigner(ORIGIN, LOG.public, LOG.sign)
LAWYER_COSIGNER = Cosigner(c2sp.key_name(LAWYER.public), LAWYER.public, LAWYER.sign)
PARTNER_COSIGNER = Cosigner("partner.example.org/witness", PARTNER.public, PARTNER.sign)


def signed_and_cosigned(checkpoint: Checkpoint = CHECKPOINT) -> Note:
    note = sign_checkpoint(checkpoint, LOG_SIGNER)
    verified = verify_checkpoint(note, origin=checkpoint.origin, log_keys=[LOG_SIGNER.verifier_key])
    return cosign_checkpoint(verified, LAWYER_COSIGNER, T0)


def custody_accepts(
    data: bytes,
    *,
    origin: str = ORIGIN,
    cosigners: tuple[Cosigner, ...] = (LAWYER_COSIGNER,),
) -> tuple[bool, str]:
    """custody's verdict under the test policy: log key and every cosigner must verify."""
    try:
        result = verify_checkpoint(
            data,
            origin=origin,
            log_keys=[LOG_SIGNER.verifier_key],
            cosigner_keys=[c.verifier_key for c in cosigners],
        )
    except NoteFormatError as exc:
        return False, f"malformed: {exc}"
    return result.ok, "; ".join(result.problems)


# --- the specifications' own examples (no Go needed) --------------------------------------


def test_signed_note_spec_example_verifies() -> None:
    """signed-note.md §Verifier keys, Example: the vkey verifies the note."""
    vkey = parse_vkey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    note = (
        "This is an example message.\n\n— example.com/foo "
        "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
    ).encode()
    result = verify_note(note, [vkey])
    assert result.ok and [c.signature.name for c in result.verified] == ["example.com/foo"]
    assert vkey.key_id == 0x530D903A and vkey.sig_type == c2sp.SIG_TYPE_ED25519
    assert parse_note(note).to_bytes() == note
    # One changed letter in the text and the same vkey refuses it.
    assert not verify_note(note.replace(b"an example", b"An example"), [vkey]).ok


GO_DOC_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_DOC_NEUMANN = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKv"
    "qfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_DOC_ENOCH = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oO"
    "TGwnWLox33WWd1RvMc+QQ=\n"
)


def test_go_documentation_example_signs_byte_for_byte() -> None:
    """x/mod note.go's package example: the signer key's seed makes exactly its signature
    (Ed25519 is deterministic), its vkey verifies it, and the second, unknown signature
    (EnochRoot) is ignored but kept."""
    skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    seed = base64.b64decode(skey.split("+", 4)[4])[1:]
    private = Ed25519PrivateKey.from_private_bytes(seed)
    signer = NoteSigner("PeterNeumann", private.public_key().public_bytes_raw(), private.sign)
    assert (
        signer.verifier_key.vkey()
        == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    expected = (GO_DOC_TEXT + "\n" + GO_DOC_NEUMANN).encode()
    assert sign_note(Note(GO_DOC_TEXT), signer).to_bytes() == expected

    doubly = (GO_DOC_TEXT + "\n" + GO_DOC_NEUMANN + GO_DOC_ENOCH).encode()
    result = verify_note(doubly, [signer.verifier_key])
    assert result.ok
    assert [c.signature.name for c in result.verified] == ["PeterNeumann"]
    assert [c.signature.name for c in result.unknown] == ["EnochRoot"]
    assert parse_note(doubly).to_bytes() == doubly


def test_spec_checkpoint_and_cosignature_examples_parse() -> None:
    """tlog-cosignature.md's example: the witness line carries the time its signed-message
    example shows (1679315147), after a 4-byte key ID."""
    note = parse_note(
        (
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
            "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
            "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
            "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
            "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        ).encode()
    )
    checkpoint = parse_checkpoint(note.text)
    assert (checkpoint.origin, checkpoint.tree_size) == ("example.com/behind-the-sofa", 20852163)
    witness = note.signatures[1]
    assert len(witness.signature) == 72
    assert int.from_bytes(witness.signature[:8], "big") == 1679315147
    assert c2sp.cosignature_message(note.text, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_key_ids_follow_the_formula() -> None:
    for sig_type in (0x01, 0x04):
        digest = hashlib.sha256(b"w.example/x\n" + bytes([sig_type]) + LAWYER.public).digest()
        assert key_id("w.example/x", sig_type, LAWYER.public) == int.from_bytes(digest[:4], "big")
    # One key, two types, two IDs: a note signature can never pass as a cosignature.
    assert (
        VerifierKey.ed25519("n", LAWYER.public).key_id
        != VerifierKey.cosignature_v1("n", LAWYER.public).key_id
    )


# --- custody's conventions on a real ledger -----------------------------------------------


def test_origin_is_derived_from_line_zero_and_equals_record_one_prev() -> None:
    lines = EXAMPLE_LEDGER.read_bytes().split(b"\n")
    prev = json.loads(lines[1])["signed"]["prev"]
    assert f"custody.ledger/{prev}" == ORIGIN
    assert CHECKPOINT.tree_size == 2
    leaves = [hashlib.sha256(b"\x00" + line).digest() for line in lines[:2]]
    assert CHECKPOINT.root_hash == hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).digest()
    with pytest.raises(UsageError):
        c2sp.ledger_id(lines[0] + b"\n")
    with pytest.raises(UsageError):
        c2sp.ledger_origin(bytes(32), prefix="{custody")
    with pytest.raises(NoteFormatError):
        c2sp.ledger_origin(bytes(32), prefix="custody ledger")


def test_key_name_is_derived_from_the_key_alone() -> None:
    name = c2sp.key_name(LAWYER.public)
    assert name == "custody-" + hashlib.sha256(LAWYER.public).hexdigest()[:16]
    assert c2sp.is_valid_key_name(name)
    # Holder names as people write them break the key-name rules.
    for holder in ("Mona Sayegh", "منى الصايغ", "A+B Legal", "Leila\u00a0K", ""):
        assert not c2sp.is_valid_key_name(holder)


def test_checkpoint_note_round_trip_and_structured_result() -> None:
    note = signed_and_cosigned()
    data = note.to_bytes()
    assert parse_note(data) == note and parse_note(data).to_bytes() == data
    result = verify_checkpoint(
        data,
        origin=ORIGIN,
        log_keys=[LOG_SIGNER.verifier_key],
        cosigner_keys=[LAWYER_COSIGNER.verifier_key, PARTNER_COSIGNER.verifier_key],
        quorum=1,
    )
    assert result.ok and result.checkpoint == CHECKPOINT
    assert [c.key for c in result.log_signatures] == [LOG_SIGNER.verifier_key]
    [cosig] = result.cosignatures
    assert cosig.timestamp == int(T0.timestamp()) and cosig.time == T0
    assert result.missing_cosigners == (PARTNER_COSIGNER.verifier_key,)
    # Requiring both cosigners fails, and says so.
    strict = verify_checkpoint(
        data,
        origin=ORIGIN,
        log_keys=[LOG_SIGNER.verifier_key],
        cosigner_keys=[LAWYER_COSIGNER.verifier_key, PARTNER_COSIGNER.verifier_key],
    )
    assert not strict.ok and strict.problems == ("1 of the 2 required cosignatures verified",)
    with pytest.raises(NoteVerificationError, match="1 of the 2"):
        strict.raise_for_failure()


def test_unknown_signatures_are_kept_and_failures_named() -> None:
    note = signed_and_cosigned()
    stranger = NoteSigner("stranger.example", STRANGER.public, STRANGER.sign)
    note = sign_note(note, stranger)
    result = verify_note(note.to_bytes(), [LOG_SIGNER.verifier_key, LAWYER_COSIGNER.verifier_key])
    assert [c.status for c in result.checks] == [SignatureStatus.VERIFIED] * 2 + [
        SignatureStatus.UNKNOWN
    ]
    assert result.ok and result.unknown[0].signature.name == "stranger.example"

    bad = bytearray(note.signatures[1].signature)
    bad[20] ^= 1
    tampered = Note(
        note.text,
        (
            note.signatures[0],
            NoteSignature(note.signatures[1].name, note.signatures[1].key_id, bytes(bad)),
        ),
    )
    result = verify_note(tampered, [LOG_SIGNER.verifier_key, LAWYER_COSIGNER.verifier_key])
    assert not result.ok and len(result.verified) == 1
    [failed] = result.failed
    assert failed.reason == "cosignature/v1 signature invalid"
    with pytest.raises(NoteVerificationError, match="cosignature/v1 signature invalid"):
        result.raise_for_failure()


def test_future_cosignature_fails_only_when_asked() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG_SIGNER)
    verified = verify_checkpoint(note, origin=ORIGIN, log_keys=[LOG_SIGNER.verifier_key])
    late = cosign_checkpoint(verified, LAWYER_COSIGNER, T0 + timedelta(days=1))
    keys = [LOG_SIGNER.verifier_key, LAWYER_COSIGNER.verifier_key]
    assert verify_note(late, keys).ok
    result = verify_note(late, keys, now=T0)
    assert not result.ok and result.failed[0].reason == "cosignature time is in the future"
    assert verify_note(late, keys, now=T0 + timedelta(days=1, minutes=4)).ok


def test_signing_guards() -> None:
    wrong = NoteSigner(ORIGIN, LOG.public, STRANGER.sign)
    with pytest.raises(SigningKeyError):
        sign_checkpoint(CHECKPOINT, wrong)
    with pytest.raises(UsageError):
        sign_note(Note('{"body":{}}\n'), LOG_SIGNER)
    with pytest.raises(UsageError):
        sign_note(Note("cosignature/v1\ntime 1\nx\n"), LOG_SIGNER)
    unverified = verify_checkpoint(
        sign_checkpoint(CHECKPOINT, NoteSigner(ORIGIN, STRANGER.public, STRANGER.sign)),
        origin=ORIGIN,
        log_keys=[LOG_SIGNER.verifier_key],
    )
    assert not unverified.ok
    with pytest.raises(UsageError, match="did not verify"):
        cosign_checkpoint(unverified, LAWYER_COSIGNER, T0)
    with pytest.raises(UsageError):
        verify_note(signed_and_cosigned(), [])
    with pytest.raises(UsageError):
        Note(CHECKPOINT.body()).to_bytes()
    with pytest.raises(NoteFormatError):
        Checkpoint(ORIGIN, 0, bytes(32))


def test_errors_are_one_line_custody_errors() -> None:
    hostile = [
        b"",
        b"\xff\n\n\xe2\x80\x94 a AAAAAAA=\n",
        "text\n\n— a\u2028b AAAAAAA=\n".encode(),
        b"text\n\n- a AAAAAAA=\n",
        b"x" * (c2sp.MAX_NOTE_BYTES + 1),
    ]
    for data in hostile:
        with pytest.raises(InputError) as caught:
            parse_note(data)
        assert "\n" not in str(caught.value) and len(str(caught.value)) < 200
    for vkey in (
        "",
        "a+b+c",
        "n+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ):
        with pytest.raises(NoteFormatError):
            parse_vkey(vkey)


# --- Go ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoTool:
    binary: Path
    home: Path
    build_seconds: float

    def run(self, mode: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [str(self.binary), mode],
            input=json.dumps(requests).encode(),
            capture_output=True,
            env=go_env(self.home),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        results: list[dict[str, Any]] = json.loads(done.stdout)
        assert len(results) == len(requests)
        return results


def go_env(home: Path) -> dict[str, str]:
    """Only what the Go toolchain needs, offline: never the parent's environment."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "GOCACHE": str(home / "gocache"),
        "GOPATH": str(GOCODE),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
    }


@pytest.fixture(scope="module")
def go(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoTool]:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (apt-get install golang-go golang-golang-x-mod-dev)")
    if not (GOCODE / "src/golang.org/x/mod/sumdb/note/note.go").is_file():
        pytest.skip("golang.org/x/mod is not installed (apt-get install golang-golang-x-mod-dev)")
    home = tmp_path_factory.mktemp("go")
    binary = home / "c2spcheck"
    started = time.monotonic()
    built = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=GO_SOURCE,
        env=go_env(home),
        capture_output=True,
        timeout=300,
        check=False,
    )
    seconds = time.monotonic() - started
    if built.returncode != 0:
        pytest.fail("building tests/go/c2spcheck failed:\n" + built.stderr.decode(errors="replace"))
    yield GoTool(binary, home, seconds)


def open_request(
    data: bytes, *, origin: str = ORIGIN, cosigners: tuple[Cosigner, ...] = (LAWYER_COSIGNER,)
) -> dict[str, Any]:
    """The same policy custody_accepts applies, for the Go side."""
    return {
        "note": base64.b64encode(data).decode(),
        "vkeys": [LOG_SIGNER.verifier_key.vkey()],
        "cosig_vkeys": [c.verifier_key.vkey() for c in cosigners],
        "require": [
            f"{k.name}+{k.key_id_hex}"
            for k in (LOG_SIGNER.verifier_key, *(c.verifier_key for c in cosigners))
        ],
        "origin": origin,
    }


def test_go_builds_offline(go: GoTool) -> None:
    assert go.binary.is_file()
    assert go.build_seconds < 120, f"go build took {go.build_seconds:.1f} s"


def test_go_verifies_custody_note_and_cosignature(go: GoTool) -> None:
    data = signed_and_cosigned().to_bytes()
    [result] = go.run("open", [open_request(data)])
    assert result["ok"], result
    log_id = f"{ORIGIN}+{LOG_SIGNER.verifier_key.key_id_hex}"
    cosig_id = f"{LAWYER_COSIGNER.name}+{LAWYER_COSIGNER.verifier_key.key_id_hex}"
    assert result["verified"] == [log_id, cosig_id]
    assert result["times"] == {cosig_id: int(T0.timestamp())}
    assert result["text"] == CHECKPOINT.body()
    assert result["size"] == CHECKPOINT.tree_size
    assert base64.b64decode(result["root"]) == CHECKPOINT.root_hash


def test_custody_verifies_go_signatures_and_cosignatures(go: GoTool) -> None:
    """Go signs with x/mod's NewSigner (which itself checks custody's key ID against the
    seed's public key), and cosigns a custody-signed checkpoint through note.Sign."""
    skey_material = base64.b64encode(b"\x01" + LOG.seed).decode()
    skey = f"PRIVATE+KEY+{ORIGIN}+{LOG_SIGNER.verifier_key.key_id_hex}+{skey_material}"
    custody_signed = sign_checkpoint(CHECKPOINT, LOG_SIGNER).to_bytes()
    when = int(T0.timestamp()) + 7
    requests: list[dict[str, Any]] = [
        {"text": CHECKPOINT.body(), "skeys": [skey], "cosigners": []},
        {
            "note": base64.b64encode(custody_signed).decode(),
            "vkeys": [LOG_SIGNER.verifier_key.vkey()],
            "skeys": [],
            "cosigners": [
                {
                    "name": LAWYER_COSIGNER.name,
                    "seed": base64.b64encode(LAWYER.seed).decode(),
                    "time": when,
                },
                {
                    "name": PARTNER_COSIGNER.name,
                    "seed": base64.b64encode(PARTNER.seed).decode(),
                    "time": when + 1,
                },
            ],
        },
    ]
    go_signed, go_cosigned = go.run("sign", requests)
    assert not go_signed.get("error") and not go_cosigned.get("error"), (go_signed, go_cosigned)
    assert go_signed["vkeys"] == [LOG_SIGNER.verifier_key.vkey()]
    assert go_cosigned["cosig_vkeys"] == [
        LAWYER_COSIGNER.verifier_key.vkey(),
        PARTNER_COSIGNER.verifier_key.vkey(),
    ]
    # Ed25519 is deterministic: Go's note is custody's byte for byte.
    assert base64.b64decode(go_signed["note"]) == custody_signed

    data = base64.b64decode(go_cosigned["note"])
    assert parse_note(data).to_bytes() == data
    result = verify_checkpoint(
        data,
        origin=ORIGIN,
        log_keys=[LOG_SIGNER.verifier_key],
        cosigner_keys=[LAWYER_COSIGNER.verifier_key, PARTNER_COSIGNER.verifier_key],
    )
    assert result.ok, result.problems
    assert [c.timestamp for c in result.cosignatures] == [when, when + 1]


def _flip(sig: NoteSignature, index: int) -> NoteSignature:
    raw = bytearray(sig.signature)
    raw[index] ^= 0x01
    return NoteSignature(sig.name, sig.key_id, bytes(raw))


def _lines(note: Note) -> list[str]:
    return [s.line() for s in note.signatures]


def _assemble(text: str, lines: list[str]) -> bytes:
    return (text + "\n" + "".join(line + "\n" for line in lines)).encode()


def _noncanonical(encoded: str) -> str:
    """The same bytes in base64 with a pad bit set: flip the low bit of the last data
    character (with '=' padding its low two bits carry no data)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = encoded.rstrip("=")
    assert body != encoded
    last = alphabet[alphabet.index(body[-1]) ^ 1]
    assert base64.b64decode(body[:-1] + last + encoded[len(body) :]) == base64.b64decode(encoded)
    return body[:-1] + last + encoded[len(body) :]


def _raw_cosignature(text: str, timestamp: int) -> str:
    """A correctly signed cosignature line with any timestamp, even one custody refuses."""
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    payload = timestamp.to_bytes(8, "big") + LAWYER.sign(message)
    sig = NoteSignature(LAWYER_COSIGNER.name, LAWYER_COSIGNER.verifier_key.key_id, payload)
    return sig.line()


def _signed_text(text: str) -> bytes:
    """Log-signed and lawyer-cosigned raw text, bypassing custody's checkpoint parser."""
    log = NoteSignature(ORIGIN, LOG_SIGNER.verifier_key.key_id, LOG.sign(text.encode()))
    return _assemble(text, [log.line(), _raw_cosignature(text, int(T0.timestamp()))])


def tamper_cases() -> dict[str, bytes]:
    good = signed_and_cosigned()
    text, (log, cosig) = good.text, good.signatures
    lines = _lines(good)
    other_root = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with_ext = signed_and_cosigned(
        Checkpoint(ORIGIN, CHECKPOINT.tree_size, CHECKPOINT.root_hash, ("custody seq 2",))
    )
    unknown = [
        NoteSignature(f"u{i}.example", i, STRANGER.sign(text.encode())).line() for i in range(98)
    ]
    empty_root = base64.b64encode(c2sp.EMPTY_ROOT).decode()
    b64_root = base64.b64encode(CHECKPOINT.root_hash).decode()
    cosig_head, cosig_b64 = lines[1].rsplit(" ", 1)
    return {
        "good": good.to_bytes(),
        "good with extension line": with_ext.to_bytes(),
        "size changed": _assemble(text.replace("\n2\n", "\n3\n"), lines),
        "root changed": _assemble(text.replace(b64_root, other_root), lines),
        "origin changed": _assemble(text.replace(ORIGIN, ORIGIN[:-1] + "0"), lines),
        "extension line added": _assemble(text + "extra\n", lines),
        "extension line changed": _assemble(
            with_ext.text.replace("seq 2", "seq 3"), _lines(with_ext)
        ),
        "empty extension line": _signed_text(f"{ORIGIN}\n2\n{b64_root}\n\n"),
        "log signature byte flipped": _assemble(text, [_flip(log, 10).line(), lines[1]]),
        "cosignature byte flipped": _assemble(text, [lines[0], _flip(cosig, 40).line()]),
        "cosignature time flipped": _assemble(text, [lines[0], _flip(cosig, 7).line()]),
        "log key name wrong": _assemble(text, [lines[0].replace(ORIGIN, ORIGIN + "x"), lines[1]]),
        "cosigner key name wrong": _assemble(
            text, [lines[0], lines[1].replace("custody-", "cust-")]
        ),
        "log key ID wrong": _assemble(
            text, [NoteSignature(log.name, log.key_id ^ 1, log.signature).line(), lines[1]]
        ),
        "cosigner key ID wrong": _assemble(
            text, [lines[0], NoteSignature(cosig.name, cosig.key_id ^ 1, cosig.signature).line()]
        ),
        "cosignature as note signature": _assemble(
            text,
            [
                lines[0],
                NoteSignature(
                    cosig.name,
                    VerifierKey.ed25519(cosig.name, LAWYER.public).key_id,
                    LAWYER.sign(text.encode()),
                ).line(),
            ],
        ),
        "cosignature missing": _assemble(text, lines[:1]),
        "log signature missing": _assemble(text, lines[1:]),
        "signature lines swapped": _assemble(text, lines[::-1]),
        "duplicate signature line": _assemble(text, [lines[0], lines[0], lines[1]]),
        "duplicate key, second signature bad": _assemble(
            text, [lines[0], _flip(log, 3).line(), lines[1]]
        ),
        "CRLF line ends": good.to_bytes().replace(b"\n", b"\r\n"),
        "CR inside text": _assemble(text.replace("\n2\n", "\n2\r\n"), lines),
        "missing final newline": good.to_bytes()[:-1],
        "no blank line": good.to_bytes().replace(b"\n\n", b"\n"),
        "hyphen instead of em dash": _assemble(text, [lines[0], "-" + lines[1][1:]]),
        "en dash instead of em dash": _assemble(text, [lines[0], "\u2013" + lines[1][1:]]),
        "tab after em dash": _assemble(text, [lines[0], "—\t" + lines[1][2:]]),
        "two spaces before signature": _assemble(text, [lines[0], f"{cosig_head}  {cosig_b64}"]),
        "trailing space": _assemble(text, [lines[0], lines[1] + " "]),
        "empty signature line": _assemble(text, [lines[0], "", lines[1]]),
        "key ID only": _assemble(text, [*lines, "— x.example AAAAAA=="]),
        "invalid UTF-8 in text": _assemble(text, lines).replace(b"\n2\n", b"\n2\xff\n", 1),
        "NUL in text": _assemble(text, lines).replace(b"\n2\n", b"\n2\x00\n", 1),
        "98 unknown signatures (100 lines)": _assemble(text, [*lines, *unknown]),
        "99 unknown signatures (101 lines)": _assemble(
            text, [*lines, *unknown, NoteSignature("u99.example", 99, b"x").line()]
        ),
        "cosignature time 2^63": _assemble(text, [lines[0], _raw_cosignature(text, 2**63)]),
        "cosignature time 2^63-1": _assemble(text, [lines[0], _raw_cosignature(text, 2**63 - 1)]),
        "blank line in checkpoint text": _signed_text(f"{ORIGIN}\n\n2\n{b64_root}\n"),
        "two-line checkpoint": _signed_text(f"{ORIGIN}\n2\n"),
        "size with leading zero": _signed_text(f"{ORIGIN}\n02\n{b64_root}\n"),
        "size with plus sign": _signed_text(f"{ORIGIN}\n+2\n{b64_root}\n"),
        "size negative": _signed_text(f"{ORIGIN}\n-2\n{b64_root}\n"),
        "size in Arabic-Indic digits": _signed_text(f"{ORIGIN}\n٢\n{b64_root}\n"),
        "size with space": _signed_text(f"{ORIGIN}\n 2\n{b64_root}\n"),
        "size 2^63-1": _signed_text(f"{ORIGIN}\n{2**63 - 1}\n{b64_root}\n"),
        "size 2^63": _signed_text(f"{ORIGIN}\n{2**63}\n{b64_root}\n"),
        "size 2^64": _signed_text(f"{ORIGIN}\n{2**64}\n{b64_root}\n"),
        "root without padding": _signed_text(f"{ORIGIN}\n2\n{b64_root.rstrip('=')}\n"),
        "root URL-safe alphabet": _signed_text(
            f"{ORIGIN}\n2\n{base64.urlsafe_b64encode(CHECKPOINT.root_hash).decode()}\n"
        ),
        "root 31 bytes": _signed_text(
            f"{ORIGIN}\n2\n{base64.b64encode(CHECKPOINT.root_hash[:31]).decode()}\n"
        ),
        "root non-canonical base64": _signed_text(f"{ORIGIN}\n2\n{_noncanonical(b64_root)}\n"),
        "size 0, empty root": _signed_text(f"{ORIGIN}\n0\n{empty_root}\n"),
        "size 0, other root": _signed_text(f"{ORIGIN}\n0\n{b64_root}\n"),
        "signature non-canonical base64": _assemble(
            text, [lines[0], f"{cosig_head} {_noncanonical(cosig_b64)}"]
        ),
    }


# Each verdict is asserted, not only the agreement: (custody accepts, Go accepts).
EXPECTED = {
    "good": (True, True),
    "good with extension line": (True, True),
    "98 unknown signatures (100 lines)": (True, True),
    "signature lines swapped": (True, True),
    "cosignature time 2^63-1": (True, True),
    # A signed body with any well-formed size verifies: the signature covers the text, not
    # the ledger; comparing size and root with the ledger is the caller's step.
    "size 2^63-1": (True, True),
    "size 0, empty root": (True, True),
    # custody is stricter than Go (see the c2sp module docstring):
    "duplicate signature line": (False, True),  # Go keeps the first, skips the rest
    "duplicate key, second signature bad": (False, True),  # ... without verifying them
    "root non-canonical base64": (False, True),
    "signature non-canonical base64": (False, True),
    "size 0, other root": (False, True),
    # custody reads uint64 sizes (RFC 9162); x/mod's tlog.ParseTree stops at int64.
    "size 2^63": (True, False),
}


def test_tampering_is_rejected_identically(go: GoTool) -> None:
    cases = tamper_cases()
    results = go.run("open", [open_request(data) for data in cases.values()])
    mismatched = {}
    for (label, data), go_result in zip(cases.items(), results, strict=True):
        ours, why = custody_accepts(data)
        expected = EXPECTED.get(label, (False, False))
        if (ours, go_result["ok"]) != expected:
            mismatched[label] = (ours, why, go_result)
    assert not mismatched, json.dumps(mismatched, indent=1, default=str, ensure_ascii=False)


def test_key_name_rules_match_go(go: GoTool) -> None:
    """Go's isValidName (unicode.IsSpace, '+') decides which signature lines are malformed;
    a well-formed line from an unknown key only leaves the note unverified."""
    names = [
        "plain",
        "sum.golang.org",
        "custody.ledger/ab",
        "منى",
        "a—b",
        "a\u200bb",
        "a\u180eb",
        "a\ufeffb",
        "a\u00adb",
        "a\x7fb",
        "a+b",
        "a\u00a0b",
        "a\u0085b",
        "a\u1680b",
        "a\u2000b",
        "a\u2007b",
        "a\u200ab",
        "a\u2028b",
        "a\u2029b",
        "a\u202fb",
        "a\u205fb",
        "a\u3000b",
        "a\x0bb",
        "a\x0cb",
        "a\x1cb",
        "a\tb",
        "\u2003",
        "+",
    ]
    cases = []
    for name in names:
        line = f"— {name} " + base64.b64encode(b"\x01\x02\x03\x04sig").decode()
        cases.append(("hello\n\n" + line + "\n").encode())
    results = go.run(
        "open",
        [
            {
                "note": base64.b64encode(c).decode(),
                "vkeys": [],
                "cosig_vkeys": [],
                "require": [],
                "origin": "",
            }
            for c in cases
        ],
    )
    for name, data, go_result in zip(names, cases, results, strict=True):
        go_malformed = go_result["error"] == "malformed note"
        try:
            parse_note(data)
            ours_malformed = False
        except NoteFormatError:
            ours_malformed = True
        assert ours_malformed == go_malformed, (name, go_result)
        assert ours_malformed == (not c2sp.is_valid_key_name(name)), name


def _mutations(data: bytes, rng: random.Random) -> bytes:
    specials = [
        b"\n",
        b"\r",
        b" ",
        b"+",
        b"=",
        b"/",
        b"A",
        b"\xe2\x80\x94",
        b"\x00",
        b"\xff",
        b"0",
        b"\t",
        b"\xc2\xa0",
    ]
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(out))
        action = rng.randrange(4)
        if action == 0:
            out[pos] ^= 1 << rng.randrange(8)
        elif action == 1:
            out[pos:pos] = rng.choice(specials)
        elif action == 2:
            del out[pos : pos + rng.randint(1, 4)]
        else:
            out[pos : pos + 1] = rng.choice(specials)
    return bytes(out)


# custody refusals Go does not share, recognised by their message; anything else must agree.
STRICTER = ("not canonical base64", "two signatures by", "size 0 must carry")


def test_random_mutations_agree_with_go(go: GoTool) -> None:
    rng = random.Random(20261205)
    base = signed_and_cosigned().to_bytes()
    mutants = sorted({_mutations(base, rng) for _ in range(600)} - {base})
    results = go.run("open", [open_request(m) for m in mutants])
    disagreements = []
    accepted = 0
    for mutant, go_result in zip(mutants, results, strict=True):
        ours, why = custody_accepts(mutant)
        accepted += ours
        if ours != go_result["ok"] and not (go_result["ok"] and any(s in why for s in STRICTER)):
            disagreements.append((mutant.decode(errors="replace"), why, go_result.get("error")))
    assert not disagreements, disagreements[:5]
    # The mutations must not all be trivially fatal: some survive (e.g. in unknown bytes).
    assert len(mutants) > 500 and accepted < len(mutants)


def test_go_and_custody_vkeys_agree(go: GoTool) -> None:
    """x/mod's NewVerifier accepts custody's vkeys (it checks the key ID itself) and reports
    a custody-signed note as unverified under a vkey for another key."""
    note = sign_checkpoint(CHECKPOINT, LOG_SIGNER).to_bytes()
    other = VerifierKey.ed25519(ORIGIN, STRANGER.public)
    requests = [
        {
            "note": base64.b64encode(note).decode(),
            "vkeys": [LOG_SIGNER.verifier_key.vkey()],
            "cosig_vkeys": [],
            "require": [],
            "origin": ORIGIN,
        },
        {
            "note": base64.b64encode(note).decode(),
            "vkeys": [other.vkey()],
            "cosig_vkeys": [],
            "require": [],
            "origin": ORIGIN,
        },
    ]
    good, wrong = go.run("open", requests)
    assert good["ok"] and not wrong["ok"] and wrong["error"] == "note has no verifiable signatures"
    assert parse_vkey(other.vkey()) == other
    result = verify_note(note, [other])
    assert not result.ok and [c.status for c in result.checks] == [SignatureStatus.UNKNOWN]


def test_module_has_no_print_and_only_allowed_imports() -> None:
    source = (REPO / "src" / "custody" / "ledger" / "c2sp.py").read_text()
    assert "print(" not in source
    custody_imports = {
        line.split()[1] for line in source.splitlines() if line.startswith("from custody")
    }
    # custody.i18n: its messages are said in the run's language (never the bytes it makes).
    assert custody_imports == {"custody.errors", "custody.i18n"}
