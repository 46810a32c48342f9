"""Helpers shared by the foundation tests: independent tools, ledger reading, manifests.

Everything here checks custody from the outside: the real ``sha256sum``/``b3sum``/
``exiftool``/``openssl`` binaries, ``hashlib`` and ``json`` - never custody's own code
for the facts a test asserts. Fixtures stay in the test modules (conftest.py is shared
and not ours to change); this module only holds plain functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import SCHEMAS

GPS_FIX = re.compile(r"^yes (-?\d+\.\d+),(-?\d+\.\d+)$")


# --- running real programs ---------------------------------------------------------------


def tool(
    *argv: str | os.PathLike[str] | bytes,
    cwd: Path | None = None,
    input: bytes | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run an external program (bytes in, bytes out)."""
    result = subprocess.run(
        [a if isinstance(a, bytes) else os.fspath(a) for a in argv],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{argv[0]!r} exited {result.returncode}: {result.stderr.decode(errors='replace')}"
        )
    return result


def sha256sum_tree(tree: Path) -> dict[bytes, str]:
    """{relative name bytes: hex} for every regular file under ``tree``, by ``sha256sum -z``."""
    names = sorted(files_under(tree))
    if not names:
        return {}
    # -z: NUL-terminated output lines with names unescaped, so any byte survives.
    out = tool("sha256sum", "-z", "--", *names, cwd=tree).stdout
    result: dict[bytes, str] = {}
    for entry in out.split(b"\0"):
        if entry:
            digest, _, name = entry.partition(b"  ")
            result[name] = digest.decode()
    assert set(result) == set(names)
    return result


def b3sum_file(path: Path | bytes) -> str:
    return tool("b3sum", "--no-names", path).stdout.decode().strip()


def files_under(tree: Path) -> list[bytes]:
    """Relative names (exact bytes) of every regular file under ``tree``."""
    base = os.fsencode(tree)
    found = []
    for folder, _dirs, names in os.walk(base):
        for name in names:
            full = os.path.join(folder, name)
            if os.path.isfile(full) and not os.path.islink(full):
                found.append(os.path.relpath(full, base))
    return found


def exiftool_n_j(path: Path | bytes, *tags: str) -> dict[str, Any]:
    """What ``exiftool -n -j [-TAG...] FILE`` prints for one file."""
    out = tool("exiftool", "-n", "-j", *[f"-{t}" for t in tags], path).stdout
    documents = json.loads(out)
    assert len(documents) == 1
    doc: dict[str, Any] = documents[0]
    return doc


# --- ledgers -----------------------------------------------------------------------------


def ledger_path(root: Path) -> Path:
    return root / ".custody" / "ledger.jsonl"


def ledger_lines(root: Path) -> list[bytes]:
    data = ledger_path(root).read_bytes()
    assert data == b"" or data.endswith(b"\n"), "ledger ends with a torn line"
    return data.split(b"\n")[:-1]


def ledger_records(root: Path) -> list[dict[str, Any]]:
    """Each line parsed with plain ``json`` (not custody)."""
    return [json.loads(line) for line in ledger_lines(root)]


@dataclass(frozen=True)
class Item:
    seq: int
    body: dict[str, Any]

    @property
    def name_bytes(self) -> bytes:
        raw = self.body.get("path_bytes")
        if raw is not None:
            import base64

            return base64.b64decode(raw)
        path: str = self.body["path"]
        return path.encode("utf-8")

    @property
    def sha256(self) -> str:
        digest: str = self.body["digests"]["sha256"]
        return digest


def items(root: Path) -> list[Item]:
    return [
        Item(r["signed"]["seq"], r["signed"]["body"])
        for r in ledger_records(root)
        if r["signed"]["type"] == "item"
    ]


def latest_items(root: Path) -> dict[bytes, Item]:
    """The latest item record for each path (name bytes relative to the root)."""
    latest: dict[bytes, Item] = {}
    for item in items(root):
        latest[item.name_bytes] = item
    return latest


def signed_part(line: bytes) -> bytes:
    """The bytes after ``,"signed":`` without the final ``}``: what the signature covers."""
    marker = b',"signed":'
    start = line.index(marker) + len(marker)
    assert line.endswith(b"}")
    return line[start:-1]


# --- an independent RFC 9162 Merkle tree head (hashlib only) -----------------------------


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


# --- manifests and schemas ---------------------------------------------------------------


def manifest(media: Path) -> list[dict[str, Any]]:
    """The MANIFEST.json beside a media tree (samples/ or the shared corpus)."""
    for candidate in (media / "MANIFEST.json", media.parent / "MANIFEST.json"):
        if candidate.is_file():
            entries: list[dict[str, Any]] = json.loads(candidate.read_text(encoding="utf-8"))
            return entries
    raise AssertionError(f"no MANIFEST.json beside {media}")


def manifest_name(entry: dict[str, Any]) -> bytes:
    """The exact on-disk bytes of a manifest entry's path."""
    hex_name = entry.get("path_utf8_hex") or ""
    return bytes.fromhex(hex_name) if hex_name else str(entry["path"]).encode("utf-8")


def gps_entries(entries: Iterable[dict[str, Any]]) -> list[tuple[dict[str, Any], float, float]]:
    """Photos with a plain GPS fix and a camera make, as the manifest describes them."""
    found = []
    for entry in entries:
        match = GPS_FIX.match(entry["gps"])
        if match and str(entry["mime"]).startswith("image/") and entry["make"]:
            found.append((entry, float(match.group(1)), float(match.group(2))))
    return found


def schema(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return document


def one_line_error(stderr: str) -> str:
    """Assert stderr is one line, a custody error and no traceback; return the line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    assert "Traceback" not in stderr
    assert lines[0].startswith("custody: error: "), lines[0]
    return lines[0]


# --- values an item record commits to (issue 17: salted commitments) -----------------------


def disclosures(path: Path) -> dict[str, tuple[str, Any]]:
    """A disclosures file (``.custody/disclosures.jsonl`` or a bundle's), decoded with the
    standard library only: SHA-256 of each line -> (field, value)."""
    import base64

    found: dict[str, tuple[str, Any]] = {}
    if not path.exists():
        return found
    for line in path.read_bytes().split(b"\n"):
        if line:
            array = json.loads(base64.urlsafe_b64decode(line + b"=" * (-len(line) % 4)))
            found[hashlib.sha256(line).hexdigest()] = (array[1], array[2])
    return found


def committed_value(root: Path, body: dict[str, Any], name: str) -> Any:
    """An item's collector / source_path / volume: in the clear (older records) or, for a
    commitment, the disclosed value whose SHA-256 the record holds (None if withheld)."""
    if name == "collector" and "collector" in body:
        return body["collector"]
    if name != "collector" and name in body.get("acquisition", {}):
        return body["acquisition"][name]
    digest = body.get("commitments", {}).get(name)
    if digest is None:
        return None
    kept = disclosures(root / ".custody" / "disclosures.jsonl")
    field, value = kept.get(digest, (name, None))
    assert field == name
    return value
def every_line_valid(root: Path) -> set[str]:
    """Assert every ledger line validates against schemas/record.schema.json (plain
    ``jsonschema``); return the ``kind:role`` of every provenance entry seen."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema("record.schema.json"))
    seen: set[str] = set()
    for line in ledger_lines(root):
        document = json.loads(line)
        errors = [e.message for e in validator.iter_errors(document)]
        assert not errors, (line[:300], errors)
        body = document["signed"]["body"]
        seen.update(f"{p['kind']}:{p['role']}" for p in body.get("provenance", []))
    return seen
