"""ProofMode bundles: check what can be checked offline, record the rest as claims.

Owns ``read_proofmode``: a ProofMode share/export bundle (a folder or a zip) in, one
``ProofModeBundle`` out, listing per media file every check with its state (``passed``,
``failed``, ``not_checkable``), a reason and, where something is wrong, a named problem.
May import ``custody.errors``, ``custody.i18n``, its sibling ``custody.acquisition.sources.c2pa``,
the standard library, ``gnupg`` (python-gnupg, driving GnuPG's ``gpg``) and ``opentimestamps``,
and its siblings ``safezip`` and ``said`` (every check's reason is a ``said.Said``: recorded in
English, shown in the run's language).
It never writes into the bundle; a zip is unpacked into a private temporary folder by
``safezip.SafeZip.extract_all`` (the same reader every other source uses; a hostile
archive is refused whole).

Layout: ``model`` (results and names), ``files`` (collecting a bundle's files),
``openpgp`` (GnuPG), ``proofs`` (proof.json, proof.csv, .gst), ``ots`` (OpenTimestamps),
``checks`` (the checks on one proof set) and ``bundle`` (``read_proofmode``).

The format, as ProofMode writes it
----------------------------------
Followed from guardianproject/proofmode-android at b2906d95d601ec5cfda36099bdc2f2f89f47d8a4:
``android-libproofmode/.../ProofMode.java`` (the file tags), ``service/MediaWatcher.kt``
(``writeProof``, ``buildProof``, ``writeMapToCSV``), ``service/ProofModeV1Constants.java``
(the field names), ``storage/DefaultStorageProvider.kt`` (text files are *appended*, one
line per write), ``storage/proofset/ProofSetMembershipPolicy.kt`` (the required files),
``crypto/pgp/PgpUtils.java`` and ``DetachedSignatureProcessor.java`` (the key and the
signatures), ``android-opentimestamps/.../OpenTimestampsNotarizationProvider.java``,
``app/.../share/ShareProofActivity.kt`` (``zipProof``, ``shareProofClassic``) and
``assets/HowToVerifyProofData.txt``, ``docs/verify.sh``.

For a media file whose SHA-256 (lower-case hex) is ``H`` a proof set is:

- ``H.proof.json``: ``JSONObject(map).toString()`` + newline: one JSON object per
  generation, all values strings, keys such as ``File Hash SHA256``, ``File Path``,
  ``File Created``, ``File Modified``, ``Proof Generated``, ``Location.Latitude`` …
  ``Hardware``, ``Manufacturer``, ``DeviceID``, ``SafetyCheck``, ``Notes``;
- ``H.proof.csv``: a header line of the same keys, then one line of values per
  generation (every field followed by a comma; commas in values were replaced by spaces);
- ``H.asc``, ``H.proof.json.asc``, ``H.proof.csv.asc``: ASCII-armoured OpenPGP detached
  signatures (binary document, SHA-256) over the media, the JSON and the CSV;
- optionally ``H.ots`` (OpenTimestamps proof of ``H``), ``H.gst`` (a Google SafetyNet
  JWS), ``H.nostr`` (a Nostr notarization);
- once per zip: ``pubkey.asc`` (the device's key: RSA 4096, user id
  ``noone@proofmode.witness.org``, self-signed with SHA-1) and
  ``HowToVerifyProofData.txt``; the media file keeps its own name.

The older "classic" layout names the files after the media instead (``IMG.jpg.asc``,
``IMG.jpg.proof.csv``, ``IMG.jpg.proof.csv.asc``); it is read too. A proof set may come
without its media (ProofMode can share proof only): its signatures over the proof files
are still checked and the media is reported missing.

What custody checks itself (offline)
------------------------------------
- the media's actual SHA-256 against every hash ProofMode recorded for it (the set's
  name, ``File Hash SHA256`` in each JSON and CSV line): ``PROOF_HASH_MISMATCH``;
- each detached signature with GnuPG (``gpg --verify``) against the bundle's key only,
  in a throw-away ``GNUPGHOME`` (no agent, no dirmngr, no key servers, a minimal
  environment): ``PROOF_SIGNATURE_BAD``, ``PROOF_SIGNATURE_WRONG_KEY``,
  ``PROOF_SIGNATURE_MALFORMED``, ``PROOF_SIGNATURE_MISSING``;
- that the proof files exist and parse: ``PROOF_MISSING``, ``PROOF_MALFORMED``;
- that an ``.ots`` file is a well-formed OpenTimestamps proof (header magic, version 1,
  file hash op, the operation tree, attestations; parsed with the reference
  ``opentimestamps`` library) and that it timestamps this media's SHA-256:
  ``OTS_MALFORMED``, ``OTS_DIGEST_MISMATCH``;
- a C2PA manifest embedded in the media (``custody.acquisition.sources.c2pa``).

What custody only records (``not_checkable``)
---------------------------------------------
- **whose key it is.** ``pubkey.asc`` travels inside the bundle, so a good signature
  proves only that the bundle is consistent with itself. The fingerprint must be
  confirmed out of band (with the person or organisation who made the recording); pass
  ``expected_fingerprints`` from the verifier's side and the check becomes real
  (``PROOF_KEY_MISMATCH`` when it differs, otherwise ``PROOF_KEY_UNCONFIRMED``);
- **the Bitcoin attestation of an .ots proof.** custody lists the calendars (pending)
  and the Bitcoin block heights with the Merkle root each attestation expects, but
  checking them needs the Bitcoin block headers. An expert runs
  ``ots verify -f MEDIA H.ots`` (opentimestamps-client, with a local Bitcoin Core node:
  ``ots --bitcoin-node http://USER:PASS@127.0.0.1:8332/ verify …``), or, for a pending
  proof, ``ots upgrade H.ots`` first (that contacts the calendars). By hand: the block at
  that height must have the listed Merkle root (``bitcoin-cli getblockhash N`` then
  ``getblockheader``);
- the sensor, device, network and location fields of the proof: what the phone said,
  kept as descriptive metadata;
- ``.gst`` SafetyNet attestations (decoded header and payload kept; the service is
  retired and its JWS chain is Google's, not checked here) and ``.nostr`` files.

How an expert confirms each check independently
-----------------------------------------------
``sha256sum MEDIA``; ``gpg --import pubkey.asc`` then ``gpg --verify H.asc MEDIA``,
``gpg --verify H.proof.json.asc H.proof.json``, ``gpg --verify H.proof.csv.asc
H.proof.csv`` (ProofMode's own ``HowToVerifyProofData.txt``), ``gpg --show-keys
pubkey.asc`` for the fingerprint; ``ots info H.ots`` and ``ots verify``; ``c2patool
MEDIA``. Sequoia's ``sqv`` 1.1 refuses ProofMode's keys outright because their
self-signatures use SHA-1 (its policy since 2023-02-01): that is the tool's policy, not
a bad signature.

Why GnuPG and not PGPy
----------------------
GnuPG is the reference OpenPGP implementation, maintained, packaged by Debian, and the
very tool ProofMode's instructions and an expert witness use; python-gnupg (maintained,
0.5.x) only runs it and parses ``--status-fd`` output, which custody reads itself. PGPy
0.6.0 (November 2022) has had no release since, imports ``imghdr`` (removed in Python
3.13), reads neither RFC 9580 (v6) keys nor Ed448, and depends on cipher APIs
``cryptography`` is retiring. The tests use PGPy only to make keys and signatures, so
what is verified was produced by another implementation than the one verifying it.
ProofMode's keys carry SHA-1 self-signatures: GnuPG 2.2.40 (tested here) accepts them;
should a GnuPG release refuse them, the key would not import and every signature would be
reported ``PROOF_KEY_UNUSABLE``, never passed.
"""

from __future__ import annotations

from custody.acquisition.sources.proofmode.bundle import read_proofmode
from custody.acquisition.sources.proofmode.model import (
    GST,
    HASH_FIELD,
    HOWTO_FILE,
    NOSTR,
    OTS,
    PATH_FIELD,
    PROOF_CSV,
    PROOF_JSON,
    PUBKEY_FILE,
    SIGNATURE,
    BundleIssue,
    BundleKey,
    Check,
    CheckState,
    DeviceAttestation,
    MediaProof,
    OtsAttestation,
    OtsProof,
    Problem,
    ProofModeBundle,
    ProofRecord,
    SignatureResult,
)

__all__ = [
    "GST",
    "HASH_FIELD",
    "HOWTO_FILE",
    "NOSTR",
    "OTS",
    "PATH_FIELD",
    "PROOF_CSV",
    "PROOF_JSON",
    "PUBKEY_FILE",
    "SIGNATURE",
    "BundleIssue",
    "BundleKey",
    "Check",
    "CheckState",
    "DeviceAttestation",
    "MediaProof",
    "OtsAttestation",
    "OtsProof",
    "Problem",
    "ProofModeBundle",
    "ProofRecord",
    "SignatureResult",
    "read_proofmode",
]
