"""Evidence bundles: what a lawyer receives, checked offline, imported into their own root.

A bundle is a BagIt bag (RFC 8493). The payload under ``data/`` is the exported originals,
byte for byte, at their paths relative to the evidence root, listed in SHA-256 and
SHA-512 payload manifests. The custody material is tag files under ``custody/``:

* ``records.jsonl`` - the exact ledger lines of the exported items, their events, the
  keys that signed them (and whoever introduced those keys), the checkpoint every proof
  is against, and the timestamp records over it - nothing about any other item;
* ``proofs/record-<seq>.json`` - an inclusion proof of each of those records against the
  checkpoint (``custody.ledger.proofs`` format: only sibling hashes of other records);
* ``proofs/consistency-<a>-<b>.json`` - each earlier checkpoint the checkpoint extends;
* ``keys/<fingerprint>.pem`` - the public keys, for ``openssl pkeyutl``;
* ``timestamps/*.tsr`` - the raw RFC 3161 responses over the checkpoint;
* ``index.json`` - a machine-readable map of all of it;

plus ``HOW-TO-VERIFY.txt`` and a tag manifest. bagit-python is the independent validator;
the bag is written here (bagit-python's ``make_bag`` moves files and changes the process's
working directory), each original read once and its copy re-read to prove it.

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
import shutil
import stat
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from custody import __version__
from custody.errors import InputError, RecordError, StorageError, UsageError
from custody.evidence.hashing import new_hash, open_evidence
from custody.findings import Code, Finding, VerificationResult
from custody.keys.keyring import PublicKey
from custody.ledger import canonical
from custody.ledger.backends import open_ledger
from custody.ledger.proofs import check_document, consistency_document, inclusion_document
from custody.ledger.records import (
    CheckpointBody,
    EventBody,
    ItemBody,
    KeyBody,
    SignedRecord,
    TimestampBody,
)
from custody.ledger.store import Ledger
from custody.root import EvidenceRoot
from custody.system.files import describe_os_error, fsync_dir, write_all, write_atomic

BUNDLE_FORMAT = "custody-bundle/1"
PAYLOAD_ALGORITHMS = ("sha256", "sha512")
# Zip safety: refuse archives whose expansion is implausible for evidence.
MAX_ZIP_ENTRIES = 1_000_000
MAX_ZIP_RATIO = 200  # uncompressed / compressed, for any entry over 1 MiB
MAX_ZIP_TOTAL = 1 << 42  # 4 TiB


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

    def to_json(self) -> dict[str, Any]:
        return {
            "out": self.out,
            "zip": self.zip,
            "items": self.items,
            "records": self.records,
            "checkpoint": self.checkpoint,
            "timestamps": self.timestamps,
            "payload_bytes": self.payload_bytes,
            "warnings": self.warnings,
        }


# --- export ---------------------------------------------------------------------------------


def _choose_checkpoint(ledger: Ledger, needed: int) -> SignedRecord:
    """The latest timestamped checkpoint covering record ``needed``, else the latest one."""
    checkpoints = ledger.index.records_of_type("checkpoint")
    if not checkpoints:
        raise UsageError("the ledger has no checkpoint yet: run 'custody sign' first")
    stamped = {
        ledger.read(seq).record.body.get("checkpoint")
        for seq in ledger.index.records_of_type("timestamp")
    }
    for seq in reversed(checkpoints):
        if seq in stamped and int(ledger.read(seq).record.body["tree_size"]) > needed:
            return ledger.read(seq)
    return ledger.read(checkpoints[-1])


def _related_records(ledger: Ledger, items: Sequence[int]) -> tuple[list[int], list[int]]:
    """The items and every event naming only exported items; and the events withheld.

    An event that also names items outside the bundle (a vault copy of everything, a batch
    transfer) would disclose their paths and digests, so it stays home; the bundle lists
    its record number so the recipient knows it exists and can ask for it.
    """
    exported = set(items)
    chosen: set[int] = set(items)
    withheld: set[int] = set()
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
) -> ExportReport:
    """Write a BagIt bundle of ``items`` (item record numbers) to ``out``; see module doc."""
    if not items:
        raise UsageError("nothing to export: name items, a --tag, or use --all")
    out = out.resolve()
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} exists and is not empty; choose a new folder")
    if root.path == out or root.path in out.parents:
        raise UsageError(f"{out} is inside the evidence root; export somewhere else")
    report = ExportReport(str(out))
    with open_ledger(root) as ledger:
        item_records = [ledger.read(seq) for seq in items]
        by_path: dict[object, int] = {}
        for signed in item_records:
            if signed.record.type != "item":
                raise UsageError(f"record {signed.seq} is not a catalogued item")
            name = signed.record.body.get("path_bytes", signed.record.body["path"])
            if name in by_path:
                # One payload file per path: two versions would need two files at one place.
                raise UsageError(
                    f"records {by_path[name]} and {signed.seq} are versions of the same path; "
                    "export one of them"
                )
            by_path[name] = signed.seq
        related, withheld = _related_records(ledger, items)
        checkpoint = _choose_checkpoint(ledger, max(related))
        tree_size = int(checkpoint.record.body["tree_size"])
        late = [seq for seq in related if seq >= tree_size]
        if late:
            raise UsageError(
                f"records {', '.join(map(str, late[:5]))} come after the last checkpoint: "
                "run 'custody sign' (and 'custody timestamp') first"
            )
        signers = {ledger.read(seq).record.signer for seq in related} | {checkpoint.record.signer}
        keys = _key_closure(ledger, signers)
        proven = sorted(set(related) | {k for k in keys if k < tree_size})
        stamps = [
            ledger.read(seq)
            for seq in ledger.index.records_of_type("timestamp")
            if ledger.read(seq).record.body.get("checkpoint") == checkpoint.seq
        ]
        if not stamps:
            report.warnings.append(
                f"checkpoint {checkpoint.seq} has no trusted timestamp: run 'custody timestamp' "
                "before exporting if the recipient needs proof of time"
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
        consistency = []
        for seq in earlier:
            size = int(ledger.read(seq).record.body["tree_size"])
            if 0 < size < tree_size:
                consistency.append((seq, consistency_document(ledger, size, tree_size)))
    try:
        out.mkdir(parents=True, exist_ok=True)
        payload = _write_payload(root, item_records, out / "data")
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
        )
        _write_bag_files(root, out, payload, item_records, checkpoint)
    except OSError as exc:
        raise StorageError(describe_os_error(exc, "write the bundle in", out)) from None
    report.items = list(items)
    report.records = len(lines)
    report.checkpoint = checkpoint.seq
    report.timestamps = len(stamps)
    report.payload_bytes = sum(size for size, _ in payload.values())
    if make_zip:
        report.zip = str(_zip(out))
    return report


def _write_payload(
    root: EvidenceRoot, items: Sequence[SignedRecord], data_dir: Path
) -> dict[str, tuple[int, dict[str, str]]]:
    """Copy each original once, hashing for the manifests; re-read each copy to prove it."""
    payload: dict[str, tuple[int, dict[str, str]]] = {}
    root_b = os.fsencode(root.path)
    for signed in items:
        body: ItemBody = signed.record.typed_body()
        rel = "data/" + body.path
        if rel in payload:
            continue
        # BagIt manifests are UTF-8 text: the bag holds the file under its display path
        # (the item record's path_bytes keeps the exact name, and import restores it).
        target = os.fsencode(data_dir) + b"/" + body.path.encode("utf-8", "surrogateescape")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        source = open_evidence(root_b + b"/" + body.name_bytes)
        hashes = {a: new_hash(a) for a in (*PAYLOAD_ALGORITHMS, "blake3")}
        size = 0
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                while chunk := os.read(source, 1 << 20):
                    for h in hashes.values():
                        h.update(chunk)
                    write_all(fd, chunk)
                    size += len(chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            mtime = os.fstat(source).st_mtime_ns
        finally:
            os.close(source)
        os.utime(target, ns=(mtime, mtime))
        digests = {a: h.hexdigest() for a, h in hashes.items()}
        if digests["sha256"] != body.sha256 or size != body.size:
            raise UsageError(
                f"{body.path} no longer matches its record {signed.seq}; run 'custody verify' "
                "before exporting"
            )
        reread = hashlib.sha256(Path(os.fsdecode(target)).read_bytes()).hexdigest()
        if reread != body.sha256:
            raise StorageError(f"{os.fsdecode(target)}: the copy does not match on re-read")
        payload[rel] = (size, {a: digests[a] for a in PAYLOAD_ALGORITHMS})
    fsync_dir(data_dir)
    return payload


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
) -> None:
    folder = out / "custody"
    for sub in ("proofs", "keys", "timestamps"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "records.jsonl", b"".join(line + b"\n" for line in lines))
    for seq, document in proofs.items():
        write_atomic(folder / "proofs" / f"record-{seq}.json", canonical.encode(document) + b"\n")
    consistency_files = []
    for seq, document in consistency:
        name = f"consistency-{document['old_size']}-{document['new_size']}.json"
        write_atomic(folder / "proofs" / name, canonical.encode(document) + b"\n")
        consistency_files.append({"checkpoint": seq, "file": f"custody/proofs/{name}"})
    keys = []
    for line in lines:
        signed = SignedRecord.parse(line)
        if signed.record.type == "key":
            body = KeyBody.from_json(signed.record.body)
            pem = PublicKey(body.public_key, body.name, body.role).pem()
            write_atomic(folder / "keys" / f"{body.fingerprint}.pem", pem)
            keys.append(
                {
                    "fingerprint": body.fingerprint,
                    "name": body.name,
                    "role": body.role,
                    "file": f"custody/keys/{body.fingerprint}.pem",
                }
            )
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
        "withheld_events": [
            {"record": seq, "reason": "also names items outside this bundle"} for seq in withheld
        ],
    }
    write_atomic(
        folder / "index.json", (json.dumps(index, indent=2, ensure_ascii=False) + "\n").encode()
    )
    write_atomic(out / "HOW-TO-VERIFY.txt", _how_to_verify(index).encode())


def _write_bag_files(
    root: EvidenceRoot,
    out: Path,
    payload: dict[str, tuple[int, dict[str, str]]],
    items: Sequence[SignedRecord],
    checkpoint: SignedRecord,
) -> None:
    write_atomic(out / "bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    for algorithm in PAYLOAD_ALGORITHMS:
        text = "".join(
            f"{digests[algorithm]}  {_manifest_name(path)}\n"
            for path, (_, digests) in sorted(payload.items())
        )
        write_atomic(out / f"manifest-{algorithm}.txt", text.encode())
    total = sum(size for size, _ in payload.values())
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
        raise UsageError(f"{target} exists; not overwritten")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for rel in sorted(_relative_files(out)):
            # Originals are stored, not deflated: media is compressed already, and a
            # highly compressible original (silence, a blank scan) would exceed the zip-bomb
            # ratio the verifier enforces, so custody would refuse its own bundle.
            kind = zipfile.ZIP_STORED if rel.startswith("data/") else zipfile.ZIP_DEFLATED
            archive.write(out / rel, f"{out.name}/{rel}", compress_type=kind)
    os.replace(tmp, target)
    return target


def _how_to_verify(index: dict[str, Any]) -> str:
    checkpoint = index["checkpoint"]
    return f"""HOW TO VERIFY THIS EVIDENCE BUNDLE
