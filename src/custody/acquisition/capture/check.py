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

Given the capture record as signed in the ledger (``expected``), it checks the folder
against that record instead, and ``capture.json`` against it too (``record-differs``).
A failed attempt (a capture that fetched nothing) lists no file: then only ``capture.json``
and the absence of other files are checked.

Finding codes: ``missing-record``, ``bad-record``, ``record-differs``, ``unknown-format``
(capture.json), ``bad-path``, ``missing-file``, ``changed-file``, ``unlisted-file`` (the
folder against the listing), ``bad-wacz``, ``changed-warc`` (the package), ``bad-warc``,
``bad-warc-record``, ``missing-warc-record``, ``media-not-in-warc`` (the WARC and the
media's links into it). ``custody verify`` turns them into CAPTURE_FOLDER_CHANGED and
CAPTURE_ARCHIVE_INVALID findings (``verify/roots.py``).

What it cannot say: that the page was like this on the server (only that these files are
the ones the capture wrote and that they agree with each other). The folder's integrity
against later change is the ledger's business once the lead records ``capture.json``'s
digest there.

Imports only the standard library and ``custody.i18n`` (the details are for people, in the
language of the run; the codes are what programs read): it reads the WARC with its own small
parser, so that the check does not lean on the library that wrote it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from custody.i18n import _

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


def _read_record(folder: Path) -> tuple[Any, Finding | None]:
    handle = _open_regular(folder / "capture.json")
    if handle is None:
        return None, Finding("missing-record", "capture.json",
                             _("no readable capture.json in the folder"))
    with handle:
        try:
            return json.loads(handle.read().decode("utf-8")), None
        except (UnicodeDecodeError, ValueError) as exc:
            return None, Finding("bad-record", "capture.json", str(exc)[:200])


def check_capture(folder: Path, expected: Mapping[str, Any] | None = None) -> CaptureCheck:
    """Check a capture folder against its ``capture.json``; collect every finding.

    ``expected`` is the capture record as it was signed (the ``capture`` of the ledger's
    capture event): given it, the folder is checked against it rather than against what
    the folder says of itself, and a ``capture.json`` that is not that record is a finding
    (``record-differs``) - trust comes from the verifier's side, not from the folder.
    """
    findings: list[Finding] = []
    checked: list[str] = []
    record, problem = _read_record(folder)
    if expected is not None:
        if problem is not None:
            findings.append(problem)
        elif record != expected:
            findings.append(Finding("record-differs", "capture.json",
                                    _("not the capture record that was signed")))
        else:
            checked.append("capture.json")
        record = dict(expected)
    elif problem is not None:
        return CaptureCheck((problem,), ())
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return CaptureCheck((*findings, Finding("unknown-format", "capture.json",
                                                _("not a {format} record: upgrade custody").format(
                                                    format=FORMAT))), ())
    if expected is None:
        checked.append("capture.json")
    listed: dict[str, dict[str, Any]] = {}
    for entry in record.get("files", []):
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            listed[entry["path"]] = entry
    for rel, entry in sorted(listed.items()):
        target = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            findings.append(Finding("bad-path", rel, _("a listed path leaves the folder")))
            continue
        opened = _open_regular(target)
        if opened is None:
            findings.append(Finding("missing-file", rel, _("listed but not a readable file")))
            continue
        with opened:
            sha, size = _digest(opened)
        if sha != entry.get("sha256") or size != entry.get("bytes"):
            findings.append(Finding("changed-file", rel,
                                    _("sha256 {sha256} ({size} bytes), recorded {recorded} "
                                      "({recorded_size} bytes)").format(
                                        sha256=sha, size=size, recorded=entry.get("sha256"),
                                        recorded_size=entry.get("bytes"))))
        checked.append(rel)
    for rel in sorted(set(_walk(folder)) - set(listed) - {"capture.json"}):
        findings.append(Finding("unlisted-file", rel, _("in the folder but not in capture.json")))
    wacz = next((p for p, e in listed.items() if e.get("role") == "wacz"), None)
    if wacz is None:
        if listed:  # a failed attempt lists no file at all: then no WACZ is expected
            findings.append(Finding("missing-file", "archive.wacz", _("the record lists no WACZ")))
        return CaptureCheck(tuple(findings), tuple(checked))
    _check_wacz(folder / wacz, wacz, record, findings, checked)
    return CaptureCheck(tuple(findings), tuple(checked))


class _Stored(io.RawIOBase):
    """The raw bytes of a STORED ZIP member, read by position (``os.pread``): no CRC check
    stops the read, so a changed byte is found where it is, not as a failed ZIP read."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self._fd, self._at, self._end = fd, start, start + size
        self.crc = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._end - self._at)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._at)
        if not data:
            raise EOFError(_("the ZIP ends inside a member"))
        buffer[: len(data)] = data
        self._at += len(data)
        self.crc = zlib.crc32(data, self.crc)
        return len(data)


def _member(handle: IO[bytes], zf: zipfile.ZipFile, name: str) -> IO[bytes]:
    """A reader of member ``name``: raw for STORED members (the WARC), else zipfile's."""
    info = zf.getinfo(name)
    if info.compress_type != zipfile.ZIP_STORED:
        return zf.open(info)
    header = os.pread(handle.fileno(), 30, info.header_offset)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(_("no local header for {name}").format(name=name))
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_len + extra_len
    return io.BufferedReader(_Stored(handle.fileno(), start, info.compress_size), 1 << 20)


def _crc_finding(reader: IO[bytes], zf: zipfile.ZipFile, rel: str, name: str
                 ) -> Finding | None:
    raw = getattr(reader, "raw", None)
    if isinstance(raw, _Stored) and raw.crc != zf.getinfo(name).CRC:
        return Finding("bad-wacz", f"{rel}:{name}", _("its bytes do not match the ZIP's CRC-32"))
    return None


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
            except (KeyError, ValueError, zipfile.BadZipFile) as exc:
                findings.append(Finding("bad-wacz", rel,
                                        _("no usable datapackage: {why}").format(why=exc)))
                return
            want = "sha256:" + hashlib.sha256(package_bytes).hexdigest()
            if not isinstance(digest_doc, dict) or digest_doc.get("hash") != want:
                findings.append(Finding("bad-wacz", f"{rel}:datapackage.json",
                                        _("does not match datapackage-digest.json")))
            if not isinstance(package, dict):
                findings.append(Finding("bad-wacz", rel, _("datapackage.json is not an object")))
                return
            if package.get("wacz_version") != "1.1.1":
                findings.append(Finding("bad-wacz", rel, _("wacz_version is not 1.1.1")))
            resources: dict[str, dict[str, Any]] = {
                r["path"]: r for r in package.get("resources", [])
                if isinstance(r, dict) and isinstance(r.get("path"), str)}
            for name in sorted(names - set(resources)
                               - {"datapackage.json", "datapackage-digest.json"}):
                findings.append(Finding("bad-wacz", f"{rel}:{name}", _("not a listed resource")))
            for name, resource in sorted(resources.items()):
                if name not in names:
                    findings.append(Finding("bad-wacz", f"{rel}:{name}", _("listed but absent")))
                    continue
                try:
                    with _member(handle, zf, name) as member:
                        sha, size = _digest(member)
                        crc = _crc_finding(member, zf, rel, name)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    findings.append(Finding("bad-wacz", f"{rel}:{name}",
                                            _("unreadable: {why}").format(why=exc)))
                    continue
                if crc is not None:
                    findings.append(crc)
                if resource.get("hash") != f"sha256:{sha}" or resource.get("bytes") != size:
                    findings.append(Finding("bad-wacz", f"{rel}:{name}",
                                            _("does not match its datapackage.json entry")))
                if name == "archive/data.warc.gz" and sha != (record.get("warc") or {}).get(
                        "sha256"):
                    findings.append(Finding("changed-warc", f"{rel}:{name}",
                                            _("not the WARC the record names")))
            checked.append(f"{rel}:datapackage.json")
            if "archive/data.warc.gz" not in names:
                findings.append(Finding("bad-wacz", rel, _("no archive/data.warc.gz")))
                return
            with _member(handle, zf, "archive/data.warc.gz") as member:
                _check_warc(member, record, findings, checked, _index_urls(zf))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        findings.append(Finding("bad-wacz", rel,
                                _("not a readable ZIP or WARC: {why}").format(why=exc)))


def _labelled(digest: str | None) -> bytes | None:
    if not digest or not digest.startswith("sha256:"):
        return None
    try:
        return base64.b32decode(digest[len("sha256:"):])
    except ValueError:
        return None


class _BadMember(ValueError):
    """A gzip member of the WARC does not decompress or does not hold one whole record."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset


def _pieces(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(offset of its gzip member in the compressed WARC, decompressed bytes), in order.

    Member by member with zlib, which checks each member's CRC-32 and length at its end:
    a changed compressed byte is reported in the member that holds it (custody writes one
    record per member, as WARC 1.1 annex D.2 recommends). Output comes in bounded pieces.
    """
    offset = 0
    pending = b""
    while True:
        start = offset
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not inflate.eof:
            chunk = pending or stream.read(1 << 20)
            pending = b""
            if not chunk:
                if offset == start:
                    return
                raise _BadMember(start, _("the WARC ends inside a gzip member"))
            data = chunk
            while data and not inflate.eof:
                try:
                    piece = inflate.decompress(data, 1 << 20)
                except zlib.error as exc:
                    raise _BadMember(
                        start, _("the compressed record is damaged ({why})").format(why=exc)
                    ) from None
                if piece:
                    yield start, piece
                data = inflate.unconsumed_tail
            offset += len(chunk) - len(inflate.unused_data)
        pending = inflate.unused_data


def _records(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, str], bytes]]:
    """(member offset, WARC named fields, block) of each record: our own reader, not warcio's.

    One record at a time is held in memory, whatever the layout of the gzip members.
    """
    pieces = _pieces(stream)
    buf = bytearray()
    where = 0  # the member the first byte of ``buf`` came from
    latest = 0

    def more() -> bool:
        nonlocal where, latest
        nxt = next(pieces, None)
        if nxt is None:
            return False
        latest = nxt[0]
        if not buf:
            where = latest
        buf.extend(nxt[1])
        return True

    while True:
        while True:  # blank lines between records
            del buf[: len(buf) - len(buf.lstrip(b"\r\n"))]
            if buf:
                break
            if not more():
                return
        start = where
        while (end := buf.find(b"\r\n\r\n")) < 0:
            if len(buf) > 1 << 16:
                raise _BadMember(start, _("a WARC record header longer than 64 KiB"))
            if not more():
                raise _BadMember(start, _("the WARC ends inside a record header"))
        lines = bytes(buf[:end]).split(b"\r\n")
        if not lines[0].startswith(b"WARC/"):
            raise _BadMember(start, _("not a WARC record header: {line}").format(
                line=repr(lines[0][:40])))
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, _colon, value = line.decode("utf-8").partition(":")
            fields[name.strip().lower()] = value.strip()
        length_text = fields.get("content-length", "")
        if not length_text.isdigit():
            raise _BadMember(start, _("a WARC record without a valid Content-Length"))
        need = end + 4 + int(length_text)
        while len(buf) < need:
            if not more():
                raise _BadMember(start, _("the WARC ends inside a record"))
        block = bytes(buf[end + 4 : need])
        del buf[:need]
        where = latest
        yield start, fields, block


