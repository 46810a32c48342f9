"""Collecting a bundle's files: a folder walked without following links, or a zip unpacked
by ``safezip.SafeZip.extract_all`` into a private folder (one safe zip reader for all of
custody); every file measured (size, SHA-256) once, from the bytes every later check uses."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from custody.acquisition.sources.proofmode.model import (
    _CHUNK,
    _MAX_ENTRIES,
    BundleIssue,
    Problem,
)
from custody.acquisition.sources.safezip import SafeZip, ZipLimits
from custody.acquisition.sources.said import Said
from custody.errors import InputError
from custody.i18n import N_, _

# --- collecting the bundle's files ---------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    rel: str  # POSIX relative path inside the bundle
    disk: Path
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.rel).name

    @property
    def folder(self) -> str:
        parent = str(PurePosixPath(self.rel).parent)
        return "" if parent == "." else parent


def _hash_file(handle_fd: int) -> tuple[int, str]:
    # The digest of what is on disk now: the bytes every later check compares against.
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with os.fdopen(handle_fd, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


def _walk_folder(root: Path, issues: list[BundleIssue]) -> list[_File]:
    found: list[_File] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                issues.append(_symlink_issue(root, base / name))
        for name in sorted(names):
            disk = base / name
            rel = disk.relative_to(root).as_posix()
            try:
                info = os.lstat(disk)
            except OSError as exc:
                issues.append(_unreadable(rel, exc))
                continue
            if stat.S_ISLNK(info.st_mode):
                issues.append(_symlink_issue(root, disk))
                continue
            if not stat.S_ISREG(info.st_mode):
                issues.append(
                    BundleIssue(Problem.BUNDLE_UNSAFE_ENTRY, rel, Said(N_("not a regular file")))
                )
                continue
            try:
                fd = os.open(disk, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                size, digest = _hash_file(fd)
            except OSError as exc:
                issues.append(_unreadable(rel, exc))
                continue
            found.append(_File(rel, disk, size, digest))
            if len(found) > _MAX_ENTRIES:
                raise InputError(
                    _("{root}: more than {max_entries} files; not a ProofMode bundle").format(
                        root=root, max_entries=_MAX_ENTRIES
                    )
                )
    return found


def _symlink_issue(root: Path, link: Path) -> BundleIssue:
    rel = link.relative_to(root).as_posix()
    return BundleIssue(Problem.BUNDLE_SYMLINK_SKIPPED, rel, Said(N_("symbolic link: not followed")))


def _unreadable(rel: str, exc: OSError) -> BundleIssue:
    return BundleIssue(Problem.BUNDLE_ENTRY_UNREADABLE, rel, exc.strerror or str(exc))


def _unpack_zip(
    source: Path, target: Path, issues: list[BundleIssue], max_bytes: int
) -> list[_File]:
    """Unpack ``source`` into ``target`` (created here) with custody's one safe zip reader.

    An archive holding anything ProofMode never writes (a path leaving the folder, a link,
    two members of one name, an encrypted member, a zip bomb, damage) is refused whole
    with ``UnsafeArchiveError`` (an ``InputError``) naming the member: a bundle that was
    tampered with that way is not read in part.
    """
    limits = ZipLimits(
        max_entries=_MAX_ENTRIES,
        max_member_size=min(ZipLimits.max_member_size, max_bytes),
        max_total_size=max_bytes,
    )
    with SafeZip(source, limits) as archive:
        issues.extend(
            BundleIssue(Problem.BUNDLE_NAME_ENCODING_UNDECLARED, p.where, p.message)
            for p in archive.problems
        )
        written = archive.extract_all(target)
    return [_File(f.name, f.path, f.size, f.sha256) for f in written]
