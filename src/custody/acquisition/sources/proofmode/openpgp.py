"""OpenPGP detached signatures checked with GnuPG: one throw-away ``GNUPGHOME`` per bundle
key (no agent, no dirmngr, no key servers, a minimal environment), and GnuPG's
``--status-fd`` lines (GnuPG ``doc/DETAILS``) read conservatively into a verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from custody.acquisition.sources.proofmode.files import _File
from custody.acquisition.sources.proofmode.model import (
    _HASH_ALGORITHMS,
    _MAX_SMALL_FILE,
    _PUBKEY_ALGORITHMS,
    BundleKey,
    CheckState,
    Problem,
    SignatureResult,
)
from custody.acquisition.sources.said import Said
from custody.errors import ToolMissingError
from custody.i18n import N_, _
from custody.system.children import child_env

# --- GnuPG ----------------------------------------------------------------------------------------


class _Verifier:
    """One throw-away GNUPGHOME per key file, so a signature is checked against that key only."""

    def __init__(self, binary: str, home_root: Path) -> None:
        self._binary = binary
        self._root = home_root
        self._root.mkdir(mode=0o700)
        self._homes: dict[str, tuple[gnupg.GPG, BundleKey]] = {}
        probe = self._gpg(self._root / "probe")
        version = getattr(probe, "version", None)
        self.version = ".".join(str(v) for v in version) if version else "unknown"

    def _gpg(self, home: Path) -> gnupg.GPG:
        home.mkdir(mode=0o700, exist_ok=True)
        # Only what gpg needs: never the caller's environment (it may hold passphrases).
        env = child_env(home, program=self._binary, extra={"GNUPGHOME": str(home)})
        options = [
            "--no-options",
            "--no-autostart",
            "--disable-dirmngr",
            "--no-auto-key-retrieve",
            "--no-auto-key-locate",
        ]
        try:
            return gnupg.GPG(gpgbinary=self._binary, gnupghome=str(home), env=env, options=options)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ToolMissingError(
                _("GnuPG ({binary}) could not be started: {why}").format(
                    binary=self._binary, why=exc
                )
            ) from exc

    def key(self, key_file: _File) -> BundleKey:
        return self._home_for(key_file)[1]

    def _home_for(self, key_file: _File) -> tuple[gnupg.GPG, BundleKey]:
        if key_file.rel in self._homes:
            return self._homes[key_file.rel]
        home = self._root / f"k{len(self._homes)}"
        gpg = self._gpg(home)
        error: Said | None = None
        fingerprints: tuple[str, ...] = ()
        user_ids: list[str] = []
        if key_file.size > _MAX_SMALL_FILE:
            error = Said(N_("{size} bytes: too large to be a public key"), size=key_file.size)
        else:
            result = gpg.import_keys(key_file.disk.read_bytes())
            fingerprints = tuple(dict.fromkeys(f.upper() for f in result.fingerprints if f))
            if not fingerprints:
                error = Said(N_("no OpenPGP public key could be read from it"))
            else:
                for listed in gpg.list_keys():
                    user_ids.extend(str(u) for u in listed.get("uids", []))
        bundle_key = BundleKey(
            file=key_file.rel,
            sha256=key_file.sha256,
            fingerprints=fingerprints,
            user_ids=tuple(user_ids),
            error=error,
        )
        self._homes[key_file.rel] = (gpg, bundle_key)
        return gpg, bundle_key

    def verify(self, key_file: _File, signature: _File, data: _File) -> SignatureResult:
        gpg, bundle_key = self._home_for(key_file)
        if bundle_key.error is not None:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_KEY_UNUSABLE,
                Said(
                    N_("{rel} is unusable ({error}): nothing can be verified"),
                    rel=key_file.rel,
                    error=bundle_key.error,
                ),
            )
        if signature.size > _MAX_SMALL_FILE:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_SIGNATURE_MALFORMED,
                Said(N_("{size} bytes: too large to be a detached signature"), size=signature.size),
            )
        result = gpg.verify_file(str(signature.disk), data_filename=str(data.disk))
        lines = (result.stderr or "").splitlines()
        status = tuple(line[len("[GNUPG:] ") :] for line in lines if line.startswith("[GNUPG:] "))
        said = [line[len("gpg: ") :] for line in lines if line.startswith("gpg: ")]
        return _interpret(signature, data, status, bundle_key, said[-1] if said else None)


def _sig(
    signature: _File,
    data: _File | None,
    state: CheckState,
    problem: Problem | None,
    reason: str,
    **details: Any,
) -> SignatureResult:
    return SignatureResult(
        signature_file=signature.rel,
        signed_file=data.rel if data else None,
        state=state,
        problem=problem,
        reason=reason,
        **details,
    )


def _interpret(
    signature: _File, data: _File, status: tuple[str, ...], key: BundleKey, said: str | None
) -> SignatureResult:
    """Decide from GnuPG's status lines (doc/DETAILS in GnuPG) alone, conservatively."""
    words = [line.split() for line in status if line.strip()]
    keywords = [w[0] for w in words]
    signatures = keywords.count("NEWSIG")
    base: dict[str, Any] = {"gpg_status": status}
    what = Said(N_("{signature} over {file}"), signature=signature.rel, file=data.rel)
    if signatures == 0 or "NODATA" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(
                N_(
                    "{signature} is not a detached OpenPGP signature GnuPG can read (gpg:"
                    " {gpg}); this says nothing about whether the file was altered"
                ),
                signature=signature.rel,
                gpg=said,
            )
            if said
            else Said(
                N_(
                    "{signature} is not a detached OpenPGP signature GnuPG can read; this says"
                    " nothing about whether the file was altered"
                ),
                signature=signature.rel,
            ),
            **base,
        )
    if signatures > 1:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(
                N_("{rel} holds {signatures} signatures; ProofMode writes one"),
                rel=signature.rel,
                signatures=signatures,
            ),
            **base,
        )
    if "PLAINTEXT" in keywords:
        # A signed message rather than a detached signature: gpg would check its embedded
        # text, not the file named beside it.
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(N_("{rel} is a signed message, not a detached signature"), rel=signature.rel),
            **base,
        )
    if "BADSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_BAD,
            Said(
                N_(
                    "BAD signature: {what} does not verify; the file or the signature was"
                    " changed after signing"
                ),
                what=what,
            ),
            **base,
        )
    if "REVKEYSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_KEY_REVOKED,
            Said(N_("{what}: made by a key its owner has revoked"), what=what),
            **base,
        )
    if "EXPSIG" in keywords:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_BAD,
            Said(N_("{what}: the signature itself has expired"), what=what),
            **base,
        )
    errsig = next((w for w in words if w[0] == "ERRSIG"), None)
    if errsig is not None:
        rc = errsig[6] if len(errsig) > 6 else "?"
        keyid = errsig[1] if len(errsig) > 1 else "?"
        if rc == "9" or "NO_PUBKEY" in keywords:
            return _sig(
                signature,
                data,
                CheckState.FAILED,
                Problem.PROOF_SIGNATURE_WRONG_KEY,
                Said(
                    N_(
                        "{what}: made by key {keyid}, which is not the bundle's key"
                        " ({fingerprints})"
                    ),
                    what=what,
                    keyid=keyid,
                    fingerprints=", ".join(key.fingerprints),
                ),
                **base,
            )
        if rc == "4":
            return _sig(
                signature,
                data,
                CheckState.NOT_CHECKABLE,
                Problem.PROOF_SIGNATURE_UNSUPPORTED,
                Said(N_("{what}: GnuPG does not support this signature's algorithm"), what=what),
                **base,
            )
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(N_("{what}: GnuPG could not check it (error code {rc})"), what=what, rc=rc),
            **base,
        )
    valid = next((w for w in words if w[0] == "VALIDSIG"), None)
    if valid is None or not ({"GOODSIG", "EXPKEYSIG"} & set(keywords)) or len(valid) < 10:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(N_("{what}: GnuPG gave no verdict"), what=what),
            **base,
        )
    signer = valid[1].upper()
    primary = valid[10].upper() if len(valid) > 10 else signer
    details = {
        **base,
        "signer_fingerprint": signer,
        "primary_fingerprint": primary,
        "signature_created": _epoch_to_rfc3339(valid[3]),
        "hash_algorithm": _HASH_ALGORITHMS.get(_int(valid[8]), f"id {valid[8]}"),
        "pubkey_algorithm": _PUBKEY_ALGORITHMS.get(_int(valid[7]), f"id {valid[7]}"),
    }
    if primary not in key.fingerprints:
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_WRONG_KEY,
            Said(N_("{what}: made by {primary}, not the bundle's key"), what=what, primary=primary),
            **details,
        )
    if valid[9] not in ("00", "01"):
        return _sig(
            signature,
            data,
            CheckState.FAILED,
            Problem.PROOF_SIGNATURE_MALFORMED,
            Said(
                N_("{what}: signature class {signature_class} is not a document signature"),
                what=what,
                signature_class=valid[9],
            ),
            **details,
        )
    notes: list[Said | str] = []
    if "EXPKEYSIG" in keywords:
        notes.append(Said(N_("; the key has expired since (the signature predates that)")))
    if details["hash_algorithm"] in ("SHA-1", "MD5", "RIPEMD-160"):
        # GnuPG still accepts these; a court should know collisions are practical for them.
        notes.append(
            Said(
                N_("; note: digest {algorithm} is weak against collisions"),
                algorithm=details["hash_algorithm"],
            )
        )
    return _sig(
        signature,
        data,
        CheckState.PASSED,
        None,
        Said(
            N_(
                "good signature over {file} by the bundle's key {primary}, made {created} by"
                " the signer's clock{notes}"
            ),
            file=data.rel,
            primary=primary,
            created=details["signature_created"],
            notes=Said.joined("", notes),
        ),
        **details,
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _epoch_to_rfc3339(text: str) -> str | None:
    try:
        moment = datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
