"""custody's checkpoints as C2SP signed notes, with Ed25519 note signatures and witness
cosignatures (tlog-cosignature/v1), so that tooling built for Go's checksum database and for
transparency-log witnesses can read and check them.

This module owns four byte formats and nothing else:

* **signed notes** (c2sp.org/signed-note): a text ending in ``\\n``, a blank line, then one
  or more lines ``— <key name> <base64(4-byte key ID || signature)>`` (EM DASH U+2014);
* **verifier keys** (vkeys): ``<key name>+<8 lowercase hex key ID>+<base64(type || key)>``;
* **checkpoint bodies** (c2sp.org/tlog-checkpoint): origin line, decimal tree size, base64
  RFC 6962 root hash, optional non-empty extension lines;
* **Ed25519 cosignatures** (c2sp.org/tlog-cosignature, signature type ``0x04``): an 8-byte
  big-endian POSIX time followed by a 64-byte Ed25519 signature over
  ``"cosignature/v1\\ntime <seconds>\\n" || checkpoint body``.

It may import ``custody.errors``, ``custody.i18n`` (its messages are said in the run's
language; the bytes it makes never are) and well-kept libraries (``cryptography``) only. It
never prints, never touches files and never reads a clock: times are passed in.

Sources followed (read, not copied):

* C2SP/C2SP ``signed-note.md`` at b3a911e3f2bd75a6ccdd0bf04e9e1912961c439a,
  ``tlog-checkpoint.md`` at c0d0289bb8fc9c07c8ffe10a9ebb9bded4a9b500 and
  ``tlog-cosignature.md`` at 01194db11950a0ae2b2b2401afa0a4063a822458 (repository HEAD
  5ba5ee830903e91240fc6f9f3a7a9293d49e69c9);
* golang/mod ``sumdb/note/note.go`` at fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db, whose
  ``Open`` parsing is unchanged since v0.7.0 (7c05a442b7c1d1a107879b4a090bb5a38d3774a1, the
  version Debian ships and the tests run); ``sumdb/tlog/note.go`` (``ParseTree``) likewise.

Where custody is stricter than Go's ``note.Open`` (each is tested against Go):

* a second signature line with the same (key name, key ID) is refused as malformed; Go keeps
  the first and silently skips the rest *without verifying them*;
* base64 must be canonical (RFC 4648 §3.5: zero pad bits), so every note has one byte form;
* a note is at most ``MAX_NOTE_BYTES``; Go's ``Open`` has no size limit (its ``ParseTree``
  stops at 10^6 bytes, the figure used here);
* a checkpoint of size 0 must carry the empty tree's root, SHA-256 of nothing;
* every signature from a known key is verified, and any failure fails the note (the
  signed-note SHOULD); Go stops at the first failure, which gives the same verdict.

Conventions custody chooses (the lead may change the defaults, which are parameters):

* **origin**: ``custody.ledger/<ledger id, 64 lowercase hex>`` where the ledger id is
  SHA-256 of ledger line 0 without its newline, i.e. the same bytes as Merkle leaf 0 and the
  value record 1 carries as ``prev``. Line 0 is a signed key self-introduction with a
  microsecond time, so two ledgers never share it, and it never changes once written.
* **the ledger's own signature** on a checkpoint uses the origin as key name, as
  tlog-checkpoint recommends ("the log's key name SHOULD match the origin line"); the
  ledger's several signers stay apart by key ID, which is computed from each public key.
* **a cosigner held by custody** (a lawyer's or partner's custody key) is named
  ``custody-<first 16 hex of its key fingerprint>`` (``key_name``). The holder's own name is
  not used: it is free text (spaces, Arabic script, ``+``) that the key-name rules forbid,
  two holders may share it, and it can change, whereas the key ID is computed over the name,
  so the name must be derivable from the public key alone by a verifier years later.
  Sixty-four bits keep accidental collisions out of reach; a deliberate collision gains
  nothing, because a signature is only counted after it verifies with the configured key.
* **domain separation**: one custody Ed25519 key may sign ledger records (canonical JSON,
  first byte ``{``), note texts (first line an origin) and cosignatures (first line
  ``cosignature/v1``). ``sign_note`` refuses texts starting with ``{`` or ``cosignature/``,
  so no signature made here can be replayed as one of the other two kinds.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.errors import InputError, ProofError, SigningKeyError, UsageError
from custody.i18n import _, ngettext

__all__ = [
    "COSIGNATURE_TIME_LIMIT",
    "EMPTY_ROOT",
    "FUTURE_TOLERANCE",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "ORIGIN_PREFIX",
    "SIG_TYPE_COSIGNATURE_V1",
    "SIG_TYPE_ED25519",
    "Checkpoint",
    "CheckpointVerification",
    "Cosigner",
    "Note",
    "NoteFormatError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerification",
    "NoteVerificationError",
    "SignFunction",
    "SignatureCheck",
    "SignatureStatus",
    "VerifierKey",
    "cosign_checkpoint",
    "cosignature_message",
    "is_valid_key_name",
    "key_id",
    "key_name",
    "ledger_id",
    "ledger_origin",
    "parse_checkpoint",
    "parse_note",
    "parse_vkey",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint",
    "verify_note",
]

SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04

# Go's note.Open refuses a 101st signature line; signed-note asks verifiers to accept 16.
MAX_SIGNATURES = 100
# Go's tlog.ParseTree refuses checkpoint texts over 1e6 bytes; a whole note gets the same cap.
MAX_NOTE_BYTES = 1_000_000
# RFC 9162 tree sizes are uint64 (custody.merkle uses the same bound).
MAX_TREE_SIZE = 2**64 - 1
# tlog-cosignature: "It MUST NOT exceed 2^63 - 1".
COSIGNATURE_TIME_LIMIT = 2**63 - 1
# Clock skew allowed between a cosigner and the verifier before a time counts as future.
FUTURE_TOLERANCE = timedelta(minutes=5)
EMPTY_ROOT = hashlib.sha256(b"").digest()
ORIGIN_PREFIX = "custody.ledger"

_HASH_SIZE = 32
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_COSIG_SIZE = 8 + _ED25519_SIG_SIZE
_KEY_NAME_FINGERPRINT_HEX = 16
_SIG_PREFIX = "— "  # EM DASH U+2014, space
_COSIG_HEADER = "cosignature/v1\n"
_KNOWN_TYPES = {SIG_TYPE_ED25519: "ed25519", SIG_TYPE_COSIGNATURE_V1: "cosignature/v1"}

# Unicode White_Space, which is what Go's unicode.IsSpace tests (its Latin-1 fast path lists
# the same characters); Python's str.isspace() differs (it also takes U+001C..U+001F).
_WHITE_SPACE = frozenset(
    [*map(chr, range(0x09, 0x0E)), " ", "\x85", "\xa0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_HEX8 = re.compile(r"[0-9a-f]{8}", re.ASCII)

SignFunction = Callable[[bytes], bytes]
"""Ed25519-signs a message with the private key the caller holds (e.g. a decrypted custody
key); returns the 64-byte signature."""


class NoteFormatError(InputError):
    """A note, checkpoint body or verifier key is not in its format."""


class NoteVerificationError(ProofError):
    """A note or checkpoint did not verify under the keys and policy given."""


# --- small helpers ---------------------------------------------------------------------


def _show(text: str, limit: int = 60) -> str:
    """A hostile string made safe for a one-line message: escaped and shortened."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return ascii(shown)


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 with padding, canonical only: one value has exactly one spelling."""
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise NoteFormatError(
            _("{what} is not valid base64: {text}").format(what=what, text=_show(text))
        ) from None
    if _b64encode(raw) != text:
        raise NoteFormatError(
            _("{what} is not canonical base64: {text}").format(what=what, text=_show(text))
        )
    return raw


def _check_text_chars(text: str, what: str) -> None:
    """Valid UTF-8 (no lone surrogates) and no ASCII control character other than newline."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteFormatError(_("{what} is not valid UTF-8").format(what=what)) from None
    bad = _CONTROL.search(text)
    if bad is not None:
        raise NoteFormatError(
            _(
                "{what} contains the control character U+{code:04X} (a CRLF line end, "
                "tab or similar); signed notes allow only LF"
            ).format(what=what, code=ord(bad.group()))
        )


