"""Importing a received bundle: verified first, and only if it passes, copied into the
lawyer's own evidence root, catalogued, and its receipt recorded as a signed event.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.delivery.bundle_check import BundleSource, load_index, verify_bundle
from custody.errors import InputError, StorageError, UsageError
from custody.findings import Verdict, VerificationResult
from custody.ledger.bodies import ItemBody
from custody.ledger.records import SignedRecord
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, write_all
from custody.trust.policy import TrustPolicy

# --- import ---------------------------------------------------------------------------------


@dataclass
class ImportReport:
    verification: VerificationResult
    imported: int = 0
    folder: str = ""
    event: int | None = None


def import_bundle(
    bundle: Path,
    root: EvidenceRoot,
    signer: Any,
    *,
    into: str | None = None,
    policy: TrustPolicy,
) -> ImportReport:
    """Verify a bundle under ``policy``; only if it is VERIFIED (intact, and signed by keys
    the policy trusts), copy it into ``root`` and record its receipt."""
    from custody.acquisition.catalogue import Candidate, Descriptive, catalogue
    from custody.handling.events import event
    from custody.ledger.bodies import Acquisition

    result = verify_bundle(bundle, policy=policy)
    report = ImportReport(result)
    if result.verdict is not Verdict.VERIFIED:
        return report  # nothing is written for a bundle that fails or whose signer is unknown
    source = BundleSource(bundle)
    name = (into or f"received/{bundle.stem}").strip("/")
    if ".." in name.split("/") or name.startswith(".custody"):
        raise UsageError(f"--into {into!r} must be a folder inside the evidence root")
    target = root.path / name
    if target.exists():
        raise UsageError(f"{target} exists already; import into another folder with --into")
    try:
        index = load_index(source)
        # What to copy comes from the verified item records, never from index.json.
        lines = [x for x in source.read("custody/records.jsonl").split(b"\n") if x]
        items = [
            ItemBody.from_json(signed.record.body)
            for signed in map(SignedRecord.parse, lines)
            if signed.record.type == "item"
        ]
        for item in items:
            parts = item.name_bytes.split(b"/")
            if item.name_bytes.startswith(b"/") or {b"", b".", b".."} & set(parts):
                raise InputError(f"item path {item.path!r} leaves the import folder; refused")
        candidates: list[Candidate] = []
        root_b = os.fsencode(root.path)
        for item in items:
            rel = "data/" + item.path
            dest_rel = os.fsencode(name) + b"/" + item.name_bytes
            dest = root_b + b"/" + dest_rel
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            copied = hashlib.sha256()
            with source.open(rel) as handle, open(dest, "xb") as out:
                while chunk := handle.read(1 << 20):
                    copied.update(chunk)
                    write_all(out.fileno(), chunk)
                os.fsync(out.fileno())
            if copied.hexdigest() != item.sha256:
                shutil.rmtree(target, ignore_errors=True)
                raise InputError(f"{bundle}: {rel} changed while it was being imported")
            st = os.lstat(dest)
            candidates.append(
                Candidate(
                    dest_rel,
                    st.st_size,
                    st.st_mtime_ns,
                    Acquisition(f"{bundle}:{rel}", item.sha256, {}),
                )
            )
        material = root.state / "imports" / bundle.stem
        material.mkdir(parents=True, exist_ok=True)
        for rel in source.files:
            if rel.startswith("custody/") or rel in ("bag-info.txt", "HOW-TO-VERIFY.txt"):
                out_path = material / rel
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_bytes(source.read(rel))
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "import into", target)) from None
    finally:
        source.close()
    catalogued = catalogue(
        root,
        [],
        signer,
        descriptive=Descriptive(
            source=f"evidence bundle {bundle.name}",
            note=f"checkpoint root {index['checkpoint']['root']}",
        ),
        candidates=candidates,
    )
    seqs = [o.seq for o in catalogued.outcomes]
    report.imported = len(seqs)
    report.folder = str(target)
    if seqs:
        signed = event(
            root,
            signer,
            "receive",
            seqs,
            source=str(bundle),
            reason=f"bundle verified: {index['checkpoint']['tree_size']} records, "
            f"root {index['checkpoint']['root']}; signed by "
            + ", ".join(
                f"{s['name']} {s['fingerprint']}" for s in result.signers if s.get("records")
            ),
        )
        report.event = signed.seq
    return report
