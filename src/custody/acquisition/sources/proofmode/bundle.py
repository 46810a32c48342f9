"""``read_proofmode``: a bundle's files grouped into proof sets (hash-named and the older
media-named layout), each media file matched to its set and every check run on it."""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from custody.acquisition.sources.proofmode.checks import (
    _c2pa_checks,
    _Context,
    _Folder,
    _hash_check,
    _key_check,
    _recorded_hash,
    _signature_check,
)
from custody.acquisition.sources.proofmode.files import (
    _File,
    _unpack_zip,
    _walk_folder,
)
from custody.acquisition.sources.proofmode.model import (
    _DEFAULT_MAX_BYTES,
    _HASH_NAMED,
    _MEDIA_SUFFIXES,
    C2PA_CERT_FILE,
    GST,
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
    MediaProof,
    Problem,
    ProofModeBundle,
    ProofRecord,
    SignatureResult,
)
from custody.acquisition.sources.proofmode.openpgp import _Verifier
from custody.acquisition.sources.proofmode.ots import (
    _ots_checks,
    _read_ots,
)
from custody.acquisition.sources.proofmode.proofs import (
    _parse_proof,
    _read_jws,
)
from custody.acquisition.sources.said import Said
from custody.errors import InputError, ToolMissingError, UsageError
from custody.i18n import N_, _

# --- entry point ---------------------------------------------------------------------------------


def read_proofmode(
    path: str | os.PathLike[str],
    *,
    expected_fingerprints: Iterable[str] | None = None,
    trust_anchors_pem: bytes | None = None,
    gpg_binary: str = "gpg",
    max_bytes: int = _DEFAULT_MAX_BYTES,
    work_dir: str | os.PathLike[str] | None = None,
) -> ProofModeBundle:
    """Read and check a ProofMode bundle (a folder, or a ``.zip`` as ProofMode shares it).

    ``expected_fingerprints``: OpenPGP fingerprints the verifier has confirmed out of
    band (hex, spaces allowed); without them the key check is ``not_checkable``.
    ``trust_anchors_pem``: the verifier's C2PA trust list, for media with a manifest.
    ``max_bytes`` caps how much a zip may expand to; ``work_dir`` is where a zip is
    unpacked (a private temporary folder inside it, removed afterwards).

    Raises ``InputError`` when the bundle cannot be read at all, ``UsageError`` for bad
    arguments, ``ToolMissingError`` when GnuPG is absent. Everything wrong *inside* the
    bundle is reported as checks and named problems, never raised.
    """
    source = Path(path)
    expected = _normalise_fingerprints(expected_fingerprints)
    binary = shutil.which(gpg_binary)
    if binary is None:
        raise ToolMissingError(
            _(
                "GnuPG ({gpg_binary}) is not installed: install the 'gpg' package to"
                " check ProofMode signatures"
            ).format(gpg_binary=gpg_binary)
        )
    try:
        info = os.stat(source)
    except OSError as exc:
        raise InputError(
            _("{path}: cannot be read ({why})").format(path=source, why=exc.strerror or exc)
        ) from exc
    with tempfile.TemporaryDirectory(prefix="custody-proofmode-", dir=work_dir) as scratch:
        scratch_path = Path(scratch)
        issues: list[BundleIssue] = []
        if stat.S_ISDIR(info.st_mode):
            kind: Literal["folder", "zip"] = "folder"
            files = _walk_folder(source, issues)
        elif stat.S_ISREG(info.st_mode):
            kind = "zip"
            files = _unpack_zip(source, scratch_path / "unpacked", issues, max_bytes)
        else:
            raise InputError(_("{path}: neither a folder nor a zip file").format(path=source))
        verifier = _Verifier(binary, scratch_path / "gnupg")
        media, keys, others = _check_bundle(files, verifier, expected, trust_anchors_pem)
        return ProofModeBundle(
            source=str(source),
            kind=kind,
            media=media,
            keys=keys,
            issues=tuple(issues),
            other_files=others,
            gpg_version=verifier.version,
        )