def is_valid_key_name(name: str) -> bool:
    """The signed-note key-name rule (Go's ``isValidName``): non-empty, valid UTF-8, no
    Unicode White_Space and no ``+``; custody also refuses the C0 controls, which would make
    the note itself malformed."""
    if not name or "+" in name or any(c in _WHITE_SPACE for c in name):
        return False
    if _CONTROL.search(name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require_key_name(name: str) -> None:
    if not isinstance(name, str) or not is_valid_key_name(name):
        raise NoteFormatError(
            _(
                "invalid key name {name}: it must be non-empty and contain no spaces, "
                "no '+' and no control characters"
            ).format(name=_show(str(name)))
        )


def _require_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _ED25519_KEY_SIZE:
        raise UsageError(_("an Ed25519 public key is exactly 32 bytes"))


def key_id(name: str, sig_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || type || public key)[:4]`` as a big-endian uint32."""
    _require_key_name(name)
    if not 0 <= sig_type <= 0xFF:
        raise UsageError(_("signature type {sig_type} is not one byte").format(sig_type=sig_type))
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != _ED25519_SIG_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- conventions -----------------------------------------------------------------------


def ledger_id(first_line: bytes) -> bytes:
    """SHA-256 of ledger line 0 without its newline: Merkle leaf 0's bytes, record 1's
    ``prev``. Passing the line with its newline is refused, so the id cannot drift."""
    if not isinstance(first_line, bytes) or not first_line or b"\n" in first_line:
        raise UsageError(_("the ledger id is computed over line 0 without its newline"))
    return hashlib.sha256(first_line).digest()


def ledger_origin(ledger_id: bytes, prefix: str = ORIGIN_PREFIX) -> str:
    """The checkpoint origin of a ledger: ``<prefix>/<ledger id hex>``."""
    if not isinstance(ledger_id, bytes) or len(ledger_id) != _HASH_SIZE:
        raise UsageError(_("a ledger id is a 32-byte SHA-256 digest"))
    # The origin doubles as the ledger's key name, so it obeys the key-name rules; and it must
    # not open like the other messages custody keys sign (see the module docstring).
    _require_key_name(prefix)
    if prefix.startswith(("{", "cosignature/")):
        raise UsageError(
            _("origin prefix {prefix} collides with another signed format").format(
                prefix=_show(prefix)
            )
        )
    return f"{prefix}/{ledger_id.hex()}"


def key_name(public_key: bytes, prefix: str = "custody") -> str:
    """``<prefix>-<first 16 hex of SHA-256(public key)>``: a key name derived from the key
    alone (custody's fingerprint is that SHA-256), for cosigners custody holds keys of."""
    _require_public_key(public_key)
    name = f"{prefix}-{hashlib.sha256(public_key).hexdigest()[:_KEY_NAME_FINGERPRINT_HEX]}"
    _require_key_name(name)
    return name


# --- verifier keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifierKey:
    """A public key a verifier trusts, with the name and type it signs under."""

    name: str
    sig_type: int
    public_key: bytes
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        _require_key_name(self.name)
        if self.sig_type not in _KNOWN_TYPES:
            raise UsageError(
                _(
                    "signature type 0x{sig_type:02x} is not supported here (only 0x01 "
                    "Ed25519 and 0x04 Ed25519 cosignature/v1)"
                ).format(sig_type=self.sig_type)
            )
        _require_public_key(self.public_key)
        object.__setattr__(self, "key_id", key_id(self.name, self.sig_type, self.public_key))

    @classmethod
    def ed25519(cls, name: str, public_key: bytes) -> VerifierKey:
        return cls(name, SIG_TYPE_ED25519, public_key)

    @classmethod
    def cosignature_v1(cls, name: str, public_key: bytes) -> VerifierKey:
        return cls(name, SIG_TYPE_COSIGNATURE_V1, public_key)

    @property
    def kind(self) -> str:
        return _KNOWN_TYPES[self.sig_type]

    @property
    def key_id_hex(self) -> str:
        return f"{self.key_id:08x}"

    def vkey(self) -> str:
        """The signed-note verifier-key text."""
        material = _b64encode(bytes([self.sig_type]) + self.public_key)
        return f"{self.name}+{self.key_id_hex}+{material}"


def parse_vkey(text: str) -> VerifierKey:
    """Read ``<name>+<hex key ID>+<base64(type || key)>``; the key ID must match."""
    if not isinstance(text, str) or len(text) > 1000:
        raise NoteFormatError(_("a verifier key is a short line of text"))
    name, _sep, rest = text.partition("+")
    hex_id, _sep, material64 = rest.partition("+")
    _require_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise NoteFormatError(
            _("verifier key {text}: the key ID must be 8 lowercase hex").format(text=_show(text))
        )
    material = _b64decode(material64, _("verifier key {name}").format(name=_show(name)))
    if len(material) != 1 + _ED25519_KEY_SIZE or material[0] not in _KNOWN_TYPES:
        raise NoteFormatError(
            _("verifier key {name}: not an Ed25519 (0x01) or cosignature/v1 (0x04) key").format(
                name=_show(name)
            )
        )
    key = VerifierKey(name, material[0], material[1:])
    if key.key_id_hex != hex_id:
        raise NoteFormatError(
            _(
                "verifier key {name}: key ID {hex_id} does not match the key (computed "
                "{key_id_hex})"
            ).format(name=_show(name), hex_id=hex_id, key_id_hex=key.key_id_hex)
        )
    return key


# --- notes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key ID and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes

    def __post_init__(self) -> None:
        _require_key_name(self.name)
        if not isinstance(self.key_id, int) or not 0 <= self.key_id <= 0xFFFFFFFF:
            raise NoteFormatError(_("a key ID is a 32-bit unsigned integer"))
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteFormatError(
                _("the signature by {name} is empty").format(name=_show(self.name))
            )

    @property
    def key_id_hex(self) -> str:
        return f"{self.key_id:08x}"

    def line(self) -> str:
        """The line as it appears in the note, without its newline."""
        payload = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIG_PREFIX}{self.name} {_b64encode(payload)}"


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: tuple[NoteSignature, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.endswith("\n"):
            raise NoteFormatError(_("a note text must end with a newline"))
        _check_text_chars(self.text, _("the note text"))
        if not isinstance(self.signatures, tuple):
            raise UsageError(_("Note.signatures is a tuple"))
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteFormatError(
                _("a note has more than {limit} signatures").format(limit=MAX_SIGNATURES)
            )
        seen: set[tuple[str, int]] = set()
        for sig in self.signatures:
            if (sig.name, sig.key_id) in seen:
                raise NoteFormatError(
                    _(
                        "two signatures by {name} with key ID {key_id_hex}: a note carries at "
                        "most one signature per key"
                    ).format(name=_show(sig.name), key_id_hex=sig.key_id_hex)
                )
            seen.add((sig.name, sig.key_id))

    def to_bytes(self) -> bytes:
        """The signed-note bytes. A note without signatures has no such form."""
        if not self.signatures:
            raise UsageError(_("a signed note needs at least one signature"))
        lines = "".join(sig.line() + "\n" for sig in self.signatures)
        data = (self.text + "\n" + lines).encode("utf-8")
        if len(data) > MAX_NOTE_BYTES:
            raise NoteFormatError(
                _("the note would exceed {limit} bytes").format(limit=MAX_NOTE_BYTES)
            )
        return data

    def with_signature(self, signature: NoteSignature) -> Note:
        """This note plus ``signature``, replacing one by the same (name, key ID) as Go's
        ``note.Sign`` does when a key signs again."""
        kept = tuple(
            s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id)
        )
        return Note(self.text, (*kept, signature))


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines without verifying anything.

    Follows Go's ``note.Open``: the text ends at the *last* blank line; every later line is
    ``— name base64`` with at least one byte of signature after the 4-byte key ID."""
    if not isinstance(data, bytes):
        raise UsageError(_("parse_note takes the note's bytes"))
    if len(data) > MAX_NOTE_BYTES:
        raise NoteFormatError(
            _("the note is larger than {limit} bytes").format(limit=MAX_NOTE_BYTES)
        )
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteFormatError(
            _("the note is not valid UTF-8 (byte {start})").format(start=exc.start)
        ) from None
    _check_text_chars(decoded, "the note")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteFormatError(_("the note has no blank line before its signatures"))
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block:
        raise NoteFormatError(_("the note has no signature lines"))
    if not block.endswith("\n"):
        raise NoteFormatError(_("the note's last signature line does not end with a newline"))
    signatures: list[NoteSignature] = []
    for number, line in enumerate(block[:-1].split("\n"), start=1):
        if number > MAX_SIGNATURES:
            raise NoteFormatError(
                _("the note has more than {limit} signatures").format(limit=MAX_SIGNATURES)
            )
        if not line.startswith(_SIG_PREFIX):
            raise NoteFormatError(
                _(
                    "signature line {number} does not start with an em dash and a space: {line}"
                ).format(number=number, line=_show(line))
            )
        name, _sep, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        _require_key_name(name)
        if not encoded:
            raise NoteFormatError(
                _("signature line {number} has no signature").format(number=number)
            )
        raw = _b64decode(encoded, _("signature line {number}").format(number=number))
        if len(raw) < 5:
            raise NoteFormatError(
                _("signature line {number} is too short to hold a signature").format(number=number)
            )
        signatures.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return Note(text, tuple(signatures))


# --- checkpoints -----------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, RFC 6962 root hash, extension lines."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        named = [("origin", self.origin), *(("extension line", e) for e in self.extensions)]
        for what, line in named:
            origin = what == "origin"
            if not isinstance(line, str) or not line:
                raise NoteFormatError(
                    _("the checkpoint origin is empty")
                    if origin
                    else _("the checkpoint extension line is empty")
                )
            if "\n" in line:
                raise NoteFormatError(
                    _("the checkpoint origin contains a newline")
                    if origin
                    else _("the checkpoint extension line contains a newline")
                )
            _check_text_chars(
                line,
                _("the checkpoint origin") if origin else _("the checkpoint extension line"),
            )
        if (
            not isinstance(self.tree_size, int)
            or isinstance(self.tree_size, bool)
            or not 0 <= self.tree_size <= MAX_TREE_SIZE
        ):
            raise NoteFormatError(_("the checkpoint tree size is not an integer in 0 … 2^64−1"))
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise NoteFormatError(_("the checkpoint root hash is not 32 bytes"))
        if self.tree_size == 0 and self.root_hash != EMPTY_ROOT:
            raise NoteFormatError(_("a checkpoint of size 0 must carry the empty tree's root"))

    def body(self) -> str:
        """The note text: one line each, each ending in a newline."""
        lines = [self.origin, str(self.tree_size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_record(cls, origin: str, body: Mapping[str, object]) -> Checkpoint:
        """From a custody ``checkpoint`` record body (``tree_size``, hex ``root``)."""
        size, root = body.get("tree_size"), body.get("root")
        if not isinstance(size, int) or not isinstance(root, str):
            raise NoteFormatError(_("the checkpoint record has no tree_size and root"))
        if not re.fullmatch(r"[0-9a-f]{64}", root, re.ASCII):
            raise NoteFormatError(_("the checkpoint record's root is not 64 lowercase hex"))
        return cls(origin, size, bytes.fromhex(root))


def parse_checkpoint(text: str) -> Checkpoint:
    """Read a checkpoint body strictly: at least three non-empty lines, the size in decimal
    without leading zeros (ASCII digits only), the root as canonical base64 of 32 bytes."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteFormatError(_("a checkpoint body must end with a newline"))
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteFormatError(_("a checkpoint has at least three lines: origin, size, root hash"))
    for number, line in enumerate(lines, start=1):
        if not line:
            raise NoteFormatError(_("checkpoint line {number} is empty").format(number=number))
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text):
        raise NoteFormatError(
            _(
                "checkpoint tree size {size_text} is not a decimal number without leading zeros"
            ).format(size_text=_show(size_text))
        )
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise NoteFormatError(_("checkpoint tree size exceeds 2^64−1"))
    root = _b64decode(root_text, _("the checkpoint root hash"))
    if len(root) != _HASH_SIZE:
        raise NoteFormatError(
            _("the checkpoint root hash is {n} bytes, not 32").format(n=len(root))
        )
    return Checkpoint(origin, size, root, tuple(extensions))


