"""What every part of PAdES signing shares: the signature levels, the custody binding's identifiers,
limits on what is read, and small certificate and DER helpers.

May import: ``custody.errors``, ``custody.clock``, ``cryptography``, ``asn1crypto``, ``pyhanko``
(reading a PDF, the revocation policy shared by signing and checking), the standard library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ObjectIdentifier
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from custody.clock import format_time
from custody.errors import (
    CustodyError,
    InputError,
    StorageError,
    UsageError,
)
from custody.i18n import _

Level = Literal["B-LT", "B-LTA"]


LEVELS: tuple[str, ...] = get_args(Level)


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


IdentityKind = Literal["custody-ca", "organisation-ca", "organisation-signer"]


# A UUID-derived OID (ITU-T X.667 arc 2.25): custody has no enterprise number of its own.
BINDING_OID = ObjectIdentifier("2.25.212292137969737461070004164074913252566")


BINDING_FORMAT = "custody-pdf-ca-binding/1"


# Ledger records are canonical JSON and start with "{": this prefix keeps a binding
# signature from ever being a valid signature over a record, and the reverse.
_BINDING_CONTEXT = b"custody pdf-signing CA binding v1\x00"


_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336


FIELD_NAME = "CustodySignature"


MAX_PDF_BYTES = 512 * 1024 * 1024


MAX_TSA_RESPONSE = 1024 * 1024


MAX_PEM_BYTES = 4 * 1024 * 1024


# PBKDF2-HMAC-SHA256 rounds for the sealed PKCS#12: OWASP's 2023 figure (600,000) makes
# opening a preparer file cost ~0.3 s here, paid once per signing command.
PKCS12_KDF_ROUNDS = 600_000


_CLOCK_SKEW = dt.timedelta(minutes=10)


# ----------------------------------------------------------------------- small helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _asn1(cert: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(_der(cert))


def _rfc3339(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # asn1crypto and pyHanko give aware datetimes; be sure
        moment = moment.replace(tzinfo=dt.UTC)
    return format_time(moment)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def load_pem_certificates(
    pem: bytes | str | Sequence[bytes | str], what: str
) -> list[x509.Certificate]:
    """Certificates from one PEM bundle or several; ``UsageError`` naming ``what`` if none."""
    blobs = [pem] if isinstance(pem, bytes | str) else list(pem)
    certs: list[x509.Certificate] = []
    for blob in blobs:
        raw = blob.encode("ascii", "replace") if isinstance(blob, str) else bytes(blob)
        if len(raw) > MAX_PEM_BYTES:
            raise UsageError(
                _("{what}: PEM data over {limit} bytes").format(what=what, limit=MAX_PEM_BYTES)
            )
        if not raw.strip():
            continue
        try:
            certs.extend(x509.load_pem_x509_certificates(raw))
        except ValueError:
            raise UsageError(_("{what}: not PEM certificates").format(what=what)) from None
    if not certs:
        raise UsageError(_("{what}: no certificate given").format(what=what))
    return certs


def _der_octets(data: bytes) -> bytes:
    n = len(data)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return head + data


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element with ``tag`` at ``pos``; strict minimal lengths."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError(_("unexpected DER tag"))
    first = data[pos + 1]
    if first < 0x80:
        length, body = first, pos + 2
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + 2 + n > len(data) or data[pos + 2] == 0:
            raise ValueError(_("bad DER length"))
        length, body = int.from_bytes(data[pos + 2 : pos + 2 + n], "big"), pos + 2 + n
        if length < 0x80:
            raise ValueError(_("non-minimal DER length"))
    if body + length > len(data):
        raise ValueError(_("DER element overruns its container"))
    return data[body : body + length], body + length


# ------------------------------------------------------------------------------ writing


def _check_target(out_path: Path) -> None:
    if out_path.is_symlink() or out_path.exists():
        raise UsageError(
            _("{path} already exists; custody does not overwrite signed files").format(
                path=out_path
            )
        )
    parent = out_path.parent
    if not parent.is_dir():
        raise UsageError(_("{path} is not a folder").format(path=parent))


def _write_new_file(out_path: Path, data: bytes) -> None:
    """Write ``data`` to ``out_path`` atomically, never replacing or following anything."""
    _check_target(out_path)
    parent = out_path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=".custody-pdf-", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        # link() fails if out_path appeared meanwhile (even as a symlink): no clobbering.
        os.link(tmp, out_path, follow_symlinks=False)
        with contextlib.suppress(OSError):
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except FileExistsError:
        raise StorageError(
            _("{path} appeared while signing; nothing was overwritten").format(path=out_path)
        ) from None
    except OSError as exc:
        raise StorageError(
            _("cannot write {path}: {why}").format(path=out_path, why=exc.strerror)
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


# pyHanko logs validation failures with tracebacks; with no handler configured Python's
# last-resort handler would print them to stderr. Our results carry the outcome instead.
for _logger in ("pyhanko", "pyhanko_certvalidator"):
    logging.getLogger(_logger).addHandler(logging.NullHandler())


def _revinfo_policy() -> CertRevTrustPolicy:
    # Revocation is checked for every certificate that says where its status is
    # published; certificates that declare nothing (roots, many test and private TSAs)
    # are accepted without. The ETSI past-signature validation pyHanko runs for dates
    # after a certificate expired is stricter: it wants revocation data for all of them.
    return CertRevTrustPolicy(
        RevocationCheckingPolicy(
            ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
            intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
        )
    )


def _read_pdf(pdf: bytes, label: str) -> Any:
    if len(pdf) > MAX_PDF_BYTES:
        raise InputError(
            _("{file}: larger than {size} MiB").format(
                file=label, size=MAX_PDF_BYTES // (1024 * 1024)
            )
        )
    if not pdf.startswith(b"%PDF-"):
        raise InputError(_("{file}: not a PDF (no %PDF- header)").format(file=label))
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        if reader.encrypted:
            raise InputError(
                _("{file}: the PDF is encrypted; custody signs only plain PDFs").format(file=label)
            )
        _root = reader.root  # forces the catalogue to parse
    except CustodyError:
        raise
    except Exception as exc:  # pyHanko raises many types on hostile input
        raise InputError(
            _("{file}: not a readable PDF ({kind}: {why})").format(
                file=label, kind=type(exc).__name__, why=exc
            )
        ) from None
    return reader
