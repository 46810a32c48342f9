"""The output folder and the WACZ package: files written only inside it, never via a symlink.

``OutputFolder`` claims a folder that is new or empty and from then on creates files and
sub-folders only relative to a directory descriptor opened with ``O_NOFOLLOW``: every
component is opened without following symlinks and every file is created with
``O_CREAT | O_EXCL``, so nothing planted in the folder during a capture can redirect a write
outside it or onto an existing file. Each file's SHA-256 is computed from the bytes as they
are written.

``write_wacz`` packs the WARC as WACZ 1.1.1 (webrecorder/specs, wacz/1.1.1/index.md, commit
0e5bc37b047aa88d4e20c1e3c5e8cde8e7cad0da): ``archive/data.warc.gz`` and nothing else in
``archive/``; ``indexes/index.cdx``, a CDXJ index made by cdxj-indexer (the indexer py-wacz
and pywb use) over that WARC; ``pages/pages.jsonl`` with the ``json-pages-1.0`` header line
and one page (``url``, ``ts`` in RFC 3339, ``title``, ``id``); ``datapackage.json`` with
``profile: data-package``, ``wacz_version: 1.1.1`` and a ``resources`` entry (``name``,
``path``, ``hash`` as ``sha256:<hex>``, ``bytes``) for every other file, plus ``created``,
``software``, ``title``, ``mainPageURL`` (the spelling py-wacz and ReplayWeb.page read) and
``mainPageUrl`` (the spelling in the spec's prose) and ``mainPageDate``; and
``datapackage-digest.json`` with the SHA-256 of ``datapackage.json``. The WARC is STORED,
not deflated, as the spec's "Zip Compression" section asks, so replay can seek into it.
We write the package ourselves rather than run ``wacz create`` because that tool prints to
stdout, stamps ``created`` from the wall clock rather than the capture's clock, and offers
no control over the ZIP entry times; ``wacz validate`` is the check that it is right.

Imports cdxj-indexer, the standard library, ``capture.errors`` and, for its messages,
``custody.i18n`` and ``sources.said``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cdxj_indexer.main import CDXJIndexer

from custody.acquisition.capture.errors import CaptureStorageError, CaptureUsageError
from custody.acquisition.sources.said import Said
from custody.i18n import N_

WACZ_VERSION = "1.1.1"
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class OutputFile:
    """One file the capture wrote, relative to the output folder."""

    path: str
    role: str
    sha256: str
    bytes: int

    def to_record(self) -> dict[str, Any]:
        return {"path": self.path, "role": self.role, "sha256": self.sha256, "bytes": self.bytes}


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._file.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        super().close()


class OutputFolder:
    """A claimed, new-or-empty output folder; writes go only inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        except OSError as exc:
            raise CaptureStorageError(
                Said(N_("cannot use {path} as the output folder: {why}"), path=str(path),
                     why=str(exc.strerror))) from exc
        if info is not None:
            if stat.S_ISLNK(info.st_mode):
                raise CaptureUsageError(
                    Said(N_("the output folder {path} is a symlink: give a real folder"),
                         path=str(path)))
            if not stat.S_ISDIR(info.st_mode):
                raise CaptureUsageError(Said(N_("{path} exists and is not a folder"),
                                             path=str(path)))
            if os.listdir(path):
                raise CaptureUsageError(
                    Said(N_("the output folder {path} is not empty: give a new folder"),
                         path=str(path)))
        else:
            try:
                os.mkdir(path, 0o755)
            except FileNotFoundError as exc:
                raise CaptureUsageError(
                    Said(N_("cannot create {path}: its parent folder does not exist"),
                         path=str(path))) from exc
            except OSError as exc:
                raise CaptureStorageError(Said(N_("cannot create {path}: {why}"), path=str(path),
                                               why=str(exc.strerror))) from exc
        try:
            self._fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise CaptureStorageError(Said(N_("cannot open {path}: {why}"), path=str(path),
                                           why=str(exc.strerror))) from exc
        self.files: list[OutputFile] = []

    def sync(self) -> None:
        """Make the folder's entries durable (the files themselves are fsynced on close)."""
        with contextlib.suppress(OSError):
            os.fsync(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _parent_fd(self, rel: str, *, make: bool) -> tuple[int, str]:
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise CaptureUsageError(Said(N_("not a plain relative path: {path}"), path=repr(rel)))
        fd = os.dup(self._fd)
        try:
            for part in parts[:-1]:
                if make:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except OSError:
            os.close(fd)
            raise
        return fd, parts[-1]

    def mkdir(self, rel: str, mode: int = 0o755) -> Path:
        fd, name = self._parent_fd(rel, make=True)
        try:
            os.mkdir(name, mode, dir_fd=fd)
        except OSError as exc:
            raise CaptureStorageError(Said(N_("cannot create {path}: {why}"),
                                           path=str(self.path / rel),
                                           why=str(exc.strerror))) from exc
        finally:
            os.close(fd)
        return self.path / rel

    @contextlib.contextmanager
    def create(self, rel: str, role: str) -> Any:
        """A new file ``rel`` opened for writing; recorded with its digest when closed."""
        try:
            fd, name = self._parent_fd(rel, make=True)
            try:
                out = os.open(name, _FILE_FLAGS, 0o644, dir_fd=fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise CaptureStorageError(Said(N_("cannot create {path}: {why}"),
                                           path=str(self.path / rel),
                                           why=str(exc.strerror))) from exc
        writer = _HashingWriter(out)
        try:
            yield writer
        finally:
            writer.close()
        self.files.append(OutputFile(rel, role, writer.digest.hexdigest(), writer.size))

    def copy_in(self, source: Path, rel: str, role: str) -> OutputFile:
        """Copy a file from the work folder (opened without following symlinks)."""
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(src, "rb") as handle, self.create(rel, role) as out:
            while block := handle.read(1 << 20):
                out.write(block)
        return self.files[-1]

    def write_bytes(self, rel: str, data: bytes, role: str) -> OutputFile:
        with self.create(rel, role) as out:
            out.write(data)
        return self.files[-1]


def _cdxj(warc: Path) -> bytes:
    text = io.StringIO()
    indexer = CDXJIndexer(text, [os.fspath(warc)], sort=True, post_append=True)
    indexer.process_all()
    return text.getvalue().encode("utf-8")


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    m = moment.astimezone(UTC)
    return (max(1980, m.year), m.month, m.day, m.hour, m.minute, m.second)


def write_wacz(out: IO[bytes], *, warc: Path, page_url: str, page_ts: str, title: str,
               created: datetime, software: str) -> dict[str, Any]:
    """Write a WACZ holding ``warc`` (named ``data.warc.gz``) to ``out``; return its manifest."""
    if warc.name != "data.warc.gz":
        raise ValueError("the WARC must be named data.warc.gz")
    stamp = _zip_time(created)
    created_text = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pages = (
        json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "Captured page"}) + "\n"
        + json.dumps({"id": "page-1", "url": page_url, "ts": page_ts, "title": title},
                     ensure_ascii=False) + "\n"
    ).encode("utf-8")
    index = _cdxj(warc)
    resources: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        info = zipfile.ZipInfo("archive/data.warc.gz", stamp)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        digest = hashlib.sha256()
        size = 0
        with open(warc, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
            while block := src.read(1 << 20):
                dst.write(block)
                digest.update(block)
                size += len(block)
        resources.append({"name": "data.warc.gz", "path": "archive/data.warc.gz",
                          "hash": f"sha256:{digest.hexdigest()}", "bytes": size})
        for path, data in (("indexes/index.cdx", index), ("pages/pages.jsonl", pages)):
            _put(zf, path, data, stamp)
            resources.append({"name": PurePosixPath(path).name, "path": path,
                              "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
                              "bytes": len(data)})
        package = {
            "profile": "data-package",
            "wacz_version": WACZ_VERSION,
            "title": title or page_url,
            "created": created_text,
            "software": software,
            "mainPageURL": page_url,
            "mainPageUrl": page_url,
            "mainPageDate": page_ts,
            "resources": resources,
        }
        package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
        _put(zf, "datapackage.json", package_bytes, stamp)
        digest_doc = {"path": "datapackage.json",
                      "hash": f"sha256:{hashlib.sha256(package_bytes).hexdigest()}"}
        _put(zf, "datapackage-digest.json", json.dumps(digest_doc, indent=2).encode(), stamp)
    return package


def _put(zf: zipfile.ZipFile, path: str, data: bytes,
         stamp: tuple[int, int, int, int, int, int]) -> None:
    info = zipfile.ZipInfo(path, stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