# --- signing ---------------------------------------------------------------------------


def _checked_signature(sign: SignFunction, public_key: bytes, message: bytes, name: str) -> bytes:
    """Sign, then verify with the public key: a ``sign`` bound to another key is caught here
    rather than by a verifier years later."""
    signature = sign(message)
    if not isinstance(signature, bytes) or not _ed25519_verify(public_key, message, signature):
        raise SigningKeyError(
            _("the signing function for {name} does not sign with its public key").format(
                name=_show(name)
            )
        )
    return signature


@dataclass(frozen=True)
class NoteSigner:
    """Makes Ed25519 (type 0x01) note signatures under ``name``."""

    name: str
    public_key: bytes
    sign: SignFunction = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_key_name(self.name)
        _require_public_key(self.public_key)

    @property
    def verifier_key(self) -> VerifierKey:
        return VerifierKey.ed25519(self.name, self.public_key)


@dataclass(frozen=True)
class Cosigner:
    """Makes Ed25519 cosignature/v1 (type 0x04) signatures under ``name``."""

    name: str
    public_key: bytes
    sign: SignFunction = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_key_name(self.name)
        _require_public_key(self.public_key)

    @property
    def verifier_key(self) -> VerifierKey:
        return VerifierKey.cosignature_v1(self.name, self.public_key)


