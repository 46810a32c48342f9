"""PAdES signatures on custody's PDF reports: sign (B-LT, B-LTA), extend, check.

Owns: the preparer's PDF-signing identity (a per-preparer ECDSA P-256 CA bound to the
preparer's Ed25519 custody key, or an organisation's certificate and key), its
encryption at rest (PKCS#12), signing a PDF as a PAdES baseline signature with an
RFC 3161 signature timestamp, validation material in the Document Security Store (DSS)
and optionally a document timestamp, renewing that document timestamp, and checking a
signed PDF offline into a structured result. May import: ``custody.errors``,
``custody.clock``, ``custody.canonical``, ``custody.keys.keyring`` (passphrases as UTF-8,
refused without echo), ``cryptography``, ``pyhanko`` /
``pyhanko_certvalidator`` / ``asn1crypto`` (pyHanko's own dependency) and ``aiohttp``
(pyHanko's HTTP client). It prints nothing and reads no environment variable.

Why this certificate arrangement (evidence in docs/pdf-signatures.md): poppler's
``pdfsig`` 22.12 with NSS 3.87 (Debian 12) reports an Ed25519 CMS signature as "Document
isn't signed or corrupted data", and ``certutil`` refuses to import an Ed25519
certificate (SEC_ERROR_ADDING_CERT), so NSS can neither check an Ed25519 signature nor
chain through an Ed25519 CA; Acrobat does not list EdDSA among its PDF signature
algorithms either. pyHanko validates both. So the document is signed with ECDSA P-256,
and the custody key vouches for the P-256 CA certificate instead: a non-critical
extension (``BINDING_OID``) carries a canonical-JSON statement naming the CA's public
key, signed with the Ed25519 custody key. Readers that do not know the extension
ignore it; ``check_signed_pdf`` verifies it against a custody key the caller supplies.

Each signature uses a fresh P-256 end-entity key certified by the preparer's CA and
discarded after signing, so the only long-term secret is the CA key (sealed in an
encrypted PKCS#12). NSS insists on an end-entity certificate below a trusted CA (a
trusted self-signed end-entity certificate gives "issuer is unknown"), and poppler
22.12 only says "Certificate is Trusted" when the signing certificate has an extended
key usage including emailProtection, a subjectAltName and a CRL distribution point:
it ignores CERT_PKIXVerifyCert's return value and reads a stale
SEC_ERROR_EXTENSION_NOT_FOUND otherwise (poppler/SignatureHandler.cc; fixed upstream
by checking the return value). Hence those three extensions, and a CRL issued by the
preparer's CA at signing time and embedded in the DSS, so that ETSI past-signature
validation finds revocation information for the one-time certificate. The end-entity
certificate lives as long as the CA: readers built on poppler (pdfsig, Okular) check
the certificate at the current time, not at the timestamp's, and the key is gone.

Followed: ETSI EN 319 142-1 (PAdES baseline B-T/B-LT/B-LTA), ETSI EN 319 102-1
(validation, via pyHanko's AdES engine), RFC 3161, RFC 5280, RFC 8032; pyHanko 0.38
docs/lib-guide/validation/ades-validation.rst and pyhanko/sign/signers/pdf_signer.py
(github.com/MatthiasValvekens/pyHanko, 7db4e6fe97552416944c2be98cdeb918c98d4891).

The package, by responsibility: ``common`` (levels, identifiers, limits, certificate and
DER helpers, writing the output file), ``identity`` (the preparer's CA, its binding to the
custody key, sealing, one-time certificates), ``signing`` (PAdES signing, timestamps,
extension), ``checking`` (offline validation into ``PdfSignatureCheck``).
"""

from __future__ import annotations

from custody.delivery.pdfsign.checking import (
    PdfSignatureCheck,
    Problem,
    SignerCheck,
    TimestampCheck,
    check_signed_pdf,
    check_signed_pdf_bytes,
)
from custody.delivery.pdfsign.common import (
    BINDING_FORMAT,
    BINDING_OID,
    LEVELS,
    Level,
    load_pem_certificates,
)
from custody.delivery.pdfsign.identity import (
    BindingCheck,
    CustodyBinding,
    PreparerIdentity,
    check_custody_binding,
    create_preparer_ca,
    load_organisation_identity,
    open_preparer,
    parse_custody_binding,
    seal_preparer,
)
from custody.delivery.pdfsign.signing import (
    SignedPdfInfo,
    extend_archive_timestamp,
    sign_pdf,
)

__all__ = [
    "BINDING_FORMAT",
    "BINDING_OID",
    "LEVELS",
    "BindingCheck",
    "CustodyBinding",
    "Level",
    "PdfSignatureCheck",
    "PreparerIdentity",
    "Problem",
    "SignedPdfInfo",
    "SignerCheck",
    "TimestampCheck",
    "check_custody_binding",
    "check_signed_pdf",
    "check_signed_pdf_bytes",
    "create_preparer_ca",
    "extend_archive_timestamp",
    "load_organisation_identity",
    "load_pem_certificates",
    "open_preparer",
    "parse_custody_binding",
    "seal_preparer",
    "sign_pdf",
]
