"""One small, real, timestamped evidence root and its bundles, shared by the tests of the
outside review's findings (tests/test_review_*.py), and the tools an attacker uses on them.

The root is made with the real CLI as separate processes: two photos whose EXIF claims the
ends of the calendar (9999-12-31 23:59:59 at -23:59, and 0001-01-01 00:00:00 without a
zone), a text note, an Arabic name; catalogued, signed, catalogued again (so the bundle
carries a consistency proof between two checkpoints), timestamped by the loopback RFC 3161
TSA of tests/tsa.py, and exported as a folder and as a zip.

Forgeries are made from the bytes with ``json``, ``rfc8785``, ``zipfile``, ``struct`` and
the documenter's real key - never with custody's writer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from tests.tsa import running_tsa

from conftest import PASSPHRASE, SAMPLES
from custody.keys.keyring import Keyring, SigningKey
from test_crash import custody_env, run

JPEG = SAMPLES / "field-dump-01" / "DCIM" / "Camera" / "20160912_100531.jpg"
LATE = "media/late.jpg"  # DateTimeOriginal 9999:12:31 23:59:59, OffsetTimeOriginal -23:59
EARLY = "media/early.jpg"  # DateTimeOriginal 0001:01:01 00:00:00, no zone
EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}  # docs/exit-codes.md, less 70 and 130


@dataclass
class Case:
    base: Path
    home: Path
    env: dict[str, str] = field(repr=False)
    root: Path
    bundle: Path  # the exported folder
    zip: Path  # the same bundle as one zip

    def key(self) -> SigningKey:
        return Keyring(self.home / "keys").get("alice").unlock(PASSPHRASE)


def with_exif(target: Path, when: str, zone: str | None) -> None:
    shutil.copyfile(JPEG, target)
    argv = ["exiftool", "-q", "-overwrite_original", f"-DateTimeOriginal={when}"]
    if zone is not None:
        argv.append(f"-OffsetTimeOriginal={zone}")
    subprocess.run([*argv, str(target)], check=True, timeout=60)


def make_case(base: Path, *, extreme: bool = True) -> Case:
    """The case; without ``extreme`` the two photos claim ordinary capture times."""
    home = base / "home"
    tmpdir = base / "tmpdir"
    tmpdir.mkdir()
    env = custody_env(home, tmpdir)
    root = base / "evidence"

    def ok(*argv: str | os.PathLike[str]) -> None:
        done = run(list(argv), env)
        assert done.returncode == 0, (argv, done.stderr)

    ok("init", root)
    ok("keys", "generate", "--name", "alice")
    media = root / "media"
    media.mkdir()
    if extreme:
        with_exif(root / LATE, "9999:12:31 23:59:59", "-23:59")
        with_exif(root / EARLY, "0001:01:01 00:00:00", None)
    else:
        with_exif(root / LATE, "2016:09:12 10:05:31", "+02:00")
        with_exif(root / EARLY, "2016:09:12 10:05:31", None)
    (media / "note.txt").write_bytes(b"a note from the field\n")
    ok("catalogue", media, "--root", root)
    (media / "رسالة.txt").write_bytes("رسالة من الميدان\n".encode())
    ok("catalogue", media, "--root", root)
    with running_tsa(base) as tsa:
        ok("timestamp", "--root", root, "--tsa", tsa.url)
    bundle = base / "bundle"
    ok("export", "--all", "--zip", "--out", bundle, "--root", root)
    return Case(base, home, env, root, bundle, bundle.with_suffix(".zip"))


# --- ledgers, as an attacker edits them -----------------------------------------------------


def ledger_lines(root: Path) -> list[bytes]:
    return (root / ".custody" / "ledger.jsonl").read_bytes().split(b"\n")[:-1]


def write_ledger(root: Path, lines: list[bytes]) -> None:
    (root / ".custody" / "ledger.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))


def signed_of(line: bytes) -> dict[str, Any]:
    signed: dict[str, Any] = json.loads(line)["signed"]
    return signed


def resign(signed: dict[str, Any], sign: Callable[[bytes], bytes]) -> bytes:
    """A ledger line: ``signed`` in canonical form, signed with ``sign``."""
    body = rfc8785.dumps(signed)
    return b'{"sig":"' + base64.b64encode(sign(body)) + b'","signed":' + body + b"}"


def rechain(lines: list[bytes], start: int, sign: Callable[[bytes], bytes]) -> list[bytes]:
    """Re-link and re-sign every line from ``start`` on (a validly signed rewrite)."""
    out = list(lines)
    for number in range(start, len(out)):
        signed = signed_of(out[number])
        signed["prev"] = hashlib.sha256(out[number - 1]).hexdigest() if number else None
        out[number] = resign(signed, sign)
    return out


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle tree hash, transcribed literally."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def first_of(lines: list[bytes], kind: str) -> int:
    return next(n for n, line in enumerate(lines) if signed_of(line)["type"] == kind)


# --- bundles, as an attacker edits them ------------------------------------------------------


def rebag(folder: Path) -> None:
    """Recompute every manifest, as a forger would, so damage reaches the deeper checks."""
    for algorithm in ("sha256", "sha512"):
        entries = []
        for path in sorted((folder / "data").rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                digest = hashlib.new(algorithm, path.read_bytes()).hexdigest()
                entries.append(f"{digest}  {rel.replace('%', '%25').replace(chr(10), '%0A')}")
        (folder / f"manifest-{algorithm}.txt").write_text("\n".join(entries) + "\n")
    for algorithm in ("sha256", "sha512"):
        entries = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not rel.startswith(("data/", "tagmanifest-")):
                entries.append(f"{hashlib.new(algorithm, path.read_bytes()).hexdigest()}  {rel}")
        (folder / f"tagmanifest-{algorithm}.txt").write_text("\n".join(entries) + "\n")


def zip_folder(folder: Path, target: Path, *, top: str = "bundle") -> Path:
    """The folder as a zip the way custody writes one: payload stored, the rest deflated."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                kind = zipfile.ZIP_STORED if rel.startswith("data/") else zipfile.ZIP_DEFLATED
                archive.write(path, f"{top}/{rel}", compress_type=kind)
    return target


def member_data_offset(archive: Path, name: str) -> tuple[int, int]:
    """(offset of the member's data, offset of its name in the local header)."""
    import struct

    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(name)
    raw = archive.read_bytes()
    header = info.header_offset
    assert raw[header : header + 4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack("<HH", raw[header + 26 : header + 30])
    return header + 30 + name_len + extra_len, header + 30


def patched(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]