def sign_note(note: Note, signer: NoteSigner) -> Note:
    """``note`` with an Ed25519 signature by ``signer`` over its text added (replacing an
    earlier signature by the same key)."""
    if note.text.startswith(("{", "cosignature/")):
        raise UsageError(_("refusing to sign a note text that reads like a record or cosignature"))
    message = note.text.encode("utf-8")
    signature = _checked_signature(signer.sign, signer.public_key, message, signer.name)
    return note.with_signature(NoteSignature(signer.name, signer.verifier_key.key_id, signature))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> Note:
    """A new checkpoint note signed by the log (custody's ledger key, named by the origin)."""
    return sign_note(Note(checkpoint.body()), signer)


def cosignature_message(text: str, timestamp: int) -> bytes:
    """``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole checkpoint body."""
    if not isinstance(timestamp, int) or not 0 <= timestamp <= COSIGNATURE_TIME_LIMIT:
        raise UsageError(_("a cosignature time is an integer in 0 … 2^63−1"))
    return f"{_COSIG_HEADER}time {timestamp}\n{text}".encode()


def cosign_checkpoint(verified: CheckpointVerification, cosigner: Cosigner, at: datetime) -> Note:
    """Add a cosignature/v1 by ``cosigner`` at time ``at`` to a checkpoint that has passed
    ``verify_checkpoint``.

    Taking the verification result, not a bare note, makes "check the log's signature first"
    impossible to skip. What a witness must still decide before calling this, and this
    module cannot: that the checkpoint is consistent with the largest one it cosigned for
    the origin (a consistency proof, ``custody.merkle``), since a cosignature states exactly
    that."""
    if not verified.ok:
        raise UsageError(_("refusing to cosign a checkpoint that did not verify"))
    if at.tzinfo is None:
        raise UsageError(_("naive datetime: cosignature times must be timezone-aware"))
    # Whole seconds, rounded down, exactly: a float timestamp can round x.9999995 up a second.
    timestamp = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)
    message = cosignature_message(verified.note.text, timestamp)
    signature = _checked_signature(cosigner.sign, cosigner.public_key, message, cosigner.name)
    payload = timestamp.to_bytes(8, "big") + signature
    return verified.note.with_signature(
        NoteSignature(cosigner.name, cosigner.verifier_key.key_id, payload)
    )


