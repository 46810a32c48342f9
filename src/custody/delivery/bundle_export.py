"""Writing evidence bundles: what a lawyer receives, as a BagIt bag with custody's proofs.

A bundle is a BagIt bag (RFC 8493). The payload under ``data/`` is the exported originals,
byte for byte, at their paths relative to the evidence root, listed in SHA-256 and
SHA-512 payload manifests. The custody material is tag files under ``custody/``:

* ``records.jsonl`` - the exact ledger lines of the exported items, their events and
  exhibit numbers, the latest case record, the keys that signed them (and whoever
  introduced those keys), the checkpoint every proof is against, and the timestamp records
  over it - nothing about any other item;
* ``proofs/record-<seq>.json`` - an inclusion proof of each of those records against the
  checkpoint (``custody.ledger.proofs`` format: only sibling hashes of other records);
* ``proofs/consistency-<a>-<b>.json`` - each earlier checkpoint the checkpoint extends;
* ``keys/<fingerprint>.pem`` - the public keys, for ``openssl pkeyutl``;
* ``timestamps/*.tsr`` - the raw RFC 3161 responses over the checkpoint;
* ``evidence/checkpoint-<seq>.ers`` - the RFC 4998 evidence record of the checkpoint (its
  line and token files), when ``custody renew`` has made one, and ``validation/`` - the
  certificates, CRLs and OCSP answers kept for those tokens (``custody.timestamps.longterm``);
* ``index.json`` - a machine-readable map of all of it;

plus ``HOW-TO-VERIFY.txt`` and ``HOW-TO-VERIFY.ar.txt`` (the same steps and commands in
English and in Arabic, ``custody.delivery.how_to_verify``) and a tag manifest. bagit-python
is the independent validator; the bag is written here (bagit-python's ``make_bag`` moves
files and changes the process's working directory), each original read once and its copy
re-read to prove it.

``verify_bundle`` checks a bundle folder or zip without trusting anything in it except
what the checks establish: every manifest entry, every record's signature and inclusion
proof, the checkpoint, the tokens, and every payload file against its item record.
Hostile bundles - paths with ``..``, absolute paths, links, extra or missing files,
altered proofs, tokens or records, zip bombs - get findings, and nothing is ever written.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custody import __version__
from custody.delivery.bundle_format import BUNDLE_FORMAT, PAYLOAD_ALGORITHMS, WITHHELD_REASON
from custody.delivery.how_to_verify import INSTRUCTIONS, VERIFY_SCRIPT
from custody.delivery.how_to_verify import write_all as write_how_to_verify
from custody.errors import StorageError, UsageError
from custody.evidence.hashing import available_cores, hash_fd, new_hash, open_evidence
from custody.handling.case import CaseDetails, latest_case
from custody.i18n import _, ngettext
from custody.keys.keyring import PublicKey
from custody.ledger import canonical
from custody.ledger.backends import open_ledger
from custody.ledger.bodies import COMMITTED_FIELDS, EventBody, ItemBody, KeyBody, TimestampBody
from custody.ledger.disclosures import Disclosure, DisclosureStore
from custody.ledger.proofs import consistency_document, inclusion_document
from custody.ledger.records import SignedRecord
from custody.ledger.store import Ledger
from custody.root import EvidenceRoot
from custody.system.files import (
    atomic_file,
    describe_os_error,
    fsync_dir,
    write_all,
    write_atomic,
)
from custody.system.paths import Folder


@dataclass
class ExportReport:
    out: str
    items: list[int] = field(default_factory=list)
    records: int = 0
    checkpoint: int = 0
    timestamps: int = 0
    payload_bytes: int = 0
    zip: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Identifying values (collector, source path, volume) the bundle carries, by field,
    # and the fields withheld (only their salted commitments are in the records).
    disclosed: dict[str, int] = field(default_factory=dict)
    withheld: dict[str, int] = field(default_factory=dict)
    evidence_records: int = 0
    validation: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "disclosed": self.disclosed,
            "withheld": self.withheld,
            "out": self.out,
            "zip": self.zip,
            "items": self.items,
            "records": self.records,
            "checkpoint": self.checkpoint,
            "timestamps": self.timestamps,
            "payload_bytes": self.payload_bytes,
            "warnings": self.warnings,
            "evidence_records": self.evidence_records,
            "validation": self.validation,
        }


# --- export ---------------------------------------------------------------------------------


def _choose_checkpoint(ledger: Ledger, needed: int) -> SignedRecord:
    """The latest timestamped checkpoint covering record ``needed``, else the latest one."""
    checkpoints = ledger.index.records_of_type("checkpoint")
    if not checkpoints:
        raise UsageError(_("the ledger has no checkpoint yet: run 'custody sign' first"))
    stamped = {
        ledger.read(seq).record.body.get("checkpoint")
        for seq in ledger.index.records_of_type("timestamp")
    }
    for seq in reversed(checkpoints):
        if seq in stamped and int(ledger.read(seq).record.body["tree_size"]) > needed:
            return ledger.read(seq)
    return ledger.read(checkpoints[-1])


def _related_records(ledger: Ledger, items: Sequence[int]) -> tuple[list[int], list[int]]:
    """The items, every event naming only exported items, their exhibit records and the
    latest case record; and the events withheld.

    An event that also names items outside the bundle (a vault copy of everything, a batch
    transfer) would disclose their paths and digests, so it stays home; the bundle lists
    its record number so the recipient knows it exists and can ask for it. An exhibit
    record names one item only, so it travels with its item.
    """
    exported = set(items)
    chosen: set[int] = set(items)
    withheld: set[int] = set()
    for seq in ledger.index.records_of_type("exhibit"):
        if ledger.read(seq).record.body["item"]["seq"] in exported:
            chosen.add(seq)
    cases = ledger.index.records_of_type("case")
    if cases:
        chosen.add(cases[-1])
    for seq in items:
        for event_seq in ledger.index.events_naming(seq):
            body = EventBody.from_json(ledger.read(event_seq).record.body)
            named = {ref.seq for ref in body.items} | (
                {body.output.seq} if body.output is not None else set()
            )
            (chosen if named <= exported else withheld).add(event_seq)
    return sorted(chosen), sorted(withheld)


def _key_closure(ledger: Ledger, signers: set[str]) -> list[int]:
    """Key introductions of the signers and, transitively, of their introducers; plus any
    rotation or revocation touching those keys (so key validity can be judged)."""
    introductions: dict[str, SignedRecord] = {}
    for seq in ledger.index.records_of_type("key"):
        signed = ledger.read(seq)
        introductions.setdefault(str(signed.record.body["fingerprint"]), signed)
    chosen: set[int] = set()
    wanted = list(signers)
    seen: set[str] = set()
    while wanted:
        fingerprint = wanted.pop()
        if fingerprint in seen or fingerprint not in introductions:
            continue
        seen.add(fingerprint)
        intro = introductions[fingerprint]
        chosen.add(intro.seq)
        wanted.append(intro.record.signer)
    for seq in ledger.index.records_of_type("revocation"):
        if ledger.read(seq).record.body.get("key") in seen:
            chosen.add(seq)
    for seq in ledger.index.records_of_type("key"):
        replaces = ledger.read(seq).record.body.get("replaces")
        if replaces in seen:
            chosen.add(seq)
    return sorted(chosen)


def export_bundle(
    root: EvidenceRoot,
    items: Sequence[int],
    out: Path,
    *,
    make_zip: bool = False,
    withhold: Sequence[str] = (),
    jobs: int | None = None,
) -> ExportReport:
    """Write a BagIt bundle of ``items`` (item record numbers) to ``out``; see module doc.

    ``withhold``: identifying fields (collector, source_path, volume) whose values stay
    out of the bundle; its records, which hold only salted commitments to them, still
    verify. Records made before commitments hold such values in the clear: withholding
    them is refused (UsageError), since it would break their signatures.

    ``jobs``: how many originals are copied at once (default: every core available).
    """
    if not items:
        raise UsageError(_("nothing to export: name items, a --tag, or use --all"))
    unknown = sorted(set(withhold) - set(COMMITTED_FIELDS))
    if unknown:
        raise UsageError(
            _("--withhold {fields}: choose among {choices}").format(
                fields=", ".join(unknown), choices=", ".join(COMMITTED_FIELDS)
            )
        )
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        raise UsageError(_("{path} exists and is not empty; choose a new folder").format(path=out))
    if root.path == out or root.path in out.parents:
        raise UsageError(
            _("{path} is inside the evidence root; export somewhere else").format(path=out)
        )
    report = ExportReport(str(out))
    with open_ledger(root) as ledger:
        item_records = [ledger.read(seq) for seq in items]
        by_path: dict[object, int] = {}
        carried: dict[str, int] = {}  # the name the bag carries, folded -> record
        for signed in item_records:
            if signed.record.type != "item":
                raise UsageError(
                    _("record {record} is not a catalogued item").format(record=signed.seq)
                )
            name = signed.record.body.get("path_bytes", signed.record.body["path"])
            if name in by_path:
                # One payload file per path: two versions would need two files at one place.
                raise UsageError(
                    _(
                        "records {first} and {second} are versions of the same path; export one "
                        "of them"
                    ).format(first=by_path[name], second=signed.seq)
                )
            by_path[name] = signed.seq
            # The bag carries each file under its display path (``path``): two names that
            # display the same (names that are not UTF-8), or that one disk or a zip
            # reader takes for one (case, Unicode normalisation), would leave one file out
            # or be refused as BUNDLE_UNSAFE. Refused here, loudly, before anything is
            # written (issue 15, point 21).
            shown = str(signed.record.body["path"])
            key = unicodedata.normalize("NFC", unicodedata.normalize("NFC", shown).casefold())
            twin = carried.get(key)
            if twin is not None:
                raise UsageError(
                    _(
                        "records {first} and {second} would be carried under one name in the "
                        "bundle ({name!r}: names equal once decoded, case-folded or "
                        "normalised); export them in separate bundles"
                    ).format(first=twin, second=signed.seq, name=_one_line(shown))
                )
            carried[key] = signed.seq
        related, withheld = _related_records(ledger, items)
        bodies = [ItemBody.from_json(r.record.body) for r in item_records]
        _refuse_clear_values(item_records, bodies, withhold)
        disclosures = [
            d
            for d in DisclosureStore(root.state).for_items(bodies)
            if d.parts()[1] not in withhold
        ]
        signed_case = latest_case(ledger)
        checkpoint = _choose_checkpoint(ledger, max(related))
        tree_size = int(checkpoint.record.body["tree_size"])
        # Only events of the ledger the bundle attests (up to its checkpoint) are listed.
        withheld = [seq for seq in withheld if seq < tree_size]
        late = [seq for seq in related if seq >= tree_size]
        if late:
            raise UsageError(
                ngettext(
                    "records {records} come after the last checkpoint: run 'custody sign' (and "
                    "'custody timestamp') first",
                    "records {records} come after the last checkpoint: run 'custody sign' (and "
                    "'custody timestamp') first",
                    len(late),
                ).format(records=", ".join(map(str, late[:5])))
            )
        signers = {ledger.read(seq).record.signer for seq in related} | {checkpoint.record.signer}
        # Record 0 (the founding key) always travels: its bytes are the ledger's identity,
        # which verifiers remember checkpoints under (custody.trust.remembered).
        keys = sorted(set(_key_closure(ledger, signers)) | {0})
        proven = sorted(set(related) | {k for k in keys if k < tree_size})
        stamps = [
            ledger.read(seq)
            for seq in ledger.index.records_of_type("timestamp")
            if ledger.read(seq).record.body.get("checkpoint") == checkpoint.seq
        ]
        if not stamps:
            report.warnings.append(
                _(
                    "checkpoint {checkpoint} has no trusted timestamp: run 'custody timestamp' "
                    "before exporting if the recipient needs proof of time"
                ).format(checkpoint=checkpoint.seq)
            )
        earlier = [
            seq for seq in ledger.index.records_of_type("checkpoint") if seq < checkpoint.seq
        ]
        lines = sorted(
            {ledger.read(seq).line for seq in (*proven, *keys, checkpoint.seq)}
            | {s.line for s in stamps},
            key=lambda line: SignedRecord.parse(line).seq,
        )
        proofs = {seq: inclusion_document(ledger, seq, checkpoint.seq) for seq in proven}
        longterm = _longterm(ledger, checkpoint.seq, [s.seq for s in stamps], report)
        consistency = []
        for seq in earlier:
            size = int(ledger.read(seq).record.body["tree_size"])
            if 0 < size < tree_size:
                consistency.append((seq, consistency_document(ledger, size, tree_size)))
    try:
        out.mkdir(parents=True, exist_ok=True)
        payload = _write_payload(root, item_records, out / "data", jobs)
        _write_custody(
            root,
            out,
            lines,
            proofs,
            consistency,
            stamps,
            checkpoint,
            payload,
            item_records,
            withheld,
            longterm,
            disclosures,
        )
        _write_bag_files(root, out, payload, item_records, checkpoint, signed_case)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write the bundle in", out)) from None
    report.items = list(items)
    report.records = len(lines)
    report.checkpoint = checkpoint.seq
    report.timestamps = len(stamps)
    report.evidence_records = len(longterm["evidence_records"])
    report.validation = len(longterm["validation"])
    report.payload_bytes = sum(size for size, _digests in payload.values())
    _count_disclosure(report, bodies, disclosures)
    if make_zip:
        report.zip = str(_zip(out))
    return report


def _refuse_clear_values(
    records: Sequence[SignedRecord], bodies: Sequence[ItemBody], withhold: Sequence[str]
) -> None:
    clear = []
    for signed, body in zip(records, bodies, strict=True):
        values = {"collector": body.collector}
        if body.acquisition is not None:
            values["source_path"] = body.acquisition.source_path
            values["volume"] = "set" if body.acquisition.volume is not None else None
        if any(values.get(name) is not None for name in withhold):
            clear.append(signed.seq)
    if clear:
        listing = ", ".join(map(str, clear))
        raise UsageError(
            ngettext(
                "record(s) {records} hold {fields} in the clear (recorded before custody kept "
                "them as commitments): leaving them out would break the records' signatures. "
                "Export those items without --withhold, or leave them out",
                "record(s) {records} hold {fields} in the clear (recorded before custody kept "
                "them as commitments): leaving them out would break the records' signatures. "
                "Export those items without --withhold, or leave them out",
                len(clear),
            ).format(records=listing, fields=", ".join(withhold))
        )


def _count_disclosure(
    report: ExportReport, bodies: Sequence[ItemBody], disclosures: Sequence[Disclosure]
) -> None:
    carried = {d.digest for d in disclosures}
    for body in bodies:
        values = {"collector": body.collector}
        if body.acquisition is not None:
            values["source_path"] = body.acquisition.source_path
            values["volume"] = "set" if body.acquisition.volume is not None else None
        for name in COMMITTED_FIELDS:
            digest = (body.commitments or {}).get(name)
            if values.get(name) is not None or (digest is not None and digest in carried):
                report.disclosed[name] = report.disclosed.get(name, 0) + 1
            elif digest is not None:
                report.withheld[name] = report.withheld.get(name, 0) + 1
def _longterm(
    ledger: Ledger, checkpoint: int, stamps: Sequence[int], report: ExportReport
) -> dict[str, Any]:
    """The checkpoint's RFC 4998 evidence record (if ``custody renew`` made one) and the
    validation material of its tokens and archive timestamps: files for the bundle."""
    from custody.errors import InputError
    from custody.timestamps.longterm import LongtermState
    from custody.timestamps.longterm_export import checkpoint_evidence

    state = LongtermState.from_ledger(ledger)
    files: dict[str, bytes] = {}
    entries: list[dict[str, Any]] = []
    material = [f for seq in stamps for f in state.timestamps[seq].validation]
    material += [
        f
        for _seq, body in state.validations
        if any(ref.record in stamps for ref in body.tokens)
        for f in body.validation
    ]
    try:
        found = checkpoint_evidence(state, ledger.read_token, checkpoint)
    except InputError as exc:
        found = None
        report.warnings.append(
            _("the evidence record of checkpoint {checkpoint} is left out: {why}").format(
                checkpoint=checkpoint, why=exc
            )
        )
    if found is not None:
        name = f"custody/evidence/checkpoint-{checkpoint}.ers"
        files[name] = found.record.to_der()
        entries.append(
            {
                "file": name,
                "checkpoint": checkpoint,
                "timestamps": list(found.group.timestamps),
                "chains": len(found.record.chains),
            }
        )
        material += found.material
    listed = []
    for ref in dict.fromkeys(material):
        try:
            data = ledger.read_token(ref.file)
        except OSError:
            report.warnings.append(
                _("validation material {file} is missing; left out").format(file=ref.file)
            )
            continue
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            report.warnings.append(
                _("validation material {file} was changed; left out").format(file=ref.file)
            )
            continue
        files[f"custody/{ref.file}"] = data
        listed.append({"kind": ref.kind, "file": f"custody/{ref.file}", "sha256": ref.sha256})
    return {"files": files, "evidence_records": entries, "validation": listed}


def _write_payload(
    root: EvidenceRoot, items: Sequence[SignedRecord], data_dir: Path, jobs: int | None = None
) -> dict[str, tuple[int, dict[str, str]]]:
    """Copy each original once, hashing for the manifests; re-read each copy to prove it.

    Files are copied ``jobs`` at a time (default: every core): while one thread waits for
    its copy to reach the disk (fsync), another hashes, so copying, hashing and re-reading
    overlap and the export runs at about the disk's pace (docs/performance.md).
    """
    root_b = os.fsencode(root.path)
    bodies: dict[str, tuple[SignedRecord, ItemBody]] = {}
    for signed in items:
        body: ItemBody = signed.record.typed_body()
        bodies.setdefault("data/" + body.path, (signed, body))
    # Written below data/ through descriptors: never through a link, never outside. Every
    # folder is made here, before the copies start, and kept for the fsync afterwards.
    folders: set[bytes] = set()
    with Folder.open(data_dir, create=True) as data:
        for _signed, body in bodies.values():
            # BagIt manifests are UTF-8 text: the bag holds the file under its display path
            # (the item record's path_bytes keeps the exact name, and import restores it).
            name = body.path.encode("utf-8", "surrogateescape")
            parent, _leaf = data.parent_of(name)
            parent.close()
            folder = os.path.dirname(name)
            while folder and folder not in folders:
                folders.add(folder)
                folder = os.path.dirname(folder)

        def copy(rel: str) -> tuple[str, tuple[int, dict[str, str]]]:
            signed, body = bodies[rel]
            parent, name = data.parent_of(body.path.encode("utf-8", "surrogateescape"))
            with parent:
                source = root_b + b"/" + body.name_bytes
                return rel, _copy_one(source, parent, name, signed.seq, body)

        # Largest first, so the last file to finish is a small one.
        order = sorted(bodies, key=lambda rel: -bodies[rel][1].size)
        with ThreadPoolExecutor(max_workers=max(1, jobs or available_cores())) as pool:
            payload = dict(pool.map(copy, order))
        # Every folder created, deepest first, so each new entry is durable in its parent.
        for folder in sorted(folders, key=len, reverse=True):
            with data.sub(folder, create=False) as sub:
                sub.sync()
        data.sync()
    fsync_dir(data_dir.parent)
    return payload


def _copy_one(
    source_path: bytes, parent: Folder, name: bytes, seq: int, body: ItemBody
) -> tuple[int, dict[str, str]]:
    """One original to ``name`` in ``parent`` (created there, never through a link): the
    manifest digests from the bytes read, the record's SHA-256 checked, the copy made
    durable, then re-read and checked against the record.
    """
    source = open_evidence(source_path)
    hashes = {a: new_hash(a) for a in PAYLOAD_ALGORITHMS}
    size = 0
    try:
        fd = parent.create(name)
        try:
            buf = bytearray(_COPY_CHUNK)
            view = memoryview(buf)
            while n := os.readv(source, [view]):
                chunk = view[:n]
                for h in hashes.values():
                    h.update(chunk)
                write_all(fd, chunk)
                size += n
            os.fsync(fd)
        finally:
            os.close(fd)
        mtime = os.fstat(source).st_mtime_ns
    finally:
        os.close(source)
    parent.utime(name, (mtime, mtime))
    digests = {a: h.hexdigest() for a, h in hashes.items()}
    if digests["sha256"] != body.sha256 or size != body.size:
        raise UsageError(
            _(
                "{path} no longer matches its record {record}; run 'custody verify' before "
                "exporting"
            ).format(path=body.path, record=seq)
        )
    # The copy, re-read now that it is durable, must carry the record's content. The
    # cheapest recorded digest proves it (BLAKE3 by default: a third of SHA-256's time);
    # the source was already held to the record's SHA-256 above.
    algorithm = "blake3" if "blake3" in body.digests else "sha256"
    fd = parent.open_read(name)
    try:
        reread_size, reread = hash_fd(fd, (algorithm,))
    finally:
        os.close(fd)
    if reread[algorithm] != body.digests[algorithm] or reread_size != size:
        shown = parent.where(name).decode("utf-8", "replace")
        raise StorageError(_("{path}: the copy does not match on re-read").format(path=shown))
    return size, digests


_COPY_CHUNK = 4 << 20


def _manifest_name(path: str) -> str:
    # RFC 8493 §2.1.3: CR, LF and % in file names are percent-encoded in manifests.
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _write_custody(
    root: EvidenceRoot,
    out: Path,
    lines: Sequence[bytes],
    proofs: dict[int, dict[str, Any]],
    consistency: Sequence[tuple[int, dict[str, Any]]],
    stamps: Sequence[SignedRecord],
    checkpoint: SignedRecord,
    payload: dict[str, tuple[int, dict[str, str]]],
    items: Sequence[SignedRecord],
    withheld: Sequence[int],
    longterm: dict[str, Any],
    disclosures: Sequence[Disclosure] = (),
) -> None:
    folder = out / "custody"
    for sub in ("proofs", "keys", "timestamps"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    if disclosures:
        # Salts and values of the identifying fields this bundle reveals (custody.ledger.
        # disclosures); those withheld are not here, and cannot be derived from it.
        write_atomic(
            folder / "disclosures.jsonl",
            b"".join(d.text.encode("ascii") + b"\n" for d in disclosures),
        )
    for rel, data in longterm["files"].items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    write_atomic(folder / "records.jsonl", b"".join(line + b"\n" for line in lines))
    for seq, document in proofs.items():
        write_atomic(folder / "proofs" / f"record-{seq}.json", canonical.encode(document) + b"\n")
    consistency_files = []
    for seq, document in consistency:
        name = f"consistency-{document['old_size']}-{document['new_size']}.json"
        write_atomic(folder / "proofs" / name, canonical.encode(document) + b"\n")
        consistency_files.append({"checkpoint": seq, "file": f"custody/proofs/{name}"})
    keys: list[dict[str, str]] = []
    for line in lines:
        signed = SignedRecord.parse(line)
        if signed.record.type == "key":
            body = KeyBody.from_json(signed.record.body)
            pem = PublicKey(body.public_key, body.name, body.role).pem()
            write_atomic(folder / "keys" / f"{body.fingerprint}.pem", pem)
            entry = {
                "fingerprint": body.fingerprint,
                "name": body.name,
                "role": body.role,
                "file": f"custody/keys/{body.fingerprint}.pem",
            }
            if body.holder:
                entry["holder"] = body.holder
            if all(k["fingerprint"] != body.fingerprint for k in keys):
                keys.append(entry)
    tokens = []
    for stamp in stamps:
        body_t = TimestampBody.from_json(stamp.record.body)
        name = posixpath.basename(body_t.token_file)
        with open_ledger(root) as ledger:
            write_atomic(folder / "timestamps" / name, ledger.read_token(body_t.token_file))
        tokens.append(
            {
                "record": stamp.seq,
                "file": f"custody/timestamps/{name}",
                "tsa": body_t.tsa,
                "gen_time": body_t.gen_time,
                "imprint": body_t.imprint,
            }
        )
    cosignature_files, note_file = _write_witness_material(root, folder, checkpoint, consistency)
    index = {
        "format": BUNDLE_FORMAT,
        "tool": f"custody {__version__}",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "checkpoint": {
            "record": checkpoint.seq,
            "tree_size": checkpoint.record.body["tree_size"],
            "root": checkpoint.record.body["root"],
            "signer": checkpoint.record.signer,
        },
        "records": "custody/records.jsonl",
        "items": [
            {
                "record": s.seq,
                "path": s.record.body["path"],
                "data_path": "data/" + s.record.body["path"],
                "size": s.record.body["size"],
                "digests": s.record.body["digests"],
                "proof": f"custody/proofs/record-{s.seq}.json",
            }
            for s in items
        ],
        "proofs": {str(seq): f"custody/proofs/record-{seq}.json" for seq in sorted(proofs)},
        "consistency": consistency_files,
        "keys": keys,
        "timestamps": tokens,
        "payload_files": len(payload),
        "withheld_events": [{"record": seq, "reason": WITHHELD_REASON} for seq in withheld],
        "cosignatures": cosignature_files,
        "disclosures": {
            "file": "custody/disclosures.jsonl" if disclosures else None,
            "count": len(disclosures),
            "withheld": _withheld_fields(items, disclosures),
        },
        "evidence_records": longterm["evidence_records"],
        "validation": longterm["validation"],
    }
    if note_file is not None:
        index["checkpoint_note"] = note_file
    spec = _write_spec(folder)
    index["tools"] = {
        "verify_script": f"custody/{VERIFY_SCRIPT}",
        "specification": spec,
        # The instructions at the top of the bundle, one file per language (written below,
        # from this index).
        "instructions": {lang: entry["name"] for lang, entry in INSTRUCTIONS.items()},
    }
    write_atomic(
        folder / "index.json", (json.dumps(index, indent=2, ensure_ascii=False) + "\n").encode()
    )
    write_how_to_verify(index, lines, out)


def _write_witness_material(
    root: EvidenceRoot,
    folder: Path,
    checkpoint: SignedRecord,
    consistency: Sequence[tuple[int, dict[str, Any]]],
) -> tuple[list[dict[str, Any]], str | None]:
    """Witnesses' cosignatures of the bundle's checkpoint (or of an earlier checkpoint the
    bundle proves it extends), as cosignature files; and the checkpoint's C2SP note if one
    was made (custody sign --format c2sp). Cosignatures authenticate themselves, so they
    travel without inclusion proofs."""
    from custody.ledger import cosignatures
    from custody.ledger.bodies import WitnessBody

    sizes = {int(checkpoint.record.body["tree_size"])} | {
        int(document["old_size"]) for _seq, document in consistency
    }
    files: list[dict[str, Any]] = []
    note_file = None
    with open_ledger(root) as ledger:
        identity = hashlib.sha256(ledger.read(0).line).hexdigest()
        for seq in ledger.index.records_of_type("witness"):
            body = WitnessBody.from_json(ledger.read(seq).record.body)
            if body.tree_size not in sizes:
                continue
            document = cosignatures.to_document(identity, body)
            (folder / "cosignatures").mkdir(exist_ok=True)
            name = f"cosignatures/record-{seq}.json"
            write_atomic(folder / name, (json.dumps(document, indent=2) + "\n").encode())
            files.append(
                {
                    "file": f"custody/{name}",
                    "record": seq,
                    "tree_size": body.tree_size,
                    "witness": document["witness_fingerprint"],
                }
            )
        try:
            note = ledger.read_token(f"notes/checkpoint-{checkpoint.seq}.txt")
        except OSError:
            note = None
        if note is not None:
            write_atomic(folder / "checkpoint.note", note)
            note_file = "custody/checkpoint.note"
    return files, note_file


def _withheld_fields(
    items: Sequence[SignedRecord], disclosures: Sequence[Disclosure]
) -> list[str]:
    carried = {d.digest for d in disclosures}
    fields: set[str] = set()
    for signed in items:
        for name, digest in (signed.record.body.get("commitments") or {}).items():
            if digest not in carried:
                fields.add(str(name))
    return sorted(fields)


def _write_bag_files(
    root: EvidenceRoot,
    out: Path,
    payload: dict[str, tuple[int, dict[str, str]]],
    items: Sequence[SignedRecord],
    checkpoint: SignedRecord,
    signed_case: CaseDetails | None = None,
) -> None:
    write_atomic(out / "bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    for algorithm in PAYLOAD_ALGORITHMS:
        text = "".join(
            f"{digests[algorithm]}  {_manifest_name(path)}\n"
            for path, (_, digests) in sorted(payload.items())
        )
        write_atomic(out / f"manifest-{algorithm}.txt", text.encode())
    total = sum(size for size, _digests in payload.values())
    case = root.config().case
    info = {
        "Source-Organization": case.get("organization", case.get("organisation", "")),
        "Contact-Name": case.get("contact", ""),
        "External-Identifier": case.get("id", case.get("name", "")),
        "External-Description": case.get(
            "description", f"custody evidence bundle of {len(items)} item(s)"
        ),
        "Bagging-Date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "Bag-Software-Agent": f"custody {__version__}",
        "Payload-Oxum": f"{total}.{len(payload)}",
        "Custody-Checkpoint": (
            f"record {checkpoint.seq}, {checkpoint.record.body['tree_size']} records, "
            f"root {checkpoint.record.body['root']}"
        ),
        "Custody-Items": str(len(items)),
    }
    if signed_case is not None:
        # The signed case record (in custody/records.jsonl) says it; bag-info repeats it
        # for people and tools that read only the bag (unsigned here, like all of bag-info).
        info["External-Identifier"] = signed_case.number or signed_case.name
        info["Custody-Case"] = ", ".join(
            p for p in (signed_case.name, signed_case.number, signed_case.court) if p
        ) + f" (case record {signed_case.record})"
    lines = [f"{k}: {_one_line(v)}" for k, v in info.items() if v]
    write_atomic(out / "bag-info.txt", ("\n".join(lines) + "\n").encode())
    tag_files = sorted(
        p
        for p in _relative_files(out)
        if not p.startswith("data/") and not p.startswith("tagmanifest-")
    )
    for algorithm in PAYLOAD_ALGORITHMS:
        text = ""
        for rel in tag_files:
            digest = new_hash(algorithm)
            digest.update((out / rel).read_bytes())
            text += f"{digest.hexdigest()}  {_manifest_name(rel)}\n"
        write_atomic(out / f"tagmanifest-{algorithm}.txt", text.encode())


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _relative_files(folder: Path) -> Iterator[str]:
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            yield os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/")


def _zip(out: Path) -> Path:
    target = out.with_suffix(".zip")
    if target.exists():
        raise UsageError(_("{path} exists; not overwritten").format(path=target))
    # An unpredictable temporary name, created O_EXCL|O_NOFOLLOW (custody.system.files).
    try:
        with (
            atomic_file(target) as handle,
            zipfile.ZipFile(
                handle, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
            ) as archive,
        ):
            for rel in sorted(_relative_files(out)):
                # Originals are stored, not deflated: media is compressed already, and a
                # highly compressible original (silence, a blank scan) would exceed the
                # zip-bomb ratio the verifier enforces, so custody would refuse its own bundle.
                kind = zipfile.ZIP_STORED if rel.startswith("data/") else zipfile.ZIP_DEFLATED
                archive.write(out / rel, f"{out.name}/{rel}", compress_type=kind)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write", target)) from None
    return target


# The normative documents a verifier needs, carried in every bundle (custody/spec/).
SPEC_DOCUMENTS = ("format.md", "merkle.md", "proofs.md", "bundle.md", "long-term.md")


def spec_folder() -> Path | None:
    """docs/ of the custody source tree this code runs from (an editable or source install,
    the way scripts/setup.sh installs it); None if custody was installed without it."""
    folder = Path(__file__).resolve().parents[3] / "docs"
    return folder if all((folder / name).is_file() for name in SPEC_DOCUMENTS) else None


def _write_spec(folder: Path) -> list[str]:
    """The standalone checking script and the format specification, into custody/."""
    from custody.delivery import standalone

    script = Path(standalone.__file__).read_bytes()
    write_atomic(folder / VERIFY_SCRIPT, script, mode=0o755)
    docs = spec_folder()
    if docs is None:
        return []
    (folder / "spec").mkdir(exist_ok=True)
    written = []
    for name in SPEC_DOCUMENTS:
        write_atomic(folder / "spec" / name, (docs / name).read_bytes())
        written.append(f"custody/spec/{name}")
    return written
