"""Checking a capture folder offline: is everything ``capture.json`` lists still as written?

``check_capture`` re-reads a finished capture folder and reports every difference it finds
as a named ``Finding``; it never stops at the first. It checks, with nothing but the folder:

* ``capture.json`` is there, is JSON and has the format this code knows;
* every listed file exists as a regular file (symlinks are findings, never followed) with
  the recorded size and SHA-256, and no file is in the folder that the record does not list;
* the WACZ: ``datapackage-digest.json`` matches ``datapackage.json``, every resource there
  matches its ``hash`` and ``bytes``, every ZIP entry is a listed resource, ``wacz_version``
  is 1.1.1;
* the WARC inside it: its SHA-256 is the recorded one; every record's WARC-Block-Digest
  holds; every response's WARC-Payload-Digest holds over its entity-body (chunk framing
  removed, as the capture wrote it; see ``warc_writer``);
* the main document's response record is in the WARC with the recorded payload digest, and
  every media file's WARC record ids are in the WARC, and a file marked ``payload`` equals the
  decoded payload of one of them.

What it cannot say: that the page was like this on the server (only that these files are
the ones the capture wrote and that they agree with each other). The folder's integrity
against later change is the ledger's business once the lead records ``capture.json``'s
digest there.

Imports only the standard library: it reads the WARC with its own small parser, so that
the check does not lean on the library that wrote it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

FORMAT = "custody-web-capture/1"
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


@dataclass(frozen=True)
class Finding:
    """One thing that does not hold: ``code`` names the kind, ``path`` the file or record."""

    code: str
    path: str
    detail: str

    def to_record(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "detail": self.detail}


@dataclass(frozen=True)
class CaptureCheck:
    """The findings, and what was checked (so an empty check is never a pass)."""

    findings: tuple[Finding, ...]
    checked: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.findings and bool(self.checked)

    def to_record(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.to_record() for f in self.findings],
                "checked": list(self.checked)}


def _open_regular(path: Path) -> IO[bytes] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _digest(handle: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while block := handle.read(1 << 20):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    rest = body
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        size_text = line.split(b";", 1)[0].strip()
        if not sep or not _HEX.fullmatch(size_text):
            return bytes(out)
        size = int(size_text, 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2:]


def _walk(folder: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(folder, followlinks=False):
        base = Path(root)
        for name in files + [d for d in dirs if (base / d).is_symlink()]:
            yield (base / name).relative_to(folder).as_posix()


def check_capture(folder: Path) -> CaptureCheck:
    """Check a capture folder against its ``capture.json``; collect every finding."""
    findings: list[Finding] = []
    checked: list[str] = []
    handle = _open_regular(folder / "capture.json")
    if handle is None:
        return CaptureCheck((Finding("missing-record", "capture.json",
                                     "no readable capture.json in the folder"),), ())
    with handle:
        try:
            record = json.loads(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return CaptureCheck((Finding("bad-record", "capture.json", str(exc)[:200]),), ())
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return CaptureCheck((Finding("unknown-format", "capture.json",
                                     f"not a {FORMAT} record: upgrade custody"),), ())
    checked.append("capture.json")
    listed: dict[str, dict[str, Any]] = {}
    for entry in record.get("files", []):
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            listed[entry["path"]] = entry
    for rel, entry in sorted(listed.items()):
        target = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            findings.append(Finding("bad-path", rel, "a listed path leaves the folder"))
            continue
        opened = _open_regular(target)
        if opened is None:
            findings.append(Finding("missing-file", rel, "listed but not a readable file"))
            continue
        with opened:
            sha, size = _digest(opened)
        if sha != entry.get("sha256") or size != entry.get("bytes"):
            findings.append(Finding("changed-file", rel,
                                    f"sha256 {sha} ({size} bytes), recorded "
                                    f"{entry.get('sha256')} ({entry.get('bytes')} bytes)"))
        checked.append(rel)
    for rel in sorted(set(_walk(folder)) - set(listed) - {"capture.json"}):
        findings.append(Finding("unlisted-file", rel, "in the folder but not in capture.json"))
    wacz = next((p for p, e in listed.items() if e.get("role") == "wacz"), None)
    if wacz is None:
        findings.append(Finding("missing-file", "archive.wacz", "the record lists no WACZ"))
        return CaptureCheck(tuple(findings), tuple(checked))
    _check_wacz(folder / wacz, wacz, record, findings, checked)
    return CaptureCheck(tuple(findings), tuple(checked))


def _check_wacz(path: Path, rel: str, record: dict[str, Any], findings: list[Finding],
                checked: list[str]) -> None:
    handle = _open_regular(path)
    if handle is None:
        return
    try:
        with handle, zipfile.ZipFile(handle) as zf:
            names = set(zf.namelist())
            try:
                package_bytes = zf.read("datapackage.json")
                package = json.loads(package_bytes)
                digest_doc = json.loads(zf.read("datapackage-digest.json"))
            except (KeyError, ValueError) as exc:
                findings.append(Finding("bad-wacz", rel, f"no usable datapackage: {exc}"))
                return
            want = "sha256:" + hashlib.sha256(package_bytes).hexdigest()
            if digest_doc.get("hash") != want:
                findings.append(Finding("bad-wacz", f"{rel}:datapackage.json",
                                        "does not match datapackage-digest.json"))
            if package.get("wacz_version") != "1.1.1":
                findings.append(Finding("bad-wacz", rel, "wacz_version is not 1.1.1"))
            resources: dict[str, dict[str, Any]] = {
                r["path"]: r for r in package.get("resources", [])
                if isinstance(r, dict) and isinstance(r.get("path"), str)}
            for name in sorted(names - set(resources)
                               - {"datapackage.json", "datapackage-digest.json"}):
                findings.append(Finding("bad-wacz", f"{rel}:{name}", "not a listed resource"))
            for name, resource in sorted(resources.items()):
                if name not in names:
                    findings.append(Finding("bad-wacz", f"{rel}:{name}", "listed but absent"))
                    continue
                with zf.open(name) as member:
                    sha, size = _digest(member)
                if resource.get("hash") != f"sha256:{sha}" or resource.get("bytes") != size:
                    findings.append(Finding("bad-wacz", f"{rel}:{name}",
                                            "does not match its datapackage.json entry"))
                if name == "archive/data.warc.gz" and sha != (record.get("warc") or {}).get(
                        "sha256"):
                    findings.append(Finding("changed-warc", f"{rel}:{name}",
                                            "not the WARC the record names"))
            checked.append(f"{rel}:datapackage.json")
            if "archive/data.warc.gz" not in names:
                findings.append(Finding("bad-wacz", rel, "no archive/data.warc.gz"))
                return
            with zf.open("archive/data.warc.gz") as member:
                _check_warc(member, record, findings, checked)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        findings.append(Finding("bad-wacz", rel, f"not a readable ZIP or WARC: {exc}"))


def _labelled(digest: str | None) -> bytes | None:
    if not digest or not digest.startswith("sha256:"):
        return None
    try:
        return base64.b32decode(digest[len("sha256:"):])
    except ValueError:
        return None


def _records(stream: IO[bytes]) -> Iterator[tuple[dict[str, str], bytes]]:
    """(WARC named fields, block) of each record: a reader of our own, not warcio's."""
    plain = gzip.GzipFile(fileobj=stream)  # one member per record; GzipFile reads them all
    while True:
        line = plain.readline(1 << 16)
        if not line:
            return
        if line in (b"\r\n", b"\n"):
            continue
        if not line.startswith(b"WARC/"):
            raise ValueError(f"not a WARC record header: {line[:40]!r}")
        fields: dict[str, str] = {}
        while True:
            line = plain.readline(1 << 16)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("utf-8").partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "-1"))
        if length < 0:
            raise ValueError("a WARC record without Content-Length")
        block = plain.read(length)
        if len(block) != length:
            raise ValueError("the WARC ends inside a record")
        yield fields, block