# --- verification ----------------------------------------------------------------------


class SignatureStatus(enum.Enum):
    VERIFIED = "verified"  # a configured key, and the signature is good
    FAILED = "failed"  # a configured key, and the signature is bad: the note fails
    UNKNOWN = "unknown"  # no configured key has this (name, key ID): ignored, kept


@dataclass(frozen=True)
class SignatureCheck:
    """What became of one signature line."""

    signature: NoteSignature
    status: SignatureStatus
    key: VerifierKey | None = None
    timestamp: int | None = None  # cosignature time, POSIX seconds, when one could be read
    reason: str = ""

    @property
    def time(self) -> datetime | None:
        """The cosignature time as a UTC datetime, if it is within the calendar."""
        if self.timestamp is None:
            return None
        try:
            return datetime.fromtimestamp(self.timestamp, UTC)
        except (OverflowError, ValueError, OSError):
            return None


@dataclass(frozen=True)
class NoteVerification:
    """Every signature of a note and what became of it. ``ok`` needs at least one verified
    signature and no failed one."""

    note: Note
    checks: tuple[SignatureCheck, ...]

    def _with(self, status: SignatureStatus) -> tuple[SignatureCheck, ...]:
        return tuple(c for c in self.checks if c.status is status)

    @property
    def verified(self) -> tuple[SignatureCheck, ...]:
        return self._with(SignatureStatus.VERIFIED)

    @property
    def failed(self) -> tuple[SignatureCheck, ...]:
        return self._with(SignatureStatus.FAILED)

    @property
    def unknown(self) -> tuple[SignatureCheck, ...]:
        return self._with(SignatureStatus.UNKNOWN)

    @property
    def ok(self) -> bool:
        return bool(self.verified) and not self.failed

    @property
    def problems(self) -> tuple[str, ...]:
        found = [
            f"signature by {c.signature.name} ({c.signature.key_id_hex}) failed: {c.reason}"
            for c in self.failed
        ]
        if not self.verified:
            found.append(_("no signature from a configured key verified"))
        return tuple(found)

    def raise_for_failure(self) -> None:
        if not self.ok:
            raise NoteVerificationError(
                _("the note did not verify: {problems}").format(problems="; ".join(self.problems))
            )


