"""Validation material kept through the ledger store and hashed into records.

When a token is recorded (a checkpoint's RFC 3161 token, an archive timestamp of an
evidence record), custody keeps what a verifier will need to validate it decades later,
offline: the TSA's certificate chain and, where the certificates name them and they can be
reached, CRLs and OCSP answers (``material.collect_validation_material``). Each file is
stored through the ledger's store under a name made of its SHA-256
(``validation/certs|crls|ocsp/<sha256>.der`` under ``.custody/``; in the shared database
for the PostgreSQL store, as tokens are) and listed, with its SHA-256, in the record that
holds the token (``validation``), together with what could not be had and why
(``validation_missing``).

A gap is kept only while it matters: an entry stays outstanding until the kept material
shows the certificate concerned unrevoked at the token's genTime (a CRL issued, or an OCSP
answer produced, at or after it). A CRL fetched right after stamping usually predates the
token; the gap then stays open and a later run (``custody timestamp`` or ``custody renew``)
fetches again, appending a ``validation`` record with what it obtained
(:func:`fill_gaps`).

May import: ``custody.errors``, ``custody.clock``, ``custody.ledger.bodies``,
``custody.timestamps.material``, ``custody.timestamps.rfc3161``, ``cryptography``, the
standard library.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from custody.clock import Clock, format_time, utc_now
from custody.errors import InputError
from custody.i18n import _
from custody.ledger.bodies import MaterialFile, MaterialGap, TokenRef, ValidationBody
from custody.timestamps.material import (
    ValidationMaterial,
    collect_validation_material,
    issuer_path,
    revocation_status,
    token_certificates,
)
from custody.timestamps.rfc3161 import check_token

__all__ = [
    "KIND_DIRS",
    "Kept",
    "MaterialPool",
    "TokenGaps",
    "collect_and_keep",
    "fill_gaps",
    "material_gaps",
    "token_path",
]

KIND_DIRS: Final = {
    "certificate": "validation/certs",
    "crl": "validation/crls",
    "ocsp": "validation/ocsp",
}

StoreFile = Callable[[str, bytes], None]
ReadFile = Callable[[str], bytes]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class MaterialPool:
    """All material a ledger (or bundle) keeps, read through its store and checked against
    the SHA-256 its records give. ``problems``: (file, message) for files missing or
    altered, the message a whole sentence for people naming the file."""

    material: ValidationMaterial = field(default_factory=ValidationMaterial)
    files: dict[str, MaterialFile] = field(default_factory=dict)  # by sha256
    problems: list[tuple[MaterialFile, str]] = field(default_factory=list)

    @classmethod
    def read(cls, read_file: ReadFile, refs: Iterable[MaterialFile]) -> MaterialPool:
        pool = cls()
        buckets: dict[str, list[bytes]] = {k: [] for k in KIND_DIRS}
        seen: set[str] = set()
        for ref in refs:
            if ref.file in seen:
                continue
            seen.add(ref.file)
            try:
                data = read_file(ref.file)
            except (OSError, InputError) as exc:
                why = _("validation material {file} cannot be read ({why})").format(
                    file=ref.file, why=getattr(exc, "strerror", exc)
                )
                pool.problems.append((ref, why))
                continue
            if _sha256(data) != ref.sha256:
                why = _(
                    "validation material {file} is not the file recorded (SHA-256 differs)"
                ).format(file=ref.file)
                pool.problems.append((ref, why))
                continue
            pool.files[ref.sha256] = ref
            buckets[ref.kind].append(data)
        pool.material = ValidationMaterial(
            certificates=tuple(buckets["certificate"]),
            crls=tuple(buckets["crl"]),
            ocsp_responses=tuple(buckets["ocsp"]),
        )
        return pool


@dataclass(frozen=True)
class Kept:
    """Material stored for a token: the files (new or already kept) and its gaps."""

    files: tuple[MaterialFile, ...]
    gaps: tuple[MaterialGap, ...]
    material: ValidationMaterial


def _store(store: StoreFile, material: ValidationMaterial) -> tuple[MaterialFile, ...]:
    files = []
    for kind, items in (
        ("certificate", material.certificates),
        ("crl", material.crls),
        ("ocsp", material.ocsp_responses),
    ):
        for der in items:
            digest = _sha256(der)
            name = f"{KIND_DIRS[kind]}/{digest}.der"
            store(name, der)
            files.append(MaterialFile(kind, name, digest))
    return tuple(files)


def _revocation_urls(cert: x509.Certificate) -> tuple[str, str | None]:
    """("crl" or "ocsp", the first http URL the certificate names for revocation), or
    ("crl", None) when it names none."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        for point in points:
            for name in point.full_name or []:
                if isinstance(name, x509.UniformResourceIdentifier):
                    return "crl", name.value
    except x509.ExtensionNotFound:
        pass
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        for access in aia:
            location = access.access_location
            if access.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
                location, x509.UniformResourceIdentifier
            ):
                return "ocsp", location.value
    except x509.ExtensionNotFound:
        pass
    return "crl", None


