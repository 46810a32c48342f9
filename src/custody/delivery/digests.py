"""Digests that pin what a report, register or certification was made from and with:

* ``tree_digest`` - a bundle folder or zip as one SHA-256: the SHA-256 of its
  ``sha256sum``-style listing (``<hex>  <path>\\n`` for every regular file, paths relative to
  the bag's top folder, sorted by their UTF-8 bytes). Anyone reproduces it with coreutils::

      cd BUNDLE && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum \\
          | sha256sum

  and for a zip, after unpacking it. A zip also has its own SHA-256 (``sha256sum x.zip``).
* ``tool_identity`` - the custody that is running: its version, and the tree digest of the
  installed ``custody`` package's own files (bytecode caches left out), reproduced the same
  way in the folder ``python3 -c 'import custody, os; print(os.path.dirname(
  custody.__file__))'`` prints (with ``! -name '*.pyc'``).

File names with a backslash or a newline are written as GNU ``sha256sum`` writes them (a
leading backslash, ``\\\\`` and ``\\n``), so the digest still equals the command's.

May import: ``custody.delivery.bundle_source`` (to read bundles safely), ``custody.errors``.
Never follows links; reads only.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from custody import __version__
from custody.delivery.bundle_source import ZIP_DAMAGE, BundleSource
from custody.delivery.report.model import SourceDigest, ToolInfo

_CHUNK = 1 << 20


def _line(digest: str, rel: str) -> bytes:
    if "\\" in rel or "\n" in rel:
        escaped = rel.replace("\\", "\\\\").replace("\n", "\\n")
        return f"\\{digest}  {escaped}\n".encode("utf-8", "surrogateescape")
    return f"{digest}  {rel}\n".encode("utf-8", "surrogateescape")


def listing_digest(entries: Iterable[tuple[str, str]]) -> str:
    """SHA-256 of the sorted ``sha256sum`` listing of (relative path, hex SHA-256)."""
    listing = hashlib.sha256()
    for rel, digest in sorted(entries, key=lambda e: e[0].encode("utf-8", "surrogateescape")):
        listing.update(_line(digest, rel))
    return listing.hexdigest()


def _file_sha256(handle: object) -> str:
    digest = hashlib.sha256()
    read = handle.read  # type: ignore[attr-defined]
    while chunk := read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def tree_digest(path: Path, source: BundleSource | None = None) -> SourceDigest:
    """The tree digest of a bundle folder or zip (and the zip's own SHA-256 and size).

    With ``source`` (a bundle already verified) every digest is of that source's one
    snapshot of the bytes (``BundleSource.digests``: kept or SHA-256-pinned; a file changed
    since is refused), so the digest a report prints is of the bytes it verified.
    Files ``BundleSource`` refuses (links, entries leaving the bundle) are not in the
    listing; verification reports them as BUNDLE_UNSAFE. A zip with a member that does not
    read back (altered inside the zip: verification reports it) has no tree digest, since
    no one could unpack the tree to recompute it; the zip's own SHA-256 is still given.
    """
    own = source is None
    bundle = BundleSource(path) if source is None else source
    damaged = False
    try:
        entries = []
        total = 0
        for rel in bundle.files:
            try:
                entries.append((rel, bundle.digests(rel, ("sha256",))["sha256"]))
            except (FileNotFoundError, *ZIP_DAMAGE):
                damaged = True
            total += bundle.files[rel]
        result = SourceDigest(
            "zip" if bundle.zip is not None else "folder",
            None if damaged else listing_digest(entries),
            len(bundle.files),
            total,
        )
        if bundle.zip is not None:
            result.zip_sha256, result.zip_bytes = bundle.zip.archive_digest()
    finally:
        if own:
            bundle.close()
    return result


@functools.cache
def tool_identity() -> ToolInfo:
    """custody's version and the tree digest of its installed package (see module doc)."""
    package = Path(__file__).resolve().parents[1]
    entries = []
    for folder, dirs, files in os.walk(package, followlinks=False):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".pyc"):
                continue
            full = os.path.join(folder, name)
            if not stat.S_ISREG(os.lstat(full).st_mode):
                continue
            with open(full, "rb") as handle:
                entries.append((os.path.relpath(full, package), _file_sha256(handle)))
    return ToolInfo(__version__, listing_digest(entries), len(entries))
