"""Secrets: the passphrase and the private key never leave the encrypted key file.

* a full run as real processes - init, keys, catalogue, log, show, history, event, sign,
  proof, timestamp (a loopback TSA), verify, export (folder and zip), verify of the
  bundle, import into a second root, ledger dump, repair, errors (wrong passphrase, a
  path outside the root, an internal error with ``CUSTODY_DEBUG=1`` traceback) - and
  every byte it printed or wrote (stdout, stderr, every file in the evidence roots, the
  bundle, the zip, the exports, TMPDIR, and the environment exiftool was started with)
  is searched for the passphrase and for the private key in every encoding: raw seed,
  hex, base64 (standard and URL-safe), PKCS#8 DER and PEM, and the key derived from the
  passphrase;
* the key file: mode 0600 in a 0700 keyring even under umask 000; Argon2id with at least
  64 MiB; the seed sealed with AES-256-GCM (opened here independently with the
  passphrase, and with nothing else);
* a wrong passphrase: refused with one line, exit 5, nothing written, the guess not echoed.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import tomli_w
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from tests.tsa import running_tsa

from conftest import PASSPHRASE, SAMPLES, copy_media
from test_crash import custody_env, ledger_file, one_line

WRONG = "Tr0ub4dor&3 is not the passphrase"
KEY_ERROR = 5


def derive(passphrase: str, kdf: dict[str, object]) -> bytes:
    return Argon2id(
        salt=base64.b64decode(str(kdf["salt"])),
        length=32,
        iterations=int(str(kdf["iterations"])),
        lanes=int(str(kdf["lanes"])),
        memory_cost=int(str(kdf["memory_kib"])),
    ).derive(passphrase.encode())


def open_key_file(path: Path, passphrase: str) -> bytes:
    """The 32-byte seed, opened from the key file without custody's code."""
    doc = json.loads(path.read_bytes())
    sealed = doc["sealed"]
    aad = f"custody-key/1:{doc['fingerprint']}:{doc['name']}:{doc['role']}".encode()
    key = derive(passphrase, sealed["kdf"])
    return AESGCM(key).decrypt(
        base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), aad
    )