==================================

This folder is a BagIt bag (RFC 8493) made by {index["tool"]} on {index["created"]}.
It holds {len(index["items"])} evidence file(s) under data/, exactly as catalogued, and
under custody/ the records, proofs, keys and timestamps that show where they came from.
Every check below uses standard tools; none needs custody. Run them from this folder.

1. The bag is complete and no file was changed
   python3 -m pip install bagit && bagit.py --validate .
   sha256sum -c manifest-sha256.txt        (every line must say OK)
   sha512sum -c manifest-sha512.txt

2. The records say what the files are
   custody/records.jsonl holds one signed record per line (format: docs/format.md of
   custody). For each file, its "item" record gives the path, size and digests; compare:
       grep '"type":"item"' custody/records.jsonl
   The "sha256" in each item record must equal the file's line in manifest-sha256.txt.

3. Each record was signed by the key it names
   The public keys are in custody/keys/<fingerprint>.pem. A key's fingerprint is:
       openssl pkey -pubin -in custody/keys/F.pem -outform DER | tail -c 32 | sha256sum
   To check the signature of line N of custody/records.jsonl:
       line=$(sed -n 'Np' custody/records.jsonl)
       printf '%s' "$line" | sed 's/^{{"sig":"[^"]*","signed"://; s/}}$//' > msg.bin
       printf '%s' "$line" | sed 's/^{{"sig":"\\([^"]*\\)".*/\\1/' | base64 -d > sig.bin
       openssl pkeyutl -verify -pubin -inkey custody/keys/F.pem -rawin -in msg.bin -sigfile sig.bin
   where F is the "signer" of that record. It must print "Signature Verified Successfully".

