"""Trust: VERIFIED means intact *and* signed by someone the verifier trusts.

Every scenario of the issue "Trust: VERIFIED must mean signed by someone you trust", through
the real CLI, with real keyrings in separate custody homes (a documenter, a stranger who
forges, a lawyer), the shipped sample media and the loopback RFC 3161 authority.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tomli_w
from tests.tsa import running_tsa

from conftest import SAMPLES, Result, copy_media, validate

CLI = Callable[..., Result]


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[Path]:
    """Run the CLI as the person whose custody home is ``home``."""
    with monkeypatch.context() as m:
        m.setenv("CUSTODY_HOME", str(home))
        yield home


def _first_photo(root: Path) -> str:
    for line in (root / ".custody" / "ledger.jsonl").read_text().splitlines():
        record = json.loads(line)["signed"]
        if record["type"] == "item" and record["body"]["path"].lower().endswith(".jpg"):
            return str(record["body"]["path"])
    raise AssertionError("no photo catalogued")


def _configure_tsa(root: Path, url: str) -> None:
    path = root / ".custody" / "config.toml"
    document = tomllib.loads(path.read_text())
    document["timestamps"] = {"tsa": [url], "min_success": 1, "timeout": 10.0}
    path.write_text(tomli_w.dumps(document))


def _make_root(cli: CLI, base: Path, name: str, key: str, tsa_url: str) -> Path:
    root = base / name
    assert cli("init", root).code == 0
    assert cli("keys", "generate", "--name", key).code == 0
    copy_media(SAMPLES, root / "media")
    assert cli("catalogue", root / "media", "--root", root).code == 0
    _configure_tsa(root, tsa_url)
    assert cli("timestamp", "--root", root).code == 0
    return root


@pytest.fixture
def world(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Path]]:
    """A documenter's genuine root and bundle, a stranger's forgery of it, a lawyer's home."""
    with running_tsa(tmp_path, "ok", include_chain=True) as tsa:
        places: dict[str, Path] = {"tsa_root": tsa.root_pem}
        with person(monkeypatch, tmp_path / "amina-home"):
            genuine = _make_root(cli, tmp_path, "genuine", "amina", tsa.url)
            assert cli("keys", "export", "amina", "--out", tmp_path / "amina.pem").code == 0
            held = tmp_path / "held.txt"
            assert cli("sign", "--root", genuine, "--out", held).code == 0
            assert cli("timestamp", "--root", genuine).code == 0
            assert cli("export", "--all", "--out", tmp_path / "genuine-bundle", "--zip",
                       "--root", genuine).code == 0  # fmt: skip
        with person(monkeypatch, tmp_path / "stranger-home"):
            forged_root = _make_root(cli, tmp_path, "forged", "amina", tsa.url)
            assert cli("export", "--all", "--out", tmp_path / "forged-bundle", "--zip",
                       "--root", forged_root).code == 0  # fmt: skip
        # The forger dresses the bundle up with the sender's real key file, fingerprint and
        # checkpoint line, and recomputes the tag manifests so that bagit is satisfied.
        forged = tmp_path / "forged-bundle"
        real_fp = json.loads(
            (tmp_path / "genuine-bundle" / "custody" / "index.json").read_text()
        )["keys"][0]["fingerprint"]
        keys_dir = forged / "custody" / "keys"
        for old in keys_dir.iterdir():
            old.unlink()
        shutil.copy(tmp_path / "amina.pem", keys_dir / f"{real_fp}.pem")
        index = json.loads((forged / "custody" / "index.json").read_text())
        for entry in index["keys"]:
            entry["fingerprint"] = real_fp
        (forged / "custody" / "index.json").write_text(json.dumps(index))
        info = (forged / "bag-info.txt").read_text().splitlines()
        held_line = held.read_text().strip()
        info = [line for line in info if not line.startswith("Custody-Checkpoint")]
        info.append(f"Custody-Checkpoint: {held_line}")
        (forged / "bag-info.txt").write_text("\n".join(info) + "\n")
        _retag(forged)
        places.update(
            genuine=genuine,
            genuine_bundle=tmp_path / "genuine-bundle",
            genuine_zip=tmp_path / "genuine-bundle.zip",
            forged_bundle=forged,
            sender_pem=tmp_path / "amina.pem",
            held=held,
            lawyer=tmp_path / "lawyer-home",
        )
        yield places


