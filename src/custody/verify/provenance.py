"""Re-checking, offline, what can be re-checked of where items came from.

An item's ``provenance`` (``custody.ledger.provenance``) holds two things: what its source
*claims* - who sent it, when, in which conversation, what a C2PA manifest or a ProofMode
proof asserts - and what custody *checked* of the source's own proofs when it took the
item in. Claims cannot be re-checked by anyone offline: verify says whose claims they
are and leaves them as claims. Checks are re-run here, against the files in the root
(whose bytes the file check has just confirmed), by the same means:

* **C2PA**: the manifest of every intact item that had one is validated again by the C2PA
  SDK, offline and without trust anchors (trust is the verifier's to give, and a state of
  ``trusted`` at intake is compared here as ``valid``: intact);
* **ProofMode**: each bundle copied into the root is read again with ``read_proofmode``
  (GnuPG verifies every detached signature against the bundle's key, the media's SHA-256
  is compared with the recorded one, ``.ots`` files are parsed); every check is compared
  with the state recorded at intake. A Bitcoin attestation is never checkable offline and
  is reported so, with the command that checks it;
* **chat exports**: each claim names the chat file it was read from, by path and SHA-256;
  that chat file must still be the item recorded at that path;
* **BagIt**: the bag's own digests recorded beside custody's must agree with custody's
  where both use the algorithm (SHA-256, SHA-512).

A check that fails now is ``SOURCE_CHECK_FAILED`` (the message says whether it failed at
intake too); one whose result differs from the record is ``SOURCE_CHECK_CHANGED``. Both
are warnings: they describe the source's proofs, not custody's chain, which the ledger and
file checks cover; the verdict is theirs. Items whose file is missing or changed are not
re-checked (the file check already says why). Nothing here prints.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from custody.errors import CustodyError
from custody.findings import Code, Finding, VerificationResult
from custody.i18n import _, ngettext
from custody.ledger.bodies import ItemBody
from custody.ledger.checks import LedgerState
from custody.ledger.describe import provenance_summary
from custody.root import EvidenceRoot

_FILE_CODES = {Code.FILE_MISSING, Code.FILE_MODIFIED, Code.FILE_MOVED, Code.FILE_UNREADABLE}


def verify_provenance(
    root: EvidenceRoot, state: LedgerState, result: VerificationResult, *, gpg: str = "gpg"
) -> None:
    """Add the ``provenance`` check and ``result.provenance`` (one row per item)."""
    spoiled = {f.seq for f in result.findings if f.code in _FILE_CODES and f.seq is not None}
    items = [
        (state.item_seq[path], path, body)
        for path, body in sorted(state.items.items(), key=lambda kv: state.item_seq[kv[0]])
        if body.provenance
    ]
    if not items:
        return
    by_path = {body.path: body for body in state.items.values()}
    bundles = _Bundles(root, gpg)
    findings: list[Finding] = []
    for seq, path, body in items:
        file = Path(os.fsdecode(os.fsencode(root.path) + b"/" + path))
        intact = seq not in spoiled
        entries: list[dict[str, Any]] = []
        for entry in body.provenance:
            data = entry.data
            rechecks: list[dict[str, str]] = []
            if not intact:
                rechecks.append(_row("all", "-", "not_rechecked", _("the file is not as recorded")))
            elif entry.kind == "c2pa":
                rechecks += _c2pa(file, data)
            elif entry.kind == "proofmode" and entry.role == "media":
                rechecks += bundles.recheck(data)
            elif entry.kind in ("whatsapp", "telegram") and entry.role == "media":
                rechecks += _chat(data, by_path)
            elif entry.kind == "bagit" and data.get("bag_digests"):
                rechecks += _bag(data, body)
            for row in rechecks:
                findings.extend(_finding(row, seq, body.path, entry.source))
            entries.append(
                {
                    "kind": entry.kind,
                    "role": entry.role,
                    "source": entry.source,
                    "summary": provenance_summary(data),
                    "rechecks": rechecks,
                }
            )
        result.provenance.append({"seq": seq, "path": body.path, "entries": entries})
    rechecked = sum(len(e["rechecks"]) for row in result.provenance for e in row["entries"])
    result.add_check(
        "provenance",
        findings,
        len(items),
        ngettext(
            "{n} items carry what their sources say of them (claims, not re-checkable); "
            "{rechecked} checks of the sources' own proofs re-run offline",
            "{n} items carry what their sources say of them (claims, not re-checkable); "
            "{rechecked} checks of the sources' own proofs re-run offline",
            len(items),
        ).format(n=len(items), rechecked=rechecked),
    )


def _row(check: str, recorded: str, now: str, detail: str) -> dict[str, str]:
    return {"check": check, "recorded": recorded, "now": now, "detail": detail}


def _finding(row: Mapping[str, str], seq: int, path: str, source: str) -> list[Finding]:
    recorded, now = row["recorded"], row["now"]
    if now == "failed":
        fails = (
            _("{check} of {source} fails (as at intake): {detail}")
            if recorded == "failed"
            else _("{check} of {source} fails (it was {recorded} at intake): {detail}")
        )
        return [
            Finding(
                Code.SOURCE_CHECK_FAILED,
                path,
                fails.format(
                    check=row["check"], source=source, recorded=recorded, detail=row["detail"]
                ),
                seq,
                recorded,
                now,
            )
        ]
    if now in ("passed", "failed") and recorded in ("passed", "failed") and now != recorded:
        return [
            Finding(
                Code.SOURCE_CHECK_CHANGED,
                path,
                _("{check} of {source} was {recorded} at intake and is {now} now: {detail}").format(
                    check=row["check"],
                    source=source,
                    recorded=recorded,
                    now=now,
                    detail=row["detail"],
                ),
                seq,
                recorded,
                now,
            )
        ]
    return []


def _c2pa(file: Path, data: Mapping[str, Any]) -> list[dict[str, str]]:
    from custody.acquisition.sources.c2pa import read_c2pa

    recorded = str(data.get("validation_state"))
    was = "failed" if recorded == "invalid" else "passed"
    try:
        report = read_c2pa(file)
    except CustodyError as exc:
        return [_row("c2pa_validation", was, "not_rechecked", str(exc))]
    if report is None:
        return [
            _row("c2pa_validation", was, "failed", _("no C2PA manifest is found in the file now"))
        ]
    state = str(report.validation_state)
    codes = ", ".join(report.failure_codes) or _("no failure code")
    detail = _("recorded {recorded}; the C2PA SDK ({version}) says {state} ({codes})").format(
        recorded=recorded, version=report.sdk_version, state=state, codes=codes
    )
    if report.manifest_store_sha256 != data.get("manifest_store_sha256"):
        detail += "; " + _("manifest store SHA-256 {found}, recorded {recorded}").format(
            found=report.manifest_store_sha256, recorded=data.get("manifest_store_sha256")
        )
        return [_row("c2pa_manifest_store", "passed", "failed", detail)]
    return [_row("c2pa_validation", was, "failed" if state == "invalid" else "passed", detail)]


def _chat(data: Mapping[str, Any], by_path: Mapping[str, ItemBody]) -> list[dict[str, str]]:
    chat = data.get("chat_file") or {}
    current = by_path.get(str(chat.get("path")))
    if current is None:
        detail = _("{path}, which the claims were read from, is no longer an item").format(
            path=chat.get("path")
        )
        return [_row("chat_file", "passed", "failed", detail)]
    if current.sha256 != chat.get("sha256"):
        detail = _(
            "{path} is now recorded with SHA-256 {sha256}, not the {recorded} the claims were "
            "read from"
        ).format(path=chat.get("path"), sha256=current.sha256, recorded=chat.get("sha256"))
        return [_row("chat_file", "passed", "failed", detail)]
    detail = _("{path} is the recorded chat file").format(path=chat.get("path"))
    return [_row("chat_file", "passed", "passed", detail)]


def _bag(data: Mapping[str, Any], body: ItemBody) -> list[dict[str, str]]:
    digests = data.get("bag_digests") or {}
    shared = sorted(set(digests) & set(body.digests))
    if not shared:
        names = ", ".join(sorted(digests))
        return [
            _row(
                "bag_digests",
                "passed",
                "not_checkable",
                _(
                    "the bag's {algorithms} digests were checked at intake; custody keeps other "
                    "algorithms (re-check the bag with 'custody bagit validate' or bagit.py)"
                ).format(algorithms=names),
            )
        ]
    wrong = [a for a in shared if digests[a] != body.digests[a]]
    if wrong:
        detail = "; ".join(
            _("{algorithm}: bag {bag}, item {item}").format(
                algorithm=a, bag=digests[a], item=body.digests[a]
            )
            for a in wrong
        )
        return [_row("bag_digests", "passed", "failed", detail)]
    detail = _("the bag's {algorithms} digests are the item's").format(algorithms=", ".join(shared))
    return [_row("bag_digests", "passed", "passed", detail)]


class _Bundles:
    """ProofMode bundles in the root, each read once, on first need."""

    def __init__(self, root: EvidenceRoot, gpg: str) -> None:
        self.root = root
        self.gpg = gpg
        self.read: dict[str, Any] = {}

    def _bundle(self, bundle_path: str) -> Any:
        from custody.acquisition.sources.proofmode import read_proofmode

        if bundle_path not in self.read:
            if shutil.which(self.gpg) is None:
                self.read[bundle_path] = _("GnuPG (gpg) is not installed here")
            else:
                try:
                    self.read[bundle_path] = read_proofmode(
                        self.root.path / bundle_path, gpg_binary=self.gpg
                    )
                except CustodyError as exc:
                    self.read[bundle_path] = str(exc)
        return self.read[bundle_path]

    def recheck(self, data: Mapping[str, Any]) -> list[dict[str, str]]:
        bundle = self._bundle(str(data.get("bundle_path")))
        recorded = {str(c.get("name")): c for c in data.get("checks") or []}
        if isinstance(bundle, str):
            return [
                _row(name, str(c.get("state")), "not_rechecked", bundle)
                for name, c in recorded.items()
            ]
        media = next((m for m in bundle.media if m.media_file == data.get("path_in_source")), None)
        if media is None:
            return [_row("proof_set", "passed", "failed",
                         _("the bundle no longer pairs this media file with a proof"))]  # fmt: skip
        rows = []
        now = {c.name: c for c in media.checks}
        for name in dict.fromkeys([*recorded, *now]):
            was = str(recorded[name].get("state")) if name in recorded else "-"
            check = now.get(name)
            if check is None:
                rows.append(_row(name, was, "not_rechecked", _("not made on re-reading")))
                continue
            detail = check.reason
            if name == "ots_attestation" and check.problem is not None:
                detail += "; " + _(
                    "an expert checks it with the OpenTimestamps client and a Bitcoin node: "
                    "ots verify -f MEDIA PROOF.ots"
                )
            rows.append(_row(name, was, str(check.state), detail))
        return rows
