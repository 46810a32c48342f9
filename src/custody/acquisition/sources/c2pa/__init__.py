"""C2PA manifests in media files: what the C2PA SDK says of them, and the manifest's own hash.

Owns ``read_c2pa``: one media file in, one ``C2paReport`` out (or ``None`` when the file
carries no manifest the SDK can find). May import ``custody.errors``, ``custody.i18n``, the
sibling ``said`` (its errors keep their English for a record), the standard library,
``c2pa`` (c2pa-python, the Content Authenticity Initiative's SDK over c2pa-rs), ``cbor2``
and ``cryptography``. It never writes, never fetches: remote manifests and OCSP are off.

Layout: ``model`` (the report as data), ``reader`` (``read_c2pa``, the SDK) and ``store``
(the manifest store's bytes and the signer's certificates, read by custody itself).

What is checked, and by whom
----------------------------
The SDK validates: the claim signature (COSE), the hashed links from the claim to each
assertion, the hard binding between the manifest and the file's bytes (data hash), the
ingredients' manifests, and the signing certificate's chain against trust anchors. Its
verdict uses C2PA's own three validation states (C2PA 2.x, "Validation states"):

- ``invalid``: at least one of those checks failed: the file or the manifest was altered,
  or the manifest is malformed;
- ``valid``: everything is intact, but the signer is not one the verifier trusts;
- ``trusted``: valid, and the signing certificate chains to a trust anchor.

custody reports ``trusted`` only against anchors the caller supplies (``trust_anchors_pem``:
the verifier's own trust list, never material from the file). With no anchors given the
SDK is given none, and should it still say ``Trusted`` the report says ``valid`` with a
note. The full status list (``success`` / ``informational`` / ``failure`` entries with the
SDK's codes, e.g. ``assertion.dataHash.mismatch``, ``signingCredential.untrusted``) is
kept as the SDK gave it.

What is only recorded
---------------------
The claim generator, title, actions and ingredients are what the signer asserted: claims,
kept as data. The signer's certificate (subject, issuer, serial, validity, SHA-256
fingerprint) is read by custody from the COSE_Sign1 ``x5chain`` header of the active
manifest's ``c2pa.signature`` box (RFC 9052 / RFC 9360 label 33) with ``cbor2`` and
``cryptography``; it is a description of who signed, its trust is the SDK's verdict above.

The manifest's hash
-------------------
``manifest_store_sha256`` is the SHA-256 of the C2PA manifest store exactly as embedded:
the JUMBF superbox whose description box carries the ``c2pa`` UUID. custody extracts it
itself, following c2pa-rs:

- JPEG: APP11 segments, JPEG XT header ``CI(2) En(2) Z(4)``, the store starting in the
  segment whose bytes 24..28 are ``c2pa``; continuation segments (same ``En``) repeat
  ``LBox``/``TBox``, which are dropped (contentauth/c2pa-rs
  ``sdk/src/asset_handlers/jpeg_io.rs`` at 0489acd448369506b4be3e1bf229ee624e91155a,
  ``read_cai``);
- PNG: the ``caBX`` chunk holds the store (c2pa-rs ``png_io.rs``).

Other containers (BMFF video, WebP, TIFF, PDF …) are validated by the SDK all the same,
but their store hash is not computed and the report says so (``manifest_store_note``). The
test suite checks the JPEG and PNG extraction byte for byte against the store the SDK
itself returns when signing. The hash names these exact bytes; it is not itself signed:
the COSE ``pad`` bytes c2pa-rs reserves in the signature box are covered by no signature,
so changing them changes the hash and leaves the state ``trusted``.

How an expert confirms
----------------------
``c2patool FILE`` (contentauth/c2patool, or ``c2patool FILE --detailed``) prints the same
manifest store and validation status; with a trust list:
``c2patool FILE trust --trust_anchors anchors.pem``. Any other conforming validator
(e.g. the CAI's verify site, offline copies excepted) must reach the same state.
"""

from __future__ import annotations

from custody.acquisition.sources.c2pa.model import (
    Action,
    C2paReport,
    Ingredient,
    SignerCertificate,
    SignerInfo,
    StatusEntry,
    StatusKind,
    ValidationState,
)
from custody.acquisition.sources.c2pa.reader import read_c2pa
from custody.acquisition.sources.c2pa.store import extract_manifest_store

__all__ = [
    "Action",
    "C2paReport",
    "Ingredient",
    "SignerCertificate",
    "SignerInfo",
    "StatusEntry",
    "StatusKind",
    "ValidationState",
    "extract_manifest_store",
    "read_c2pa",
]