def token_path(token: bytes, material: ValidationMaterial) -> list[x509.Certificate]:
    """The token's signer certificate and its issuers, from what the token and the
    material carry (empty when the signer cannot be found)."""
    check = check_token(token, roots=(), trust="embedded")
    if check.signer_certificate is None:
        return []
    pool = [*material.certificate_objects()]
    for der in token_certificates(token):
        try:
            pool.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return issuer_path(x509.load_der_x509_certificate(check.signer_certificate), pool)


def _ends(path: Sequence[x509.Certificate]) -> bool:
    tip = path[-1]
    return tip.subject == tip.issuer


def material_gaps(
    token: bytes,
    gen_time: _dt.datetime,
    material: ValidationMaterial,
    reported: Sequence[MaterialGap] = (),
) -> tuple[MaterialGap, ...]:
    """What is still missing to show ``token``'s certificates unrevoked at ``gen_time``.

    The gaps go into records (``validation_missing``): their reasons are English whatever
    the language of the run, and never go through the catalog.

    ``reported`` are the collector's gaps of this run (unreachable URLs, refusals...); they
    are kept only for certificates the material does not already cover. A certificate
    without any covering CRL or OCSP answer gets a gap naming its first revocation URL
    (``url`` None, when it names none, makes the gap permanent: never fetched again).
    """
    path = token_path(token, material)
    uncovered: dict[str, tuple[str, str | None]] = {}
    for cert, issuer in pairwise(path):
        if revocation_status(cert, issuer, material, gen_time).state != "good":
            uncovered[cert.subject.rfc4514_string()] = _revocation_urls(cert)
    # the path stops short of a self-signed certificate: its last issuer is not at hand
    open_end = path[-1].subject.rfc4514_string() if path and not _ends(path) else None
    out: list[MaterialGap] = []
    for gap in reported:
        if gap.subject in uncovered or (gap.kind == "issuer" and gap.subject == open_end):
            out.append(gap)
    listed = {g.subject for g in out}
    when = format_time(gen_time)
    for subject, (kind, url) in uncovered.items():
        if subject in listed:
            continue
        reason = (
            f"no CRL or OCSP answer kept shows it unrevoked at genTime {when} (one issued "
            "after it is needed); fetched again on a later run"
            if url
            else "the certificate names no CRL or OCSP location"
        )
        out.append(MaterialGap(kind, subject, reason, url))
    if open_end is not None and not any(g.kind == "issuer" and g.subject == open_end for g in out):
        out.append(MaterialGap("issuer", open_end, "issuer certificate not at hand"))
    return tuple(dict.fromkeys(out))


def collect_and_keep(
    token: bytes,
    gen_time: _dt.datetime,
    store: StoreFile,
    *,
    kept: ValidationMaterial | None = None,
    fetch: bool = True,
    timeout: float = 10.0,
    unreachable: set[str] | None = None,
    clock: Clock = utc_now,
) -> Kept:
    """Collect ``token``'s validation material now, store every file, and say what is
    still missing given also the material ``kept`` before. Never raises for an
    unreachable URL (that is a gap); raises InputError for something that is not a token.
    """
    extra = kept.certificates if kept is not None else ()
    found = collect_validation_material(
        token,
        fetch,
        timeout=timeout,
        extra_certificates=extra,
        clock=clock,
        unreachable=unreachable,
    )
    files = _store(store, found)
    everything = found.merged(kept) if kept is not None else found
    reported = [MaterialGap(m.kind, m.subject, m.reason, m.url) for m in found.missing]
    return Kept(files, material_gaps(token, gen_time, everything, reported), found)


@dataclass(frozen=True)
class TokenGaps:
    """A token whose material is still incomplete: where it is, and what is missing."""

    ref: TokenRef
    token: bytes
    gen_time: _dt.datetime
    gaps: tuple[MaterialGap, ...]

    @property
    def fetchable(self) -> bool:
        return any(g.url for g in self.gaps)


def fill_gaps(
    outstanding: Sequence[TokenGaps],
    pool: MaterialPool,
    store: StoreFile,
    *,
    timeout: float = 10.0,
    clock: Clock = utc_now,
) -> list[ValidationBody]:
    """Fetch again what earlier runs could not have, for every token with a gap that has
    a URL; a ``validation`` body for each token that gained a file. Hosts found
    unreachable are not tried again in the same run."""
    unreachable: set[str] = set()
    bodies = []
    kept = pool.material
    for entry in outstanding:
        if not entry.fetchable:
            continue
        result = collect_and_keep(
            entry.token,
            entry.gen_time,
            store,
            kept=kept,
            timeout=timeout,
            unreachable=unreachable,
            clock=clock,
        )
        new = tuple(f for f in result.files if f.sha256 not in pool.files)
        if not new:
            continue
        for f in new:
            pool.files[f.sha256] = f
        kept = kept.merged(result.material)
        bodies.append(ValidationBody((entry.ref,), new, result.gaps))
    pool.material = kept
    return bodies