4. The records are in the ledger the checkpoint covers, and nothing else is revealed
   The checkpoint is record {checkpoint["record"]}: the first {checkpoint["tree_size"]} ledger
   records have the RFC 9162 Merkle root {checkpoint["root"]}.
   custody/proofs/record-<seq>.json proves one record is in that tree: "record_line" is the
   exact line, "audit_path" the sibling hashes (RFC 9162 section 2.1.3.2). The leaf hash is
       printf '%s' "<record_line>" | (printf '\\000'; cat) | sha256sum
   Other people's records are represented only by these hashes.

5. The checkpoint existed at the trusted time
   Each custody/timestamps/*.tsr is an RFC 3161 response over the SHA-256 of the
   checkpoint line (record {checkpoint["record"]} in custody/records.jsonl, without newline):
       grep -n '"type":"checkpoint"' custody/records.jsonl
       sed -n 'Lp' custody/records.jsonl | tr -d '\\n' | sha256sum     (L = that line)
       openssl ts -reply -in custody/timestamps/T.tsr -text
       openssl ts -verify -digest <that sha256> -in custody/timestamps/T.tsr \\
           -CAfile <the timestamp authority's root certificate, obtained from the TSA>
   (add -attime <genTime as seconds since 1970> if the TSA certificate has since expired).

6. All of it at once, with custody installed:
       custody verify .          (or: custody verify bundle.zip)

custody/index.json lists every file named above.
"""


# --- verification ---------------------------------------------------------------------------


class BundleSource:
    """Read-only access to a bundle folder or zip, refusing anything that escapes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        self.files: dict[str, int] = {}  # relative path -> size
        if path.is_dir():
            self._scan_folder()
        elif zipfile.is_zipfile(path):
            self._scan_zip()
        else:
            raise InputError(f"{path} is neither a bundle folder nor a zip file")

    def _unsafe(self, name: str, why: str) -> None:
        self.findings.append(
            Finding(
                Code.BUNDLE_UNSAFE,
                name,
                f"refused: {why}; nothing is read from it or written for it",
                None,
                "a plain file inside the bundle",
                why,
            )
        )

    def _scan_folder(self) -> None:
        base = self.path
        for dirpath, dirs, files in os.walk(base, followlinks=False):
            for name in list(dirs):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    dirs.remove(name)
                    self._unsafe(os.path.relpath(full, base), "a symbolic link")
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, base).replace(os.sep, "/")
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    self._unsafe(rel, "a symbolic link")
                elif not stat.S_ISREG(st.st_mode):
                    self._unsafe(rel, "not a regular file")
                else:
                    self.files[rel] = st.st_size

    def _scan_zip(self) -> None:
        archive = zipfile.ZipFile(self.path)
        self.zip = archive
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise InputError(f"{self.path}: {len(entries)} entries; refused as a zip bomb")
        total = 0
        names = []
        for info in entries:
            name = info.filename
            if info.is_dir():
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode == stat.S_IFLNK:
                self._unsafe(name, "a symbolic link")
                continue
            if name.startswith("/") or "\\" in name or ".." in name.split("/") or ":" in name:
                self._unsafe(name, "a path that leaves the bundle")
                continue
            if (
                info.file_size > (1 << 20)
                and info.compress_size
                and (info.file_size / info.compress_size > MAX_ZIP_RATIO)
            ):
                raise InputError(
                    f"{self.path}: {name} expands {info.file_size // max(info.compress_size, 1)} "
                    "times; refused as a zip bomb"
                )
            total += info.file_size
            names.append((name, info.file_size))
        if total > MAX_ZIP_TOTAL:
            raise InputError(f"{self.path}: expands to {total} bytes; refused as a zip bomb")
        # A zip made by custody has one top folder; accept a bag at the top level too.
        tops = {n.split("/", 1)[0] for n, _ in names}
        if len(tops) == 1 and not any(n == "bagit.txt" for n, _ in names):
            self.prefix = next(iter(tops)) + "/"
        for name, size in names:
            if name.startswith(self.prefix):
                self.files[name[len(self.prefix) :]] = size

    def open(self, rel: str) -> BinaryIO:
        if rel not in self.files:
            raise FileNotFoundError(rel)
        if self.zip is not None:
            return self.zip.open(self.prefix + rel)  # type: ignore[return-value]
        return open(self.path / rel, "rb")

    def read(self, rel: str, limit: int = 1 << 30) -> bytes:
        with self.open(rel) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"{rel} in the bundle is implausibly large")
        return data

    def digests(self, rel: str, algorithms: Sequence[str]) -> dict[str, str]:
        hashes = {a: new_hash(a) for a in algorithms}
        with self.open(rel) as handle:
            while chunk := handle.read(1 << 20):
                for h in hashes.values():
                    h.update(chunk)
        return {a: h.hexdigest() for a, h in hashes.items()}

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _parse_manifest(data: bytes, name: str, findings: list[Finding]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not raw.strip():
            continue
        parts = raw.split(None, 1) if "  " not in raw else raw.split("  ", 1)
        if len(parts) != 2:
            findings.append(
                Finding(Code.BUNDLE_MALFORMED, name, f"line {number} is not 'digest  path'")
            )
            continue
        digest, path = (
            parts[0].lower(),
            parts[1].replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%"),
        )
        entries[path] = digest
    return entries


def load_index(source: BundleSource) -> dict[str, Any]:
    """custody/index.json, parsed strictly and of the shape the checks rely on.

    It is untrusted input like everything in a bundle: a nested, mistyped or oversized
    index is unusable input (InputError), never a crash.
    """
    where = "custody/index.json is not a custody bundle index"
    try:
        index = canonical.decode(
            source.read("custody/index.json", limit=1 << 26), require_canonical=False
        )
    except RecordError as exc:
        raise InputError(f"{where}: {exc}") from None
    checkpoint = index.get("checkpoint") if isinstance(index, dict) else None
    if not isinstance(checkpoint, dict):
        raise InputError(f"{where}: no checkpoint")
    record, tree_size, root = (checkpoint.get(k) for k in ("record", "tree_size", "root"))
    if not (
        isinstance(record, int)
        and isinstance(tree_size, int)
        and isinstance(root, str)
        and not isinstance(record, bool)
        and not isinstance(tree_size, bool)
        and len(root) == 64
        and all(c in "0123456789abcdef" for c in root)
    ):
        raise InputError(f"{where}: the checkpoint needs a record, a tree size and a root")
    for name in ("items", "consistency", "timestamps", "keys", "withheld_events"):
        members = index.get(name, [])
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise InputError(f"{where}: '{name}' is not a list of objects")
    checked: dict[str, Any] = index
    return checked


def verify_bundle(path: Path, *, tsa_trust: Any = None) -> VerificationResult:
    """Verify a bundle folder or zip offline; every check, every finding."""
    result = VerificationResult(root=str(path))
    source = BundleSource(path)
    try:
        _verify(source, result, tsa_trust)
    finally:
        source.close()
    return result


def _verify(source: BundleSource, result: VerificationResult, tsa_trust: Any) -> None:
    structure: list[Finding] = list(source.findings)
    files = source.files
    if "bagit.txt" not in files:
        raise InputError(f"{source.path} is not a BagIt bag (no bagit.txt)")
    if "custody/index.json" not in files or "custody/records.jsonl" not in files:
        raise InputError(f"{source.path} is not a custody bundle (no custody/index.json)")
    # Payload manifests: every payload file listed and matching; nothing extra.
    manifests = {
        a: _parse_manifest(source.read(f"manifest-{a}.txt"), f"manifest-{a}.txt", structure)
        for a in PAYLOAD_ALGORITHMS
        if f"manifest-{a}.txt" in files
    }
    if not manifests:
        structure.append(Finding(Code.BUNDLE_MALFORMED, "manifest", "no payload manifest"))
    listed = set().union(*(m.keys() for m in manifests.values())) if manifests else set()
    payload = {p for p in files if p.startswith("data/")}
    file_findings: list[Finding] = []
    for rel in sorted(listed - payload):
        if ".." in rel.split("/") or rel.startswith("/"):
            structure.append(Finding(Code.BUNDLE_UNSAFE, rel, "a manifest entry leaves the bundle"))
        else:
            file_findings.append(
                Finding(Code.FILE_MISSING, rel, "listed in the manifest but not in the bundle")
            )
    for rel in sorted(payload - listed):
        file_findings.append(Finding(Code.FILE_UNEXPECTED, rel, "in data/ but in no manifest"))
    hashed: dict[str, dict[str, str]] = {}
    for rel in sorted(payload & listed):
        actual = source.digests(rel, (*PAYLOAD_ALGORITHMS, "blake3"))
        hashed[rel] = actual
        for algorithm, manifest in manifests.items():
            if rel in manifest and manifest[rel] != actual[algorithm]:
                file_findings.append(
                    Finding(
                        Code.FILE_MODIFIED,
                        rel,
                        f"{algorithm} differs from the payload manifest",
                        None,
                        manifest[rel],
                        actual[algorithm],
                    )
                )
    # Tag manifests cover the custody material.
    for algorithm in PAYLOAD_ALGORITHMS:
        name = f"tagmanifest-{algorithm}.txt"
        if name not in files:
            continue
        for rel, expected in _parse_manifest(source.read(name), name, structure).items():
            if rel not in files:
                structure.append(Finding(Code.FILE_MISSING, rel, f"listed in {name} but absent"))
            elif source.digests(rel, (algorithm,))[algorithm] != expected:
                structure.append(
                    Finding(Code.FILE_MODIFIED, rel, f"differs from {name}", None, expected)
                )
    result.files_checked = len(hashed)
    result.bytes_hashed = sum(files[r] for r in hashed)
    result.add_check(
        "bag structure",
        structure,
        len(files),
        "BagIt files present, manifests readable, no path leaving the bundle",
    )
    _verify_custody(source, result, hashed, file_findings, tsa_trust)


def _verify_custody(
    source: BundleSource,
    result: VerificationResult,
    hashed: dict[str, dict[str, str]],
    file_findings: list[Finding],
    tsa_trust: Any,
) -> None:
    from custody.ledger.checks import examine, reference_findings

    records_findings: list[Finding] = []
    proof_findings: list[Finding] = []
    index = load_index(source)
    checkpoint_info = index["checkpoint"]
    tree_size = int(checkpoint_info["tree_size"])
    root = bytes.fromhex(checkpoint_info["root"])
    raw_lines = source.read("custody/records.jsonl").split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    # Keys come only from key records that are proven to be in the ledger (below).
    keys: dict[str, bytes] = {}
    parsed: dict[int, SignedRecord] = {}
    for number, line in enumerate(raw_lines, 1):
        try:
            signed = SignedRecord.parse(line)
            signed.record.typed_body()
        except RecordError as exc:
            records_findings.append(
                Finding(Code.RECORD_MALFORMED, f"records.jsonl line {number}", str(exc))
            )
            continue
        if signed.seq in parsed:
            records_findings.append(
                Finding(Code.RECORD_DUPLICATED, f"record {signed.seq}", "listed twice")
            )
        parsed[signed.seq] = signed
        if signed.record.type == "key":
            keys.setdefault(
                str(signed.record.body["fingerprint"]),
                KeyBody.from_json(signed.record.body).public_key,
            )
    checkpoint = parsed.get(int(checkpoint_info["record"]))
    if checkpoint is None or checkpoint.record.type != "checkpoint":
        records_findings.append(
            Finding(
                Code.CHECKPOINT_MISMATCH,
                "checkpoint",
                "the checkpoint record named by the index is not in records.jsonl",
            )
        )
    else:
        body = CheckpointBody.from_json(checkpoint.record.body)
        if body.tree_size != tree_size or body.root != root.hex():
            records_findings.append(
                Finding(
                    Code.CHECKPOINT_MISMATCH,
                    f"record {checkpoint.seq}",
                    "the index and the checkpoint record disagree",
                    checkpoint.seq,
                    body.root,
                    root.hex(),
                )
            )
    # Every record except the checkpoint itself (and timestamps over it) must be proven.
    proven: set[int] = set()
    for seq, signed in sorted(parsed.items()):
        if checkpoint is not None and (
            seq == checkpoint.seq
            or (
                signed.record.type == "timestamp"
                and signed.record.body.get("checkpoint") == checkpoint.seq
            )
        ):
            continue
        name = f"custody/proofs/record-{seq}.json"
        if name not in source.files:
            proof_findings.append(
                Finding(
                    Code.PROOF_INVALID, f"record {seq}", "no inclusion proof in the bundle", seq
                )
            )
            continue
        try:
            document = canonical.decode(source.read(name).strip(), require_canonical=False)
        except RecordError as exc:
            proof_findings.append(
                Finding(Code.PROOF_INVALID, f"record {seq}", f"{name}: {exc}", seq)
            )
            continue
        if not isinstance(document, dict):
            proof_findings.append(
                Finding(Code.PROOF_INVALID, f"record {seq}", f"{name} is not a proof", seq)
            )
            continue
        outcome = check_document(document)
        same_line = document.get("record_line") == signed.line.decode("utf-8")
        same_tree = document.get("tree_size") == tree_size and document.get("root") == root.hex()
        if not outcome.ok or not same_line or not same_tree:
            why = (
                outcome.failures[0]
                if outcome.failures
                else (
                    "the proof is for other bytes than records.jsonl holds"
                    if not same_line
                    else "the proof is against another checkpoint"
                )
            )
            proof_findings.append(Finding(Code.PROOF_INVALID, f"record {seq}", why, seq))
            continue
        proven.add(seq)
    # Signatures, with keys introduced by proven key records (or the checkpoint's signer key).
    usable_keys = {
        fp: raw
        for fp, raw in keys.items()
        if any(
            s.record.type == "key" and s.record.body.get("fingerprint") == fp and s.seq in proven
            for s in parsed.values()
        )
    }
    signature_findings: list[Finding] = []
    for seq, signed in sorted(parsed.items()):
        facts = examine(signed.line, True, usable_keys, False)
        if facts.signature_ok is None:
            signature_findings.append(
                Finding(
                    Code.UNKNOWN_KEY,
                    f"record {seq}",
                    "signed by a key not proven in this bundle",
                    seq,
                    None,
                    signed.record.signer,
                )
            )
        elif not facts.signature_ok:
            signature_findings.append(
                Finding(Code.BAD_SIGNATURE, f"record {seq}", "the signature does not verify", seq)
            )
    signature_findings.extend(_revocations(parsed, proven))
    # Items against the payload.
    expected_paths: set[str] = set()
    for seq, signed in sorted(parsed.items()):
        if signed.record.type != "item":
            continue
        item = ItemBody.from_json(signed.record.body)
        rel = "data/" + item.path
        expected_paths.add(rel)
        actual = hashed.get(rel)
        if actual is None:
            if not any(f.item == rel for f in file_findings):
                file_findings.append(
                    Finding(Code.FILE_MISSING, rel, "the item's file is not in the bundle", seq)
                )
            continue
        for algorithm, value in item.digests.items():
            if algorithm in actual and actual[algorithm] != value:
                file_findings.append(
                    Finding(
                        Code.FILE_MODIFIED,
                        rel,
                        f"{algorithm} differs from item record {seq}",
                        seq,
                        value,
                        actual[algorithm],
                    )
                )
                break
    for rel in sorted(set(hashed) - expected_paths):
        file_findings.append(
            Finding(Code.FILE_UNEXPECTED, rel, "a payload file no item record describes")
        )
    records_findings.extend(_index_disagreements(index, parsed))
    # Consistency proofs of earlier checkpoints.
    for entry in index.get("consistency", []):
        rel = str(entry.get("file", ""))
        try:
            document = canonical.decode(source.read(rel).strip(), require_canonical=False)
            outcome = check_document(document)
            if not outcome.ok or document.get("new_root") != root.hex():
                proof_findings.append(
                    Finding(
                        Code.NOT_APPEND_ONLY,
                        rel,
                        outcome.failures[0]
                        if outcome.failures
                        else "not a proof towards this checkpoint",
                    )
                )
        except (RecordError, FileNotFoundError, InputError) as exc:
            proof_findings.append(Finding(Code.PROOF_INVALID, rel, str(exc)))
    result.ledger_size = tree_size
    result.tree_root = root.hex()
    result.add_check(
        "records",
        records_findings,
        len(parsed),
        f"{len(parsed)} ledger records in the bundle parsed strictly",
    )
    result.add_check(
        "inclusion proofs",
        proof_findings,
        len(proven),
        f"{len(proven)} records proven in the {tree_size}-record ledger with root {root.hex()}",
    )
    result.add_check(
        "signatures",
        signature_findings,
        len(parsed),
        f"signatures checked against {len(usable_keys)} keys proven in the ledger",
    )
    result.add_check(
        "files",
        file_findings,
        len(hashed),
        f"{len(hashed)} payload files against the manifests and their item records",
    )
    # (References to records the bundle leaves out - other victims' items - are not checked.)
    reference_problems, checked = reference_findings(
        {seq: signed.record for seq, signed in parsed.items()}
    )
    result.add_check(
        "references",
        reference_problems,
        checked,
        f"{checked} references between the bundle's records name an earlier item record "
        "with that content",
    )
    _verify_tokens(source, result, parsed, checkpoint, tsa_trust)


def _index_disagreements(index: dict[str, Any], parsed: dict[int, SignedRecord]) -> list[Finding]:
    """index.json is covered only by the tag manifests, which anyone can recompute: its
    item entries must say exactly what the signed item records say, and list them all."""
    findings: list[Finding] = []
    items = {
        seq: ItemBody.from_json(s.record.body)
        for seq, s in parsed.items()
        if s.record.type == "item"
    }
    listed: set[int] = set()
    for entry in index.get("items", []):
        seq = entry.get("record") if isinstance(entry, dict) else None
        body = items.get(seq) if isinstance(seq, int) else None
        if body is None or not isinstance(seq, int) or seq in listed:
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    f"lists record {seq!r}, which is not an item record in records.jsonl",
                )
            )
            continue
        listed.add(seq)
        expected = {
            "path": body.path,
            "data_path": "data/" + body.path,
            "size": body.size,
            "digests": dict(body.digests),
        }
        wrong = sorted(k for k, v in expected.items() if entry.get(k) != v)
        if wrong:
            findings.append(
                Finding(
                    Code.BUNDLE_MALFORMED,
                    "custody/index.json",
                    f"its entry for record {seq} disagrees with the signed item record "
                    f"({', '.join(wrong)})",
                    seq,
                    json.dumps({k: expected[k] for k in wrong}, ensure_ascii=False),
                    json.dumps({k: entry.get(k) for k in wrong}, ensure_ascii=False),
                )
            )
    for seq in sorted(set(items) - listed):
        findings.append(
            Finding(
                Code.BUNDLE_MALFORMED,
                "custody/index.json",
                f"does not list item record {seq}",
                seq,
            )
        )
    return findings


def _revocations(parsed: dict[int, SignedRecord], proven: set[int]) -> list[Finding]:
    """KEY_REVOKED for records signed after a proven revocation or rotation of their key."""
    ended: dict[str, int] = {}
    for seq, signed in sorted(parsed.items()):
        if seq not in proven:
            continue
        body = signed.record.body
        if signed.record.type == "revocation":
            ended.setdefault(str(body.get("key")), seq)
        elif signed.record.type == "key" and body.get("replaces") == signed.record.signer:
            ended.setdefault(signed.record.signer, seq)
    return [
        Finding(
            Code.KEY_REVOKED,
            f"record {seq}",
            f"signed after its key was revoked or retired at record {ended[s.record.signer]}",
            seq,
        )
        for seq, s in sorted(parsed.items())
        if s.record.signer in ended and seq > ended[s.record.signer]
    ]


def _verify_tokens(
    source: BundleSource,
    result: VerificationResult,
    parsed: dict[int, SignedRecord],
    checkpoint: SignedRecord | None,
    tsa_trust: Any,
) -> None:
    from custody.timestamps.stamping import Trust, review_findings, review_tokens, token_rows

    if checkpoint is None:
        return
    stamps = [
        (seq, TimestampBody.from_json(s.record.body))
        for seq, s in sorted(parsed.items())
        if s.record.type == "timestamp"
    ]

    def read_token(token_file: str) -> bytes:
        # A token travels as custody/timestamps/<its file name>; nothing else is read.
        name = posixpath.basename(token_file)
        if name in ("", ".", ".."):
            raise FileNotFoundError(token_file)
        try:
            return source.read(f"custody/timestamps/{name}", limit=1 << 22)
        except InputError as exc:
            raise FileNotFoundError(str(exc)) from None

    review = review_tokens(
        read_token, stamps, {checkpoint.seq: checkpoint.line}, tsa_trust or Trust()
    )
    findings = review_findings(review)
    if not review.valid:
        findings.append(
            Finding(
                Code.TIMESTAMP_PENDING,
                f"record {checkpoint.seq}",
                "the checkpoint has no trusted timestamp in this bundle",
                checkpoint.seq,
            )
        )
    result.add_check(
        "timestamps",
        findings,
        review.checked,
        f"{len(review.valid)} of {review.checked} RFC 3161 tokens over the checkpoint valid",
    )
    result.timestamps = token_rows(review)


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
    tsa_trust: Any = None,
) -> ImportReport:
    """Verify a bundle; only if it passes, copy it into ``root`` and record its receipt."""
    from custody.acquisition.catalogue import Candidate, Descriptive, catalogue
    from custody.handling.events import event
    from custody.ledger.records import Acquisition

    result = verify_bundle(bundle, tsa_trust=tsa_trust)
    report = ImportReport(result)
    if not result.ok:
        return report  # nothing is written for a bundle that fails
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
            f"root {index['checkpoint']['root']}",
        )
        report.event = signed.seq
    return report
