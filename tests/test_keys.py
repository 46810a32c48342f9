"""custody.keys.keyring: generating and unlocking keys, their protection at rest, keyring rules."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.helpers import tool

from custody.errors import PassphraseError, SigningKeyError, UsageError
from custody.keys.keyring import Keyring, SigningKey, keyring_dir, load_key_file

PASSPHRASE = "correct horse battery staple"
CREATED = "2026-11-27T07:02:10.123456Z"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Keyring, SigningKey]:
    """One real key (Argon2id costs ~0.1 s a derivation, so share it)."""
    keyring = Keyring(tmp_path_factory.mktemp("keyring") / "keys")
    key_file = keyring.generate("alice", "documenter", PASSPHRASE, CREATED)
    return keyring, key_file.unlock(PASSPHRASE)


def seed_of(key: SigningKey) -> bytes:
    return key._private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_generate_then_unlock_signs_verifiably(generated: tuple[Keyring, SigningKey]) -> None:
    keyring, key = generated
    key_file = keyring.get("alice")
    assert key_file.public == key.public
    assert key_file.created == CREATED
    assert key.name == "alice" and key.public.role == "documenter"
    assert len(key.public.raw) == 32
    signature = key.sign(b"message")
    assert key_file.public.verify(signature, b"message")
    assert not key_file.public.verify(signature, b"messagf")
    # Unlocking again gives the same private key (a key is not re-generated on unlock).
    assert seed_of(key_file.unlock(PASSPHRASE)) == seed_of(key)


@pytest.mark.parametrize("wrong", ["", "correct horse battery stapl", PASSPHRASE + " ", "ÇORRECT"])
def test_wrong_passphrase(generated: tuple[Keyring, SigningKey], wrong: str) -> None:
    keyring, _ = generated
    with pytest.raises(PassphraseError, match="wrong passphrase for key 'alice'"):
        keyring.get("alice").unlock(wrong)


def test_key_file_is_private_and_holds_no_secret(generated: tuple[Keyring, SigningKey]) -> None:
    keyring, key = generated
    path = keyring.path_for("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyring.directory.stat().st_mode) & 0o077 == 0
    data = path.read_bytes()
    seed = seed_of(key)
    for secret in (
        PASSPHRASE.encode(),
        seed,
        seed.hex().encode(),
        base64.b64encode(seed),
        base64.b64encode(seed).rstrip(b"="),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
    ):
        assert secret not in data
    document = json.loads(data)
    assert document["public_key"] == base64.b64encode(key.public.raw).decode()
    assert document["sealed"]["cipher"] == "aes-256-gcm"
    assert document["sealed"]["kdf"]["name"] == "argon2id"
    # The ciphertext is the 32-byte seed plus a 16-byte GCM tag, nothing readable.
    assert len(base64.b64decode(document["sealed"]["ciphertext"])) == 48
    assert "sealed" not in repr(keyring.get("alice"))
    assert repr(seed) not in repr(key) and seed.hex() not in repr(key)


def test_public_pem_matches_openssl(generated: tuple[Keyring, SigningKey], tmp_path: Path) -> None:
    _, key = generated
    pem = tmp_path / "alice.pem"
    pem.write_bytes(key.public.pem())
    der = tool("openssl", "pkey", "-pubin", "-in", pem, "-outform", "DER").stdout
    assert der[-32:] == key.public.raw
    fingerprint = tool("sha256sum", input=der[-32:]).stdout.split()[0].decode()
    assert fingerprint == key.public.fingerprint == key.fingerprint


def test_tampered_public_half_does_not_unlock(
    generated: tuple[Keyring, SigningKey], tmp_path: Path
) -> None:
    keyring, _ = generated
    document = json.loads(keyring.path_for("alice").read_text())
    document["role"] = "lawyer"  # bound into the AES-GCM associated data
    forged = tmp_path / "alice.key"
    forged.write_text(json.dumps(document))
    with pytest.raises(SigningKeyError):
        load_key_file(forged).unlock(PASSPHRASE)
    document["role"] = "documenter"
    document["public_key"] = base64.b64encode(b"\x01" * 32).decode()
    forged.write_text(json.dumps(document))
    with pytest.raises(SigningKeyError, match="damaged"):
        load_key_file(forged)


@pytest.mark.parametrize("content", [b"", b"{}", b"not json", b'{"format": "custody-key/1"}'])
def test_damaged_key_file_is_a_signing_key_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.key"
    path.write_bytes(content)
    with pytest.raises(SigningKeyError, match="damaged"):
        load_key_file(path)


def test_empty_passphrase_and_bad_role_and_bad_names_refused(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    with pytest.raises(SigningKeyError, match="empty passphrase"):
        keyring.generate("alice", "documenter", "", CREATED)
    # Usage mistakes (a role that does not exist, a handle that cannot be a file name) are
    # usage errors (exit 2), not key errors.
    with pytest.raises(UsageError, match="role"):
        keyring.generate("alice", "admin", PASSPHRASE, CREATED)
    for name in ("", "../evil", "a/b", "-dash", ".hidden", "x" * 65, "naïve"):
        with pytest.raises(UsageError, match="invalid key handle"):
            keyring.path_for(name)
    assert not (tmp_path / "keys").exists() or keyring.list() == []
    assert not (tmp_path / "evil.key").exists()


def test_generate_refuses_to_overwrite(generated: tuple[Keyring, SigningKey]) -> None:
    keyring, _ = generated
    before = keyring.path_for("alice").read_bytes()
    with pytest.raises(SigningKeyError, match="already exists"):
        keyring.generate("alice", "documenter", "other passphrase", CREATED)
    assert keyring.path_for("alice").read_bytes() == before


def test_keyring_selection_rules(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "keys")
    with pytest.raises(SigningKeyError, match="keys generate"):
        keyring.select(None)
    alice = keyring.generate("alice", "documenter", PASSPHRASE, CREATED)
    assert keyring.select(None).public == alice.public  # the only key is the default
    bob = keyring.generate("bob", "custodian", PASSPHRASE, CREATED)
    with pytest.raises(SigningKeyError, match="--key") as info:
        keyring.select(None)
    assert "alice" in str(info.value) and "bob" in str(info.value)
    assert keyring.select("bob").public == bob.public
    assert keyring.select("alice").public == alice.public
    with pytest.raises(SigningKeyError, match="no key named 'carol'") as info:
        keyring.select("carol")
    assert "alice, bob" in str(info.value)
    assert [k.name for k in keyring.list()] == ["alice", "bob"]
    assert alice.public.fingerprint != bob.public.fingerprint


def test_keyring_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CUSTODY_HOME", str(tmp_path / "home"))
    assert keyring_dir() == tmp_path / "home" / "keys"
    monkeypatch.delenv("CUSTODY_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert keyring_dir() == tmp_path / "xdg" / "custody" / "keys"
    # Keys never live in an evidence root: roots are copied to vaults and bundles.
    assert ".custody" not in os.fspath(keyring_dir())
