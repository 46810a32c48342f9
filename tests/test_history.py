"""History nobody can rewrite: remembered checkpoints, witnesses, C2SP checkpoint notes.

Every scenario of the issue "History nobody can rewrite", through the real CLI, with real
keyrings in separate custody homes (a documenter, a lawyer, two witnesses), and the
checkpoint notes and cosignatures read back by Go's golang.org/x/mod/sumdb/note (with the
cosignature verifier written from the C2SP text, tests/go/c2spcheck).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import SAMPLES, Result, copy_media, validate

CLI = Callable[..., Result]


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setenv("CUSTODY_HOME", str(home))
        yield


def _codes(document: dict[str, object]) -> set[str]:
    findings = document["findings"]
    assert isinstance(findings, list)
    return {f["code"] for f in findings if f["severity"] == "error"}


def _rewrite_from(root: Path, keep: int, cli: CLI) -> None:
    """The documenter cuts the ledger back to ``keep`` records and records other things on
    top with the same key: a consistent history, re-signed, that is not the one seen."""
    ledger = root / ".custody" / "ledger.jsonl"
    lines = ledger.read_bytes().split(b"\n")[:keep]
    ledger.write_bytes(b"\n".join(lines) + b"\n")
    shutil.rmtree(root / ".custody" / "cache", ignore_errors=True)
    later = root / "media" / "later"
    later.mkdir()
    for n in range(6):  # enough that the rewritten history grows past the one seen
        (later / f"note-{n}.txt").write_text(f"recorded in the rewritten history, {n}\n")
    assert cli("catalogue", later, "--root", root).code == 0


@pytest.fixture
def case(tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    places = {name: tmp_path / f"{name}-home" for name in ("amina", "lawyer", "w1", "w2")}
    root = tmp_path / "root"
    with person(monkeypatch, places["amina"]):
        assert cli("init", root).code == 0
        assert cli("keys", "generate", "--name", "amina").code == 0
        assert cli("keys", "export", "amina", "--out", tmp_path / "amina.pem").code == 0
        copy_media(SAMPLES, root / "media")
        assert cli("catalogue", root / "media", "--root", root).code == 0
        assert cli("export", "--all", "--out", tmp_path / "bundle1", "--root", root).code == 0
    for witness in ("w1", "w2"):
        with person(monkeypatch, places[witness]):
            assert cli("keys", "generate", "--name", witness, "--role", "lawyer").code == 0
            assert cli("keys", "export", witness, "--out", tmp_path / f"{witness}.pem").code == 0
    places.update(root=root, bundle1=tmp_path / "bundle1", pem=tmp_path / "amina.pem",
                  base=tmp_path)  # fmt: skip
    return places


def test_a_rewritten_history_is_caught_against_the_remembered_checkpoint(
    case: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pem = case["root"], case["pem"]
    with person(monkeypatch, case["lawyer"]):
        first = cli("verify", case["bundle1"], "--trusted-key", pem, "--json")
        assert first.code == 0, first.out
        remembered = cli("trust", "ledgers", "--json").json()
        validate(remembered, "cli-trust-ledgers.schema.json")
        [ledger] = remembered["ledgers"]
        assert ledger["ledger"] == first.json()["ledger_identity"]
        seen = ledger["checkpoints"][0]
        assert seen["tree_size"] == first.json()["checkpoint"]["tree_size"]
    size = seen["tree_size"]
    with person(monkeypatch, case["amina"]):
        _rewrite_from(root, size - 3, cli)
        assert cli("verify", root, "--ledger-only").code == 0  # consistent with itself
        assert cli("export", "--all", "--out", case["base"] / "bundle2", "--root", root,
                   "--json").code == 0  # fmt: skip
    with person(monkeypatch, case["lawyer"]):
        for target in (case["base"] / "bundle2", root):
            result = cli("verify", target, "--trusted-key", pem, "--json")
            assert result.code == 1, (target, result.out)
            named = [f for f in result.json()["findings"] if f["code"] == "NOT_APPEND_ONLY"]
            assert named, result.json()["findings"]
            assert seen["root"] in named[0]["item"] and seen["first_seen"] in named[0]["item"]
            assert str(case["bundle1"].resolve()) in named[0]["item"]


def test_a_ledger_that_lost_its_last_records_is_caught(
    case: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = case["root"]
    with person(monkeypatch, case["lawyer"]):
        assert cli("verify", root, "--trusted-key", case["pem"], "--ledger-only").code == 0
    ledger = root / ".custody" / "ledger.jsonl"
    ledger.write_bytes(b"\n".join(ledger.read_bytes().split(b"\n")[:-3]) + b"\n")
    with person(monkeypatch, case["lawyer"]):
        result = cli("verify", root, "--trusted-key", case["pem"], "--ledger-only", "--json")
        assert result.code == 1 and "NOT_APPEND_ONLY" in _codes(result.json())


def test_two_witnesses_cosign_and_a_quorum_is_required(
    case: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = case["base"], case["root"]
    for witness in ("w1", "w2"):
        with person(monkeypatch, case[witness]):
            done = cli("witness", "cosign", case["bundle1"], "--out", base / f"{witness}.cosig",
                       "--json")  # fmt: skip
            assert done.code == 0, done.err
            validate(done.json(), "cli-witness.schema.json")
    with person(monkeypatch, case["amina"]):
        added = cli("witness", "add", base / "w1.cosig", base / "w2.cosig", "--root", root)
        assert added.code == 0, added.err
        assert cli("export", "--all", "--out", base / "witnessed", "--root", root).code == 0
    bundle = base / "witnessed"
    # HOW-TO-VERIFY.txt names the cosignature files and says how a reader weighs them.
    how = (bundle / "HOW-TO-VERIFY.txt").read_text()
    cosigned = json.loads((bundle / "custody" / "index.json").read_text())["cosignatures"]
    assert len(cosigned) == 2 and all(c["file"] in how for c in cosigned)
    assert "Witnesses and the checkpoint note" in how and "witness_fingerprint" in how
    both = ["--witness", str(base / "w1.pem"), "--witness", str(base / "w2.pem")]
    with person(monkeypatch, case["lawyer"]):
        ok = cli("verify", bundle, "--trusted-key", case["pem"], *both, "--min-witnesses", "2",
                 "--json")  # fmt: skip
        assert ok.code == 0, ok.out
        assert cli("verify", root, "--trusted-key", case["pem"], *both, "--ledger-only").code == 0
        # One cosignature removed: the quorum of two is not met.
        index = json.loads((bundle / "custody" / "index.json").read_text())
        dropped = index["cosignatures"].pop()
        (bundle / dropped["file"]).unlink()
        (bundle / "custody" / "index.json").write_text(json.dumps(index))
        short = cli("verify", bundle, "--trusted-key", case["pem"], *both, "--min-witnesses", "2",
                    "--json")  # fmt: skip
        assert short.code == 1 and "WITNESS_MISSING" in _codes(short.json())
        # One cosignature forged (its signature changed): invalid, and the quorum not met.
        kept = bundle / index["cosignatures"][0]["file"]
        document = json.loads(kept.read_text())
        signature = bytearray(base64.b64decode(document["cosignature"]["signature"]))
        signature[0] ^= 1
        document["cosignature"]["signature"] = base64.b64encode(bytes(signature)).decode()
        kept.write_text(json.dumps(document))
        forged = cli("verify", bundle, "--trusted-key", case["pem"], *both, "--json")
        assert forged.code == 1
        assert {"COSIGNATURE_INVALID", "WITNESS_MISSING"} <= _codes(forged.json())


def test_a_witness_refuses_a_fork(
    case: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = case["base"], case["root"]
    with person(monkeypatch, case["w1"]):
        assert cli("witness", "cosign", case["bundle1"], "--out", base / "first.cosig").code == 0
    size = json.loads((case["bundle1"] / "custody" / "index.json").read_text())["checkpoint"][
        "tree_size"
    ]
    with person(monkeypatch, case["amina"]):
        _rewrite_from(root, size - 2, cli)
        assert cli("export", "--all", "--out", base / "forked", "--root", root).code == 0
    with person(monkeypatch, case["w1"]):
        refused = cli("witness", "cosign", base / "forked", "--out", base / "second.cosig")
        assert refused.code == 1, refused.out
        assert "refusing to cosign" in refused.err and "NOT_APPEND_ONLY" in refused.err
        assert not (base / "second.cosig").exists()
    with person(monkeypatch, case["amina"]):
        # The first cosignature no longer matches this ledger's tree: refused, kept as evidence.
        wrong = cli("witness", "add", base / "first.cosig", "--root", root)
        assert wrong.code == 2 and "another history" in wrong.err


def test_c2sp_notes_and_cosignatures_read_by_go(
    case: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.test_c2sp import GO_SOURCE, GOCODE, go_env

    if shutil.which("go") is None or not (GOCODE / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.skip("Go and golang.org/x/mod are not installed (scripts/setup.sh installs them)")
    import subprocess

    from custody.ledger.c2sp import parse_note, parse_vkey
    from custody.ledger.notes import note_vkey

    base, root = case["base"], case["root"]
    with person(monkeypatch, case["amina"]):
        signed = cli("sign", "--format", "c2sp", "--out", base / "checkpoint.note", "--root",
                     root, "--json")  # fmt: skip
        assert signed.code == 0, signed.err
        validate(signed.json(), "cli-sign.schema.json")
        assert cli("export", "--all", "--out", base / "noted", "--root", root).code == 0
        assert (base / "noted" / "custody" / "checkpoint.note").read_bytes() == (
            base / "checkpoint.note"
        ).read_bytes()
    note_text = (base / "checkpoint.note").read_bytes()
    origin = note_text.split(b"\n", 1)[0].decode()
    public = base64.b64decode("".join((case["pem"]).read_text().splitlines()[1:-1]))[-32:]
    log_vkey = note_vkey(origin, public)
    with person(monkeypatch, case["w1"]):
        done = cli("witness", "cosign", base / "checkpoint.note", "--log-key", case["pem"],
                   "--out", base / "note.cosig", "--json")  # fmt: skip
        assert done.code == 0, done.err
    cosig = done.json()
    # The witness's cosignature line added to the log's note: one note, two signatures.
    cosig_line = parse_note(cosig["note"].encode()).signatures[0].line()
    combined = note_text + cosig_line.encode() + b"\n"
    parse_note(combined)
    home = tmp_path / "go"
    home.mkdir()
    binary = home / "c2spcheck"
    built = subprocess.run(["go", "build", "-o", str(binary), "."], cwd=GO_SOURCE,
                           env=go_env(home), capture_output=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    request = {
        "note": base64.b64encode(combined).decode(),
        "vkeys": [log_vkey],
        "cosig_vkeys": [cosig["vkey"]],
        "require": [
            f"{parse_vkey(log_vkey).name}+{parse_vkey(log_vkey).key_id_hex}",
            f"{parse_vkey(cosig['vkey']).name}+{parse_vkey(cosig['vkey']).key_id_hex}",
        ],
        "origin": origin,
    }
    done_go = subprocess.run([str(binary), "open"], input=json.dumps([request]).encode(),
                             capture_output=True, env=go_env(home), timeout=60)  # fmt: skip
    assert done_go.returncode == 0, done_go.stderr
    [result] = json.loads(done_go.stdout)
    assert result["ok"], result
    assert result["size"] == signed.json()["tree_size"]
    assert base64.b64decode(result["root"]).hex() == signed.json()["root"]
    # One flipped byte in the root line: Go refuses it too.
    lines = combined.split(b"\n")
    lines[2] = lines[2][:-2] + (b"A" if lines[2][-2:-1] != b"A" else b"B") + lines[2][-1:]
    request["note"] = base64.b64encode(b"\n".join(lines)).decode()
    done_go = subprocess.run([str(binary), "open"], input=json.dumps([request]).encode(),
                             capture_output=True, env=go_env(home), timeout=60)  # fmt: skip
    assert not json.loads(done_go.stdout)[0]["ok"]
