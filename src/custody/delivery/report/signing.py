"""Signing a report PDF as its preparer: the preparer's PDF-signing identity, kept beside
their keyring, and the PAdES signature with the configured timestamp authorities.

The identity is ``custody.delivery.pdfsign``'s per-preparer P-256 CA, bound to the
preparer's Ed25519 custody key (docs/pdf-signatures.md): made the first time a person signs
a report with that key, sealed as PKCS#12 under the key's own passphrase and kept as
``<keyring>/<key name>.pdf-signing.p12`` (mode 0600). Later reports reopen it, and custody
checks that it is still bound to that custody key before signing with it.

The signed file gets a PAdES B-LTA signature by default (B-LT on request): an RFC 3161
signature timestamp, the validation material in the DSS and a document timestamp, from the
first authority in ``tsa_urls`` that answers with a timestamp that checks out against
``tsa_roots_pem``. Nothing is written unless the whole signature checks out.

May import: ``custody.delivery.pdfsign``, ``custody.keys``, ``custody.home``,
``custody.system.files``, ``custody.errors``, ``custody.clock``. Prints nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from custody.clock import Clock, utc_now
from custody.delivery.pdfsign import (
    Level,
    PreparerIdentity,
    SignedPdfInfo,
    create_preparer_ca,
    open_preparer,
    seal_preparer,
    sign_pdf,
)
from custody.errors import SigningKeyError, UsageError
from custody.keys.keyring import KeyFile, SigningKey
from custody.system.files import write_atomic

IDENTITY_SUFFIX = ".pdf-signing.p12"


@dataclass(frozen=True)
class PreparerKeys:
    """An unlocked custody key and the PDF-signing identity it vouches for."""

    custody: SigningKey
    identity: PreparerIdentity
    path: Path
    created: bool  # made now (the first report this key signs)


def identity_path(key_file: KeyFile) -> Path:
    return key_file.path.with_name(key_file.name + IDENTITY_SUFFIX)


def unlock_preparer(
    key_file: KeyFile, passphrase: str, *, clock: Clock = utc_now
) -> PreparerKeys:
    """Unlock ``key_file`` and open (or make, the first time) its PDF-signing identity."""
    custody = key_file.unlock(passphrase)
    path = identity_path(key_file)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        identity = create_preparer_ca(
            custody.name,
            custody_public_key=custody.public.raw,
            custody_sign=custody.sign,
            clock=clock,
        )
        write_atomic(path, seal_preparer(identity, passphrase), mode=0o600)
        return PreparerKeys(custody, identity, path, True)
    if not stat.S_ISREG(st.st_mode):
        raise SigningKeyError(f"{path} is not a regular file; not opened")
    identity = open_preparer(path.read_bytes(), passphrase)
    binding = identity.binding(custody.public.raw)
    if binding.status != "bound":
        raise SigningKeyError(
            f"{path} is not bound to the custody key {custody.name!r} ({binding.status}); "
            "move it away and sign again to make a new one"
        )
    return PreparerKeys(custody, identity, path, False)


def sign_report(
    pdf: bytes,
    out: Path,
    preparer: PreparerKeys,
    *,
    tsa_urls: list[str],
    tsa_roots_pem: list[bytes],
    level: Level = "B-LTA",
    clock: Clock = utc_now,
) -> SignedPdfInfo:
    """Sign the report PDF ``pdf`` as ``preparer`` and write it to ``out`` (a new file)."""
    if not tsa_urls:
        raise UsageError(
            "a signed report needs a timestamp authority: pass --tsa URL or configure one "
            "in the evidence root's config.toml"
        )
    if not any(p.strip() for p in tsa_roots_pem):
        raise UsageError(
            "a signed report's timestamps must be checked against the timestamp authority's "
            "root certificate: pass --tsa-root PEM (or list it in config.toml)"
        )
    return sign_pdf(
        pdf,
        preparer=preparer.identity,
        tsa_urls=tsa_urls,
        tsa_roots_pem=tsa_roots_pem,
        level=level,
        out_path=out,
        clock=clock,
        reason="custody chain-of-custody report",
    )