def _retag(bag: Path) -> None:
    import hashlib

    for algorithm in ("sha256", "sha512"):
        lines = []
        for path in sorted(bag.rglob("*")):
            rel = path.relative_to(bag).as_posix()
            if path.is_file() and not rel.startswith(("data/", "tagmanifest-")):
                digest = hashlib.new(algorithm, path.read_bytes()).hexdigest()
                lines.append(f"{digest}  {rel}\n")
        (bag / f"tagmanifest-{algorithm}.txt").write_text("".join(lines))


def _verify(cli: CLI, *args: object) -> tuple[int, dict[str, object]]:
    result = cli("verify", *args, "--json")
    document = result.json()
    validate(document, "cli-verify.schema.json")
    return result.code, document


def test_forged_bundle_is_unconfirmed_without_pins_and_fails_with_them(
    world: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged, tsa_root = world["forged_bundle"], world["tsa_root"]
    with person(monkeypatch, world["lawyer"]):
        bagit = subprocess.run(
            [Path(sys.executable).with_name("bagit.py"), "--validate", forged],
            capture_output=True,
            text=True,
        )
        assert bagit.returncode == 0, bagit.stderr  # the forgery is a valid bag
        code, document = _verify(cli, forged, "--tsa-root", tsa_root, "--require-timestamps")
        assert code == 10 and document["verdict"] == "unconfirmed"
        unconfirmed = [s for s in document["signers"] if not s["anchored"]]
        real = world["sender_pem"]
        assert unconfirmed and all(s["fingerprint"] not in real.read_text() for s in unconfirmed)
        text = cli("verify", forged, "--tsa-root", tsa_root)
        assert text.code == 10 and "INTACT, SIGNER NOT CONFIRMED" in text.out
        assert "docs/threat-model.md" in text.out
        # Pinned to the sender's real key, or held to the sender's real checkpoint: refused.
        code, document = _verify(cli, forged, "--trusted-key", real, "--tsa-root", tsa_root)
        assert code == 1 and document["verdict"] == "failed"
        assert "UNTRUSTED_SIGNER" in {f["code"] for f in document["findings"]}
        code, document = _verify(cli, forged, "--checkpoint", world["held"])
        assert code == 1 and document["verdict"] == "failed"
        assert {f["code"] for f in document["findings"]} & {
            "HELD_CHECKPOINT_UNPROVEN", "NOT_APPEND_ONLY"
        }  # fmt: skip


@pytest.mark.parametrize("which", ["genuine_bundle", "genuine_zip"])
def test_genuine_bundle_is_verified_with_either_pin(
    world: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    target, tsa_root = world[which], world["tsa_root"]
    with person(monkeypatch, world["lawyer"]):
        code, document = _verify(cli, target, "--tsa-root", tsa_root)
        assert code == 10 and document["verdict"] == "unconfirmed"
        code, document = _verify(
            cli, target, "--trusted-key", world["sender_pem"], "--tsa-root", tsa_root,
            "--require-timestamps",
        )  # fmt: skip
        assert code == 0 and document["verdict"] == "verified", document["findings"]
        code, document = _verify(cli, target, "--checkpoint", world["held"], "--tsa-root", tsa_root)
        assert code == 0 and document["verdict"] == "verified", document["findings"]


def test_lawyer_confirms_the_sender_and_then_gets_verified(
    world: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, tsa_root = world["genuine_zip"], world["tsa_root"]
    with person(monkeypatch, world["lawyer"]):
        text = cli("verify", bundle, "--tsa-root", tsa_root)
        assert text.code == 10
        fingerprint = json.loads(cli("verify", bundle, "--json").out)["signers"][0]["fingerprint"]
        grouped = " ".join(fingerprint[i : i + 4] for i in range(0, 64, 4))
        assert grouped in text.out  # read aloud in fours, never cut
        added = cli("trust", "add", grouped, "--name", "Amina Haddad", "--note", "by phone")
        assert added.code == 0, added.err
        listed = cli("trust", "list", "--json")
        validate(listed.json(), "cli-trust.schema.json")
        assert listed.json()["anchors"][0]["fingerprint"] == fingerprint
        code, document = _verify(cli, bundle, "--tsa-root", tsa_root)
        assert code == 0 and document["verdict"] == "verified"
        assert any("trust store" in line for line in document["trust"])
        removed = cli("trust", "remove", fingerprint, "--json")
        assert removed.code == 0
        validate(removed.json(), "cli-trust.schema.json")
        assert _verify(cli, bundle, "--tsa-root", tsa_root)[0] == 10


def test_documenter_verifies_own_root_with_no_extra_flags(
    world: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with person(monkeypatch, world["genuine"].parent / "amina-home"):
        code, document = _verify(cli, world["genuine"], "--tsa-root", world["tsa_root"])
        assert code == 0 and document["verdict"] == "verified"
        assert document["signers"][0]["trusted_because"][0].endswith("(keyring)")


def test_every_trust_option_works_on_roots_folders_and_zips(
    world: dict[str, Path], cli: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger.pem"
    with person(monkeypatch, tmp_path / "other-home"):
        assert cli("keys", "generate", "--name", "other").code == 0
        assert cli("keys", "export", "other", "--out", stranger).code == 0
    wrong_root = tmp_path / "wrong-root.pem"
    (tmp_path / "other-tsa").mkdir()
    with running_tsa(tmp_path / "other-tsa", "ok") as other:
        shutil.copy(other.root_pem, wrong_root)
    targets = [world["genuine"], world["genuine_bundle"], world["genuine_zip"]]
    with person(monkeypatch, world["lawyer"]):
        for target in targets:
            base = ["--tsa-root", str(world["tsa_root"]), "--trusted-key", str(world["sender_pem"])]
            assert _verify(cli, target, *base)[0] == 0, target
            assert _verify(cli, target, "--trusted-key", stranger)[0] == 1, target
            assert _verify(cli, target, "--size", "1", "--root-hash", "00" * 32, *base)[0] == 1
            assert _verify(cli, target, "--checkpoint", world["held"], *base)[0] == 0
            code, document = _verify(cli, target, "--tsa-root", wrong_root, "--trusted-key",
                                     world["sender_pem"])  # fmt: skip
            assert code == 1, target
            assert "TIMESTAMP_UNTRUSTED" in {f["code"] for f in document["findings"]}
        for target in targets[1:]:
            refused = cli("verify", target, "--ledger-only")
            assert refused.code == 2 and "evidence roots" in refused.err
            assert cli("verify", target, "--root", world["genuine"]).code == 2


def test_self_introduced_key_cannot_change_the_state_of_evidence(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    with person(monkeypatch, tmp_path / "amina-home"):
        assert cli("init", root).code == 0
        assert cli("keys", "generate", "--name", "amina").code == 0
        copy_media(SAMPLES, root / "media")
        assert cli("catalogue", root / "media", "--root", root).code == 0
        photo = _first_photo(root)
    with person(monkeypatch, tmp_path / "mallory-home"):
        # A stranger's key introduces itself half-way, records a new version of an altered
        # file and a note, then appoints itself custodian and disposes of the item.
        assert cli("keys", "generate", "--name", "amina2").code == 0
        assert cli("keys", "generate", "--name", "boss", "--role", "custodian").code == 0
        with (root / photo).open("ab") as handle:
            handle.write(b"altered")
        changed = cli("catalogue", root / photo, "--root", root, "--key", "amina2")
        assert changed.code == 1 and "ORIGINAL_MISSING" in changed.err
        assert cli("event", "note", photo, "--text", "mine now", "--key", "amina2",
                   "--root", root).code == 0  # fmt: skip
        assert cli("event", "dispose", photo, "--reason", "gone", "--key", "boss",
                   "--root", root).code == 0  # fmt: skip
    with person(monkeypatch, tmp_path / "amina-home"):
        code, document = _verify(cli, root)
        codes = [f["code"] for f in document["findings"] if f["severity"] == "error"]
        assert code == 1 and document["verdict"] == "failed"
        # the new version, the note and the disposal
        assert codes.count("UNAUTHORISED_SIGNER") == 3, codes
        # The unauthorised version does not count: the file is judged against the original,
        # and the unauthorised disposal does not excuse its absence either.
        assert "FILE_MODIFIED" in codes
        assert {f["code"] for f in document["findings"]} >= {"KEY_UNVOUCHED"}


def test_stolen_key_and_the_key_the_thief_introduced_stop_verifying(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    home = tmp_path / "amina-home"
    with person(monkeypatch, home):
        assert cli("init", root).code == 0
        assert cli("keys", "generate", "--name", "amina", "--role", "custodian").code == 0
        copy_media(SAMPLES, root / "media")
        assert cli("catalogue", root / "media", "--root", root).code == 0
        photo = _first_photo(root)
        before = len((root / ".custody" / "ledger.jsonl").read_text().splitlines())
    # The thief holds amina's key (a copy of her keyring) and introduces a key of their own.
    thief_home = tmp_path / "thief-home"
    shutil.copytree(home, thief_home)
    with person(monkeypatch, thief_home):
        assert cli("keys", "generate", "--name", "helper", "--role", "custodian").code == 0
        assert cli("keys", "export", "helper", "--out", tmp_path / "helper.pem").code == 0
        assert cli("keys", "introduce", tmp_path / "helper.pem", "--name", "helper",
                   "--role", "custodian", "--key", "amina", "--root", root).code == 0  # fmt: skip
        assert cli("event", "dispose", photo, "--reason", "destroyed", "--key", "helper",
                   "--root", root).code == 0  # fmt: skip
    with person(monkeypatch, home):
        assert _verify(cli, root, "--ledger-only")[0] == 0  # nobody can tell, yet
        revoked = cli("keys", "revoke", "amina", "--compromised-since", str(before),
                      "--reason", "phone seized", "--root", root, "--json")  # fmt: skip
        assert revoked.code == 0, revoked.err
        assert revoked.json()["compromised_since"] == before
        validate(revoked.json(), "cli-keys-revoke.schema.json")
        code, document = _verify(cli, root, "--ledger-only")
        assert code == 1
        revoked_records = {f["seq"] for f in document["findings"] if f["code"] == "KEY_REVOKED"}
        assert revoked_records >= {before, before + 1}, document["findings"]
        helper = next(s for s in document["signers"] if s["name"] == "helper")
        assert helper["compromised_from"] is not None
        earlier = [f for f in document["findings"] if (f["seq"] or 0) < before]
        assert not [f for f in earlier if f["severity"] == "error"]


def test_recatalogued_original_is_missing_until_restored_or_superseded(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    vault = tmp_path / "vault"
    with person(monkeypatch, tmp_path / "amina-home"):
        assert cli("init", root).code == 0
        assert cli("keys", "generate", "--name", "amina").code == 0
        copy_media(SAMPLES, root / "media")
        assert cli("catalogue", root / "media", "--root", root).code == 0
        assert cli("vault", "copy", vault, "--root", root).code == 0
        photo = _first_photo(root)
        original = (root / photo).read_bytes()
        # exiftool ignores the read-only bit when told to overwrite the original.
        os.chmod(root / photo, 0o444)
        subprocess.run(["exiftool", "-q", "-overwrite_original", "-Artist=someone",
                        str(root / photo)], check=True)  # fmt: skip
        code, document = _verify(cli, root)
        assert code == 1 and "FILE_MODIFIED" in {f["code"] for f in document["findings"]}
        assert cli("catalogue", root / photo, "--root", root).code == 1
        code, document = _verify(cli, root)
        missing = [f for f in document["findings"] if f["code"] == "ORIGINAL_MISSING"]
        assert code == 1 and len(missing) == 1 and missing[0]["item"] == photo
        restored = cli("vault", "restore", str(missing[0]["seq"]), "--from", vault,
                       "--root", root, "--json")  # fmt: skip
        assert restored.code == 0, restored.err
        validate(restored.json(), "cli-vault-restore.schema.json")
        entry = restored.json()["restored"][0]
        assert entry["beside"] and (root / entry["path"]).read_bytes() == original
        code, document = _verify(cli, root)
        assert code == 0, document["findings"]


def test_supersede_event_accounts_for_a_replaced_version(
    tmp_path: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    with person(monkeypatch, tmp_path / "amina-home"):
        assert cli("init", root).code == 0
        assert cli("keys", "generate", "--name", "amina").code == 0
        copy_media(SAMPLES, root / "media")
        assert cli("catalogue", root / "media", "--root", root).code == 0
        photo = _first_photo(root)
        with (root / photo).open("ab") as handle:
            handle.write(b"corrected")
        assert cli("catalogue", root / photo, "--root", root).code == 1
        assert _verify(cli, root)[0] == 1
        refused = cli("event", "supersede", photo, "--root", root)
        assert refused.code == 2  # a reason is required
        done = cli("event", "supersede", photo, "--reason", "re-encoded by mistake; the "
                   "original is in the archive vault", "--root", root)  # fmt: skip
        assert done.code == 0, done.err
        assert _verify(cli, root)[0] == 0


def test_root_config_cannot_redirect_verification_to_a_database(
    tmp_path: Path, cli: CLI
) -> None:
    root = tmp_path / "root"
    assert cli("init", root).code == 0
    config = root / ".custody" / "config.toml"
    document = tomllib.loads(config.read_text())
    document["ledger"] = {"backend": "postgresql://eve:hunter2@db.invalid/evil"}
    config.write_text(tomli_w.dumps(document))
    for command in (["verify", root], ["report", root, "--out", tmp_path / "r.html"],
                    ["export", "--all", "--out", tmp_path / "b", "--root", root]):  # fmt: skip
        refused = cli(*command)
        assert refused.code == 2, (command, refused.err)
        assert "you have not used" in refused.err and "hunter2" not in refused.err
        assert len(refused.err.strip().splitlines()) == 1
