"""TLS at capture time: the separate probe of a server's chain, and the capture's own CA.

``probe_tls`` opens its own connection to the host:port the capture is about to fetch from
and records what the server presented: the certificate chain exactly as sent (DER of each
certificate, in the server's order, read from OpenSSL's *unverified* chain so that a chain
that fails verification is recorded too), whether it verified against the system trust
store (plus any extra anchors the caller gave) with Python's hostname check, and if not,
OpenSSL's reason. Python 3.11 exposes the presented chain only through the private
``_sslobj.get_unverified_chain()``, made public as ``SSLSocket.get_unverified_chain`` in 3.13
(CPython Doc/library/ssl.rst); ``presented_chain`` wraps it and fails loudly if it is absent.

``CaptureAuthority`` is the recording proxy's throw-away certificate authority: a fresh
ECDSA P-256 CA and one leaf key per capture, leaf certificates minted per host on demand.
Chromium is told to accept exactly that leaf key (``--ignore-certificate-errors-spki-list``
with the base64 SHA-256 of its SubjectPublicKeyInfo, honoured only with a user-data-dir) and
yt-dlp trusts the CA file; neither is told to skip verification wholesale, and the keys
die with the capture's work folder. The real server's certificate is checked by the proxy's
upstream connection, which is where the recorded bytes come from.

Imports only ``cryptography``, the standard library, ``capture.errors`` and, for its
messages, ``custody.i18n`` and ``sources.said``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.acquisition.capture.errors import CaptureNetworkError
from custody.acquisition.sources.said import Said
from custody.i18n import N_

_DER = 2  # _ssl.ENCODING_DER; the public ssl module does not re-export it in 3.11
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def check_host(host: str) -> str:
    """Return ``host`` if it is an IP literal or a plain DNS name, else raise ValueError."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(host) or ".." in host:
        raise ValueError(f"not a host name: {host!r}")
    return host.lower()