def _normalise_fingerprints(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    cleaned = set()
    for value in values:
        text = "".join(str(value).split()).upper()
        if text.startswith("0X"):
            text = text[2:]
        if not re.fullmatch(r"[0-9A-F]{40}|[0-9A-F]{64}", text):
            raise UsageError(
                _(
                    "expected fingerprint {value}: give the full 40 (v4) or 64 (v5/v6) hex digits"
                ).format(value=repr(value))
            )
        cleaned.add(text)
    return frozenset(cleaned)


# --- the bundle's structure ----------------------------------------------------------------------


def _check_bundle(
    files: Sequence[_File],
    verifier: _Verifier,
    expected: frozenset[str] | None,
    anchors: bytes | None,
) -> tuple[tuple[MediaProof, ...], tuple[BundleKey, ...], tuple[str, ...]]:
    folders: dict[str, _Folder] = {}
    for item in files:
        folders.setdefault(item.folder, _Folder()).files[item.name] = item
    media: list[MediaProof] = []
    others: list[str] = []
    used_keys: dict[str, BundleKey] = {}
    for folder_name in sorted(folders):
        folder = folders[folder_name]
        key_file = _key_for(folder_name, folders)
        context = _Context(folder, key_file, verifier, expected, anchors)
        results, unrecognised = _check_folder(context)
        media.extend(results)
        others.extend(unrecognised)
        if key_file is not None and any(r.key_file == key_file.rel for r in results):
            used_keys[key_file.rel] = verifier.key(key_file)
    return tuple(media), tuple(used_keys.values()), tuple(sorted(others))


def _key_for(folder_name: str, folders: Mapping[str, _Folder]) -> _File | None:
    """``pubkey.asc`` in the same folder, else the nearest enclosing folder's."""
    current = PurePosixPath(folder_name) if folder_name else None
    while True:
        name = "" if current is None or str(current) == "." else str(current)
        candidate = folders.get(name)
        if candidate is not None and PUBKEY_FILE in candidate.files:
            return candidate.files[PUBKEY_FILE]
        if not name:
            return None
        current = PurePosixPath(name).parent


def _is_artefact_suffix(suffix: str) -> bool:
    """A proof set's own files, as opposed to media stored under its hash (``H.jpg``, which
    ProofMode's IPFS storage writes)."""
    lowered = suffix.lower()
    return (
        lowered in (SIGNATURE, OTS, GST, NOSTR, ".provider", ".uri")
        or lowered.startswith((".proof.", ".lp.", ".ipfs-cids"))
        or lowered.endswith(SIGNATURE)
        or not _is_media_name("x" + lowered)
    )


def _is_media_name(name: str) -> bool:
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    if guessed and guessed.split("/")[0] in ("image", "video", "audio"):
        return True
    return PurePosixPath(name).suffix.lower() in _MEDIA_SUFFIXES


def _check_folder(ctx: _Context) -> tuple[list[MediaProof], list[str]]:
    files = ctx.folder.files
    proof_sets: dict[str, dict[str, _File]] = {}
    artefacts: set[str] = {PUBKEY_FILE, HOWTO_FILE, C2PA_CERT_FILE}
    for name, item in files.items():
        match = _HASH_NAMED.match(name)
        if match and _is_artefact_suffix(match.group(2)):
            proof_sets.setdefault(match.group(1).lower(), {})[match.group(2)] = item
            artefacts.add(name)
    candidates = sorted(n for n in files if n not in artefacts)
    # Media-named ("classic") artefacts belong to the file they are named after.
    legacy_suffixes = (
        PROOF_CSV + SIGNATURE,
        PROOF_JSON + SIGNATURE,
        PROOF_CSV,
        PROOF_JSON,
        SIGNATURE,
        OTS,
        GST,
        NOSTR,
    )
    legacy: dict[str, dict[str, _File]] = {}
    for name in candidates:
        for suffix in legacy_suffixes:
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and stem in files and stem not in artefacts:
                legacy.setdefault(stem, {})[suffix] = files[name]
                artefacts.add(name)
                break
    results: list[MediaProof] = []
    others: list[str] = []
    used_sets: set[str] = set()
    for name in (n for n in candidates if n not in artefacts):
        item = files[name]
        if item.sha256 in proof_sets:
            used_sets.add(item.sha256)
            results.append(
                _check_media(ctx, item, item.sha256, proof_sets[item.sha256], "hash-named")
            )
        elif name in legacy:
            results.append(_check_media(ctx, item, None, legacy[name], "media-named"))
        else:
            claimed = _set_claiming(name, proof_sets, used_sets)
            if claimed is not None:
                used_sets.add(claimed)
                results.append(_check_media(ctx, item, claimed, proof_sets[claimed], "hash-named"))
            elif _is_media_name(name):
                results.append(_no_proof(item))
            else:
                others.append(item.rel)
    for proof_hash in sorted(set(proof_sets) - used_sets):
        results.append(_check_media(ctx, None, proof_hash, proof_sets[proof_hash], "hash-named"))
    others.extend(f.rel for n, f in files.items() if n in (HOWTO_FILE, C2PA_CERT_FILE))
    return results, others


def _set_claiming(
    name: str, proof_sets: Mapping[str, Mapping[str, _File]], used: set[str]
) -> str | None:
    """The proof set whose recorded ``File Path`` names this file, when only one does."""
    matches = []
    for proof_hash, members in proof_sets.items():
        if proof_hash in used:
            continue
        for suffix in (PROOF_JSON, PROOF_CSV):
            item = members.get(suffix)
            if item is None:
                continue
            records, _error = _parse_proof(item, suffix, signature_ok=False)
            paths = {r.get(PATH_FIELD) for r in records}
            if any(p and PurePosixPath(p.replace("\\", "/")).name == name for p in paths):
                matches.append(proof_hash)
                break
    return matches[0] if len(matches) == 1 else None


def _no_proof(item: _File) -> MediaProof:
    check = Check(
        "proof_present",
        CheckState.FAILED,
        Said(
            N_("no ProofMode proof in the bundle for {rel} (SHA-256 {sha256})"),
            rel=item.rel,
            sha256=item.sha256,
        ),
        Problem.PROOF_MISSING,
    )
    return MediaProof(
        media_file=item.rel,
        media_size=item.size,
        media_sha256=item.sha256,
        proof_hash=None,
        layout="none",
        checks=(check,),
        signatures=(),
        proofs=(),
        key_file=None,
        ots=None,
        device_attestation=None,
        nostr_file=None,
        c2pa=None,
        files=(item.rel,),
    )


# --- one media file ------------------------------------------------------------------------------


def _check_media(
    ctx: _Context,
    media: _File | None,
    proof_hash: str | None,
    members: Mapping[str, _File],
    layout: Literal["hash-named", "media-named"],
) -> MediaProof:
    checks: list[Check] = []
    signatures: list[SignatureResult] = []
    records: list[ProofRecord] = []
    label = media.rel if media else Said(N_("proof set {hash}"), hash=proof_hash)

    # The three signatures: over the media, the JSON and the CSV.
    sig_results: dict[str, SignatureResult | None] = {}
    for target_suffix, sig_suffix, check_name in (
        (None, SIGNATURE, "media_signature"),
        (PROOF_JSON, PROOF_JSON + SIGNATURE, "proof_json_signature"),
        (PROOF_CSV, PROOF_CSV + SIGNATURE, "proof_csv_signature"),
    ):
        target = media if target_suffix is None else members.get(target_suffix)
        sig_file = members.get(sig_suffix)
        check, result = _signature_check(ctx, check_name, target, target_suffix, sig_file, label)
        checks.append(check)
        sig_results[check_name] = result
        if result is not None:
            signatures.append(result)

    # The proof files themselves.
    for suffix, sig_name in (
        (PROOF_JSON, "proof_json_signature"),
        (PROOF_CSV, "proof_csv_signature"),
    ):
        item = members.get(suffix)
        name = "proof_json" if suffix == PROOF_JSON else "proof_csv"
        if item is None:
            expected_name = (
                f"{proof_hash}{suffix}" if layout == "hash-named" else f"{label}{suffix}"
            )
            checks.append(
                Check(
                    name,
                    CheckState.FAILED,
                    Said(N_("{name} is not in the bundle"), name=expected_name),
                    Problem.PROOF_MISSING,
                )
            )
            continue
        sig = sig_results.get(sig_name)
        parsed, error = _parse_proof(
            item, suffix, sig is not None and sig.state is CheckState.PASSED
        )
        records.extend(parsed)
        if error is not None:
            checks.append(
                Check(
                    name,
                    CheckState.FAILED,
                    Said(N_("{rel}: {error}"), rel=item.rel, error=error),
                    Problem.PROOF_MALFORMED,
                )
            )
        else:
            checks.append(
                Check(
                    name,
                    CheckState.PASSED,
                    Said.ngettext(
                        "{file}: {n} proof record read",
                        "{file}: {n} proof records read",
                        len(parsed),
                        file=item.rel,
                    ),
                )
            )

    checks.append(_hash_check(media, proof_hash, layout, records))
    recorded = proof_hash or _recorded_hash(records)

    key_check = _key_check(ctx, signatures)
    if key_check is not None:
        checks.append(key_check)

    ots = None
    if OTS in members:
        ots = _read_ots(members[OTS])
        checks.extend(_ots_checks(ots, media, recorded))
    attestation = None
    if GST in members:
        attestation = _read_jws(members[GST])
        checks.append(
            Check(
                "device_attestation",
                CheckState.NOT_CHECKABLE,
                Said(
                    N_(
                        "{rel}: Google SafetyNet/Play Integrity attestation kept and"
                        " decoded, not verified (Google's service, retired for SafetyNet)"
                    ),
                    rel=members[GST].rel,
                ),
                Problem.DEVICE_ATTESTATION_NOT_VERIFIED,
            )
        )
    nostr = members.get(NOSTR)
    if nostr is not None:
        checks.append(
            Check(
                "nostr_notarization",
                CheckState.NOT_CHECKABLE,
                Said(N_("{rel}: Nostr notarization kept, not verified"), rel=nostr.rel),
                Problem.NOSTR_NOT_VERIFIED,
            )
        )

    c2pa_report = None
    if media is not None:
        c2pa_report, c2pa_checks = _c2pa_checks(media, ctx.anchors)
        checks.extend(c2pa_checks)
    else:
        checks.append(
            Check(
                "media_present",
                CheckState.NOT_CHECKABLE,
                Said(
                    N_(
                        "the media for proof set {proof_hash} is not in the bundle"
                        " (ProofMode can share proof without media): check the media"
                        " separately against this hash"
                    ),
                    proof_hash=proof_hash,
                ),
                Problem.PROOF_MEDIA_MISSING,
            )
        )

    used = [f.rel for f in members.values()]
    if media is not None:
        used.insert(0, media.rel)
    if ctx.key_file is not None:
        used.append(ctx.key_file.rel)
    return MediaProof(
        media_file=media.rel if media else None,
        media_size=media.size if media else None,
        media_sha256=media.sha256 if media else None,
        proof_hash=recorded,
        layout=layout,
        checks=tuple(checks),
        signatures=tuple(signatures),
        proofs=tuple(records),
        key_file=ctx.key_file.rel if ctx.key_file else None,
        ots=ots,
        device_attestation=attestation,
        nostr_file=nostr.rel if nostr else None,
        c2pa=c2pa_report,
        files=tuple(dict.fromkeys(used)),
    )
