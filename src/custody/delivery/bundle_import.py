"""Importing a received bundle: verified first, and only if it passes, copied into the
lawyer's own evidence root, catalogued, and its receipt recorded as a signed event.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody.delivery.bundle_check import verify_source
from custody.delivery.bundle_source import BundleSource, bundle_records, load_index
from custody.delivery.how_to_verify import INSTRUCTIONS
from custody.errors import InputError, StorageError, UsageError
from custody.findings import Verdict, VerificationResult
from custody.i18n import _
from custody.ledger.bodies import ItemBody
from custody.root import STATE_DIR, EvidenceRoot
from custody.system.files import describe_os_error, write_all
from custody.system.paths import Folder, write_file_under
from custody.trust.policy import TrustPolicy

# The instructions in every language a bundle carries them in (kept with its material).
_INSTRUCTIONS = frozenset(entry["name"] for entry in INSTRUCTIONS.values())

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
    from custody.acquisition.catalogue import Descriptive, catalogue
    from custody.handling.events import event

    stem = bundle.resolve().stem
    name = root.folder_inside(into or f"received/{stem}")
    with BundleSource(bundle) as source:
        # One snapshot: what is copied, and under which names, comes from the very bytes
        # verified here (a second read of records.jsonl used to decide it).
        result = verify_source(source, policy=policy)
        report = ImportReport(result)
        if result.verdict is not Verdict.VERIFIED:
            return report  # nothing is written for a bundle that fails or is unconfirmed
        index = load_index(source)
        # What to copy comes from the verified item records, never from index.json.
        records = bundle_records(source)
        items = [
            ItemBody.from_json(signed.record.body)
            for _seq, signed in sorted(records.items())
            if signed.record.type == "item"
        ]
        for item in items:
            # ItemBody already refuses '..', absolute and empty components; a bundle item
            # may not reach into a nested evidence root's state either.
            if STATE_DIR.encode() in item.name_bytes.split(b"/"):
                raise InputError(
                    _("item path {path!r} names a {folder} folder; refused").format(
                        path=item.path, folder=STATE_DIR
                    )
                )
        target = root.path / os.fsdecode(name)
        # Everything kept is read (and held to the bytes verified) before anything is
        # written: a file changed since is refused with nothing in the root.
        material = _material(source)
        candidates = _copy_items(bundle, source, root, name, items)
        _keep_material(material, root, stem)
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


def _copy_items(
    bundle: Path, source: BundleSource, root: EvidenceRoot, name: bytes, items: list[ItemBody]
) -> list[Any]:
    """Copy each verified item into ROOT/NAME, never through a link, never over a file.

    Each copy is hashed as it is written and must have the SHA-256 its signed record
    gives, which is the digest verification pinned: a payload changed since it was
    verified is refused and what was copied removed.
    """
    from custody.acquisition.catalogue import Candidate
    from custody.ledger.bodies import Acquisition

    candidates: list[Candidate] = []
    with Folder.open(root.path) as evidence:
        if evidence.lstat(name.split(b"/")[0]) is not None:
            try:
                existing = evidence.sub(name, create=False)
            except FileNotFoundError:
                existing = None
            if existing is not None:
                existing.close()
                raise UsageError(
                    _("{path} exists already; import into another folder with --into").format(
                        path=root.path / os.fsdecode(name)
                    )
                )
        folder = evidence.sub(name)
        written: list[tuple[Folder, bytes]] = []
        try:
            for item in items:
                rel = "data/" + item.path
                parent, leaf = folder.parent_of(item.name_bytes)
                written.append((parent, leaf))
                copied = hashlib.sha256()
                out = parent.create(leaf)
                try:
                    with source.open(rel) as handle:
                        while chunk := handle.read(1 << 20):
                            copied.update(chunk)
                            write_all(out, chunk)
                    os.fsync(out)
                    st = os.fstat(out)
                except OSError as exc:
                    raise StorageError(
                        describe_os_error(exc, "import into", folder.where(item.name_bytes))
                    ) from None
                finally:
                    os.close(out)
                if copied.hexdigest() != item.sha256:
                    raise InputError(
                        _("{bundle}: {file} changed while it was being imported").format(
                            bundle=bundle, file=rel
                        )
                    )
                candidates.append(
                    Candidate(
                        name + b"/" + item.name_bytes,
                        st.st_size,
                        st.st_mtime_ns,
                        Acquisition(f"{bundle}:{rel}", item.sha256, {}),
                    )
                )
        except BaseException:
            for parent, leaf in written:
                with contextlib.suppress(OSError):
                    parent.unlink(leaf)
            raise
        finally:
            for parent, _leaf in written:
                parent.close()
            folder.close()
    return candidates


def _material(source: BundleSource) -> dict[str, bytes]:
    """The bundle's custody material (records, proofs, keys, tokens, index) from the
    verified snapshot: a file read again must be the bytes verified, or it is refused."""
    return {
        rel: source.read(rel)
        for rel in source.files
        if rel.startswith("custody/") or rel == "bag-info.txt" or rel in _INSTRUCTIONS
    }


def _keep_material(files: dict[str, bytes], root: EvidenceRoot, stem: str) -> None:
    """``_material``, kept under ``.custody/imports/STEM/``, never through a link."""
    where = root.folder_inside(stem, "the bundle's name")
    with (
        Folder.open(root.state) as state,
        state.sub("imports") as imports,
        imports.sub(where) as material,
    ):
        for rel, data in files.items():
            write_file_under(material, rel, data)