@dataclass(frozen=True)
class Certificate:
    """One certificate as the server sent it (``der``); the rest is read from it for people."""

    der: bytes

    def to_record(self) -> dict[str, Any]:
        """Keys: sha256, subject, issuer, serial, not_before, not_after, der_b64."""
        out: dict[str, Any] = {"sha256": hashlib.sha256(self.der).hexdigest()}
        try:
            cert = x509.load_der_x509_certificate(self.der)
            out.update(
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                serial=format(cert.serial_number, "x"),
                not_before=cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        except ValueError as exc:  # a server can send anything; keep the bytes, say so
            out["parse_error"] = str(exc).splitlines()[0][:200]
        out["der_b64"] = base64.b64encode(self.der).decode("ascii")
        return out


@dataclass(frozen=True)
class TLSProbe:
    """What a separate TLS handshake to ``host:port`` saw just before the capture."""

    host: str
    port: int
    ip: str
    verified: bool
    verify_error: str | None
    protocol: str | None
    cipher: str | None
    chain: tuple[Certificate, ...]
    probed_at: str

    def to_record(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "ip": self.ip,
            "verified": self.verified,
            "verify_error": self.verify_error,
            "protocol": self.protocol,
            "cipher": self.cipher,
            "probed_at": self.probed_at,
            "chain": [c.to_record() for c in self.chain],
        }


def presented_chain(sock: ssl.SSLSocket) -> tuple[bytes, ...]:
    """DER of every certificate the peer sent, in its order (verified or not)."""
    sslobj: Any = getattr(sock, "_sslobj", None)
    getter = getattr(sock, "get_unverified_chain", None) or getattr(
        sslobj, "get_unverified_chain", None
    )
    if getter is None:  # pragma: no cover - every CPython from 3.10 has it
        raise RuntimeError("this Python cannot read a TLS peer's certificate chain")
    chain = getter() or []
    return tuple(bytes(c.public_bytes(_DER)) for c in chain)


def client_context(*, ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """The context every upstream connection uses: system trust (+ ``ca_file``), HTTP/1.1."""
    ctx = ssl.create_default_context()
    if ca_file is not None:
        ctx.load_verify_locations(cafile=os.fspath(ca_file))
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    # The recorder speaks HTTP/1.1 upstream so that what it stores is a real status line
    # and header block as the server sent them, not a re-serialised HTTP/2 exchange.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _connect(host: str, port: int, timeout_s: float) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CaptureNetworkError(Said(N_("could not resolve host {host}: {why}"),
                                       host=repr(host), why=str(exc.strerror))) from exc
    last: OSError | None = None
    for family, kind, proto, _name, addr in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout_s)
        try:
            sock.connect(addr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    if isinstance(last, TimeoutError | socket.timeout):
        raise CaptureNetworkError(Said(N_("no answer from {host}:{port} within {seconds} s"),
                                       host=host, port=port, seconds=f"{timeout_s:.0f}"))
    reason = (last.strerror if last is not None else None) or Said(N_("unreachable"))
    raise CaptureNetworkError(Said(N_("could not connect to {host}:{port}: {why}"),
                                   host=host, port=port, why=reason))


def probe_tls(
    host: str, port: int, *, timeout_s: float, ca_file: Path | None, now: datetime
) -> TLSProbe:
    """Handshake with ``host:port`` twice if needed: once verifying, once to read the chain."""
    probed_at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    verified, verify_error = True, None
    strict = client_context(ca_file=ca_file, insecure=False)
    raw = _connect(host, port, timeout_s)
    ip = str(raw.getpeername()[0])
    try:
        with strict.wrap_socket(raw, server_hostname=host) as tls:
            return TLSProbe(
                host, port, ip, True, None, tls.version(), _cipher(tls),
                tuple(Certificate(d) for d in presented_chain(tls)), probed_at,
            )
    except ssl.SSLCertVerificationError as exc:
        verified = False
        verify_error = f"{exc.verify_message} (OpenSSL verify code {exc.verify_code})"
    except ssl.SSLError as exc:
        verified, verify_error = False, f"TLS handshake failed: {exc.reason or exc}"
    except OSError as exc:
        raise CaptureNetworkError(Said(N_("TLS connection to {host}:{port} failed: {why}"),
                                       host=host, port=port, why=str(exc))) from exc
    # Verification failed: look again without verifying, to record what was presented.
    loose = client_context(ca_file=None, insecure=True)
    raw = _connect(host, port, timeout_s)
    try:
        with loose.wrap_socket(raw, server_hostname=host) as tls:
            chain = tuple(Certificate(d) for d in presented_chain(tls))
            return TLSProbe(host, port, ip, verified, verify_error, tls.version(),
                            _cipher(tls), chain, probed_at)
    except (ssl.SSLError, OSError):
        return TLSProbe(host, port, ip, verified, verify_error, None, None, (), probed_at)


def _cipher(tls: ssl.SSLSocket) -> str | None:
    info = tls.cipher()
    return info[0] if info else None


class CaptureAuthority:
    """A throw-away CA and leaf key for the recording proxy's side of each TLS connection."""

    def __init__(self, folder: Path, now: datetime) -> None:
        self._folder = folder
        self._now = now.astimezone(UTC)
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._leaf_digests: dict[str, str] = {}
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "custody capture"),
            x509.NameAttribute(NameOID.COMMON_NAME, "custody capture proxy (throw-away CA)"),
        ])
        self._ca_name = name
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - timedelta(hours=1))
            .not_valid_after(self._now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_file = folder / "capture-ca.pem"
        _write_private(self.ca_file, self._ca_cert.public_bytes(serialization.Encoding.PEM))
        self._key_file = folder / "capture-leaf-key.pem"
        _write_private(self._key_file, self._leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        spki = self._leaf_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki_sha256_b64 = base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")
        self.ca_sha256 = hashlib.sha256(
            self._ca_cert.public_bytes(serialization.Encoding.DER)
        ).hexdigest()

    def server_context(self, host: str) -> ssl.SSLContext:
        """An SSL server context presenting a leaf for ``host`` (already ``check_host``-ed)."""
        with self._lock:
            ctx = self._contexts.get(host)
            if ctx is not None:
                return ctx
            try:
                san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
            except ValueError:
                san = x509.DNSName(host)
            leaf = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
                .issuer_name(self._ca_name)
                .public_key(self._leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(self._now - timedelta(hours=1))
                .not_valid_after(self._now + timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
                .sign(self._ca_key, hashes.SHA256())
            )
            chain_file = self._folder / f"leaf-{len(self._contexts):04d}.pem"
            _write_private(
                chain_file,
                leaf.public_bytes(serialization.Encoding.PEM)
                + self._ca_cert.public_bytes(serialization.Encoding.PEM),
            )
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.fspath(chain_file), os.fspath(self._key_file))
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[host] = ctx
            self._leaf_digests[host] = hashlib.sha256(
                leaf.public_bytes(serialization.Encoding.DER)
            ).hexdigest()
            return ctx

    def leaf_sha256(self, host: str) -> str | None:
        """SHA-256 of the leaf this authority showed the browser for ``host``, if any."""
        with self._lock:
            return self._leaf_digests.get(host)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