def _failed(check: SignatureCheck) -> str:
    return _("signature by {name} ({key_id}) failed: {reason}").format(
        name=check.signature.name, key_id=check.signature.key_id_hex, reason=check.reason
    )


def _index_keys(keys: Iterable[VerifierKey]) -> dict[tuple[str, int], VerifierKey]:
    index: dict[tuple[str, int], VerifierKey] = {}
    for key in keys:
        if not isinstance(key, VerifierKey):
            raise UsageError(_("verification keys must be VerifierKey objects"))
        if (key.name, key.key_id) in index and index[(key.name, key.key_id)] != key:
            # Go's VerifierList reports the same as "ambiguous key": never guess between them.
            raise UsageError(
                _("two verifier keys share name {name} and ID {key_id_hex}").format(
                    name=key.name, key_id_hex=key.key_id_hex
                )
            )
        index[(key.name, key.key_id)] = key
    return index


def _check_one(
    text: bytes, sig: NoteSignature, key: VerifierKey, now: datetime | None
) -> SignatureCheck:
    if key.sig_type == SIG_TYPE_ED25519:
        if _ed25519_verify(key.public_key, text, sig.signature):
            return SignatureCheck(sig, SignatureStatus.VERIFIED, key)
        return SignatureCheck(
            sig, SignatureStatus.FAILED, key, reason=_("Ed25519 signature invalid")
        )
    if len(sig.signature) != _COSIG_SIZE:
        return SignatureCheck(
            sig,
            SignatureStatus.FAILED,
            key,
            reason=_("a cosignature/v1 is {size} bytes, this is {n}").format(
                size=_COSIG_SIZE, n=len(sig.signature)
            ),
        )
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp > COSIGNATURE_TIME_LIMIT:
        return SignatureCheck(
            sig, SignatureStatus.FAILED, key, timestamp, _("cosignature time exceeds 2^63−1")
        )
    message = f"{_COSIG_HEADER}time {timestamp}\n".encode() + text
    if not _ed25519_verify(key.public_key, message, sig.signature[8:]):
        return SignatureCheck(
            sig, SignatureStatus.FAILED, key, timestamp, _("cosignature/v1 signature invalid")
        )
    if now is not None and timestamp > (now + FUTURE_TOLERANCE).timestamp():
        return SignatureCheck(
            sig, SignatureStatus.FAILED, key, timestamp, _("cosignature time is in the future")
        )
    return SignatureCheck(sig, SignatureStatus.VERIFIED, key, timestamp)


