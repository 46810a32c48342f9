"""The trust store: the keys this person has decided to trust, kept in their custody home.

``custody trust add PEM|FINGERPRINT`` adds an anchor, ``trust list`` shows them, ``trust
remove`` takes one away. The file is ``trust.json`` in the custody home (``custody.home``),
written atomically with mode 0600. Nothing inside an evidence root or a bundle can add an
anchor: the store is only ever written by these commands.

Fingerprints are the SHA-256 of the raw Ed25519 public key (64 lowercase hex digits), the
same as ``custody keys list`` and every verify output show; people may type them grouped in
fours with spaces, as verify prints them to be read aloud.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.errors import InputError, UsageError
from custody.home import trust_store_path
from custody.i18n import _
from custody.keys.keyring import fingerprint_of
from custody.system.files import write_atomic

STORE_FORMAT = "custody-trust/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_STORE = 1 << 22


@dataclass(frozen=True)
class StoredAnchor:
    fingerprint: str
    name: str | None
    note: str | None
    added: str  # RFC 3339, UTC
    public_key_pem: str | None = None  # kept when the anchor was added from a PEM file

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "note": self.note,
            "added": self.added,
            "public_key_pem": self.public_key_pem,
        }


def normalise_fingerprint(text: str) -> str | None:
    """A fingerprint as typed (any case, grouped with spaces or colons), or None."""
    compact = re.sub(r"[\s:]", "", text).lower()
    return compact if _HEX64.fullmatch(compact) else None


def fingerprint_from_pem(data: bytes, where: str) -> str:
    """The fingerprint of an Ed25519 public key in PEM (``custody keys export``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise InputError(_("{where} is not a readable public key").format(where=where)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(_("{where} is not an Ed25519 public key").format(where=where))
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return fingerprint_of(raw)


def fingerprints_in_file(path: Path) -> list[tuple[str, str | None]]:
    """(fingerprint, PEM or None) from a PEM public key or a file of fingerprint lines."""
    try:
        data = path.read_bytes()[: 1 << 20]
    except OSError as exc:
        raise InputError(
            _("cannot read {path}: {strerror}").format(path=path, strerror=exc.strerror)
        ) from None
    if b"BEGIN PUBLIC KEY" in data:
        return [(fingerprint_from_pem(data, str(path)), data.decode("ascii", "replace"))]
    found: list[tuple[str, str | None]] = []
    for line in data.decode("utf-8", "replace").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fingerprint = normalise_fingerprint(text)
        if fingerprint is None:
            raise InputError(
                _(
                    "{path}: {text!r} is neither a PEM public key nor a 64-hex-digit fingerprint"
                ).format(path=path, text=text[:80])
            )
        found.append((fingerprint, None))
    if not found:
        raise InputError(_("{path} holds no public key and no fingerprint").format(path=path))
    return found


class TrustStore:
    """The anchors in this person's custody home."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or trust_store_path()

    def anchors(self) -> list[StoredAnchor]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InputError(
                _("cannot read your trust store {path}: {strerror}").format(
                    path=self.path, strerror=exc.strerror
                )
            ) from None
        if len(data) > _MAX_STORE:
            raise InputError(
                _("your trust store {path} is too large to be one").format(path=self.path)
            )
        try:
            document = json.loads(data)
            if document.get("format") != STORE_FORMAT:
                raise ValueError(_("not {format}").format(format=STORE_FORMAT))
            return [
                StoredAnchor(
                    str(a["fingerprint"]),
                    a.get("name"),
                    a.get("note"),
                    str(a["added"]),
                    a.get("public_key_pem"),
                )
                for a in document["anchors"]
                if _HEX64.fullmatch(str(a["fingerprint"]))
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                _("your trust store {path} is damaged: {why}").format(path=self.path, why=exc)
            ) from None

    def add(self, anchor: StoredAnchor) -> bool:
        """Add (or update the name and note of) an anchor; False if it was there unchanged."""
        anchors = self.anchors()
        for i, existing in enumerate(anchors):
            if existing.fingerprint == anchor.fingerprint:
                if (existing.name, existing.note) == (anchor.name, anchor.note):
                    return False
                anchors[i] = StoredAnchor(
                    existing.fingerprint,
                    anchor.name or existing.name,
                    anchor.note or existing.note,
                    existing.added,
                    existing.public_key_pem or anchor.public_key_pem,
                )
                self._write(anchors)
                return True
        anchors.append(anchor)
        self._write(anchors)
        return True

    def remove(self, selector: str) -> StoredAnchor:
        """Remove the anchor with this fingerprint (or unique name)."""
        anchors = self.anchors()
        fingerprint = normalise_fingerprint(selector)
        chosen = [
            a
            for a in anchors
            if (fingerprint is not None and a.fingerprint == fingerprint) or a.name == selector
        ]
        if not chosen:
            raise UsageError(
                _("no trust anchor matches {selector!r} (see 'custody trust list')").format(
                    selector=selector
                )
            )
        if len(chosen) > 1:
            raise UsageError(
                _("several anchors are named {selector!r}: give the fingerprint").format(
                    selector=selector
                )
            )
        self._write([a for a in anchors if a is not chosen[0]])
        return chosen[0]

    def _write(self, anchors: list[StoredAnchor]) -> None:
        document = {"format": STORE_FORMAT, "anchors": [a.to_json() for a in anchors]}
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        write_atomic(self.path, text.encode("utf-8"), mode=0o600)