def _header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1").lower()
    return ""


def _check_warc(stream: IO[bytes], record: dict[str, Any], findings: list[Finding],
                checked: list[str]) -> None:
    payloads: dict[str, tuple[str, str]] = {}  # response id -> (payload sha256, decoded)
    count = 0
    try:
        for fields, block in _records(stream):
            count += 1
            rid = fields.get("warc-record-id", "?")
            want = _labelled(fields.get("warc-block-digest"))
            if want is not None and hashlib.sha256(block).digest() != want:
                findings.append(Finding("bad-warc-record", rid, "WARC-Block-Digest fails"))
            if fields.get("warc-type") != "response":
                continue
            head, _, body = block.partition(b"\r\n\r\n")
            entity = _dechunk(body) if "chunked" in _header(head, b"transfer-encoding") else body
            want = _labelled(fields.get("warc-payload-digest"))
            if want is not None and hashlib.sha256(entity).digest() != want:
                findings.append(Finding("bad-warc-record", rid, "WARC-Payload-Digest fails"))
            payloads[rid] = (hashlib.sha256(entity).hexdigest(),
                             _decoded_sha(entity, _header(head, b"content-encoding")))
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        findings.append(Finding("bad-warc", "archive/data.warc.gz", str(exc)[:200]))
        return
    checked.append(f"archive/data.warc.gz ({count} records)")
    main = record.get("main_document") or {}
    if main:
        main_id = str(main.get("warc_response_id"))
        if main_id not in payloads:
            findings.append(Finding("missing-warc-record", main_id, "main document response"))
        elif payloads[main_id][0] != main.get("payload_sha256"):
            findings.append(Finding("bad-warc-record", main_id, "main document payload differs"))
    for item in record.get("media", []):
        wanted = item.get("warc_record_ids", [])
        ids = [i for i in wanted if i in payloads]
        if len(ids) != len(wanted):
            findings.append(Finding("missing-warc-record", item.get("path", "?"),
                                    "a media file's WARC record is not in the WARC"))
        if item.get("match") == "payload" and not any(
                payloads[i][1] == item.get("sha256") for i in ids):
            findings.append(Finding("media-not-in-warc", item.get("path", "?"),
                                    "no referenced response carries these bytes"))


def _decoded_sha(entity: bytes, coding: str) -> str:
    """SHA-256 of the entity with its content coding (gzip, deflate) undone, if any."""
    try:
        if coding in ("gzip", "x-gzip"):
            entity = zlib.decompress(entity, 16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            entity = zlib.decompress(entity)
    except zlib.error:
        pass
    return hashlib.sha256(entity).hexdigest()