def verify_note(
    data: bytes | Note, keys: Sequence[VerifierKey], *, now: datetime | None = None
) -> NoteVerification:
    """Check every signature line against ``keys`` (Ed25519 and cosignature/v1 keys).

    A malformed note raises ``NoteFormatError`` (it cannot be checked at all); everything
    else is reported in the result. With ``now``, cosignatures dated more than
    ``FUTURE_TOLERANCE`` after it fail."""
    if not keys:
        raise UsageError(_("verify_note needs at least one key: nothing checked is no pass"))
    if now is not None and now.tzinfo is None:
        raise UsageError(_("naive datetime: 'now' must be timezone-aware"))
    note = parse_note(data) if isinstance(data, bytes) else data
    index = _index_keys(keys)
    text = note.text.encode("utf-8")
    checks = []
    for sig in note.signatures:
        key = index.get((sig.name, sig.key_id))
        if key is None:
            checks.append(SignatureCheck(sig, SignatureStatus.UNKNOWN))
        else:
            checks.append(_check_one(text, sig, key, now))
    return NoteVerification(note, tuple(checks))


@dataclass(frozen=True)
class CheckpointVerification:
    """A checkpoint note checked against a policy: the expected origin, at least one of the
    log's keys, and a quorum of cosigners. ``checkpoint`` is only to be trusted if ``ok``."""

    note: Note
    checkpoint: Checkpoint
    signatures: NoteVerification
    log_signatures: tuple[SignatureCheck, ...]
    cosignatures: tuple[SignatureCheck, ...]
    missing_cosigners: tuple[VerifierKey, ...]
    quorum: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_failure(self) -> None:
        if self.problems:
            raise NoteVerificationError(
                _("the checkpoint did not verify: {problems}").format(
                    problems="; ".join(self.problems)
                )
            )