def _header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if sep and key.strip().lower() == name:
            return value.strip().decode("latin-1").lower()
    return ""


def _index_urls(zf: zipfile.ZipFile) -> dict[int, str]:
    """Offset -> URL from the WACZ's CDXJ index: only to name a record that cannot be read."""
    found: dict[int, str] = {}
    try:
        text = zf.read("indexes/index.cdx").decode("utf-8")
    except (KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError):
        return found
    for line in text.splitlines():
        try:
            entry = json.loads(line.split(" ", 2)[2])
            found[int(entry["offset"])] = str(entry["url"])
        except (IndexError, ValueError, KeyError, TypeError):
            continue
    return found


def _check_warc(stream: IO[bytes], record: dict[str, Any], findings: list[Finding],
                checked: list[str], index: Mapping[int, str]) -> None:
    payloads: dict[str, tuple[str, str]] = {}  # response id -> (payload sha256, decoded)
    count = 0
    last = _("the warcinfo record")
    try:
        for _offset, fields, block in _records(stream):
            count += 1
            rid = fields.get("warc-record-id", "?")
            last = _("record {id}").format(id=rid)
            want = _labelled(fields.get("warc-block-digest"))
            if want is not None and hashlib.sha256(block).digest() != want:
                findings.append(Finding("bad-warc-record", rid, _("WARC-Block-Digest fails")))
            if fields.get("warc-type") != "response":
                continue
            head, _blank, body = block.partition(b"\r\n\r\n")
            entity = _dechunk(body) if "chunked" in _header(head, b"transfer-encoding") else body
            want = _labelled(fields.get("warc-payload-digest"))
            if want is not None and hashlib.sha256(entity).digest() != want:
                findings.append(Finding("bad-warc-record", rid, _("WARC-Payload-Digest fails")))
            payloads[rid] = (hashlib.sha256(entity).hexdigest(),
                             _decoded_sha(entity, _header(head, b"content-encoding")))
    except _BadMember as exc:
        if exc.offset in index:
            detail = _("at byte {offset} of the WARC, the record after {last} (the WACZ's index "
                       "lists {url} there): {why}; records after it were not checked").format(
                offset=exc.offset, last=last, url=index[exc.offset], why=exc)
        else:
            detail = _("at byte {offset} of the WARC, the record after {last}: {why}; records "
                       "after it were not checked").format(offset=exc.offset, last=last, why=exc)
        findings.append(Finding("bad-warc", "archive/data.warc.gz", detail))
        return
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        findings.append(Finding("bad-warc", "archive/data.warc.gz", str(exc)[:200]))
        return
    checked.append(f"archive/data.warc.gz ({count} records)")
    main = record.get("main_document") or {}
    if main:
        main_id = str(main.get("warc_response_id"))
        if main_id not in payloads:
            findings.append(Finding("missing-warc-record", main_id, _("main document response")))
        elif payloads[main_id][0] != main.get("payload_sha256"):
            findings.append(Finding("bad-warc-record", main_id,
                                    _("main document payload differs")))
    for item in record.get("media", []):
        wanted = item.get("warc_record_ids", [])
        ids = [i for i in wanted if i in payloads]
        if len(ids) != len(wanted):
            findings.append(Finding("missing-warc-record", item.get("path", "?"),
                                    _("a media file's WARC record is not in the WARC")))
        if item.get("match") == "payload" and not any(
                payloads[i][1] == item.get("sha256") for i in ids):
            findings.append(Finding("media-not-in-warc", item.get("path", "?"),
                                    _("no referenced response carries these bytes")))


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