def secret_forms(seed: bytes, derived: bytes) -> dict[str, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forms = {
        "passphrase": PASSPHRASE.encode(),
        "passphrase (UTF-16)": PASSPHRASE.encode("utf-16-le"),
        "seed": seed,
        "seed hex": seed.hex().encode(),
        "seed HEX": seed.hex().upper().encode(),
        "seed base64": base64.b64encode(seed),
        "seed base64url": base64.urlsafe_b64encode(seed).rstrip(b"="),
        "PKCS#8 DER": der,
        "PKCS#8 PEM body": pem.splitlines()[1],
        "derived key": derived,
        "derived key hex": derived.hex().encode(),
        "derived key base64": base64.b64encode(derived),
    }
    return forms


def leaks(data: bytes, forms: dict[str, bytes]) -> list[str]:
    return [name for name, secret in forms.items() if secret in data]


def test_a_full_run_never_shows_or_writes_the_passphrase_or_the_private_key(
    env: Path, tmp_path: Path
) -> None:
    watched = tmp_path / "tmpdir"
    watched.mkdir()
    spy = tmp_path / "exiftool-spy"
    spy.mkdir()
    # exiftool, started by custody, dumps the environment it was given, then runs.
    real = subprocess.run(["sh", "-c", "command -v exiftool"], capture_output=True, text=True)
    if real.returncode != 0:
        pytest.skip("exiftool is not installed")
    wrapper = spy / "exiftool"
    wrapper.write_text(
        f'#!/bin/sh\nenv > "{spy}/environ-$$.txt"\nexec "{real.stdout.strip()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    child_env = custody_env(env, watched, PATH=f"{spy}{os.pathsep}{os.environ['PATH']}")
    transcript: list[tuple[str, bytes]] = []

    def custody(*argv: str | os.PathLike[str], expect: int | None = 0, **extra: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "custody", *[os.fspath(a) for a in argv]],
            env={**child_env, **extra},
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        transcript.append((" ".join(map(str, argv[:2])), proc.stdout + proc.stderr))
        if expect is not None:
            assert proc.returncode == expect, (argv, proc.stderr.decode(errors="replace"))
        return proc.stdout.decode(errors="replace")

    root = tmp_path / "evidence"
    lawyer_root = tmp_path / "lawyer"
    custody("init", root)
    custody("keys", "generate", "--name", "alice")
    custody("keys", "list", "--json")
    custody("keys", "export", "alice")
    custody("keys", "export", "alice", "--out", tmp_path / "alice.pub.pem")
    custody("keys", "export", "alice", "--private", "--out", tmp_path / "alice-backup.key")
    media = copy_media(SAMPLES, root / "media")
    with running_tsa(tmp_path) as tsa:
        config = root / ".custody" / "config.toml"
        settings = tomllib.loads(config.read_text())
        settings["timestamps"]["tsa"] = [tsa.url]  # loopback only: no traffic leaves
        settings["timestamps"]["roots"] = [str(tsa.root_pem)]
        config.write_text(tomli_w.dumps(settings))
        custody("catalogue", media, "--root", root, "--collector", "A. Documenter", "--json")
        custody("log", "--root", root, "--json")
        custody("show", "1", "--root", root, "--json")
        custody("history", "1", "--root", root)
        custody("event", "note", "1", "--text", "seen", "--root", root, "--json")
        custody("sign", "--root", root, "--out", tmp_path / "checkpoint.line", "--json")
        custody("proof", "inclusion", "1", "--root", root, "--out", tmp_path / "proof.json")
        custody("timestamp", "--root", root, "--json")
    custody("verify", root, "--json")
    custody("export", "--all", "--out", tmp_path / "bundle", "--zip", "--root", root, "--json")
    custody("verify", tmp_path / "bundle", "--json")
    custody("ledger", "dump", "--out", tmp_path / "dump.jsonl", "--root", root)
    custody("repair", "--root", root)
    custody("init", lawyer_root)
    custody("import", tmp_path / "bundle", "--root", lawyer_root, "--json")
    # Errors, the wrong passphrase among them, and an internal error's traceback.
    custody("catalogue", tmp_path, "--root", root, expect=4)
    custody("sign", "--root", root, expect=KEY_ERROR, CUSTODY_PASSPHRASE=WRONG)
    settings = tomllib.loads((root / ".custody" / "config.toml").read_text())
    settings["catalogue"]["exiftool_timeout"] = -1.0
    (root / ".custody" / "config.toml").write_text(tomli_w.dumps(settings))
    (media / "late.txt").write_bytes(b"arrived after the export")
    custody("catalogue", media, "--root", root, expect=None, CUSTODY_DEBUG="1")

    keyring = env / "keys"
    seed = open_key_file(keyring / "alice.key", PASSPHRASE)
    kdf = json.loads((keyring / "alice.key").read_bytes())["sealed"]["kdf"]
    forms = secret_forms(seed, derive(PASSPHRASE, kdf))
    found = [(what, leaks(data, forms)) for what, data in transcript if leaks(data, forms)]
    assert found == [], f"secrets in command output: {found}"
    searched = 0
    for folder in (tmp_path, watched):
        for path in folder.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            if path in (keyring / "alice.key", tmp_path / "alice-backup.key"):
                # The encrypted key file and its backup hold the sealed seed only.
                forms_here = {k: v for k, v in forms.items() if not k.startswith("passphrase")}
            else:
                forms_here = forms
            if str(path).startswith(str(tmp_path / "tsa-")):
                continue  # the test TSA's own keys and certificates
            assert leaks(path.read_bytes(), forms_here) == [], path
            searched += 1
    environments = list(spy.glob("environ-*.txt"))
    assert environments, "exiftool was never started"
    for environ in environments:
        assert leaks(environ.read_bytes(), forms) == [], f"exiftool inherited a secret: {environ}"
    assert searched > 100
    print(f"\nsecrets: {len(transcript)} commands, {searched} files searched, none leaked")


def test_key_file_is_private_encrypted_and_memory_hard(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = custody_env(home, tmp_path)

    def loose_umask() -> None:
        os.umask(0)

    made = subprocess.run(
        [sys.executable, "-m", "custody", "keys", "generate", "--name", "alice"],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=loose_umask,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    key_file = home / "keys" / "alice.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    doc = json.loads(key_file.read_bytes())
    sealed = doc["sealed"]
    assert sealed["cipher"] == "aes-256-gcm"
    kdf = sealed["kdf"]
    assert kdf["name"] == "argon2id"
    # Memory-hard: at least one of OWASP's Argon2id settings (46 MiB x 1 pass, 19 MiB x 2
    # passes, ...), i.e. no less than 19 MiB and 46 MiB-passes of work.
    assert kdf["memory_kib"] >= 19 * 1024
    assert kdf["memory_kib"] * kdf["iterations"] >= 46 * 1024
    assert kdf["lanes"] >= 1
    assert len(base64.b64decode(kdf["salt"])) >= 16
    assert len(base64.b64decode(sealed["nonce"])) == 12
    seed = open_key_file(key_file, PASSPHRASE)
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64encode(raw).decode() == doc["public_key"]
    assert leaks(key_file.read_bytes(), secret_forms(seed, derive(PASSPHRASE, kdf))) == []
    with pytest.raises(InvalidTag):
        open_key_file(key_file, WRONG)


def test_wrong_passphrase_is_refused_cleanly_and_writes_nothing(
    catalogued: Path, env: Path, tmp_path: Path
) -> None:
    watched = tmp_path / "tmpdir"
    watched.mkdir()
    child_env = custody_env(env, watched, CUSTODY_PASSPHRASE=WRONG)
    ledger = ledger_file(catalogued)
    before = ledger.read_bytes()
    (catalogued / "media" / "new.txt").write_bytes(b"new evidence")
    for argv in (
        ["catalogue", catalogued / "media", "--root", catalogued],
        ["sign", "--root", catalogued],
        ["repair", "--root", catalogued],
        ["event", "note", "1", "--text", "x", "--root", catalogued],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "custody", *map(str, argv)],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        line = one_line(done.stderr)
        assert done.returncode == KEY_ERROR, line
        assert line == "custody: error: wrong passphrase for key 'alice'"
        assert WRONG not in done.stdout + done.stderr and PASSPHRASE not in done.stderr
    assert ledger.read_bytes() == before
    assert list(watched.iterdir()) == []
    # No passphrase at all and no terminal to ask on: refused the same way.
    no_pass = {k: v for k, v in child_env.items() if k != "CUSTODY_PASSPHRASE"}
    done = subprocess.run(
        [sys.executable, "-m", "custody", "sign", "--root", str(catalogued)],
        env=no_pass,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert done.returncode == KEY_ERROR and "no passphrase" in one_line(done.stderr)