def verify_checkpoint(
    data: bytes | Note,
    *,
    origin: str,
    log_keys: Sequence[VerifierKey],
    cosigner_keys: Sequence[VerifierKey] = (),
    quorum: int | None = None,
    now: datetime | None = None,
) -> CheckpointVerification:
    """Verify a checkpoint note: its body parses strictly, its origin is ``origin``, a log
    key (type 0x01) signed it, at least ``quorum`` (default: all) of ``cosigner_keys``
    (type 0x04) cosigned it, and no signature from any configured key failed.

    This says nothing about the ledger: the caller compares ``checkpoint.tree_size`` and
    ``checkpoint.root_hash`` with the ledger's Merkle tree (or a consistency proof)."""
    if not log_keys:
        raise UsageError(_("verify_checkpoint needs the log's key: nothing checked is no pass"))
    if any(k.sig_type != SIG_TYPE_ED25519 for k in log_keys):
        raise UsageError(_("log keys are Ed25519 note keys (type 0x01)"))
    if any(k.sig_type != SIG_TYPE_COSIGNATURE_V1 for k in cosigner_keys):
        raise UsageError(_("cosigner keys are cosignature/v1 keys (type 0x04)"))
    wanted = len(set(cosigner_keys)) if quorum is None else quorum
    if not 0 <= wanted <= len(set(cosigner_keys)):
        raise UsageError(
            _("a quorum of {wanted} cannot be met by {n} cosigners").format(
                wanted=wanted, n=len(cosigner_keys)
            )
        )
    note = parse_note(data) if isinstance(data, bytes) else data
    checkpoint = parse_checkpoint(note.text)
    result = verify_note(note, [*log_keys, *cosigner_keys], now=now)
    problems = [
        f"signature by {c.signature.name} ({c.signature.key_id_hex}) failed: {c.reason}"
        for c in result.failed
    ]
    if checkpoint.origin != origin:
        problems.append(
            _("the checkpoint is for origin {origin}, expected {expected}").format(
                origin=_show(checkpoint.origin), expected=_show(origin)
            )
        )
    log_ids = {(k.name, k.key_id) for k in log_keys}
    by_log = tuple(
        c for c in result.verified if c.key is not None and (c.key.name, c.key.key_id) in log_ids
    )
    cosigs = tuple(
        c
        for c in result.verified
        if c.key is not None and c.key.sig_type == SIG_TYPE_COSIGNATURE_V1
    )
    signed_by = {c.key for c in cosigs}
    missing = tuple(k for k in dict.fromkeys(cosigner_keys) if k not in signed_by)
    if not by_log:
        problems.append(_("no signature by the log's key verified"))
    if len(cosigs) < wanted:
        problems.append(
            ngettext(
                "{verified} of the {n} required cosignature verified",
                "{verified} of the {n} required cosignatures verified",
                wanted,
            ).format(verified=len(cosigs), n=wanted)
        )
    return CheckpointVerification(
        note, checkpoint, result, by_log, cosigs, missing, wanted, tuple(problems)
    )
