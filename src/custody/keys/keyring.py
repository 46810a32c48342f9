"""Signing identities: Ed25519 keys, their encryption at rest, and the personal keyring.

A person's private keys live in their keyring (``$CUSTODY_HOME/keys``, default
``~/.local/share/custody/keys``), not in an evidence root, because evidence roots are
copied to vaults and bundles and a person's identity outlives any one case. Each key file
is JSON holding the public key in the clear and the 32-byte private seed sealed with
AES-256-GCM under a key derived from the passphrase with Argon2id (memory-hard, so a
stolen laptop's key file resists guessing). Files are written 0600 and never printed.

A key's fingerprint is the hex SHA-256 of its raw 32-byte public key; an expert can
recompute it with ``openssl pkey -pubin -in key.pem -outform DER | tail -c 32 | sha256sum``.

A key has a short **handle** (``name``: ASCII letters, digits, ``.``, ``_``, ``-``; the key
file's name and what ``--key`` takes) and, optionally, its **holder**'s full name as they
write it, in any script ("Amina Haddad", "أمينة"), which the key's introduction record
carries (``holder``). ``handle_for`` derives a handle from a full name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from custody.encoding import b64decode, b64encode
from custody.errors import PassphraseError, SigningKeyError, UsageError
from custody.home import keyring_dir
from custody.i18n import _
from custody.keys.roles import ROLES
from custody.system.files import write_atomic

KEY_FILE_FORMAT = "custody-key/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# OWASP's recommended Argon2id setting (46 MiB, 1 pass, 1 lane): ~60 ms here, paid on
# every signing command; the parameters are stored per key file, so they can be raised.
ARGON2_MEMORY_KIB = 47104
ARGON2_ITERATIONS = 1
ARGON2_LANES = 1


def verify_ed25519(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    """Check an Ed25519 signature (RFC 8032) with libsodium.

    libsodium verifies about twice as fast as OpenSSL here (55 vs 105 µs), which is most of what
    ``verify`` spends per record, and it is the stricter of the two (it also refuses
    small-order keys and non-canonical encodings). Signing stays with ``cryptography``;
    the tests check our signatures with ``openssl pkeyutl`` as well.
    """
    if len(signature) != 64 or len(public_raw) != 32:
        return False
    sign_open, refusals = _libsodium()
    try:
        sign_open(signature + message, public_raw)
    except refusals:
        return False
    return True


@functools.cache
def _libsodium() -> tuple[Callable[[bytes, bytes], bytes], tuple[type[Exception], ...]]:
    # Imported on first use (other commands need not pay for it) and only once: verify
    # calls this for every record, and a repeated import statement costs a microsecond.
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError, CryptoError

    return crypto_sign_open, (BadSignatureError, CryptoError, ValueError, TypeError)


def fingerprint_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()


MAX_HOLDER = 200


def check_name(name: str) -> str:
    """A key handle as typed on the command line (a usage mistake otherwise: exit 2)."""
    if not _NAME.fullmatch(name):
        raise UsageError(
            _(
                "invalid key handle {name!r}: use 1-64 ASCII letters, digits, '.', '_' "
                "or '-' (the holder's full name, in any script, goes in --name)"
            ).format(name=name)
        )
    return name


def is_handle(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def check_holder(name: str) -> str:
    """A holder's full name: any script, NFC-normalised, one line, no control or format
    characters (which could hide or reorder what a reader sees), at most 200 characters."""
    text = unicodedata.normalize("NFC", " ".join(name.split()))
    if not text:
        raise UsageError(_("the holder's name is empty"))
    if len(text) > MAX_HOLDER:
        raise UsageError(
            _("the holder's name is longer than {limit} characters").format(limit=MAX_HOLDER)
        )
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise UsageError(
                _("the holder's name contains the invisible character U+{code:04X}").format(
                    code=ord(char)
                )
            )
    return text


def handle_for(full_name: str) -> str | None:
    """A short ASCII handle derived from a full name ("Amina Haddad" -> "amina-haddad"),
    or None when the name has no Latin letters or digits to build one from ("أمينة")."""
    folded = unicodedata.normalize("NFKD", full_name)
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c)).encode(
        "ascii", "ignore"
    )
    handle = re.sub(r"[^a-z0-9._-]+", "-", ascii_only.decode().lower()).strip("-._")[:64]
    handle = handle.rstrip("-._")
    return handle if handle and _NAME.fullmatch(handle) else None


@dataclass(frozen=True)
class PublicKey:
    """A verification key as introduced in a ledger or held in a keyring."""

    raw: bytes
    name: str
    role: str
    holder: str | None = None  # the holder's full name, any script (introduced with the key)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        return verify_ed25519(self.raw, signature, message)

    def pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class PrivateSigner(Protocol):
    """What signs: an Ed25519 private key in this process, or the agent's stand-in for one
    (``custody.keys.agent``)."""

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class SigningKey:
    """An unlocked private key. Its repr never shows key material."""

    public: PublicKey
    _private: PrivateSigner = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    @property
    def name(self) -> str:
        return self.public.name

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


@dataclass(frozen=True)
class KeyFile:
    """A key file on disk: public half readable without the passphrase."""

    path: Path
    public: PublicKey
    created: str
    _sealed: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return self.public.name

    def unlock(self, passphrase: str) -> SigningKey:
        sealed = self._sealed
        try:
            kdf = sealed["kdf"]
            key = _derive(passphrase, b64decode(kdf["salt"], "salt"), kdf)
            seed = AESGCM(key).decrypt(
                b64decode(sealed["nonce"], "nonce"),
                b64decode(sealed["ciphertext"], "ciphertext"),
                _aad(self.public),
            )
        except InvalidTag:
            raise PassphraseError(
                _("wrong passphrase for key {name!r}").format(name=self.name)
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SigningKeyError(
                _("key file {path} is damaged: {why}").format(path=self.path, why=exc)
            ) from None
        private = Ed25519PrivateKey.from_private_bytes(seed)
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if raw != self.public.raw:
            raise SigningKeyError(
                _("key file {path} is damaged: halves do not match").format(path=self.path)
            )
        return SigningKey(self.public, private)


def _aad(public: PublicKey) -> bytes:
    # Binding the public half means a sealed seed cannot be swapped into another key file.
    bound = f"{KEY_FILE_FORMAT}:{public.fingerprint}:{public.name}:{public.role}"
    if public.holder is not None:  # key files without a holder keep their original binding
        bound += f":holder={public.holder}"
    return bound.encode()


# What a key file may ask of Argon2id: a file from elsewhere ('keys import') must not make
# unlocking it take hours or all the memory there is. custody itself writes 1, 1, 46 MiB.
_MAX_ITERATIONS = 64
_MAX_LANES = 64
_MAX_MEMORY_KIB = 1 << 20  # 1 GiB


def passphrase_bytes(passphrase: str) -> bytes:
    """The passphrase as UTF-8, or PassphraseError - saying nothing of the passphrase.

    A byte that is not UTF-8 (from CUSTODY_PASSPHRASE, or a terminal in another encoding)
    reaches Python as a lone surrogate; the codec's own message would echo it and its
    position, so it is never shown, nor chained to this error.
    """
    try:
        return passphrase.encode("utf-8")
    except UnicodeEncodeError:
        raise PassphraseError(
            _(
                "the passphrase is not valid UTF-8 text: custody reads passphrases as "
                "UTF-8 (check CUSTODY_PASSPHRASE, or the terminal's character encoding)"
            )
        ) from None


def _derive(passphrase: str, salt: bytes, params: dict[str, Any]) -> bytes:
    if params.get("name") != "argon2id":
        raise ValueError(_("unsupported key derivation"))
    iterations = int(params["iterations"])
    lanes = int(params["lanes"])
    memory = int(params["memory_kib"])
    if not (
        1 <= iterations <= _MAX_ITERATIONS
        and 1 <= lanes <= _MAX_LANES
        and 8 * lanes <= memory <= _MAX_MEMORY_KIB
    ):
        raise ValueError(_("key derivation parameters out of range"))
    secret = passphrase_bytes(passphrase)
    return Argon2id(
        salt=salt, length=32, iterations=iterations, lanes=lanes, memory_cost=memory
    ).derive(secret)


def seal(
    private: Ed25519PrivateKey,
    name: str,
    role: str,
    passphrase: str,
    created: str,
    holder: str | None = None,
) -> bytes:
    """Serialise a private key as an encrypted key file (the bytes written to disk)."""
    if not passphrase:
        raise SigningKeyError(_("an empty passphrase would leave the key unprotected"))
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public = PublicKey(raw_public, name, role, holder)
    salt = secrets.token_bytes(16)
    params: dict[str, Any] = {
        "name": "argon2id",
        "salt": b64encode(salt),
        "iterations": ARGON2_ITERATIONS,
        "lanes": ARGON2_LANES,
        "memory_kib": ARGON2_MEMORY_KIB,
    }
    key = _derive(passphrase, salt, params)
    nonce = secrets.token_bytes(12)
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    document: dict[str, Any] = {
        "format": KEY_FILE_FORMAT,
        "name": name,
        "role": role,
        "algorithm": "ed25519",
        "fingerprint": public.fingerprint,
        "public_key": b64encode(raw_public),
        "created": created,
        "sealed": {
            "cipher": "aes-256-gcm",
            "kdf": params,
            "nonce": b64encode(nonce),
            "ciphertext": b64encode(AESGCM(key).encrypt(nonce, seed, _aad(public))),
        },
    }
    if holder is not None:
        document["holder"] = holder
    return (json.dumps(document, indent=2) + "\n").encode()


_MAX_KEY_FILE = 1 << 20  # a key file is under 1 KiB; a larger one is not one


def load_key_file(path: Path) -> KeyFile:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
        if len(data) > _MAX_KEY_FILE:
            raise ValueError(_("far too large to be a key file"))
        document = json.loads(data)
        if document.get("format") != KEY_FILE_FORMAT:
            raise ValueError(_("not a {format} file").format(format=KEY_FILE_FORMAT))
        raw = b64decode(document["public_key"], "public key")
        holder = document.get("holder")
        if holder is not None and not isinstance(holder, str):
            raise ValueError(_("holder is not text"))
        public = PublicKey(raw, document["name"], document["role"], holder)
        if public.fingerprint != document["fingerprint"] or len(raw) != 32:
            raise ValueError(_("fingerprint does not match the public key"))
        return KeyFile(path, public, document["created"], document["sealed"])
    except OSError as exc:
        raise SigningKeyError(
            _("cannot read key file {path}: {strerror}").format(path=path, strerror=exc.strerror)
        ) from None
    except RecursionError:
        raise SigningKeyError(
            _("key file {path} is damaged: nested too deeply").format(path=path)
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SigningKeyError(
            _("key file {path} is damaged: {why}").format(path=path, why=exc)
        ) from None


class Keyring:
    """The private keys of the person running custody."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or keyring_dir()

    def path_for(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}.key"

    def list(self) -> list[KeyFile]:
        if not self.directory.is_dir():
            return []
        return [load_key_file(p) for p in sorted(self.directory.glob("*.key"))]

    def get(self, name: str) -> KeyFile:
        path = self.path_for(name)
        if not path.exists():
            known = ", ".join(k.name for k in self.list())
            raise SigningKeyError(
                (
                    _("no key named {name!r} in {directory} (keys: {known})")
                    if known
                    else _("no key named {name!r} in {directory} (keys: none)")
                ).format(name=name, directory=self.directory, known=known)
            )
        return load_key_file(path)

    def select(self, name: str | None) -> KeyFile:
        """The key named, or the only key; an error when the choice is ambiguous."""
        if name:
            return self.get(name)
        keys = self.list()
        if not keys:
            raise SigningKeyError(_("no signing key yet: run 'custody keys generate --name NAME'"))
        if len(keys) > 1:
            names = ", ".join(k.name for k in keys)
            raise SigningKeyError(
                _("several keys ({names}): choose one with --key NAME").format(names=names)
            )
        return keys[0]

    def generate(
        self,
        name: str | None,
        role: str,
        passphrase: str,
        created: str,
        holder: str | None = None,
    ) -> KeyFile:
        """A new key. Without a handle (``name`` None: a holder's name with no Latin letters
        to build one from), the handle is ``key-`` and the first 8 hex of the fingerprint."""
        if role not in ROLES:
            raise UsageError(
                _("unknown role {role!r}: choose one of {choices}").format(
                    role=role, choices=", ".join(ROLES)
                )
            )
        private = Ed25519PrivateKey.generate()
        if name is None:
            raw = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            name = f"key-{fingerprint_of(raw)[:8]}"
        path = self.path_for(name)
        if path.exists():
            raise SigningKeyError(
                _(
                    "a key named {name!r} already exists ({path}); choose another with --handle"
                ).format(name=name, path=path)
            )
        return self.store(private, name, role, passphrase, created, holder)

    def restore(self, backup: Path) -> KeyFile:
        """Put a backup made by ``keys export --private`` back into the keyring."""
        key = load_key_file(backup)  # validates the format and the public half
        path = self.path_for(key.name)
        if path.exists():
            if load_key_file(path).public.fingerprint == key.public.fingerprint:
                return load_key_file(path)
            raise SigningKeyError(
                _("a different key named {name!r} is already in {directory}").format(
                    name=key.name, directory=self.directory
                )
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, backup.read_bytes(), mode=0o600)
        return load_key_file(path)

    def store(
        self,
        private: Ed25519PrivateKey,
        name: str,
        role: str,
        passphrase: str,
        created: str,
        holder: str | None = None,
    ) -> KeyFile:
        path = self.path_for(name)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, seal(private, name, role, passphrase, created, holder), mode=0o600)
        return load_key_file(path)
